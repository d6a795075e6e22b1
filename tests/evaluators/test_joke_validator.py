"""The joke validator: every rule, the wordplay evidence, novelty against a corpus and recent
samples, the profanity list, and bad input (empty, 10 kB, lone surrogates, non-strings)."""

from __future__ import annotations

import pytest

from sparring.evaluators.coinages import coined_evidence
from sparring.evaluators.clean_language import EVERYDAY_WORDS, find_profanity
from sparring.evaluators.joke_format import parse_joke
from sparring.evaluators.joke_validator import RULES, validate_joke
from sparring.evaluators.novelty import JokeEntry, JokeIndex, RecentJokes, masked_similarity
from sparring.evaluators.idioms import find_idiom
from sparring.evaluators.sounds import phones, sound_neighbours
from sparring.evaluators.wordplay import wordplay

GOOD = "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy!"
CORPUS = [
    "Q: Why don't scientists trust atoms?\nA: Because they make up everything.",
    "Q: Why did the scarecrow win an award?\nA: Because he was outstanding in his field.",
    {"question": "What do you call a fake noodle?", "answer": "An impasta."},
]


def test_good_joke_passes_every_rule():
    v = validate_joke(GOOD)
    assert v.passed, v.rules
    assert set(v.rules) == set(RULES)
    assert v.question == "Why did the cookie go to the doctor?" and v.answer == "Because it felt crummy!"
    assert v.to_dict()["passed"] is True


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "Why did the cookie go to the doctor?\nBecause it felt crummy!",
        "Question: Why did the cookie go to the doctor?\nAnswer: Because it felt crummy!",
        "**Q:** Why did the cookie go to the doctor?\n**A:** Because it felt crummy!",
        "Q: Why did the cookie go to the doctor?\n\nA: Because it felt crummy!\n",
        "  " + GOOD + "  \n",
    ],
)
def test_format_accepts_two_line_forms(text):
    assert parse_joke(text).ok, parse_joke(text).reason


@pytest.mark.parametrize(
    "text, why",
    [
        ("Q: Why did the cookie go to the doctor? A: Because it felt crummy!", "one line"),
        ("Q: Why did the cookie go to the doctor\nA: Because it felt crummy!", "not a question"),
        ("Q: Why did the cookie go to the doctor?\nA:", "empty answer"),
        ("Q: Why did the cookie go to the doctor?\nA: ...!", "empty answer"),
        (GOOD + "\nQ: Why did the cake cry?\nA: It was in tiers.", "questions"),
        (GOOD + "\nHope you liked it!", "extra lines"),
        ("A: Because it felt crummy!\nQ: Why did the cookie go to the doctor?", "answer"),
        ("Q: Why did the cookie go to the doctor?\nA: Crummy. Q: Why did the cake cry?", "another question"),
        (GOOD + " " * 40, "whitespace"),
        ("", "empty"),
        ("   \n\t ", "empty"),
    ],
)
def test_format_rejections_say_why(text, why):
    parsed = parse_joke(text)
    assert not parsed.ok and why in parsed.reason
    v = validate_joke(text)
    assert not v.passed and not v.rules["format"][0]


def test_length_bounds_measure_the_joke_without_labels():
    assert not validate_joke("Q: Why?\nA: Pun.").rules["length"][0]
    long = "Q: Why did the " + "very " * 40 + "long cookie go to the doctor?\nA: Because it felt crummy!"
    v = validate_joke(long)
    assert v.rules["format"][0] and not v.rules["length"][0]


def test_profanity_whole_words_only():
    assert find_profanity("Scunthorpe has a class on how to assume cocktail recipes") == []
    assert find_profanity("what the fuck") == ["fuck"]
    assert "shit" in find_profanity("sh1t happens")
    assert find_profanity("you idiot") == ["idiot"]
    assert find_profanity("he said blow job") == ["blow job"]
    # everyday words from the list that dad jokes use in their plain sense
    assert {"pot", "pawn", "organ", "weed"} <= EVERYDAY_WORDS
    assert find_profanity("The pawn moved to the pot of weeds near the organ") == []
    v = validate_joke("Q: Why did the bastard go to the doctor?\nA: Because it felt crummy!")
    assert not v.passed and not v.rules["clean"][0] and "bastard" in v.rules["clean"][1]


