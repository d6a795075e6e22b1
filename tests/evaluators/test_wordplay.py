"""The wordplay evidence of the joke validator (``evaluators/wordplay.py``, ``subject_puns.py``,
``senses.py``, ``sounds.py``, ``idioms.py``): each kind of finding, what ties it to the subject, and
the literal answers that must find none."""

from __future__ import annotations

import pytest

from sparring.evaluators.idioms import find_idiom
from sparring.evaluators.joke_validator import validate_joke
from sparring.evaluators.sounds import phones, sound_neighbours
from sparring.evaluators.wordplay import wordplay


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
    ("What do hedgehogs call their baby?", "Hedge-hogs.", "hedgehogs", False),                      # the subject, hyphenated
    ("Why was the chimney so good at math?", "It was a math-ing chimney.", "chimneys", False),
    ("Why did the unicorn's horn keep getting turned upside down?", "It was really horn-like.", "unicorns", False),  # the subject + an ending
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


def test_a_subject_word_is_heard_as_its_commonest_homophone():
    # "sole" sounds like "Seoul", "sol" and "soul": the reading a listener hears is the common word
    found = wordplay("What did the shoe say to the sock?", "You really complete my sole.", "shoes").evidence[0]
    assert found.kind == "subject_sound" and found.reason.endswith("sounds like 'soul'")


def test_findings_untied_to_the_subject_do_not_add_up():
    # two chance readings, each at half weight, stay below the pass threshold together
    q, a = "What can you do to keep a trampoline in the best condition?", "Make sure the turnd has a good hit-over."
    r = wordplay(q, a, "trampolines")
    assert len(r.evidence) == 2 and not any(e.tied for e in r.evidence)
    assert r.score == max(e.weight for e in r.evidence) < 0.5


def test_a_word_with_ness_does_not_hide_its_stem():
    assert wordplay("Why did the narwhal hide in the dark?", "It wanted to swim in the darkness.", "narwhals").score < 0.5


def test_a_question_word_after_a_determiner_is_the_thing_itself():
    # "to the sheriff" is the sheriff; a sheriff said as the answer's first word is heard as "share if"
    said = wordplay("Why did the raccoon lie to the sheriff?", "It kept giving raccoons' stories to the sheriff.", "raccoons")
    assert "subject_reheard" not in {e.kind for e in said.evidence}
    heard = wordplay("Why did the sheriff go to the bakery?", "Sheriff you want some bread.", "sheriffs")
    assert "subject_reheard" in {e.kind for e in heard.evidence}


def test_idioms_match_on_stems_with_wildcards():
    assert find_idiom("that sealed the deal".split()) == "seal the deal"
    assert find_idiom("looks like you're in over your head".split()) in ("over * head", "in over * head")
    assert find_idiom("the cat sat on the mat".split()) is None
    # an -er word is its own word in a phrase, not a form of a shorter one ("butter" is not "but")
    assert find_idiom("they cut it up".split()) is None and find_idiom("but it up".split()) is None
    assert find_idiom("go butter him up".split()) == "butter * up"
    assert find_idiom("she hammers out a deal".split()) == "hammer out"
