"""Is a joke new?  Against the training corpus and against recent samples.

Three findings, strongest first, each driving the novelty term to 0:

* **duplicate** — the normalized joke (lowercase, no punctuation) equals a reference joke;
* **template copy / punchline copy** — the punchline (3+ words) is a reference's punchline
  (token similarity >= 0.85) under a different question ("Why don't bakers trust bread? Because
  they make up everything."): the known failure of small models that paste the example's
  punchline onto every topic; or the whole joke aligns with a reference with at most two swapped
  slots of one or two words and a mostly shared punchline.  A shared *frame* with a new pun word
  ("He kept getting lost in space" vs "... lost at C") is not a copy;
* otherwise the term is graded: ``1 - overlap`` where overlap is the largest share of the joke's
  word 3-grams found in one reference joke (containment), so partial copies lose part of it.

``JokeIndex`` indexes a corpus once (word bigram -> jokes, for a short candidate list);
``RecentJokes`` is a bounded deque of recent samples with the same matching.  Deterministic.
Exercised by ``pytest tests/evaluators/test_novelty.py``.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass
from typing import Iterable

from sparring.evaluators.text_metrics import containment, ngrams, normalize, words

TEMPLATE_SIMILARITY = 0.85
PUNCHLINE_SIMILARITY = 0.85


@dataclass(frozen=True)
class JokeEntry:
    question: str
    answer: str
    norm: str
    tokens: tuple[str, ...]
    answer_tokens: tuple[str, ...]
    trigrams: frozenset
    bigrams: frozenset

    @classmethod
    def make(cls, question: str, answer: str) -> "JokeEntry":
        q, a = words(question), words(answer)
        tokens = tuple(q + a)
        return cls(question, answer, normalize(f"{question} {answer}"), tokens, tuple(a), frozenset(ngrams(tokens, 3)), frozenset(ngrams(tokens, 2)))

    @property
    def text(self) -> str:
        return f"Q: {self.question}\nA: {self.answer}"


@dataclass(frozen=True)
class NoveltyResult:
    score: float
    finding: str  # "new", "partial_overlap", "duplicate", "template_copy", "punchline_copy"
    reason: str
    overlap: float = 0.0
    nearest: str = ""


def masked_similarity(a: tuple[str, ...], b: tuple[str, ...], max_slots: int = 2, slot_size: int = 2) -> tuple[float, int]:
    """(similarity, matched tokens) with up to ``max_slots`` swapped slots of <= ``slot_size`` words
    ignored: a content-word swap does not make a copy new."""
    if not a or not b:
        return 0.0, 0
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    matched = unmatched = slots = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            matched += i2 - i1
        elif op == "replace" and slots < max_slots and i2 - i1 <= slot_size and j2 - j1 <= slot_size:
            slots += 1
        else:
            unmatched += max(i2 - i1, j2 - j1)
    return matched / (matched + unmatched) if matched + unmatched else 0.0, matched


def compare(candidate: JokeEntry, reference: JokeEntry) -> NoveltyResult | None:
    """The finding of ``candidate`` against one reference, or None if nothing was copied."""
    if candidate.norm == reference.norm:
        return NoveltyResult(0.0, "duplicate", "same joke as a reference", 1.0, reference.text)
    a_ratio = difflib.SequenceMatcher(a=candidate.answer_tokens, b=reference.answer_tokens, autojunk=False).ratio()
    sim, matched = masked_similarity(candidate.tokens, reference.tokens)
    if len(candidate.answer_tokens) >= 3 and a_ratio >= PUNCHLINE_SIMILARITY:
        if sim >= 0.6:
            return NoveltyResult(0.0, "template_copy", f"a reference joke with its subject swapped (punchline similarity {a_ratio:.2f})", a_ratio, reference.text)
        return NoveltyResult(0.0, "punchline_copy", f"the punchline of a reference joke on another question (similarity {a_ratio:.2f})", a_ratio, reference.text)
    if sim >= TEMPLATE_SIMILARITY and matched >= 6 and a_ratio >= 0.6:
        return NoveltyResult(0.0, "template_copy", f"a reference joke with content words swapped (similarity {sim:.2f})", sim, reference.text)
    overlap = containment(set(candidate.trigrams), set(reference.trigrams))
    if overlap > 0:
        return NoveltyResult(round(1.0 - overlap, 4), "partial_overlap", f"{overlap:.0%} of its word 3-grams appear in one reference", overlap, reference.text)
    return None


def _best(candidate: JokeEntry, references: Iterable[JokeEntry]) -> NoveltyResult:
    best = NoveltyResult(1.0, "new", "no overlap with the references")
    for ref in references:
        found = compare(candidate, ref)
        if found is not None and found.score < best.score:
            best = found
            if best.score == 0.0:
                break
    return best


class JokeIndex:
    """A corpus of reference jokes indexed by word bigrams for fast novelty checks."""

    def __init__(self, entries: Iterable[JokeEntry] = ()):
        self.entries: list[JokeEntry] = []
        self._by_norm: dict[str, int] = {}
        self._by_bigram: dict[tuple[str, ...], list[int]] = {}
        for entry in entries:
            self.add(entry)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> "JokeIndex":
        return cls(JokeEntry.make(q, a) for q, a in pairs)

    def add(self, entry: JokeEntry) -> None:
        idx = len(self.entries)
        self.entries.append(entry)
        self._by_norm.setdefault(entry.norm, idx)
        for gram in entry.bigrams:
            self._by_bigram.setdefault(gram, []).append(idx)

    def __len__(self) -> int:
        return len(self.entries)

    def check(self, candidate: JokeEntry) -> NoveltyResult:
        if candidate.norm in self._by_norm:
            return NoveltyResult(0.0, "duplicate", "same joke as a corpus joke", 1.0, self.entries[self._by_norm[candidate.norm]].text)
        shared: dict[int, int] = {}
        for gram in candidate.bigrams:
            for idx in self._by_bigram.get(gram, ()):
                shared[idx] = shared.get(idx, 0) + 1
        # a copy shares at least two bigrams; check the most similar candidates first
        shortlist = sorted((i for i, n in shared.items() if n >= 2), key=lambda i: (-shared[i], i))[:64]
        return _best(candidate, (self.entries[i] for i in shortlist))


class RecentJokes:
    """A bounded window of recent samples (the env feeds every scored joke in)."""

    def __init__(self, maxlen: int = 256):
        self.window: deque[JokeEntry] = deque(maxlen=max(1, maxlen))

    def add(self, entry: JokeEntry) -> None:
        self.window.append(entry)

    def check(self, candidate: JokeEntry) -> NoveltyResult:
        refs = [e for e in self.window if len(e.bigrams & candidate.bigrams) >= 2 or e.norm == candidate.norm]
        return _best(candidate, refs)

    def __len__(self) -> int:
        return len(self.window)