@pytest.mark.parametrize(
    "text",
    [
        "Sure! Why did the cookie go to the doctor?\nBecause it felt crummy!",
        "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy! Hope this made you smile",
        "Q: As an AI, why did the cookie go to the doctor?\nA: Because it felt crummy!",
        "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy! Haha",
        "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy! 😂🤣",
        "Dad joke: why did the cookie go to the doctor?\nA: Because it felt crummy!",
    ],
)
def test_meta_commentary_fails(text):
    v = validate_joke(text)
    assert not v.rules["no_meta"][0], v.rules["no_meta"]


def test_answer_copying_the_question_fails():
    v = validate_joke("Q: Why did the cookie go to the doctor?\nA: Why did the cookie go to the doctor")
    assert not v.rules["answer_not_copy"][0]
    v = validate_joke("Q: Why did the cookie go to the doctor?\nA: The cookie went to the doctor.")
    assert not v.rules["answer_not_copy"][0]
    v = validate_joke("Q: Why did the zucchini feel like a zucchini?\nA: Because it was a zucchini!")
    assert not v.rules["answer_not_copy"][0]
    assert validate_joke("Q: Why couldn't the tent fall asleep?\nA: It was too in-tents.").rules["answer_not_copy"][0]


def test_repetition_loops_fail():
    v = validate_joke("Q: Why did the cookie go to the doctor?\nA: Crumbs crumbs crumbs crumbs")
    assert not v.rules["no_repetition"][0]
    v = validate_joke("Q: Why did the cookie cry?\nA: It was sad and it was sad and it was sad")
    assert not v.rules["no_repetition"][0]


def test_wordplay_evidence_kinds():
    assert wordplay("What did the flower say to the baker?", "I need your flour.").evidence[0].kind == "homophone"
    assert "hidden_word" in {e.kind for e in wordplay("What do you call fake pasta?", "An impasta.").evidence}
    assert "coined_word" in {e.kind for e in wordplay("What do you call a fake noodle?", "An impasta.").evidence}
    assert "coined_word" in {e.kind for e in wordplay("Why did the bicycle fall over?", "It was two-tired.").evidence}
    # a two-sense word tied to the subject is strong ("guts" with skeletons); untied, it is weak
    assert wordplay("Why don't skeletons fight?", "They don't have the guts.").evidence[0].kind == "subject_double"
    untied = wordplay("Why did the man stay home?", "He felt a draft.")
    assert [e.kind for e in untied.evidence] == ["double_meaning"] and untied.score < 0.5
    assert "subject_sound" in {e.kind for e in wordplay("Why did the bread go to therapy?", "It felt kneaded.").evidence}
    assert "sound_alike" in {e.kind for e in wordplay("What did he say?", "So many knights.").evidence}
    # ... and tied to the subject ("dark" -> "nights") it is stronger evidence
    assert wordplay("Why were the Dark Ages dark?", "There were so many knights.").evidence[0].kind == "subject_sound"
    assert "idiom" in {e.kind for e in wordplay("What did the kettle say?", "Just letting off steam.").evidence}
    # a pun on the topic word counts when the topic is given
    assert wordplay("What did the gardener say?", "I need more flour power.", topic="flower").score == 1.0


def test_literal_answers_have_no_wordplay():
    for q, a in [
        ("Why do birds fly south?", "Because it is warmer there."),
        ("What do cows drink?", "Water, mostly."),
        ("What is the capital of France?", "Paris is the capital of France."),
    ]:
        r = wordplay(q, a)
        assert r.score < 0.5, (q, a, r.reason)
        assert not validate_joke(f"Q: {q}\nA: {a}").passed


