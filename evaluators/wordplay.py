"""Wordplay evidence for a question/answer joke, graded in [0, 1].

A rule-based referee cannot know what is funny; it can look for the mechanics puns are made of.
Each finding below is *evidence*, with a fixed weight; the score combines the strongest finding
of each kind as ``1 - prod(1 - weight)``.  What is checked, and how far each check can be trusted:

=================  ======  ===================================================================
kind               weight  what it means
=================  ======  ===================================================================
homophone          1.0     an answer word sounds exactly like a *different* word of the question
                           or topic (CMUdict via ``pronouncing``, stress ignored): "flour"/"flower"
near_homophone     0.8     ... or differs from it by one phoneme (substitution, insertion or
                           deletion; both at least 3 phonemes; inflections of the same word do not
                           count): "tired"/"tire", "pasta"/"past a"; answer word pairs are tried too
hidden_word        0.8     a question/topic word (4+ letters or 3+ phonemes) hidden inside a longer
                           answer word that is not its inflection: "impasta" hides "pasta"
coined_word        0.6     an answer word missing from CMUdict built on a dictionary word of 4+
                           letters covering half of it, or a hyphenated pair: "purrfect", "two-tired"
homophone_pair     0.6     an answer word from a curated list of content homophones whose partner
                           is spelled differently ("whole"/"hole", "knead"/"need"); the tests check
                           every pair CMUdict knows is pronounced the same or one phoneme apart
double_meaning     0.6     an answer word from a curated list of words dad jokes use in two senses
                           ("current", "bark", "problems", "guts", "outstanding"): a lexicon, so it
                           only knows the senses it lists
reuse              0.35    a content word of the question comes back in the answer (same stem):
                           the weakest sign, never enough alone to pass
=================  ======  ===================================================================

What it cannot see: semantic associations (cookie -> "crumb-y" unless the lexicon lists
"crummy"), puns across three or more words, irony.  The benchmark
``python -m sparring.bench.joke_validator`` measures precision/recall on a labelled set.
Exercised by ``pytest tests/evaluators/test_joke_validator.py -k wordplay``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from sparring.evaluators.text_metrics import clean_unicode, words

WEIGHTS = {
    "homophone": 1.0,
    "near_homophone": 0.8,
    "hidden_word": 0.8,
    "coined_word": 0.6,
    "homophone_pair": 0.6,
    "double_meaning": 0.6,
    "reuse": 0.35,
}

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further get gets got had hadn't has hasn't have haven't having
    he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if
    in into is isn't it it's its itself just let's me more most mustn't my myself no nor not of off
    on once only or other ought our ours ourselves out over own same shan't she she'd she'll she's
    should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until up very
    was wasn't we we'd we'll we're we've were weren't what what's when when's where where's which
    while who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your
    yours yourself yourselves q a call called say said says go goes went make makes made one two
    never always ever every also still even really like get gave give take took want wanted need
    tell told know knew think thought see saw because cause 's""".split()
)

# Words dad jokes use in two senses.  A lexicon: it knows only what it lists.
DOUBLE_MEANING = frozenset(
    """bark bat bear bill board bolt bored bow box break bright buck bug cabinet capital
    cell change charge charged check chip class clear coach cold company court cover crane crash
    crummy current cut date deck dough draft draw drawer drill drive dressing driver dry dumb express
    fan fast field file fine fire flat fly foot fork frame free fresh game grave ground guts hand
    handle hard head heart hit hot interest iron jam joint key kid kind last lead leaves left letter
    letters light line lines mean medium mine mint mold mouse nail net note notes novel operation
    order organ outstanding palm pants park party pen pick pickle pitch plain plane plate play point
    pole pool pop present pressure problems punch quarter race racket rash record refresh rest ring
    rock roll root round row ruler run saw scale scales school season seasoned second shed shell
    shocked shock short sink site slip smart snap sole space spare spirit spring square stage stamp
    star state station steer step stick stir stuck suit swallow switch table tank tap tear temple
    tender tie tip tire tired toast top train trip trunk type wave well wind wing yard yeast batter
    beat beets board bowl buns butter cheesy corny crackers crumbs degrees dressed egg-cellent
    eggs-actly fishy grate grounded half-baked hatch hole-y knots lettuce loaf mussels nuts olive
    peeling pressed punny raisin sauce shellfish spaghetti sticky sweet toasted udder whey
    wheelie wired cheesed gritty salty crusty mushroom fungi thyme sage mint minted appeal
    appealing core corn chili hip-hop rapper chord notes scales tuna gummy""".split()
)

