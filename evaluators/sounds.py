"""How words sound: CMUdict pronunciations (``pronouncing``) and a sound index of common words.

- ``phones(word)``: stress-free pronunciations; hyphenated words join their parts; inflections
  missing from CMUdict ("kneaded") get the stem's pronunciation plus the suffix's sound.
- ``sound_neighbours(word)``: common English words (``wordfreq``, top 40,000, in CMUdict) that
  sound exactly like ``word`` or one phoneme away (substitution, insertion, deletion), found through
  an index built once (~1 s): exact, one-position-masked and one-phoneme-deleted keys.
- ``homophones(word)``: every CMUdict word at least moderately common pronounced exactly alike
  ("knead" -> "need", "wine" -> "whine"); ``two_word_readings(sound)``: a sound heard as two
  common words ("lettuce" -> "let us", "planet" -> "plan it").
- ``zipf(word)``: the word's Zipf frequency (``wordfreq``; 0 for unknown words).

Exercised by ``pytest tests/evaluators/test_wordplay.py -k "sound or plural"``.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Hashable, Sequence

Phones = tuple[str, ...]
COMMON_WORDS = 40_000
_VOICELESS = {"P", "T", "K", "F", "TH"}
_SIBILANT = {"S", "Z", "SH", "ZH", "CH", "JH"}


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, tuple[Phones, ...]]:
    import pronouncing

    pronouncing.init_cmu()
    table: dict[str, list[Phones]] = {}
    for word, text in pronouncing.pronunciations:
        stripped = tuple(p.rstrip("012") for p in text.split())
        table.setdefault(word, [])
        if stripped not in table[word]:
            table[word].append(stripped)
    return {w: tuple(v) for w, v in table.items()}


def in_dictionary(word: str) -> bool:
    return word in _cmudict()


def _suffix_sound(stem_phones: Phones, suffix: str) -> Phones:
    last = stem_phones[-1] if stem_phones else ""
    if suffix in ("s", "es"):
        return ("AH", "Z") if last in _SIBILANT else ("S",) if last in _VOICELESS else ("Z",)
    if suffix in ("ed", "d"):
        return ("AH", "D") if last in ("T", "D") else ("T",) if last in _VOICELESS | {"S", "SH", "CH"} else ("D",)
    return {"ing": ("IH", "NG"), "er": ("ER",), "ers": ("ER", "Z"), "y": ("IY",), "ly": ("L", "IY")}.get(suffix, ())


@functools.lru_cache(maxsize=65536)
def phones(word: str) -> tuple[Phones, ...]:
    """Stress-free pronunciations of ``word``; () when neither it nor its stem is in CMUdict."""
    table = _cmudict()
    if word in table:
        return table[word]
    for candidate in (word.replace("'", ""), word[:-2] if word.endswith("'s") else None):
        if candidate and candidate in table:
            return table[candidate]
    if "-" in word:
        parts = [phones(p) for p in word.split("-") if p]
        if parts and all(parts):
            return (tuple(ph for part in parts for ph in part[0]),)
        return ()
    for suffix in ("ing", "ers", "es", "ed", "er", "ly", "s", "d", "y"):
        base = word[: -len(suffix)]
        if word.endswith(suffix) and len(base) >= 3:
            for stem_word in (base, base + "e", base[:-1] if len(base) > 3 and base[-1] == base[-2] else None):
                if stem_word and stem_word in table:
                    return tuple(p + _suffix_sound(p, suffix) for p in table[stem_word])
    return ()


def edit_distance_at_most_one(a: Phones, b: Phones) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) <= 1
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def contains(seq: Phones, sub: Phones) -> bool:
    n = len(sub)
    return any(seq[i : i + n] == sub for i in range(len(seq) - n + 1))


# Sounds a listener hears as near-same: a vowel for another vowel, a consonant for its voicing
# partner, a hiss for a hiss ("shell-ebrity": SH for the S of "celebrity").
_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
_VOICING = {"B": "P", "D": "T", "G": "K", "V": "F", "DH": "TH", "Z": "S", "ZH": "SH", "JH": "CH"}
_HISSES = frozenset({"S", "Z", "SH", "ZH"})


def _substitution_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if (a in _VOWELS and b in _VOWELS) or _VOICING.get(a, a) == _VOICING.get(b, b) or {a, b} <= _HISSES:
        return 0.5
    return 1.0


def sound_distance(a: Phones, b: Phones) -> float:
    """Edit distance between two pronunciations where a vowel for a vowel, a consonant for its
    voicing partner or a hiss for a hiss costs half ("owl" AW L vs "al-" AE L: 0.5; "eggs" EH G Z vs "ex-" EH K S: 1)."""
    row = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], float(i)
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + _substitution_cost(x, y))
    return row[-1]


def sounds_at_edge(part: str, word: str, *, start: bool) -> bool:
    """``part`` said aloud is heard at the start (or end) of ``word``: within one near-sound edit
    of a stretch of ``word``'s pronunciation about as long (from four phonemes: one and a half).
    "fawn" in "fanatic", "moo" in "musician", "egg" in "educated"; not "pie" in "creative"."""
    for pp in phones(part):
        budget = 1.0 if len(pp) <= 3 else 1.5
        for wp in phones(word):
            for n in (len(pp) - 1, len(pp), len(pp) + 1):
                if 1 <= n <= len(wp) and sound_distance(pp, wp[:n] if start else wp[-n:]) <= budget:
                    return True
    return False


@functools.lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


class _SoundIndex:
    def __init__(self) -> None:
        from wordfreq import top_n_list

        table = _cmudict()
        self.exact: dict[Phones, list[str]] = defaultdict(list)
        self.masked: dict[Phones, list[str]] = defaultdict(list)
        self.deleted: dict[Phones, list[str]] = defaultdict(list)
        for word in top_n_list("en", COMMON_WORDS):
            if not word.isalpha() or len(word) < 2 or word not in table:
                continue
            for p in table[word]:
                self.exact[p].append(word)
                for i in range(len(p)):
                    self.masked[p[:i] + ("*",) + p[i + 1 :]].append(word)
                    self.deleted[p[:i] + p[i + 1 :]].append(word)

    def neighbours(self, p: Phones) -> tuple[set[str], set[str]]:
        """(words sounding exactly like ``p``, words one phoneme away)."""
        same = set(self.exact.get(p, ()))
        near: set[str] = set(self.deleted.get(p, ()))  # the neighbour has one phoneme more
        for i in range(len(p)):
            near.update(self.masked.get(p[:i] + ("*",) + p[i + 1 :], ()))  # one phoneme swapped
            near.update(self.exact.get(p[:i] + p[i + 1 :], ()))  # the neighbour has one phoneme less
        return same, near - same


@functools.lru_cache(maxsize=1)
def _spelling_buckets() -> dict[str, tuple[str, ...]]:
    """Common dictionary words (4+ letters) filed under their first two and last three letters."""
    from wordfreq import top_n_list

    table = _cmudict()
    buckets: dict[str, list[str]] = defaultdict(list)
    for word in top_n_list("en", COMMON_WORDS):
        if word.isalpha() and len(word) >= 4 and word in table:
            buckets["^" + word[:2]].append(word)
            buckets[word[-3:] + "$"].append(word)
    return {k: tuple(v) for k, v in buckets.items()}


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (letters of a spelling, words of a line)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@functools.lru_cache(maxsize=16384)
def reads_like(spelling: str, exclude: tuple[str, ...] = ()) -> str | None:
    """The commonest dictionary word a coined spelling is within a couple of letters of
    ("owlgebra" -> "algebra", "hisstory" -> "history"), other than ``exclude``; None if none.
    Allowed edits: 1 for 5-6 letters, 2 for 7-9, 3 from 10 ("eggsercise" -> "exercise");
    candidates share the first two or last three letters."""
    found = readings(spelling, exclude)
    return found[0] if found else None


@functools.lru_cache(maxsize=16384)
def readings(spelling: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every word ``reads_like`` considers for ``spelling``, commonest first ("poolicy": police, policy)."""
    budget = 0 if len(spelling) < 5 else 1 if len(spelling) < 7 else 2 if len(spelling) < 10 else 3
    if budget == 0:
        return ()
    buckets = _spelling_buckets()
    candidates = set(buckets.get("^" + spelling[:2], ())) | set(buckets.get(spelling[-3:] + "$", ()))
    close = [w for w in candidates if w not in exclude and abs(len(w) - len(spelling)) <= budget and edit_distance(w, spelling) <= budget]
    return tuple(sorted(close, key=lambda w: (-zipf(w), w)))