@pytest.mark.parametrize(
    "question, answer, topic, kind",
    [
        ("Why are pigs terrible at basketball?", "They always hog the ball.", "pigs", "subject_double"),
        ("Why was the sourdough always first at the office?", "It liked to rise before everyone else.", "bread", "subject_double"),
        ("Why are fish so smart?", "They spend all day in schools.", "fish", "subject_double"),
        ("What do pigs use to write letters?", "A pigpen.", "pigs", "subject_double"),
        ("What did the baker whisper to the dough?", "I knead you.", "baker", "subject_sound"),
        ("Which country is always cold?", "Chile.", "geography", "subject_sound"),
        ("What is a ghost's favorite dessert?", "I scream.", None, "subject_sound"),
        ("How do astronauts organize a party?", "They planet.", "astronaut", "subject_sound"),
        ("Which letter of the alphabet holds the most water?", "The C.", "spelling", "subject_sound"),
        ("What did the lettuce say to its friends at the door?", "Lettuce in, it's cold out here!", "lettuce", "subject_reheard"),
        ("Why did the bear skip the party?", "It just couldn't bear the noise.", "bears", "subject_reheard"),
        ("Why did the knight stay up so late?", "He was a knight owl.", "knights", "idiom_by_sound"),
        ("Why did the musician get arrested?", "He got into treble with the law.", "music", "idiom_by_near_sound"),
        ("Why do ducks make excellent detectives?", "They always quack the case.", "ducks", "subject_bridge"),
        ("Why did the lion refuse to play cards in the savanna?", "There were too many cheetahs.", "cats", "subject_sound"),
        ("Why did the meteorologist get a raise?", "She was great at brainstorming.", None, "hidden_subject_word"),
        ("What did the carpenter say when his saw went missing?", "I saw it coming.", None, "reused_in_new_sense"),
        ("Why did the beach ball look so stressed?", "It was under too much pressure.", "beach", "idiom"),
    ],
)
def test_subject_linked_puns(question, answer, topic, kind):
    r = wordplay(question, answer, topic)
    assert kind in {e.kind for e in r.evidence}, r.reason
    assert r.score >= 0.5
    assert validate_joke(f"Q: {question}\nA: {answer}", topic=topic).passed


def test_one_word_counts_once_and_field_lists_are_literal():
    # "guts" is a double meaning and a field word with a second sense: one finding, not two
    assert [e.kind for e in wordplay("Why don't skeletons fight?", "They don't have the guts.").evidence] == ["subject_double"]
    listed = wordplay("What did the mechanic fix?", "The brakes and a flat tire.")
    assert all(e.weight < 0.5 for e in listed.evidence if e.kind.startswith("subject_")), listed.reason


def test_literal_answers_in_the_subjects_field_still_fail():
    # words of the question's own field used literally, no second sense or sound-alike
    for q, a in [
        ("How do fish breathe underwater?", "They use their gills."),
        ("What did the doctor give the patient?", "A prescription for some medicine."),
        ("Why was the student tired?", "She stayed up late studying for a test."),
        ("What did the pilot say before takeoff?", "Please fasten your seatbelts."),
        ("Why did the mail arrive late?", "The delivery truck broke down."),
        ("Why did the girl open the window?", "It was warm in her room."),
    ]:
        assert not validate_joke(f"Q: {q}\nA: {a}").passed, (q, a, wordplay(q, a).reason)


def test_senses_lexicon_links_fields_and_lists_two_senses():
    from sparring.evaluators.senses import base_forms, has_two_senses, linked_to

    assert linked_to("hog", ["pigs", "basketball"]) == ("pigs", "farm")
    assert linked_to("pig", ["pig"]) is None  # the same word is no link
    assert linked_to("hope", ["kangaroo"]) is None  # "hope" is not an inflection of "hop"
    assert has_two_senses("banks") and has_two_senses("charged") and not has_two_senses("gills")
    assert "stop" in base_forms("stopped") and "bake" in base_forms("baked")


def test_base_model_completions_mostly_fail():
    """Stored SmolLM2-135M completions (``evaluators/data/base_model_outputs.jsonl``) are not
    jokes; the referee must keep failing at least 90% of them."""
    import json
    from pathlib import Path

    import sparring.evaluators

    path = Path(sparring.evaluators.__file__).resolve().parent / "data" / "base_model_outputs.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 40
    passed = [r["completion"] for r in rows if validate_joke(r["completion"], topic=r["topic"]).passed]
    assert len(passed) <= 0.10 * len(rows), passed


