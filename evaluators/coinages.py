"""Coined answer words: the ``coined_word`` evidence of ``wordplay.py`` ("purrfect", "owl-gebra",
"hard-boiled", "meowntain").

A coinage is pun evidence when it gives a second reading: a hyphenation that reads or sounds as
another word or hears a subject word as another, a compound on the subject's field, a non-word
built on a dictionary word or blended with a piece of the subject.  It is no reading when the
hyphen only inflects a word ("rock-ed" is "rocked") and weak when nothing of it touches the
subject (``wordplay.untied``).  Deterministic; never raises on any strings.
Exercised by ``pytest tests/evaluators/test_coinages.py``.
"""

from __future__ import annotations

from sparring.evaluators.senses import linked_to
from sparring.evaluators.sounds import edit_distance, in_dictionary, phones, readings, reads_like, sound_neighbours, sounds_at_edge, sounds_like, zipf
from sparring.evaluators.wordplay import _INFLECTIONS, NEAR_FLOOR, SAME_FLOOR, STOPWORDS, WEIGHTS, Evidence, dropped_g, same_word, ties_to, untied


HEARD_READING_FLOOR = 3.0  # a less common reading heard in the coinage must still be a known word ("timetable", not "putative")


def coined_evidence(word: str, q_content: list[str] | None = None, related: list[str] | None = None) -> Evidence | None:
    """The ``coined_word`` finding for one answer word, or None: a hyphenation (``_hyphenated``),
    a word missing from CMUdict built on a dictionary piece covering half of it ("purrfect"), or a
    blend that reads as a word with a piece of the subject ("meowntain")."""
    if "-" in word:
        return _hyphenated(word, q_content or [], related or [])
    if len(word) < 5 or not word.isalpha() or in_dictionary(word):
        return None
    if any(word.endswith(sfx) and in_dictionary(word[: -len(sfx)]) for sfx in _INFLECTIONS) or dropped_g(word) or _agent_noun(word):
        return None  # an inflection of a dictionary word ("kneaded", "lightin'", "paddler"), not a coinage
    if _on_the_subject(word, related or []):  # "eggcellent" reads as "excellent"; "slothful", "racoon" read as nothing new
        target = reads_like(word)
        return _blend(word, q_content or [], related or []) if target and edit_distance(word, target) <= 2 else None
    for size in range(len(word) - 1, 3, -1):
        if size * 2 < len(word):
            break
        for start in range(0, len(word) - size + 1):
            piece = word[start : start + size]
            if in_dictionary(piece):
                found = Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' is coined from '{piece}'")
                if ties_to(piece, q_content or [], related or []) or ties_to(word[:start] + word[start + size :], q_content or [], related or []):
                    return found
                return _blend(word, q_content or [], related or []) or untied(found)
    return _blend(word, q_content or [], related or [])


def _agent_noun(word: str) -> bool:
    """``word`` is a dictionary word ending in e with -r or -rs: "paddler", "skaters" (CMUdict
    lists some agent nouns, not all)."""
    stem = word[:-2] if word.endswith("rs") else word[:-1] if word.endswith("r") else ""
    return len(stem) >= 4 and stem.endswith("e") and in_dictionary(stem)


# endings that make a subject word into another part of speech, not into another word
_SUFFIXES = frozenset("s es ed d ing er ers est ly y ness ful ish ist ists ism wise like ling lings".split())


def _on_the_subject(word: str, related: list[str]) -> bool:
    """``word`` is a subject word with an ending ("snorkelling", "slothful") or misspelled
    ("racoon" for "raccoons"): a trained model's favourite non-pun."""
    for r in related:
        if len(r) >= 4 and (word.startswith(r) or word.startswith(r.rstrip("s")) and len(r.rstrip("s")) >= 4):
            return True
        if len(r) >= 5 and edit_distance(word, r) <= 2 and same_word(reads_like(word) or "", r):
            return True
    return False


def _blend(word: str, q_content: list[str], related: list[str]) -> Evidence | None:
    """A coinage that reads as a common word and carries a piece of the subject's field
    ("meowntain": mountain + meow, for cats).  A misspelling without such a piece is no pun."""
    target = reads_like(word)
    if not target or not related:
        return None
    for size in range(len(word) - 2, 2, -1):
        for start in range(0, len(word) - size + 1):
            piece = word[start : start + size]
            if piece in target or not in_dictionary(piece):
                continue
            if any(same_word(piece, q) for q in q_content) or linked_to(piece, related):
                return Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' reads as '{target}' with '{piece}' from the subject")
    return None