@functools.lru_cache(maxsize=16384)
def sounds_like(parts: tuple[str, ...], floor: float = 3.0) -> str | None:
    """The commonest word (Zipf >= ``floor``) pronounced exactly as ``parts`` said one after the
    other ("eggs" + "it" -> "exit"), other than the parts themselves; None if none.  At least four
    phonemes, so two short words do not happen to spell a third."""
    options: list[Phones] = [()]
    for part in parts:
        ps = phones(part)
        if not ps:
            return None
        options = [a + b for a in options for b in ps][:16]
    found = {w for p in options if len(p) >= 4 for w in _index().exact.get(p, ()) if w not in parts and zipf(w) >= floor}
    return max(found, key=zipf, default=None)


@functools.lru_cache(maxsize=1)
def _all_by_sound() -> dict[Phones, tuple[str, ...]]:
    table: dict[Phones, list[str]] = defaultdict(list)
    for word, prons in _cmudict().items():
        if word.isalpha():
            for p in prons:
                table[p].append(word)
    return {p: tuple(v) for p, v in table.items()}


@functools.lru_cache(maxsize=16384)
def homophones(word: str, floor: float = 2.5) -> tuple[str, ...]:
    """Dictionary words (any CMUdict word with Zipf >= ``floor``) pronounced exactly like ``word``."""
    found = {w for p in phones(word) for w in _all_by_sound().get(p, ()) if w != word and zipf(w) >= floor}
    return tuple(sorted(found))