@pytest.mark.parametrize("question, answer, topic, passes", [
    # a coinage on an unrelated word is what a trained model stumbles into: it needs a tie
    ("Why was the bouncer so fine-dyed?", "It didn't give a niable lay.", "doors", False),
    ("What's a bird's favorite dish called?", "An important dikerbo.", "birds", False),
    ("What do you call a cat that gets everything right?", "Purrfect.", "cats", True),   # 'purr' is the cat's
    # a rarer spelling of a commoner word, with nothing of the subject in either
    ("Why did the pickle grit dust its teeth?", "It wanted to go pore.", "pickles", False),
    ("Why did the baker stop working?", "He kneaded a break.", "baker", True),          # the baker's own word
    # the pronoun "I" is not the letter heard as "eye"; a word is not re-heard as itself + "is"
    ("What did the dentist say when his ears were plugged?", "I love a tooth.", "dentist", False),
    ("What do rabbits eat for dinner on their nest?", "Arm sandwiches.", "rabbits", False),
    # a hyphenation that only inflects a word or splits a plain compound says nothing new
    ("Why did the lighthouse keep its lighthouse closed?", "It felt so lighthouse-ed.", "lighthouses", False),
    ("Why was the xylophone always so quiet at the party?", "It was totally rock-ed.", "xylophones", False),
    ("Why did the dragonfly love its wingsuit?", "It was so light-weight.", "dragonflies", False),
    ("Why was the candle so good at its job?", "It had wick-ed skills.", "candles", True),     # "wicked" is no "wick" + ed
    ("Why did the farmer bring a garden tool to the dance?", "It was a hoe-down.", "farmer", True),  # split, and tied
    # function words re-cut by chance ("to see" as "two sea"), everyday words split ("little" as "lit ill")
    ("Why did the vending machine sleep at the beach?", "It wanted to see what showers would drink.", "april fools", False),
    ("Why did the farmer drop the vaccine?", "He was getting a little too frayed.", "farmer", False),
    ("Why did the ice cream truck stop?", "I scream, you scream.", "ice cream", True),          # still heard as "ice cream"
    # the subject with an ending or misspelled reads as nothing new ("grave-y" does: gravy)
    ("Why was the carousel so good at carousel-ing?", "It was always great at carousel-ing itself.", "carousels", False),
    ("Why did the sloth stay up all night?", "It kept slothful.", "sloths", False),
    ("What do raccoons call their baby raccoon?", "A racoon.", "raccoons", False),
    ("What does a zombie put on its salad?", "Grave-y.", "halloween", True),
    ("Why did the snorkel win the argument?", "It was an ace at snorkelling.", "snorkels", False),
    # the subject said again hides nothing new; said again and heard as another word it is a pun
    ("What did the seahorse say to the sea lion?", "You're a good seahorse.", "seahorses", False),
    ("Where do ghosts post their letters?", "At the ghost office.", "ghosts", True),
    # a subject word hidden in a coinage that reads as no word is no pun ("impasta" reads as one)
    ("How does a donut wish its meal was a pizza?", "It wanted a pizzairable.", "donuts", False),
])
def test_second_readings_must_touch_the_subject(question, answer, topic, passes):
    result = wordplay(question, answer, topic)
    assert (result.score >= 0.5) is passes, result.reason


def test_trained_model_non_puns_do_not_regress():
    """``evaluators/data/model_outputs_labelled.jsonl``: 284 completions of trained models (150 after
    SFT, 50 after SFT + GRPO, 18 + 18 + 14 + 13 + 7 + 14 after SFT + GRPO against the tightened
    referees of 2026-12-06 and 2026-12-07) that the referee of their day passed, judged by hand; 265
    are no pun.  The current referee rejects about half of those non-puns (0.53 still pass -- each
    new demo's passes are, by construction, the holes of the referee it trained against, and the
    last demo's 12 non-puns were added with 11 of their holes open: a listed idiom alone, a field
    word used literally; on the first 236 rows 0.66 passed before respellings had to be heard,
    setting-only double meanings counted half and the question's own phrases stopped counting as
    second readings, 0.48 after): the semantic-field rules cannot tell a literal answer from a pun,
    and a policy trained against them finds new holes.  This ratchet keeps the rules from sliding
    back, and most of the real puns passing."""
    from sparring.evaluators.referee_trust import model_output_check

    result = model_output_check()
    assert result["rows"] == 284 and result["puns"] == 19
    assert result["groups"]["all"]["non_puns_passed"] <= 0.53, result
    assert result["groups"]["all"]["puns_passed"] >= 0.75, result


@pytest.mark.slow
def test_most_training_corpus_jokes_show_wordplay():
    from sparring.sft.corpus import load_jokes

    jokes = load_jokes()
    shown = sum(wordplay(j["question"], j["answer"], j["topic"]).score >= 0.5 for j in jokes)
    # 0.936 measured on 1,086 jokes; 0.903 since coinages, sound-alikes, double meanings and split
    # compounds untied to the subject count half (what still fails is mostly a gap of senses.py's
    # fields -- "hue" for a rainbow, "scents" for a skunk -- not of the rule); 0.885 since a respelling
    # must be heard as its reading, not only seen ("honk-estly", "owl-some" are lost with "pie-ative");
    # 0.861 since a two-sense word of the question's setting needs a tie to its subject ("filling" for a
    # donut at the dentist is kept by the lexicon; "bills" for an accountant's duck is lost with "class" at school)
    assert shown >= 0.85 * len(jokes), shown / len(jokes)


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


