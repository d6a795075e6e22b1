"""Normalization, n-gram overlap, distinct-n, duplicate rate and the reference metrics."""

from __future__ import annotations

from sparring.evaluators import text_metrics as tm


def test_normalize_and_words():
    assert tm.normalize("  Why DON\u2019T   cats… bark?! ") == "why don't cats bark"
    assert tm.words("\ud800 a-b") == ["a", "b"]
    assert tm.clean_unicode("\ud800x") == "\ufffdx"
    assert tm.has_invalid_chars("a\ud800") and tm.has_invalid_chars("a\x00") and not tm.has_invalid_chars("a\nb\t")


def test_overlap_measures():
    a, b = tm.ngrams(["a", "b", "c", "d"], 2), tm.ngrams(["b", "c", "d", "e"], 2)
    assert tm.jaccard(a, b) == 0.5 and tm.containment(a, b) == 2 / 3
    assert tm.jaccard(set(), b) == 0.0 and tm.containment(set(), b) == 0.0


def test_distinct_and_duplicates():
    texts = ["a b c", "a b c", "d e f"]
    assert tm.duplicate_rate(texts) == 1 / 3
    assert tm.distinct_n(texts, 1) == 6 / 9
    assert tm.distinct_n([], 2) == 0.0 and tm.duplicate_rate([]) == 0.0


def test_reference_metrics():
    assert tm.exact_match("Paris", " Paris ") == 1.0
    assert tm.normalized_match("The Paris.", "paris") == 1.0
    assert tm.contains_answer("It is Paris, France", "Paris") == 1.0 and tm.contains_answer("Parisian", "Paris") == 0.0
    assert tm.rouge_l("the cat sat", "the cat sat") == 1.0 and tm.rouge_l("", "x") == 0.0
    assert tm.bleu("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert 0 < tm.bleu("the cat sat on a mat", "the cat sat on the mat") < 1
