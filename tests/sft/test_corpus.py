"""The built-in corpora hold what the issue promises and obey the rules their validators check.

Counts, formats, length bounds, distinctness, keyword presence, held-out topics that never appear
in the jokes, and a labelled validator set whose good jokes are not corpus jokes.
Run: ``pytest tests/sft/test_corpus.py`` (well under 5 s).
"""

from __future__ import annotations

import collections
import json
import re
from importlib import resources

import pytest
from sparring.evaluators.clean_language import find_profanity
from sparring.evaluators.sounds import edit_distance
from sparring.sft.corpus import joke_text, load_jokes, load_quotes, load_topics, quote_text

META_PHRASES = ("here's a joke", "here is a joke", "sure!", "dad joke:", "hope this", "as an ai")
NEAR_MISS_KINDS = {
    "no_question", "meta", "profanity", "template", "not_pun",
    "too_long", "too_short", "repeated", "empty_answer",
}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def jokes() -> list[dict]:
    return load_jokes()


@pytest.fixture(scope="module")
def quotes() -> list[dict]:
    return load_quotes()


@pytest.fixture(scope="module")
def labelled() -> list[dict]:
    text = resources.files("sparring.evaluators").joinpath("data", "joke_labelled.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_counts_meet_the_issue(jokes, quotes):
    assert len(jokes) >= 400
    assert len({j["topic"] for j in jokes}) >= 100
    assert len(quotes) >= 200
    assert len({q["keyword"].lower() for q in quotes}) >= 150


def test_joke_ids_are_unique_and_numbered(jokes):
    ids = [j["id"] for j in jokes]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"joke-\d{4}", i) for i in ids)


def test_every_joke_is_a_one_line_question_and_a_one_line_answer(jokes):
    for j in jokes:
        q, a = j["question"], j["answer"]
        assert "\n" not in q and "\n" not in a, j["id"]
        assert q.endswith("?"), j["id"]
        assert not a.rstrip().endswith("?"), j["id"]
        assert 20 <= len(joke_text(j)) <= 200, j["id"]


def test_jokes_are_distinct_after_normalization(jokes):
    texts = [_norm(j["question"] + " " + j["answer"]) for j in jokes]
    assert len(texts) == len(set(texts))
    punchlines = collections.Counter(_norm(j["answer"]) for j in jokes)
    assert [p for p, n in punchlines.items() if n > 1] == []
    questions = collections.Counter(_norm(j["question"]) for j in jokes)
    assert [q for q, n in questions.items() if n > 1] == []


def test_jokes_are_clean_and_free_of_meta_text(jokes):
    for j in jokes:
        text = joke_text(j)
        assert find_profanity(text) == [], j["id"]
        assert not any(p in text.lower() for p in META_PHRASES), j["id"]


def test_joke_text_renders_q_and_a():
    joke = {"id": "joke-9999", "topic": "t", "question": " Why? ", "answer": "Because. "}
    assert joke_text(joke) == "Q: Why?\nA: Because."


def test_topic_lists_cover_the_corpus_and_hold_out_unseen_topics(jokes):
    train, heldout = load_topics(), load_topics(heldout=True)
    assert len(train) >= 150 and len(train) == len(set(train))
    assert {j["topic"] for j in jokes} <= set(train)
    assert len(heldout) >= 40 and len(heldout) == len(set(heldout))
    assert not set(heldout) & set(train)
    corpus_text = " ".join(_norm(joke_text(j)) for j in jokes)
    for topic in heldout:
        assert _norm(topic) not in corpus_text, topic


def test_quotes_contain_their_keyword_and_fit_the_bounds(quotes):
    for q in quotes:
        assert q["keyword"].lower() in q["quote"].lower(), q
        assert 20 <= len(q["quote"]) <= 220, q
        assert q["author"].strip(), q
    assert len({_norm(q["quote"]) for q in quotes}) == len(quotes)


def test_quote_text_renders_keyword_quote_author(quotes):
    rendered = quote_text(quotes[0])
    lines = rendered.split("\n")
    assert lines[0] == f"Keyword: {quotes[0]['keyword']}"
    assert lines[1] == f"Quote: {quotes[0]['quote']}"
    assert lines[2] == f"- {quotes[0]['author']}"


def test_loaders_return_fresh_copies():
    first = load_jokes()
    first[0]["answer"] = "changed"
    assert load_jokes()[0]["answer"] != "changed"


def test_labelled_set_has_enough_of_each_label_and_known_kinds(labelled):
    labels = collections.Counter(row["label"] for row in labelled)
    assert labels[True] >= 150 and labels[False] >= 150
    for row in labelled:
        assert isinstance(row["text"], str) and isinstance(row["label"], bool)
        assert row["kind"] == "good" if row["label"] else row["kind"] in NEAR_MISS_KINDS
    kinds = collections.Counter(row["kind"] for row in labelled if not row["label"])
    for main in ("no_question", "meta", "profanity", "template", "not_pun"):
        assert kinds[main] >= 20, main


def _split_good(text: str) -> tuple[str, str]:
    question, answer = text.split("\n")
    return question.removeprefix("Q: "), answer.removeprefix("A: ")


def test_labelled_good_jokes_are_new_and_well_formed(labelled, jokes):
    corpus_texts = {_norm(j["question"] + " " + j["answer"]) for j in jokes}
    corpus_punchlines = {_norm(j["answer"]) for j in jokes}
    seen = set()
    for row in (r for r in labelled if r["label"]):
        question, answer = _split_good(row["text"])
        assert question.endswith("?") and not answer.endswith("?"), row
        assert _norm(question + " " + answer) not in corpus_texts, row
        assert _norm(answer) not in corpus_punchlines, row
        assert _norm(answer) not in seen, row
        seen.add(_norm(answer))
        assert find_profanity(row["text"]) == [], row


def test_labelled_near_misses_are_what_their_kind_says(labelled, jokes):
    corpus = [(_norm(j["question"]).split(), _norm(j["answer"]).split()) for j in jokes]
    for row in (r for r in labelled if not r["label"]):
        text, kind = row["text"], row["kind"]
        if kind == "too_long":
            assert len(text) > 200, row
        elif kind == "too_short":
            assert len(text) < 20, row
        elif kind == "profanity":
            assert find_profanity(text), row
        elif kind == "template":
            question, answer = _split_good(text)
            q, a = _norm(question).split(), _norm(answer).split()
            assert any(edit_distance(q, cq) <= 2 or edit_distance(a, ca) <= 1 for cq, ca in corpus), row


def test_corpus_jokes_pass_every_validator_rule_but_wordplay(jokes):
    """The project's own joke referee accepts the corpus's form: format, length, clean language,
    no meta text, no copied answer, no looping.  (``wordplay`` is the referee's CMUdict heuristic,
    benchmarked separately against the labelled set; corpus novelty does not apply to itself.)"""
    from sparring.evaluators.joke_validator import validate_joke

    for j in jokes:
        verdict = validate_joke(joke_text(j))
        failed = {rule: why for rule, (ok, why) in verdict.rules.items() if not ok and rule != "wordplay"}
        assert failed == {}, (j["id"], failed)
