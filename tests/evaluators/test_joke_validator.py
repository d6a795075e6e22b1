"""The joke validator's gates (format, length, profanity, meta commentary, copying, repetition),
its bad input (empty, 10 kB, lone surrogates, non-strings) and determinism."""

from __future__ import annotations

import pytest

from sparring.evaluators.clean_language import EVERYDAY_WORDS, find_profanity
from sparring.evaluators.joke_format import parse_joke
from sparring.evaluators.joke_validator import RULES, validate_joke

from .conftest import CORPUS, GOOD


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
