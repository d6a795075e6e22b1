"""Quotes, synthetic Q/A and JSON-timeline envs: formats, metrics, splits and bad completions."""

from __future__ import annotations

import json

import pytest

from sparring.envs.base import make_env
from sparring.envs.timeline import extract_json, field_accuracy, longest_closing_run
from sparring.errors import UserInputError

BAD = ["", "   ", "x" * 10_000, "\ud800\udfff", "\x00\x07", "}]}]}]}]" * 500]


# ----------------------------------------------------------------------------- quotes
@pytest.fixture
def quotes():
    return make_env("quotes", {"corpus": "none"})


def test_quote_format_keyword_length(quotes):
    p = quotes.make_prompt(keyword="courage")
    assert p.text == "Write a quote about courage." and p.meta["keyword"] == "courage"
    good = "Keyword: courage\nQuote: Courage is fear that has tied its shoelaces.\n- Ada Lovelace"
    s = quotes.score(p, good)
    assert s.passed and s.total == 1.0 and s.components["format"] == 1.0
    # en/em dashes for the author line
    assert quotes.score(p, good.replace("- Ada", "\u2014 Ada")).passed
    missing_kw = quotes.score(p, "Keyword: courage\nQuote: Fear is a liar that wears a nice coat.\n- Someone")
    assert missing_kw.components["keyword"] == 0.5 and not missing_kw.passed
    short = quotes.score(p, "Keyword: courage\nQuote: Courage!\n- Me")
    assert short.components["length"] == 0.0 and not short.passed
    for bad_format in ["Courage is good.", "Keyword: courage\nQuote: Courage is fear that says its prayers.", good + "\nExtra line"]:
        s = quotes.score(p, bad_format)
        assert s.components["format"] == 0.0 and s.total == 0.0


def test_quote_profanity_and_prompt_from_text(quotes):
    p = quotes.make_prompt(text="Write a quote about courage.")
    assert p.meta["keyword"] == "courage"
    s = quotes.score(p, "Keyword: courage\nQuote: Courage is a shit sandwich you eat anyway.\n- Someone")
    assert s.components["clean"] == 0.0 and s.total == 0.0


@pytest.mark.parametrize("bad", BAD)
def test_quotes_bad_completions(quotes, bad):
    s = quotes.score(quotes.make_prompt(keyword="hope"), bad)
    assert s.total == 0.0 and not s.passed and "error" not in s.details


# ----------------------------------------------------------------------------- Q/A
@pytest.fixture
def qa():
    return make_env("qa", {"pool_size": 200})


def test_qa_splits_are_disjoint_and_deterministic(qa):
    splits = {s: [p.text for p in qa.prompts(s, seed=0)] for s in ("train", "validation", "test")}
    assert all(splits.values())
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["validation"]) & set(splits["test"])
    assert sum(len(v) for v in splits.values()) == 200
    assert splits["test"] == [p.text for p in qa.prompts("test", seed=0)]
    assert all(p.meta["answer"] for p in qa.prompts("test"))


def test_qa_metrics(qa):
    p = qa.make_prompt(question="What is the capital of France?", answer="Paris")
    exact = qa.score(p, "Paris")
    assert exact.passed and exact.components == {"exact": 1.0, "normalized": 1.0, "contains": 1.0, "rouge_l": 1.0, "bleu": 1.0}
    loose = qa.score(p, " paris. ")
    assert loose.passed and loose.components["exact"] == 0.0 and loose.total == 1.0
    sentence = qa.score(p, "The capital of France is Paris.")
    assert not sentence.passed and sentence.components["contains"] == 1.0 and sentence.total == 0.7
    assert 0 < sentence.components["rouge_l"] < 1 and 0 <= sentence.components["bleu"] < 1
    wrong = qa.score(p, "Lyon")
    assert wrong.total == 0.0 and not wrong.passed
    n = qa.make_prompt(question="How many?", answer="42")
    assert qa.score(n, "42.0").passed and qa.score(n, "42").passed and not qa.score(n, "420").passed


