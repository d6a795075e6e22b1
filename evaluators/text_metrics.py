"""Text measures shared by the referees and the eval harness.

Normalization and tokenization (the same everywhere, so "novel" and "duplicate" mean one thing),
word n-grams with Jaccard and containment overlap, distinct-n and the duplicate rate of a sample
set, and the reference metrics of the Q/A env: exact match, normalized match, ROUGE-L F1
(``rouge-score``) and sentence BLEU (``sacrebleu``).  Every function accepts any ``str``
(including lone surrogates) and never raises on model output.

Exercised by ``pytest tests/evaluators/test_text_metrics.py`` and ``sparring score qa ...``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ARTICLES = {"a", "an", "the"}


def clean_unicode(text: object) -> str:
    """``text`` as a str with lone surrogates replaced by U+FFFD (safe to encode and print)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return _SURROGATE.sub("\ufffd", text)


def has_invalid_chars(text: str) -> bool:
    """True when ``text`` holds lone surrogates (undecodable bytes) or control characters."""
    if _SURROGATE.search(text):
        return True
    return any(unicodedata.category(ch) == "Cc" and ch not in "\n\t\r" for ch in text)


def normalize(text: object) -> str:
    """Lowercase, NFKC, curly quotes folded, punctuation dropped, whitespace collapsed."""
    s = unicodedata.normalize("NFKC", clean_unicode(text)).lower()
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(_WORD.findall(s))


def words(text: object) -> list[str]:
    """Normalized word tokens (letters/digits, with an inner apostrophe kept: don't, it's)."""
    return normalize(text).split()


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: set, b: set) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def containment(a: set, b: set) -> float:
    """Share of ``a``'s items that are also in ``b`` (how much of a is copied from b)."""
    if not a:
        return 0.0
    return len(a & b) / len(a)


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams / total n-grams over all texts (Li et al. 2016); 0.0 for no n-grams."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        toks = words(text)
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def duplicate_rate(texts: Sequence[str]) -> float:
    """Share of texts whose normalized form already appeared earlier in the list."""
    if not texts:
        return 0.0
    counts = Counter(normalize(t) for t in texts)
    return sum(c - 1 for c in counts.values()) / len(texts)


# ---------------------------------------------------------------- reference-based metrics (Q/A)


def normalize_answer(text: object) -> str:
    """SQuAD-style answer normalization: lowercase, no punctuation, no articles."""
    toks = [t for t in words(text) if t not in _ARTICLES]
    return " ".join(toks)


def exact_match(prediction: object, reference: object) -> float:
    return 1.0 if clean_unicode(prediction).strip() == clean_unicode(reference).strip() else 0.0


def normalized_match(prediction: object, reference: object) -> float:
    ref = normalize_answer(reference)
    return 1.0 if ref and normalize_answer(prediction) == ref else 0.0


def contains_answer(prediction: object, reference: object) -> float:
    """1.0 when the normalized reference appears as a whole-word span in the prediction."""
    ref = normalize_answer(reference)
    if not ref:
        return 0.0
    return 1.0 if f" {ref} " in f" {normalize_answer(prediction)} " else 0.0


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: object, reference: object) -> float:
    """ROUGE-L F1 in [0, 1] (rouge-score with the Porter stemmer)."""
    pred, ref = clean_unicode(prediction), clean_unicode(reference)
    if not pred.strip() or not ref.strip():
        return 0.0
    return float(_rouge_scorer().score(ref, pred)["rougeL"].fmeasure)


def bleu(prediction: object, reference: object) -> float:
    """Sentence BLEU from sacrebleu, scaled to [0, 1] (exponential smoothing, the default)."""
    import sacrebleu

    pred, ref = clean_unicode(prediction), clean_unicode(reference)
    if not pred.strip() or not ref.strip():
        return 0.0
    return min(1.0, float(sacrebleu.sentence_bleu(pred, [ref], lowercase=True).score) / 100.0)