# Content homophones (spelled differently, pronounced the same); function-word pairs
# (to/two/too, for/four) are left out because they prove nothing.
HOMOPHONE_GROUPS: tuple[tuple[str, ...], ...] = tuple(
    tuple(g.split("/"))
    for g in """flour/flower knight/night hole/whole soul/sole pain/pane board/bored knead/need moose/mousse
    dough/doe hare/hair mail/male tail/tale sail/sale steak/stake bear/bare deer/dear peace/piece
    brake/break cereal/serial medal/meddle mussel/muscle grate/great role/roll wait/weight
    waste/waist whine/wine sun/son sea/see meat/meet beet/beat plain/plane reign/rain/rein
    wholly/holy/holey berry/bury cell/sell cent/scent/sent chili/chilly cheap/cheep choral/coral
    colonel/kernel dew/due die/dye ewe/you fair/fare feat/feet flea/flee flew/flu fir/fur gait/gate
    groan/grown guessed/guest heal/heel hymn/him idle/idol jeans/genes leak/leek lie/lye loan/lone
    mane/main maze/maize mind/mined missed/mist none/nun oar/ore pair/pear/pare pause/paws peak/peek
    pedal/peddle pole/poll pray/prey principal/principle rap/wrap read/reed ring/wring road/rode
    root/route rose/rows sighs/size sight/site/cite slay/sleigh soar/sore stair/stare steal/steel
    suite/sweet tea/tee threw/through throne/thrown tide/tied toad/towed toe/tow vain/vein wade/weighed
    weak/week wear/where whale/wail which/witch yoke/yolk bread/bred caught/cot seam/seem herd/heard
    lettuce/let-us thyme/time sundae/sunday pier/peer whey/way
    chord/cord cheetah/cheater kneaded/needed kneads/needs""".split()
)
_HOMOPHONE_PARTNERS = {w: tuple(x for x in g if x != w) for g in HOMOPHONE_GROUPS for w in g}


@dataclass(frozen=True)
class Evidence:
    kind: str
    weight: float
    reason: str


@dataclass(frozen=True)
class WordplayResult:
    score: float
    evidence: tuple[Evidence, ...]

    @property
    def reason(self) -> str:
        if not self.evidence:
            return "no wordplay found (no homophone, near-homophone, hidden or coined word, double meaning)"
        return "; ".join(e.reason for e in self.evidence)


# ------------------------------------------------------------------------- CMUdict helpers


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, tuple[tuple[str, ...], ...]]:
    import pronouncing

    pronouncing.init_cmu()
    table: dict[str, list[tuple[str, ...]]] = {}
    for word, phones in pronouncing.pronunciations:
        stripped = tuple(p.rstrip("012") for p in phones.split())
        table.setdefault(word, [])
        if stripped not in table[word]:
            table[word].append(stripped)
    return {w: tuple(v) for w, v in table.items()}


def in_dictionary(word: str) -> bool:
    return word in _cmudict()


@functools.lru_cache(maxsize=65536)
def phones(word: str) -> tuple[tuple[str, ...], ...]:
    """Stress-free pronunciations of ``word`` (hyphenated words: the parts joined); () if unknown."""
    table = _cmudict()
    if word in table:
        return table[word]
    for candidate in (word.replace("'", ""), word[:-2] if word.endswith("'s") else None):
        if candidate and candidate in table:
            return table[candidate]
    if "-" in word:
        parts = [table.get(p, ()) for p in word.split("-") if p]
        if parts and all(parts):
            return (tuple(ph for part in parts for ph in part[0]),)
    return ()