def test_qa_prompt_needs_a_reference(qa):
    with pytest.raises(UserInputError, match="reference"):
        qa.make_prompt(question="Who knows?")
    known = next(qa.prompts("test"))
    assert qa.make_prompt(question=known.text).meta["answer"] == known.meta["answer"]


@pytest.mark.parametrize("bad", BAD)
def test_qa_bad_completions(qa, bad):
    s = qa.score(qa.make_prompt(question="What is the capital of France?", answer="Paris"), bad)
    assert s.total == 0.0 and not s.passed and "error" not in s.details


# ----------------------------------------------------------------------------- timeline
@pytest.fixture
def timeline():
    return make_env("timeline", {"pool_size": 60})


def test_timeline_reference_scores_full(timeline):
    p = next(timeline.prompts("test"))
    ref = json.dumps(p.meta["reference"])
    s = timeline.score(p, ref)
    assert s.passed and s.total == 1.0 and s.components["bracket_loop"] == 0.0
    fenced = timeline.score(p, f"```json\n{json.dumps(p.meta['reference'], indent=2)}\n```")
    assert fenced.passed


def test_timeline_partial_and_invalid(timeline):
    p = next(timeline.prompts("test"))
    ref = p.meta["reference"]
    wrong_winner = dict(ref, winner={"red": "blue", "blue": "draw", "draw": "red"}[ref["winner"]])
    s = timeline.score(p, json.dumps(wrong_winner))
    assert not s.passed and s.components["schema"] == 1.0 and 0 < s.components["field_accuracy"] < 1
    extra = dict(ref, events=ref["events"] + [{"time": "99:59", "type": "kill", "player": "X", "target": None}])
    assert timeline.score(p, json.dumps(extra)).components["field_accuracy"] < 1.0
    invalid = timeline.score(p, json.dumps(dict(ref, winner="purple")))
    assert invalid.components["parses"] == 1.0 and invalid.components["schema"] == 0.0 and invalid.details["schema_errors"]
    trailing = timeline.score(p, json.dumps(ref) + "\nHope this helps!")
    assert trailing.components["clean_end"] == 0.0 and not trailing.passed


def test_timeline_catches_the_closing_bracket_loop(timeline):
    p = next(timeline.prompts("test"))
    ref = json.dumps(p.meta["reference"])
    for looping in [ref + "]}]}]}]}", ref[:-3] + "}]}]}]}]}]}]}]}]}", '{"winner": "red", "events": [{' + "}]" * 200]:
        s = timeline.score(p, looping)
        assert s.components["bracket_loop"] == 1.0 and s.total == 0.0 and not s.passed
        assert "closing brackets" in s.details["bracket_loop"]
    assert longest_closing_run('{"a": [{"b": null}]}') == 3
    assert longest_closing_run("}\n ]\n}") == 3


def test_timeline_json_helpers():
    assert extract_json('text {"a": 1} more') == ({"a": 1}, " more", "")
    assert extract_json("no json")[0] is None
    assert extract_json('{"a": ')[2].startswith("invalid JSON")
    assert field_accuracy(None, {"winner": "red", "events": []}) == 0.0


def test_timeline_prompt_from_cli_fields(timeline):
    p = next(timeline.prompts("test"))
    again = timeline.make_prompt(text=p.meta["log"])
    assert again.meta["reference"] == p.meta["reference"]
    explicit = timeline.make_prompt(text="[00:01] END winner=red", answer='{"winner": "red", "events": []}')
    assert timeline.score(explicit, '{"winner":"red","events":[]}').passed
    with pytest.raises(UserInputError, match="schema"):
        timeline.make_prompt(text="[00:01] END winner=red", answer='{"winner": "purple", "events": []}')
    with pytest.raises(UserInputError, match="reference"):
        timeline.make_prompt(text="[00:01] END winner=red")


@pytest.mark.parametrize("bad", BAD + ["{" * 5000, "[" * 100000])
def test_timeline_bad_completions(timeline, bad):
    s = timeline.score(next(timeline.prompts("test")), bad)
    assert s.total == 0.0 and not s.passed and "error" not in s.details
