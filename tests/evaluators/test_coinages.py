"""Coined answer words (``evaluators/coinages.py``): hyphenations that read as another word, blends
that carry a piece of the subject, and the inflections and agent nouns that coin nothing."""

from __future__ import annotations

import pytest

from sparring.evaluators.coinages import coined_evidence
from sparring.evaluators.wordplay import wordplay


@pytest.mark.parametrize("question, answer, passes", [
    ("What is an owl's favorite school subject?", "Owl-gebra.", True),               # reads as "algebra"
    ("Why did the egg win every boxing match?", "It was hard-boiled.", True),        # a compound on the subject
    ("Why was the elf feeling so down?", "He had low elf-esteem.", True),            # "elf" heard in "self"
    ("Why did the fish go to the restaurant?", "It was sushi-flipped.", False),      # hyphen, no second reading
    ("Why did the hitchhiker pull the rope?", "It was being good-natured.", False),  # a plain compound
    ("Why did the bamboo plant get a bad rap?", "It was bamboo-harvested.", False),  # the subject + a word
    ("Why did the bread win the manners award?", "It was very well-bread.", True),   # "bread" heard as "bred"
    ("How do eggs leave the highway?", "They take the eggs-it.", True),             # sounds as "exit"
    ("How does the bunny stay in shape?", "Plenty of eggs-ercise.", True),          # reads as "exercise", 3 edits in 10 letters
    ("Why is the deer always early?", "It's a real fawn-atic about time.", True),   # "fawn" is heard in "fanatic"
    ("Why was the lifeguard so strict?", "She followed pool-icy to the letter.", True),  # heard as "policy", though "police" reads closer
    ("What did the mathematician say to the pie?", "Yes, it feels really pie-ative.", False),  # "creative" to the eye only
    ("Why was the road so brave?", "It was always perfect road-breaking.", False),  # "road" is not heard in "groundbreaking"
    ("Why did the raccoon get invited to the party?", "It was a raccoon-riding guest.", False),  # a compound adjective, nothing else
    ("Why did the seahorse get a job at the beach?", "It was a seahorse-level sailor.", False),
])
def test_a_hyphen_is_a_pun_only_when_the_word_reads_as_another(question, answer, passes):
    assert (wordplay(question, answer).score >= 0.5) is passes, wordplay(question, answer).reason


@pytest.mark.parametrize("question, answer, topic, passes", [
    ("What do you call a pile of sleeping kittens?", "A meowntain.", "cats", True),  # mountain + "meow" of cats
    ("Why did the raccoon get lost?", "It kept beleiving the map.", "raccoons", False),  # a misspelling, no subject piece
    ("What do you call a pile of sleeping kittens?", "A mowntain.", "cats", False),  # reads as mountain, nothing of cats
])
def test_a_blend_is_a_pun_when_it_carries_a_piece_of_the_subject(question, answer, topic, passes):
    assert (wordplay(question, answer, topic).score >= 0.5) is passes, wordplay(question, answer, topic).reason


def test_a_regular_agent_noun_is_no_coinage():
    assert coined_evidence("paddler") is None and coined_evidence("skaters") is None  # paddle + r: CMUdict lacks them
    assert wordplay("Why did the kayak get a promotion?", "It had been a great paddler.", "kayaks").score < 0.5
    assert coined_evidence("purrfect") is not None
