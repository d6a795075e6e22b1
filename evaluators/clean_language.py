"""Family-friendly check: is there profanity, a slur or an insult in a text?

The word list is ``better-profanity``'s maintained list (about 900 entries, read from the file it
ships), matched on whole words and whole phrases after normalization, so "Scunthorpe", "class",
"assume" or "cocktail" pass while "ass" or "blow job" do not.  Common leetspeak (``sh1t``,
``@ss``) is folded before matching.  Two local lists adjust it:

* ``EVERYDAY_WORDS`` — entries of that list whose ordinary sense is what a dad joke means
  ("pot", "pawn", "organ", "stroke", "weed", "rum", "kill"...).  Without this, jokes about
  cooking, chess, music, swimming or gardening fail; the list is short and each word is plain.
* ``EXTRA_TERMS`` — slurs and insults the list lacks ("idiot", "moron", "stupid"...), since a
  joke that insults its reader is not family-friendly either.

Exercised by ``pytest tests/evaluators/test_joke_validator.py -k profanity``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sparring.evaluators.text_metrics import clean_unicode

EVERYDAY_WORDS = frozenset(
    """pot pawn organ stroke strip weed rum kill god fat ugly hemp maxi ovum loin lech jerk knob
    seaman drunk hump mams pms wad womb uterus lube racy thug teat tush prig toke whiz hoar
    screw screwing screwed nob lust nude""".split()
)

EXTRA_TERMS = frozenset(
    """idiot idiots moron morons stupid imbecile dumbass dumbasses retard retarded cretin loser
    losers shut up fatso fatty lardass tranny shemale wetback beaner gringo honky cracker raghead
    towelhead gyp gypped halfwit dimwit nitwit""".split()
) - {"cracker", "shut", "up"}  # "cracker" is a biscuit in most jokes; "shut"/"up" only as a phrase
EXTRA_PHRASES = ("shut up", "screw you")

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "+": "t"})
_TOKEN = re.compile(r"[a-z0-9@$!+*]+")


@functools.lru_cache(maxsize=1)
def _wordlist() -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    """(single words, multi-word phrases) from better-profanity's list plus the extra terms."""
    import better_profanity

    path = Path(better_profanity.__file__).with_name("profanity_wordlist.txt")
    entries = [line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    singles: set[str] = set()
    phrases: list[tuple[str, ...]] = []
    for entry in entries:
        toks = tuple(_TOKEN.findall(entry))
        if not toks:
            continue
        if len(toks) == 1:
            singles.add(toks[0])
        else:
            phrases.append(toks)
    singles -= EVERYDAY_WORDS
    singles |= EXTRA_TERMS
    phrases += [tuple(p.split()) for p in EXTRA_PHRASES]
    return frozenset(singles), tuple(phrases)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(clean_unicode(text).lower())


def _strip_symbols(token: str) -> str:
    return token.strip("*!+$@")


def find_profanity(text: object) -> list[str]:
    """The offending words/phrases in ``text`` (empty when it is clean), in order, deduplicated."""
    singles, phrases = _wordlist()
    raw = _tokens(clean_unicode(text))
    variants = [raw, [t.translate(_LEET) for t in raw], [_strip_symbols(t) for t in raw]]
    found: list[str] = []
    for toks in variants:
        for tok in toks:
            if tok in singles and tok not in found:
                found.append(tok)
            # plurals and -ing forms of listed words ("bitches" is listed, "twats" is not)
            for suffix in ("s", "es", "ing", "ed"):
                stem = tok[: -len(suffix)] if tok.endswith(suffix) else None
                if stem and len(stem) >= 3 and stem in singles and tok not in found:
                    found.append(tok)
        joined = " " + " ".join(toks) + " "
        for phrase in phrases:
            if " " + " ".join(phrase) + " " in joined and " ".join(phrase) not in found:
                found.append(" ".join(phrase))
    return found


def is_family_friendly(text: object) -> bool:
    return not find_profanity(text)
