"""Puns tied to the joke's subject: the wordplay evidence that needs ``senses.py``'s fields.

``wordplay.py`` grades a joke; this module adds the findings that link an answer word to the
subject (the question's content words and the topic) through a semantic field, a second sense
or a sound-alike: ``subject_double``, ``subject_sound``, ``subject_homophone``,
``subject_near_sound``, ``subject_bridge``, ``subject_reheard``, ``hidden_subject_word``,
``idiom_by_sound``, ``idiom_by_near_sound``, ``reused_in_new_sense`` (weights and meaning in
``wordplay.py``'s table).  Deterministic; never raises on any strings.
Exercised by ``pytest tests/evaluators/test_wordplay.py -k "subject or senses or setting"``.
"""

from __future__ import annotations

from sparring.evaluators.idioms import find_idioms
from sparring.evaluators.senses import has_two_senses, linked_to
from sparring.evaluators.sounds import homophones, in_dictionary, phones, sound_neighbours, two_word_readings, zipf
from sparring.evaluators.text_metrics import words
from sparring.evaluators.wordplay import DOUBLE_MEANING_MAX_ZIPF, STOPWORDS, WEIGHTS, Evidence, _not_inflection, same_word, untied

# a two-sense word of the joke's own subject field may be commoner ("space", "cool") than the
# untied double meanings wordplay.py accepts
SUBJECT_DOUBLE_MAX_ZIPF = 5.5
# sound bridges and hidden subject words are only trusted on rarer answer words
BRIDGE_MAX_ZIPF, HIDDEN_MAX_ZIPF = 4.5, 4.0
# an answer word this common ("little", "making", "answer") is used plainly, not re-cut into two words
EVERYDAY_ZIPF = 5.0
# function words whose re-cut into other words is chance ("to see" as "two sea"); "I scream" stays
_RECUT_BLOCKERS = STOPWORDS - {"i"}
# a reused subject word right after one of these is still the thing itself ("the bear")
_DETERMINERS = frozenset("a an the this that these those its his her my your their our some any".split())


def _after_determiner(tokens: list[str], i: int) -> bool:
    """Token ``i`` follows a determiner: "the bear" is the thing itself."""
    return i > 0 and tokens[i - 1] in _DETERMINERS


def _the_thing_itself(answer_tokens: list[str], w: str) -> bool:
    """Every time the answer says ``w`` it follows a determiner: "to the sheriff" is the sheriff,
    not "share if"."""
    at = [i for i, t in enumerate(answer_tokens) if t == w]
    return bool(at) and all(_after_determiner(answer_tokens, i) for i in at)


def _said_in_the_same_phrase(answer_tokens: list[str], i: int, q_tokens: list[str]) -> bool:
    """Answer word ``i`` stands next to the same content word as it does in the question."""
    w = answer_tokens[i]
    for j, q in enumerate(q_tokens):
        if not same_word(w, q):
            continue
        for step in (-1, 1):
            a, b = i + step, j + step
            if 0 <= a < len(answer_tokens) and 0 <= b < len(q_tokens) and answer_tokens[a] == q_tokens[b] and answer_tokens[a] not in STOPWORDS:
                return True
    return False