@pytest.mark.parametrize("question, answer, topic, passes", [
    ("Why was the centipede in trouble after school?", "It got thrown out of the class.", "insects", False),  # "class" of the setting, used literally
    ("Why was the centipede in trouble after school?", "It got thrown out of the class.", None, True),  # no topic: the question is the subject
    ("Why did the pig win the ball game?", "It hogged the ball.", "pigs", True),          # "hog" of the subject
    ("Why did the donut visit the dentist?", "It needed a filling.", "donuts", True),     # of the setting, and of the subject too
    ("Why did the ghost leave the restaurant so disappointed?", "There were no spirits on the menu.", "restaurant", True),  # the ghost is who it is about
])
def test_a_two_sense_word_of_the_setting_alone_is_no_pun(question, answer, topic, passes):
    assert (wordplay(question, answer, topic).score >= 0.5) is passes, wordplay(question, answer, topic).reason


@pytest.mark.parametrize("question, answer, topic, passes", [
    # the question's own phrase said again is the same thing, not a second hearing
    ("What did the ice cream cone say to the lemonade stand?", "You're a good ice cream cone.", "popsicles", False),
    ("What do harmonicas mean when they're feeling a little down?", "They're feeling a little down.", "harmonicas", False),
    ("What do we call a helicopter that can fly high?", "A high-flying helicopter.", "helicopters", False),
    # ... a form of the question's word is no hidden word, nor is the word behind a plain prefix
    ("Why did the engineer talk to the frustum?", "He was really good engineering.", "engineers", False),
    ("Is it possible to drink a waterfall?", "It's impossible!", "waterfalls", False),
    ("Why did the rocking chair buy a concert ticket?", "It loved rock music.", None, True),      # same word, new phrase
    ("Why was the noodle thrown out of the party?", "Everyone found out it was an impasta.", None, True),
    ("Why did the old tire finally stop working?", "It was re-tired.", None, True),              # one part is the question's
    ("What do blacksmiths make of their hammer and anvil?", "They're always hammering out a new story.", "blacksmiths", True),
    # ... nor is the question's own compound hyphenated, a dropped g, or a scrap of letters
    ("Why did the ice cream cone get a job at the bakery?", "It was great at ice-cream-ing.", "ice cream", False),
    ("What do yo-yos call the most important person in their lives?", "The yo-yos of their life.", "yo-yos", False),
    ("What did the lantern say in the dark?", "It kept lightin' the lantern.", "lanterns", False),
    ("What did a hammock say to the bed?", "I'm so glad you're feeling a little ho-m.", "hammocks", False),
    ("What do tuxedo shoes say to a pair of sneakers?", "You're a bit too tight in the toe-toe.", "tuxedos", False),  # "toto"
    ("Which bird is always out of breath?", "A puffin.", None, True),                                # "puffin" is a word: it hides "puff"
])
def test_what_the_question_already_says_is_no_second_reading(question, answer, topic, passes):
    assert (wordplay(question, answer, topic).score >= 0.5) is passes, wordplay(question, answer, topic).reason


def test_irregular_plurals_are_the_same_word():
    from sparring.evaluators.wordplay import same_word

    assert same_word("feet", "foot") and same_word("teeth", "tooth") and not same_word("feet", "fee")
    assert "near_homophone" not in {e.kind for e in wordplay("Why did the elephant hurt its feet?", "It stepped on a foot.").evidence}


def test_sound_distance_counts_near_sounds_half_and_edges_are_heard_by_sound():
    from sparring.evaluators.sounds import sound_distance, sounds_at_edge

    assert sound_distance(("AW", "L"), ("AE", "L")) == 0.5      # a vowel for a vowel
    assert sound_distance(("EH", "G", "Z"), ("EH", "K", "S")) == 1.0  # two voicing partners
    assert sound_distance(("P", "AY"), ("K", "R")) == 2.0
    assert sound_distance(("R", "OW", "D"), ("R", "OW", "D", "Z")) == 1.0  # an insertion costs a whole edit
    assert sounds_at_edge("toe", "totally", start=True) and sounds_at_edge("moo", "musician", start=True)
    assert sounds_at_edge("sight", "website", start=False) and not sounds_at_edge("sight", "website", start=True)
    assert not sounds_at_edge("pie", "creative", start=True) and not sounds_at_edge("gloves", "hangover", start=False)
    assert not sounds_at_edge("zzzqx", "totally", start=True)  # no pronunciation: nothing is heard