def _edit_distance_at_most_one(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
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


def stem(word: str) -> str:
    """A crude suffix stripper, enough to tell "cookies" is "cookie" and "baked" is "bake"."""
    w = word.lower().replace("'s", "")
    for suffix in ("ing", "ers", "ies", "ied", "ed", "es", "er", "ly", "s", "y", "e"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) >= 4 and w[-1] == w[-2]:  # "stopp" -> "stop"
        w = w[:-1]
    return w


def same_word(a: str, b: str) -> bool:
    return a == b or stem(a) == stem(b)


def _contains(seq: tuple[str, ...], sub: tuple[str, ...]) -> bool:
    n = len(sub)
    return any(seq[i : i + n] == sub for i in range(len(seq) - n + 1))


# ------------------------------------------------------------------------- the checks


def _content(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t not in STOPWORDS and len(t) > 1 and not t.isdigit()]


def _sound_evidence(answer_words: list[str], related: list[str]) -> list[Evidence]:
    found: list[Evidence] = []
    candidates = [(w, phones(w)) for w in answer_words]
    # adjacent answer words heard as one ("let us" ~ "lettuce")
    for (w1, p1), (w2, p2) in zip(candidates, candidates[1:]):
        if p1 and p2:
            candidates.append((f"{w1} {w2}", (p1[0] + p2[0],)))
    for rel in related:
        rel_phones = phones(rel)
        for word, word_phones in candidates:
            if any(same_word(part, rel) for part in word.split()) or word.replace(" ", "") == rel:
                continue
            for wp in word_phones:
                for rp in rel_phones:
                    if wp == rp:
                        found.append(Evidence("homophone", WEIGHTS["homophone"], f"'{word}' sounds like '{rel}'"))
                        break
                    elif min(len(wp), len(rp)) >= 3 and _edit_distance_at_most_one(wp, rp) and not (
                        word.startswith(rel[:-1]) or rel.startswith(word[:-1])
                    ):
                        found.append(Evidence("near_homophone", WEIGHTS["near_homophone"], f"'{word}' sounds nearly like '{rel}'"))
                    elif len(rp) >= 3 and len(wp) > len(rp) + 1 and _contains(wp, rp) and not word.startswith(rel):
                        found.append(Evidence("hidden_word", WEIGHTS["hidden_word"], f"'{word}' hides the sound of '{rel}'"))
            if " " not in word and len(rel) >= 4 and rel in word and len(word) >= len(rel) + 2 and not same_word(word, rel) and not word.startswith(rel):
                found.append(Evidence("hidden_word", WEIGHTS["hidden_word"], f"'{word}' hides the word '{rel}'"))
    return found


def _coined(word: str) -> Evidence | None:
    if "-" in word:
        parts = [p for p in word.split("-") if p]
        if len(parts) >= 2 and sum(in_dictionary(p) for p in parts) >= 1 and all(p.isalpha() for p in parts):
            return Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' is a hyphenated coinage")
        return None
    if len(word) < 5 or not word.isalpha() or in_dictionary(word):
        return None
    if any(word.endswith(sfx) and in_dictionary(word[: -len(sfx)]) for sfx in _INFLECTIONS):
        return None  # an inflection of a dictionary word ("kneaded"), not a coinage
    for size in range(len(word) - 1, 3, -1):
        if size * 2 < len(word):
            break
        for start in range(0, len(word) - size + 1):
            piece = word[start : start + size]
            if in_dictionary(piece):
                return Evidence("coined_word", WEIGHTS["coined_word"], f"'{word}' is coined from '{piece}'")
    return None


_INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "ers", "est", "ly", "y", "ier", "iest")


def wordplay(question: str, answer: str, topic: str | None = None) -> WordplayResult:
    """Grade the wordplay of one joke; deterministic, never raises on any strings."""
    q_words = words(question)
    a_raw = [t for t in _hyphen_aware_words(answer)]
    a_words = [w for w in a_raw if w not in STOPWORDS]
    related = list(dict.fromkeys(_content(q_words) + _content(words(topic or ""))))
    evidence: list[Evidence] = []
    evidence += _sound_evidence([w for w in a_words if "-" not in w], related)
    q_content = _content(q_words)
    for w in a_words:
        coined = _coined(w)
        if coined:
            evidence.append(coined)
        if any(same_word(w, q) for q in q_content):
            continue  # a lexicon word the question already used is likely literal, not a pun
        if w in _HOMOPHONE_PARTNERS:
            partners = "/".join(_HOMOPHONE_PARTNERS[w])
            evidence.append(Evidence("homophone_pair", WEIGHTS["homophone_pair"], f"'{w}' is a homophone of '{partners}'"))
        if w in DOUBLE_MEANING:
            evidence.append(Evidence("double_meaning", WEIGHTS["double_meaning"], f"'{w}' has two common senses"))
    for w in a_words:
        match = next((q for q in q_content if same_word(w, q)), None)
        if match and len(w) > 2:
            evidence.append(Evidence("reuse", WEIGHTS["reuse"], f"'{w}' reuses '{match}' from the question"))
            break
    best: dict[str, Evidence] = {}
    for e in evidence:
        if e.kind not in best:
            best[e.kind] = e
    miss = 1.0
    for e in best.values():
        miss *= 1.0 - e.weight
    kept = tuple(sorted(best.values(), key=lambda e: -e.weight))
    return WordplayResult(score=round(1.0 - miss, 4), evidence=kept)


def _hyphen_aware_words(text: str) -> list[str]:
    """Like ``words`` but keeps hyphenated coinages ("two-tired") as one token."""
    s = clean_unicode(text).lower().replace("\u2019", "'")
    return re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", s)