@functools.lru_cache(maxsize=16384)
def two_word_readings(sound: Phones, floor: float = 4.0) -> tuple[tuple[str, str], ...]:
    """Ways to hear ``sound`` as two common words of 2+ phonemes each ("lettuce" -> "let us");
    unstressed vowels are blurred (IH ~ AH), so "planet" is heard as "plan it"."""
    exact = _loose_index()
    sound = _loose(sound)
    out = []
    for cut in range(2, len(sound) - 1):
        for left in exact.get(sound[:cut], ()):
            for right in exact.get(sound[cut:], ()):
                if zipf(left) >= floor and zipf(right) >= floor:
                    out.append((left, right))
    return tuple(out)


def _loose(sound: Phones) -> Phones:
    return tuple("AH" if p == "IH" else p for p in sound)


@functools.lru_cache(maxsize=1)
def _loose_index() -> dict[Phones, tuple[str, ...]]:
    table: dict[Phones, list[str]] = defaultdict(list)
    for p, found in _index().exact.items():
        table[_loose(p)].extend(found)
    return {p: tuple(v) for p, v in table.items()}


@functools.lru_cache(maxsize=1)
def _index() -> _SoundIndex:
    return _SoundIndex()


@functools.lru_cache(maxsize=16384)
def sound_neighbours(word: str) -> tuple[frozenset[str], frozenset[str]]:
    """Common words that sound exactly like ``word``, and common words one phoneme away."""
    same: set[str] = set()
    near: set[str] = set()
    for p in phones(word):
        s, n = _index().neighbours(p)
        same |= s
        near |= n
    same.discard(word)
    near.discard(word)
    return frozenset(same), frozenset(near - same)
