"""Wordplay evidence for a question/answer joke, graded in [0, 1].

A rule-based referee cannot know what is funny; it can look for the mechanics puns are made of.
Each finding below is *evidence* with a fixed weight; the score combines the strongest finding
of each kind as ``1 - prod(1 - weight)``, one answer word counting once (its strongest finding).
Field-based findings (``subject_*``, ``hidden_subject_word``) count half when the answer lists
several words of the subject's own field ("corn, beans and potatoes"): that is an explanation.  What is checked, and how far each check can be trusted:

===================  ======  =================================================================
kind                 weight  what it means
===================  ======  =================================================================
homophone            1.0     an answer word sounds exactly like a *different* word of the question
                             or topic (CMUdict via ``pronouncing``, stress ignored): "flour"/"flower"
near_homophone       0.8     ... or one phoneme away from it (both 3+ phonemes, not an inflection);
                             adjacent answer words heard as one are tried too
hidden_word          0.8     a question/topic word hidden inside a longer answer word that is not
                             its inflection nor it behind a plain prefix ("impossible"): "impasta"
                             hides "pasta", "antique" hides "ant"
subject_sound        0.8     an answer word (or two adjacent ones) sounds exactly like, or splits
                             into, a word of the subject's semantic field (``senses.py``):
                             "Chile"/"chilly" with cold, "I scream"/"ice cream" with dessert,
                             "planet"/"plan it" with a party; or a field word that sounds like
                             another word ("knead"/"need" with a baker, "wine"/"whine" with grapes)
subject_reheard      0.8     a question word used again but heard as other words ("lettuce in" ->
                             "let us in") or not as the thing itself ("couldn't bear the noise");
                             not inside the question's own phrase ("ice cream" twice)
idiom_by_sound       0.8     a word swapped for its homophone completes a listed phrase ("knight
                             owl" -> "night owl", "world peas" -> "world peace")
subject_double       0.6     a two-sense word (``senses.TWO_SENSES``) of the subject's field:
                             "hog" with pig, "rise" with sourdough, "schools" with fish; or a
                             compound of one ("pigpen", "riverbank", "microchips").  Half when,
                             given a topic, it fits only the setting (a centipede "thrown out of
                             the class" at school), not the topic or the question's first word
subject_bridge       0.6     an answer word of one subject word's field one phoneme from a word of
                             another's: "cheetahs" (lion) ~ "cheaters" (cards), "cod" ~ "card"
hidden_subject_word  0.6     an answer word hiding a field word of a *different* subject word than
                             its own: "sneakers" (spies), "brainstorming" (meteorologist)
idiom_by_near_sound  0.6     ... a commoner word one phoneme away does: "treble with the law"
reused_in_new_sense  0.6     a two-sense question word, a thing there ("his saw"), comes back as
                             something else ("I saw that coming")
sound_alike          0.6     the answer uses a rarer word that sounds exactly like a commoner one
                             ("knights"/"nights", "kneaded"/"needed"): ``sounds.py`` indexes the
                             40,000 most frequent English words (``wordfreq``) by pronunciation
coined_word          0.6     an answer word missing from CMUdict built on a dictionary word of 4+
                             letters covering half of it ("purrfect"), or a hyphenated word that
                             reads as another word ("hiss-tory") or is a compound on the subject
                             ("hard-boiled" egg); none for other hyphenations ("good-natured"),
                             the question's own words hyphenated ("race-car" after "race
                             car"), a dropped g ("lightin'"), a word said twice ("toe-toe") or a
                             reading under 4 letters ("ho-m")
idiom                0.5     the answer contains a listed idiom ("sealed the deal", "let off steam")
                             that the question does not already say
double_meaning       0.45    a curated two-sense word *not* tied to the subject ("current",
                             "bark"), unless very common (Zipf >= 5): weak, needs a second finding
near_sound_alike     0.3     a rarer answer word one phoneme from a much commoner one ("starch" /
                             "star"): noisy, so weak
reuse                0.25    a content word of the question comes back in the answer (same stem),
                             beside a finding tied to the subject (not alone with untied ones)
subject_near_sound   0.25    an answer word one phoneme from a field word ("launch"/"lunch")
===================  ======  =================================================================

A coinage, a sound-alike or a two-sense word whose readings touch nothing of the subject (not a
question word, not a piece of one, not of its semantic field: "niable" from "able", "pore" for
"pour" in a pickle joke) counts at ``UNTIED_DISCOUNT`` (half) of its weight: alone it no longer
passes; so does a hyphenation that splits a plain compound ("light-weight") with no part of the
subject, and one that only inflects a word ("rock-ed" is "rocked") is no reading at all.  That is
what a trained model stumbles into; the cost is real puns whose tie the field lexicon misses.
The subject is the question's content words plus the topic.  Most of the recall comes from the
hand-written lexicons (``senses.py`` fields and two-sense words, ``idioms.py``): they know only
what they list, and a literal answer that happens to use a two-sense word of its own field
("How does a plane fly? With its wings") can pass -- the price of the recall.  What it cannot
see: meaning beyond the lexicons, irony, whether the joke is funny.  The benchmark
``python -m sparring.bench.joke_validator`` reports precision/recall on a labelled set (a dev half
the lexicons were tuned on and a held-out half), the pass rate on the training corpus (the
lexicons' development set) and on stored base-model completions (which must keep failing).
The subject-linked kinds live in ``subject_puns.py``, coined words in ``coinages.py``.
Exercised by ``pytest tests/evaluators/test_wordplay.py tests/evaluators/test_referee_on_data.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparring.evaluators.idioms import find_idioms
from sparring.evaluators.senses import linked_to
from sparring.evaluators.sounds import contains, edit_distance_at_most_one, in_dictionary, phones, reads_like, sound_neighbours, zipf
from sparring.evaluators.text_metrics import clean_unicode, words

# a "sound-alike" partner must be this common (Zipf scale) and this much commoner than the word
SAME_FLOOR, SAME_MARGIN = 3.5, 0.3
NEAR_FLOOR, NEAR_MARGIN = 4.0, 1.0
# lexicon words this common ("school", "play", "key") are mostly used literally
DOUBLE_MEANING_MAX_ZIPF = 5.0

WEIGHTS = {
    "homophone": 1.0,
    "near_homophone": 0.8,
    "hidden_word": 0.8,
    "coined_word": 0.6,
    "sound_alike": 0.6,
    "near_sound_alike": 0.3,
    "idiom": 0.5,
    "double_meaning": 0.45,
    "reuse": 0.25,
    "subject_double": 0.6,
    "subject_sound": 0.8,
    "subject_near_sound": 0.25,
    "subject_reheard": 0.8,
    "subject_bridge": 0.6,
    "hidden_subject_word": 0.6,
    "idiom_by_sound": 0.8,
    "idiom_by_near_sound": 0.6,
    "reused_in_new_sense": 0.6,
}

# a finding whose second reading has nothing to do with the joke's subject -- a coinage built on
# an unrelated word ("niable" from "able"), a rarer spelling of any commoner word ("pore"/"pour"),
# a two-sense word of no field of the subject -- is what a trained model stumbles into by chance:
# it counts at this share of its weight, so it passes only next to a finding that is tied.
# (Listed idioms stay whole: the corpus's idiom puns mostly tie to the subject in ways the field
# lexicon does not list, and halving them cost 11 points of corpus recall.)
UNTIED_DISCOUNT = 0.5

# subject evidence resting on field links, discounted when the answer lists field words
_FIELD_KINDS = frozenset({"subject_double", "subject_sound", "subject_near_sound", "subject_bridge", "hidden_subject_word"})
LITERAL_LIST_DISCOUNT = 0.5


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



@dataclass(frozen=True)
class Evidence:
    kind: str
    weight: float
    reason: str
    tied: bool = True  # False: the second reading touches nothing of the subject (``untied``)


@dataclass(frozen=True)
class WordplayResult:
    score: float
    evidence: tuple[Evidence, ...]

    @property
    def reason(self) -> str:
        if not self.evidence:
            return "no wordplay found (no homophone, near-homophone, hidden or coined word, double meaning)"
        return "; ".join(e.reason for e in self.evidence)


# ------------------------------------------------------------------------- helpers


# plurals no suffix rule undoes: "feet" is "foot" again, not a near-homophone of it
_IRREGULAR_PLURALS = {"feet": "foot", "teeth": "tooth", "mice": "mouse", "geese": "goose", "men": "man", "women": "woman", "children": "child"}


def stem(word: str) -> str:
    """A crude suffix stripper, enough to tell "cookies" is "cookie" and "baked" is "bake"."""
    w = word.lower().replace("'s", "")
    if w in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[w]
    for suffix in ("ing", "ers", "ies", "ied", "ed", "es", "er", "ly", "s", "y", "e"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) >= 4 and w[-1] == w[-2]:  # "stopp" -> "stop"
        w = w[:-1]
    return w


def same_word(a: str, b: str) -> bool:
    return a == b or stem(a) == stem(b)


def ties_to(word: str, q_content: list[str], related: list[str]) -> bool:
    """``word`` is a question word (any inflection), a piece of a subject word ("gator" of
    "alligators", "dino" of "dinosaur") or shares a semantic field with the subject."""
    if any(same_word(word, q) for q in q_content):
        return True
    if len(word) >= 3 and any(word in r or (len(r) >= 3 and r in word) for r in related):
        return True
    return bool(linked_to(word, related))


def untied(e: Evidence) -> Evidence:
    """``e`` at ``UNTIED_DISCOUNT`` of its weight: its second reading does not touch the subject."""
    return Evidence(e.kind, round(e.weight * UNTIED_DISCOUNT, 4), e.reason + " (not tied to the subject)", tied=False)


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
    # the subject said again hides nothing new ("seahorse" hiding "sea" of "sea lion")
    said_again = {word for word, _ in candidates if any(same_word(word, r) for r in related)}
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
                    elif min(len(wp), len(rp)) >= 3 and edit_distance_at_most_one(wp, rp) and not (
                        word.startswith(rel[:-1]) or rel.startswith(word[:-1])
                    ):
                        found.append(Evidence("near_homophone", WEIGHTS["near_homophone"], f"'{word}' sounds nearly like '{rel}'"))
                    elif (len(rp) >= 3 and len(wp) > len(rp) + 1 and contains(wp, rp) and _not_inflection(word, rel) and word not in said_again
                          and not _inside_one_word(word, rp)):
                        found.append(Evidence("hidden_word", WEIGHTS["hidden_word"], f"'{word}' hides the sound of '{rel}'"))
            if " " not in word and len(rel) >= 3 and rel in word and _not_inflection(word, rel) and (in_dictionary(word) or reads_like(word)) and word not in said_again:
                found.append(Evidence("hidden_word", WEIGHTS["hidden_word"], f"'{word}' hides the word '{rel}'"))
    return found


def _inside_one_word(pair: str, sound: tuple[str, ...]) -> bool:
    """Two words heard as one hide ``sound`` only across their boundary: "sunflowers love" does
    not hide "flowers" (it is inside "sunflowers"); "let us" still hides "lettuce"."""
    return " " in pair and any(contains(p, sound) for w in pair.split() for p in phones(w))


def _not_inflection(word: str, rel: str) -> bool:
    """``word`` (one word, or two heard as one) contains ``rel`` with at least 2 more letters and is
    neither an inflection of it ("hammering", "hammering out") nor a dictionary word that is ``rel``
    behind a plain prefix ("impossible" for "possible"; the coinage "impasta" still hides "pasta").
    A dropped g is an inflection too ("lightin'"), unless the spelling is a word ("puffin")."""
    if len(word) < len(rel) + 2 or same_word(word, rel):
        return False
    forms = {base + sfx for base in (rel, stem(rel)) for sfx in _INFLECTIONS}
    if any(same_word(part, rel) or part in forms or dropped_g(part) == rel + "ing" for part in word.split()):
        return False
    return not (in_dictionary(word) and any(word == prefix + rel for prefix in _PLAIN_PREFIXES))


def _sound_alike(word: str) -> Evidence | None:
    """The answer uses a rarer word that sounds like a commoner one ("knights"/"nights",
    "starch"/"star"): the sound points to a second reading."""
    if len(word) < 3 or not word.isalpha():
        return None
    same, near = sound_neighbours(word)
    own = zipf(word)
    def ok(v: str, margin: float, floor: float) -> bool:
        return v not in STOPWORDS and not same_word(v, word) and not (v.startswith(word) or word.startswith(v)) and zipf(v) >= max(floor, own + margin)
    partner = max((v for v in same if ok(v, SAME_MARGIN, SAME_FLOOR)), key=zipf, default=None)
    if partner:
        return Evidence("sound_alike", WEIGHTS["sound_alike"], f"'{word}' sounds like the commoner '{partner}'")
    if max((len(p) for p in phones(word)), default=0) >= 4:
        partner = max((v for v in near if ok(v, NEAR_MARGIN, NEAR_FLOOR)), key=zipf, default=None)
        if partner:
            return Evidence("near_sound_alike", WEIGHTS["near_sound_alike"], f"'{word}' sounds nearly like the commoner '{partner}'")
    return None


# inflections, and -ness, which only names the word's quality ("darkness" does not hide "dark")
_INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "ers", "est", "ly", "y", "ier", "iest", "ness")
_PLAIN_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "mis", "re", "pre")


def dropped_g(word: str) -> str | None:
    """The "-ing" word behind a dropped g ("lightin'" -> "lighting"); None when ``word`` is a word
    itself ("puffin", "robin") or nothing with the g back is."""
    return word + "g" if word.endswith("in") and not in_dictionary(word) and in_dictionary(word + "g") else None


def wordplay(question: str, answer: str, topic: str | None = None) -> WordplayResult:
    """Grade the wordplay of one joke; deterministic, never raises on any strings."""
    q_words = words(question)
    a_raw = [t for t in hyphen_aware_words(answer)]
    a_words = [w for w in a_raw if w not in STOPWORDS]
    related = list(dict.fromkeys(_content(q_words) + _content(words(topic or ""))))
    evidence: list[Evidence] = []
    evidence += _sound_evidence([w for w in a_words if "-" not in w], related)
    q_content = _content(q_words)
    from sparring.evaluators.coinages import coined_evidence

    said = _content(words(f"{question} {topic or ''}"))
    for w in a_words:
        coined = coined_evidence(w, q_content, related)
        if coined and not _says_the_question(w, said):
            evidence.append(coined)
        if any(same_word(w, q) for q in q_content):
            continue  # a lexicon word the question already used is likely literal, not a pun
        alike = _sound_alike(w)
        if alike:
            partner = alike.reason.split("'")[3]
            evidence.append(alike if ties_to(w, q_content, related) or ties_to(partner, q_content, related) else untied(alike))
        if w in DOUBLE_MEANING and zipf(w) < DOUBLE_MEANING_MAX_ZIPF:
            meaning = Evidence("double_meaning", WEIGHTS["double_meaning"], f"'{w}' has two common senses")
            evidence.append(meaning if ties_to(w, q_content, related) else untied(meaning))
    from sparring.evaluators.subject_puns import subject_evidence

    subject_found = subject_evidence(question, [t for t in a_raw if "-" not in t], a_words, q_content, related, _content(words(topic or "")))
    in_field = {w for w in a_words if not any(same_word(w, q) for q in q_content) and linked_to(w, related)}
    if len(in_field) >= 2 and ("and" in a_raw or "," in answer or "or" in a_raw):
        # a list of the subject's own things ("corn, beans and potatoes", "a bowl of soup and some
        # bread") is a literal answer: its field links are weak evidence
        subject_found = [
            Evidence(e.kind, round(e.weight * LITERAL_LIST_DISCOUNT, 4), e.reason + " (but the answer lists field words)", e.tied)
            if e.kind in _FIELD_KINDS else e
            for e in subject_found
        ]
    evidence += subject_found
    # a phrase the question already says ("feeling a little down") is echoed, not turned
    phrase = next((p for p in find_idioms(words(answer)) if p not in find_idioms(q_words)), None)
    if phrase:
        evidence.append(Evidence("idiom", WEIGHTS["idiom"], f"the answer turns on the phrase '{phrase}'"))
    for w in a_words:
        match = next((q for q in q_content if same_word(w, q)), None)
        if match and len(w) > 2:
            evidence.append(Evidence("reuse", WEIGHTS["reuse"], f"'{w}' reuses '{match}' from the question"))
            break
    # one answer word is one piece of evidence: "sink" with a plumber is not a double meaning *and*
    # a field word with a second sense *and* a homophone; only its strongest finding counts
    strongest: dict[str, Evidence] = {}
    for e in evidence:
        key = _about(e)
        if key not in strongest or e.weight > strongest[key].weight:
            strongest[key] = e
    best: dict[str, Evidence] = {}
    for e in sorted(strongest.values(), key=lambda e: -e.weight):
        if e.kind not in best:
            best[e.kind] = e
    others = [e for k, e in best.items() if k != "reuse"]
    if "reuse" in best and others and not any(e.tied for e in others):
        # a question word said again backs a second reading only when that reading touches the
        # subject: "They love soaking up the sun" for sloths is not a pun on "son"
        del best["reuse"]
    miss = 1.0
    for e in best.values():
        miss *= 1.0 - e.weight
    kept = tuple(sorted(best.values(), key=lambda e: -e.weight))
    score = 1.0 - miss
    if kept and not any(e.tied for e in kept):
        # findings none of which touches the subject do not add up: two chance readings ("turnd"
        # for "turned", "hit-over" for "hitler") are no more a pun than one
        score = kept[0].weight
    return WordplayResult(score=round(score, 4), evidence=kept)


def _says_the_question(hyphenated: str, said: list[str]) -> bool:
    """A hyphenation whose first two parts are both words the question or topic already says, or
    whose parts joined are one, coins nothing: "race-car" after "race car", "ice-cream-ing" after
    "ice cream", "yo-yos" for yo-yos, "high-flying" for "fly high", "hedge-hogs" for hedgehogs.
    ("key-board" for a key, "re-tired" for a tire still coin.)"""
    parts = [p for p in hyphenated.split("-") if p]
    if len(parts) > 1 and any(same_word("".join(parts), q) for q in said):
        return True
    return len(parts) >= 2 and all(any(same_word(p, q) for q in said) for p in parts[:2])


_PER_WORD_KINDS = frozenset({"sound_alike", "near_sound_alike", "double_meaning", "coined_word", "subject_homophone"}) | _FIELD_KINDS


def _about(e: Evidence) -> str:
    """The answer word a per-word finding is about (its reason starts with it), else the reason."""
    if e.kind in _PER_WORD_KINDS and e.reason.startswith("'"):
        return e.reason.split("'")[1]
    return e.kind + e.reason


def hyphen_aware_words(text: str) -> list[str]:
    """Like ``words`` but keeps hyphenated coinages ("two-tired") as one token."""
    s = clean_unicode(text).lower().replace("\u2019", "'")
    return re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", s)