def _hyphenated(word: str, q_content: list[str], related: list[str]) -> Evidence | None:
    """A hyphenated answer word is a pun when it reads as another word ("hiss-tory", "owl-gebra",
    "pro-tractor") or is a compound with a part from the subject's field ("hard-boiled" for an egg);
    any other hyphenation ("good-natured", "sushi-flipped", "raccoon-riding") is no wordplay: a
    compound adjective the sentence would have anyway (that fallback, weak evidence before, passed
    trained-model non-puns and no pun of the corpus or the labelled sets)."""
    parts = [p for p in word.split("-") if p]
    if len(parts) < 2 or not all(p.isalpha() for p in parts) or not any(in_dictionary(p) for p in parts):
        return None
    joined = "".join(parts)
    if len(set(parts)) == 1:
        return None  # a word said twice ("toe-toe", "baa-baa") is emphasis, not a new word ("toto")
    # the subject with an ending ("carousel-ing", "lighthouse-ness") is a pun only when it reads as
    # a word a letter or two away ("grape-ful" grateful, "wheel-y" really, "tide-y" tidy)
    with_ending = any(p in _SUFFIXES for p in parts) and all(p in _SUFFIXES or ties_to(p, q_content, related) for p in parts)
    if not in_dictionary(word):
        target = joined if in_dictionary(joined) and joined not in parts else reads_like(joined, tuple(parts)) or sounds_like(tuple(parts))
        if target and len(target) < 4:
            target = None  # "ho-m" reads as "hom": a scrap, not a word the joke could mean
        literal = target == joined and all(in_dictionary(p) and len(p) >= 2 for p in parts)  # "sun-light", "run-away"
        if with_ending and target and (edit_distance(joined, target) > 2 or target == joined):
            target = None  # "horn-like" reads as "hornlike": the subject with its ending, nothing new
        if target and not any(_inflects(target, p) for p in parts) and not (with_ending and any(same_word(target, r) for r in related)):
            found = Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' reads as '{target}'")
            if not literal and not _heard_in(parts, target):  # "pie-ative" is "creative" to the eye only
                heard = next((w for w in readings(joined, tuple(parts)) if zipf(w) >= HEARD_READING_FLOOR and _heard_in(parts, w)), None)  # "pool-icy": policy, not police
                if heard is None:
                    return untied(Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' reads as '{target}' in spelling only"))
                target, found = heard, Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' reads as '{heard}'")
            if not literal or any(ties_to(p, q_content, related) for p in parts if len(p) >= 3):
                return found
            return untied(Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' is the compound '{target}' split"))
    copies_question = any(same_word(p, q) for p in parts for q in q_content)
    for part in parts:
        if len(part) >= 3 and part not in _SUFFIXES and q_content and (any(same_word(part, q) for q in q_content) or linked_to(part, related)):
            same, near = sound_neighbours(part)
            # a homophone, or a one-phoneme neighbour spelled around it ("elf" in "self")
            heard = max((v for v in same | {n for n in near if part in n}
                         if len(v) >= 3 and v not in STOPWORDS and not same_word(v, part) and zipf(v) >= (SAME_FLOOR if v in same else NEAR_FLOOR)), key=zipf, default=None)
            if heard:  # the subject's own word heard as another: "elf-esteem" (self), "well-bread" (bred)
                return Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' hears '{part}' as '{heard}'")
    if with_ending:  # heard as a word a phoneme away ("wheel-y" really, "tide-y" tidy), or as nothing else
        same, near = sound_neighbours(joined)
        stems = [p for p in parts if p not in _SUFFIXES]
        heard = max((v for v in same | near if zipf(v) >= (3.0 if v in same else SAME_FLOOR) and v not in STOPWORDS
                     and not any(v == t or _inflects(v, t) for t in stems)), key=zipf, default=None)
        return Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' sounds like '{heard}'") if heard else None
    if all(in_dictionary(p) for p in parts) and not copies_question:
        link = next(filter(None, (linked_to(p, related) for p in parts)), None)
        if link:
            return Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' is a compound on the subject ('{link[0]}')")
    return None


def _heard_in(parts: list[str], target: str) -> bool:
    """A respelling is heard as ``target`` when each edge part it changed sounds like the stretch of
    ``target`` it stands for: "fawn-atic" (F AO N ~ F AH N-atic), "owl-gebra", "toe-tally"; not
    "pie-ative" (creative), "road-breaking" (groundbreaking), "hang-gloves" (hangover)."""
    changed = [(parts[0], True)] if not target.startswith(parts[0]) else []
    if not target.endswith(parts[-1]):
        changed.append((parts[-1], False))
    return all(sounds_at_edge(part, target, start=start) for part, start in changed)


# the sounds those endings add ("rocked" = "rock" + T); "-ed" is a syllable only after T or D;
# not "-y" (IY): "grave-y" is gravy, "tide-y" tidy
_ENDING_SOUNDS = {("S",), ("Z",), ("T",), ("D",), ("IH", "Z"), ("AH", "Z"), ("ER",), ("ER", "Z"), ("IH", "NG"), ("L", "IY"), ("AH", "S", "T"), ("IH", "S", "T")}


def _inflects(target: str, part: str) -> bool:
    """``target`` is ``part`` with an inflection or suffix ending, in spelling and in sound: a
    hyphenation "rock-ed" or "lighthouse-ed" that reads as "rocked" or "lighthouses" only says
    the word again ("wick-ed" -> "wicked" does not: "wicked" is not "wick" + T)."""
    if len(part) < 3 or not target.startswith(part[:-1] if part.endswith("e") else part) or len(target) - len(part) > 4:
        return False
    for tp in phones(target):
        for pp in phones(part):
            extra = tp[len(pp):]
            if tp[: len(pp)] == pp and (extra in _ENDING_SOUNDS or (extra in {("IH", "D"), ("AH", "D")} and pp[-1] in ("T", "D"))):
                return True
    return False
