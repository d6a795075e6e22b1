"""Novelty against the training corpus and recent samples (``evaluators/novelty.py``): duplicates,
templates copied across topics, masked similarity and the bounded recent window."""

from __future__ import annotations

from sparring.evaluators.joke_validator import validate_joke
from sparring.evaluators.novelty import JokeEntry, JokeIndex, RecentJokes, masked_similarity

from .conftest import CORPUS, GOOD


def test_duplicate_of_a_corpus_joke_has_zero_novelty():
    v = validate_joke("Q: Why don't scientists trust atoms?\nA: Because they make up everything!", corpus=CORPUS)
    assert v.novelty == 0.0 and v.novelty_corpus == 0.0
    assert not v.rules["novelty"][0] and "same joke" in v.rules["novelty"][1]


def test_template_copied_across_topics_loses_novelty():
    for text in [
        "Q: Why don't bakers trust bread?\nA: Because they make up everything.",
        "Q: Why don't cats trust dogs?\nA: They make up everything.",
        "Q: Why did the chef win an award?\nA: Because he was outstanding in his field.",
    ]:
        v = validate_joke(text, corpus=CORPUS)
        assert v.novelty == 0.0 and not v.rules["novelty"][0], (text, v.rules["novelty"])


def test_distinct_jokes_with_a_common_frame_stay_novel():
    v = validate_joke("Q: Why did the banana go to the doctor?\nA: It wasn't peeling well.", corpus=CORPUS + [GOOD])
    assert v.rules["novelty"][0] and v.novelty > 0.3


def test_masked_similarity_ignores_swapped_slots():
    a = tuple("why don't scientists trust atoms because they make up everything".split())
    b = tuple("why don't bakers trust bread because they make up everything".split())
    assert masked_similarity(a, b)[0] == 1.0
    c = tuple("why did the banana go to the doctor it was not peeling well".split())
    assert masked_similarity(a, c)[0] < 0.5


def test_recent_window_catches_repeats_and_is_bounded():
    recent = RecentJokes(maxlen=2)
    recent.add(JokeEntry.make("Why did the cookie go to the doctor?", "Because it felt crummy!"))
    v = validate_joke(GOOD, recent=recent)
    assert v.novelty_recent == 0.0 and not v.passed
    recent.add(JokeEntry.make("Why did the cake cry?", "It was in tiers."))
    recent.add(JokeEntry.make("Why was the bread sad?", "It felt kneaded."))
    assert len(recent) == 2
    later = validate_joke(GOOD, recent=recent)  # the cookie joke left the window
    assert later.novelty_recent > 0.5 and later.rules["novelty"][0]
    # plain strings work as a recent list too
    assert validate_joke(GOOD, recent=[GOOD]).novelty_recent == 0.0


def test_corpus_index_accepts_texts_dicts_and_index():
    index = JokeIndex.from_pairs([("Why don't scientists trust atoms?", "Because they make up everything.")])
    a = validate_joke(CORPUS[0], corpus=index)
    b = validate_joke(CORPUS[0], corpus=CORPUS)
    assert a.novelty == b.novelty == 0.0