def subject_evidence(question: str, answer_tokens: list[str], answer_words: list[str], q_content: list[str], subject: list[str],
                     topic: list[str] | None = None) -> list[Evidence]:
    """Puns tied to the joke's subject (the question's content words and the topic):

    - ``subject_double``: an answer word of the subject's field with a second sense ("hog" with
      pig, "rise" with sourdough, "schools" with fish);
    - ``subject_sound``: an answer word of the subject's field that sounds exactly like another
      word ("kneaded"/"needed" with baker, "wine"/"whine" with grape), or an answer word that
      sounds exactly like (or splits into) a word of the subject's field ("Chile"/"chilly" with
      cold, "I scream"/"ice cream" with dessert, "planet"/"plan it" with party);
    - ``subject_near_sound``: ... one phoneme away from a commoner word of the field
      ("launch"/"lunch" with meal);
    - ``subject_reheard``: a subject word used again in the answer but heard as two other words
      ("lettuce in" -> "let us in").
    """
    found: list[Evidence] = []

    def add(kind: str, reason: str) -> None:
        found.append(Evidence(kind, WEIGHTS[kind], reason))

    # an answer word swapped for its sound-alike completes a listed phrase ("knight owl")
    plain = set(find_idioms(answer_tokens))
    for i, w in enumerate(answer_tokens):
        for h in homophones(w, 3.0):
            swapped = find_idioms(answer_tokens[:i] + [h] + answer_tokens[i + 1 :])
            new = [p for p in swapped if p not in plain]
            if new:
                add("idiom_by_sound", f"'{w}' heard as '{h}' makes the phrase '{new[0]}'")
                break
    # ... or swapped for a commoner word one phoneme away ("treble with the law", "odor in the court")
    for i, w in enumerate(answer_tokens):
        if any(f.kind == "idiom_by_sound" for f in found):
            break
        if len(w) < 3 or w in STOPWORDS:
            continue
        _, near = sound_neighbours(w)
        hit = None
        for v in sorted(near, key=zipf, reverse=True):
            if zipf(v) < zipf(w) + 0.5 or same_word(v, w):
                continue
            swapped = find_idioms(answer_tokens[:i] + [v] + answer_tokens[i + 1 :])
            # a two-word phrase only counts when the swapped word belongs to the subject ("pouch potato")
            new = [p for p in swapped if p not in plain and (len(p.split()) >= 3 or linked_to(w, subject))]
            if new:
                hit = (v, new[0])
                break
        if hit:
            add("idiom_by_near_sound", f"'{w}' heard as '{hit[0]}' makes the phrase '{hit[1]}'")
            break
    # a single letter heard as a word of the subject ("the C" -> "sea" with water)
    for w in answer_tokens:
        if w in ("i", "a"):
            continue  # the words "I" and "a", not letters
        if len(w) == 1 or (len(w) == 2 and w.endswith("s") and w[0] not in "aeiou"):
            for h in homophones(w, 3.0):
                hlink = linked_to(h, subject)
                if hlink and len(h) >= 3:
                    add("subject_sound", f"the letter '{w}' sounds like '{h}', which belongs with '{hlink[0]}'")
                    break
    # a word that hides a subject word without being one ("sneakers" with spies, "outshine" with a star)
    for w in answer_words:
        if len(w) < 6 or not w.isalpha() or zipf(w) >= HIDDEN_MAX_ZIPF or any(same_word(w, q) for q in q_content):
            continue  # a common word ("history") hides letters ("story") by chance
        own_link = linked_to(w, subject)  # "seatbelts" hides "seat", but is itself the pilot's word
        for size in range(len(w) - 2, 3, -1):
            hit = next(
                (
                    (x, lk)
                    for x in (w[i : i + size] for i in range(len(w) - size + 1))
                    if in_dictionary(x) and zipf(x) >= 3.5 and _not_inflection(w, x) and (lk := linked_to(x, subject))
                    and not (own_link and own_link[0] == lk[0])
                ),
                None,
            )
            if hit:
                add("hidden_subject_word", f"'{w}' hides '{hit[0]}', which belongs with '{hit[1][0]}'")
                break
        else:
            continue
        break
    # a two-sense subject word that the question uses as a thing ("his saw") and the answer does
    # not ("I saw that coming")
    q_tokens = words(question)
    for i, w in enumerate(answer_tokens):
        if not has_two_senses(w) or _after_determiner(answer_tokens, i):
            continue
        if any(q == w and _after_determiner(q_tokens, j) for j, q in enumerate(q_tokens)):
            add("reused_in_new_sense", f"'{w}' is a thing in the question and something else in the answer")
            break
    # a subject word used again where it cannot be the thing itself ("couldn't bear the noise")
    for i, w in enumerate(answer_tokens):
        if _after_determiner(answer_tokens, i) or not any(same_word(w, q) for q in q_content):
            continue
        if _said_in_the_same_phrase(answer_tokens, i, q_tokens):
            continue  # "ice cream" in the question and in the answer is the same dessert
        alikes = [h for h in homophones(w, 3.0) if not same_word(h, w) and h not in STOPWORDS]
        if alikes:
            add("subject_reheard", f"'{w}' from the question is used as '{max(alikes, key=zipf)}'")
            break
    # a compound of a two-sense word of the subject's field ("pigpen", "riverbank", "microchips")
    for w in answer_words:
        if len(w) < 6 or not w.isalpha() or any(same_word(w, q) for q in q_content):
            continue
        for cut in range(3, len(w) - 2):
            left, right = w[:cut], w[cut:]
            if not (in_dictionary(left) and in_dictionary(right) and min(zipf(left), zipf(right)) >= 3.5):
                continue
            part = next((p for p in (left, right) if has_two_senses(p) and (linked_to(p, subject) or any(same_word(p, q) for q in subject))), None)
            if part:
                add("subject_double", f"'{w}' is '{left}' + '{right}': '{part}' fits the subject and has a second sense")
                break

    for w in answer_words:
        if len(w) < 3 or not w.isalpha():
            continue
        if any(same_word(w, q) for q in q_content):
            for p in phones(w) if not _the_thing_itself(answer_tokens, w) else ():
                for left, right in two_word_readings(p, 5.0):
                    if left + right != w and not any(same_word(x, w) for x in (left, right)):
                        add("subject_reheard", f"'{w}' from the question is heard as '{left} {right}'")
                        break
            continue
        link = linked_to(w, subject)
        if link and has_two_senses(w) and zipf(w) < SUBJECT_DOUBLE_MAX_ZIPF:
            reason = f"'{w}' belongs with '{link[0]}' ({link[1]}) and has a second sense"
            if topic and not linked_to(w, _subject_core(q_content, subject, topic)):
                # the word fits the question's setting, not its subject: "thrown out of the class"
                # when the centipede is at school is the literal sense, with nothing to call up the other
                found.append(untied(Evidence("subject_double", WEIGHTS["subject_double"], reason + ", but of the setting")))
            else:
                add("subject_double", reason)
        own = zipf(w)
        alikes = [h for h in homophones(w) if not same_word(h, w) and len(h) >= 3 and (len(h) >= 4 or zipf(h) >= 3.5)]
        common_alikes = [h for h in alikes if zipf(h) >= max(3.5, own - 0.5)]  # "bread"/"bred" is no pun
        if link and common_alikes and own < DOUBLE_MEANING_MAX_ZIPF:
            add("subject_sound", f"'{w}' belongs with '{link[0]}' ({link[1]}) and sounds like '{max(common_alikes, key=zipf)}'")
        for h in alikes:
            hlink = linked_to(h, subject)
            if hlink:
                add("subject_sound", f"'{w}' sounds like '{h}', which belongs with '{hlink[0]}'")
                break
        for p in phones(w) if own < EVERYDAY_ZIPF else ():  # "little" is not "lit ill"
            for left, right in two_word_readings(p):
                if left + right == w or w.startswith(left + right[:1]) or same_word(left, w) or left in STOPWORDS:
                    continue  # a compound read as its parts ("sunflowers"), the word itself ("sandwiches" as "sandwich is"), or "timid" as "to mud"
                plink = linked_to(left, subject) or linked_to(right, subject)
                if plink:
                    add("subject_sound", f"'{w}' is heard as '{left} {right}', tied to '{plink[0]}'")
                    break
        if max((len(p) for p in phones(w)), default=0) >= 3:
            _, near = sound_neighbours(w)
            for v in sorted(near, key=zipf, reverse=True):
                if zipf(v) >= own and v not in STOPWORDS and not same_word(v, w) and not (v.startswith(w) or w.startswith(v)):
                    vlink = linked_to(v, subject)
                    if vlink and not any(same_word(v, q) for q in q_content):
                        if link and vlink[0] != link[0] and own < BRIDGE_MAX_ZIPF:  # fits one subject word, sounds like another
                            add("subject_bridge", f"'{w}' fits '{link[0]}' and sounds nearly like '{v}', which fits '{vlink[0]}'")
                        else:
                            add("subject_near_sound", f"'{w}' sounds nearly like '{v}', which belongs with '{vlink[0]}'")
                        break
    # two answer words heard as two others ("I scream" -> "ice cream")
    for w1, w2 in zip(answer_tokens, answer_tokens[1:]):
        p1, p2 = phones(w1), phones(w2)
        if not (p1 and p2):
            continue
        if {w1, w2} & _RECUT_BLOCKERS:
            continue  # "to see" as "two sea", "keep it" as "key pit": function words re-cut by chance
        for left, right in two_word_readings(p1[0] + p2[0]):
            if {left, right} & {w1, w2} or {left, right} & STOPWORDS:
                continue
            plink = linked_to(left, subject) or linked_to(right, subject)
            if plink or any(same_word(x, q) for x in (left, right) for q in subject):
                add("subject_sound", f"'{w1} {w2}' is heard as '{left} {right}'")
                break
    return found


_NOT_A_SUBJECT = frozenset({"kind", "type", "sort", "favorite", "favourite"})  # "what kind of music do fossils like"


def _subject_core(q_content: list[str], subject: list[str], topic: list[str]) -> list[str]:
    """Who the joke is about, as against where it happens: the topic, the question's first content
    word ("the ghost" in "why did the ghost leave the restaurant"), and the words of their fields."""
    who = [*topic, *[q for q in q_content if q not in _NOT_A_SUBJECT][:1]]
    return [w for w in subject if any(same_word(w, t) for t in who) or linked_to(w, who)]