def test_sounds_like_joins_the_parts_pronunciations():
    from sparring.evaluators.sounds import sounds_like

    assert sounds_like(("eggs", "it")) == "exit"
    assert sounds_like(("a", "b")) is None  # under four phonemes: no claim
    assert sounds_like(("zzzqx", "it")) is None


def test_two_words_heard_as_one_hide_a_word_only_across_their_boundary():
    sunflowers = wordplay("What did the sunflowers say to the flowers they planted?", "Sunflowers, I love you.", "sunflowers")
    assert "hidden_word" not in {e.kind for e in sunflowers.evidence} and sunflowers.score < 0.5, sunflowers.reason


def test_reuse_backs_only_a_reading_tied_to_the_subject():
    sloths = wordplay("Why do sloths love summer?", "They love soaking up the sun.", "sloths")  # "son": untied
    assert "reuse" not in {e.kind for e in sloths.evidence} and sloths.score < 0.5, sloths.reason
    lox = wordplay("What sea monster hides in the bagel shop?", "The Lox Ness Monster.", "bagels")
    assert "reuse" in {e.kind for e in lox.evidence} and lox.score >= 0.5, lox.reason


def test_reuse_is_the_weakest_evidence_and_the_threshold_is_adjustable():
    r = wordplay("Why did the dog bark?", "The dog was hungry.")
    assert [e.kind for e in r.evidence] == ["reuse"] and r.score == 0.25
    joke = "Q: Why did the dog bark?\nA: The dog was hungry."
    assert not validate_joke(joke).rules["wordplay"][0]
    assert validate_joke(joke, wordplay_threshold=0.25).rules["wordplay"][0]


def test_sound_index_finds_commoner_sound_alikes():
    same, near = sound_neighbours("knights")
    assert "nights" in same
    assert "star" in sound_neighbours("starch")[1]  # one phoneme deleted
    assert "needed" in sound_neighbours("kneaded")[0]  # an inflection CMUdict lacks, pronounced from its stem
    assert phones("two-tired") and phones("zzzqx") == ()


def test_idioms_match_on_stems_with_wildcards():
    assert find_idiom("that sealed the deal".split()) == "seal the deal"
    assert find_idiom("looks like you're in over your head".split()) in ("over * head", "in over * head")
    assert find_idiom("the cat sat on the mat".split()) is None
    # an -er word is its own word in a phrase, not a form of a shorter one ("butter" is not "but")
    assert find_idiom("they cut it up".split()) is None and find_idiom("but it up".split()) is None
    assert find_idiom("go butter him up".split()) == "butter * up"
    assert find_idiom("she hammers out a deal".split()) == "hammer out"


def test_a_regular_agent_noun_is_no_coinage():
    assert coined_evidence("paddler") is None and coined_evidence("skaters") is None  # paddle + r: CMUdict lacks them
    assert wordplay("Why did the kayak get a promotion?", "It had been a great paddler.", "kayaks").score < 0.5
    assert coined_evidence("purrfect") is not None


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


@pytest.mark.parametrize(
    "bad",
    ["", " ", "\n\n\n", "x" * 10_000, ("Q: why?\n" * 2000), "Q: Why did the \ud800 go?\nA: Because \udfff it felt crummy!", "\x00\x01", None, 42, b"Q: bytes?\nA: yes"],
)
def test_never_raises_on_bad_input(bad):
    v = validate_joke(bad, corpus=CORPUS, recent=[GOOD])
    assert v.passed is False
    assert set(v.rules) == set(RULES)
    assert "error" not in v.details
    v.to_dict()  # serializable


def test_lone_surrogates_fail_format_with_a_reason():
    v = validate_joke("Q: Why did the cookie go to the doctor?\nA: Because it felt \ud800crummy!")
    assert not v.rules["format"][0] and "surrogate" in v.rules["format"][1]


def test_deterministic():
    a = validate_joke(GOOD, corpus=CORPUS).to_dict()
    b = validate_joke(GOOD, corpus=CORPUS).to_dict()
    assert a == b


def test_a_labelled_row_without_its_label_is_named_by_file_and_line(tmp_path):
    from sparring.errors import UserInputError
    from sparring.evaluators.referee_trust import load_labelled

    path = tmp_path / "labelled.jsonl"
    path.write_text('{"text": "Q: a?\\nA: b.", "label": true}\n\n{"text": "Q: c?\\nA: d."}\n')
    with pytest.raises(UserInputError, match=r"labelled\.jsonl:3"):
        load_labelled(path)
