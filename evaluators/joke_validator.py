"""The joke referee: is a completion one clean, original question/answer pun?

    verdict = validate_joke("Q: Why did the cookie go to the doctor?\\nA: Because it felt crummy!")
    verdict.passed                 # True
    verdict.rules["wordplay"]      # (True, "'crummy' has two common senses")

Rules (each ``(passed, reason)``; the joke passes when all pass):

``format``          one question line ending in "?" and one answer line ("Q:/A:" labels optional),
                    nothing else (see ``joke_format.py``)
``length``          the joke (question + answer, labels dropped) is 20-200 characters
``clean``           no profanity, slur or insult (``clean_language.py``: better-profanity's list,
                    whole-word matching)
``no_meta``         no assistant chatter: "Here's a joke", "Sure!", "Hope this helps", "As an AI",
                    "Joke:" headers, "haha", emoji spam (2+ emoji)
``answer_not_copy`` the answer brings a content word of its own (not the question again)
``no_repetition``   no word or phrase looping ("ha ha ha ha", the same 3 words twice in the answer)
``wordplay``        pun evidence >= ``wordplay_threshold`` (default 0.5: one strong finding of
                    ``wordplay.py`` -- a sound-alike via CMUdict + wordfreq, a hidden or coined word,
                    a two-sense or sound-alike word tied to the question's subject through the
                    semantic fields of ``senses.py``, an idiom, plain or heard through a
                    sound-alike -- or two weak ones such as a near sound-alike plus a reused
                    question word).  ``python -m sparring.bench.joke_validator`` has the curve,
                    the training corpus's pass rate and the base model's (which must stay low)
``novelty``         not a duplicate, template copy or punchline copy of a corpus joke or of a
                    recent sample (``novelty.py``); skipped (passes) when neither is given

``validate_joke`` is deterministic and never raises, whatever string it gets.
Exercised by ``sparring validate-joke TEXT`` and ``pytest tests/evaluators/test_joke_validator.py``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

from sparring.evaluators.clean_language import find_profanity
from sparring.evaluators.joke_format import ParsedJoke, parse_joke
from sparring.evaluators.novelty import JokeEntry, JokeIndex, NoveltyResult, RecentJokes
from sparring.evaluators.text_metrics import clean_unicode, words
from sparring.evaluators.wordplay import STOPWORDS, WordplayResult, hyphen_aware_words, same_word, wordplay

MIN_CHARS, MAX_CHARS = 20, 200
WORDPLAY_THRESHOLD = 0.5  # one strong finding or two weak ones (see the benchmark's threshold curve)
RULES = ("format", "length", "clean", "no_meta", "answer_not_copy", "no_repetition", "wordplay", "novelty")

_META_PATTERNS = [
    (re.compile(p, re.IGNORECASE), what)
    for p, what in [
        (r"\bhere(?:'s| is| are| comes|'re)\s+(?:a|an|one|another|my|your|the|some)\b", "'here's a ...' preamble"),
        (r"^\W*(?:sure|certainly|of course|okay|ok|absolutely|alright|great question)\b\W", "'Sure!'-style opener"),
        (r"\bhope (?:this|that|you|it)\b", "'hope this ...' closer"),
        (r"\bas an ai\b|\blanguage model\b|\bi(?:'m| am) (?:just )?an? (?:ai|assistant|chatbot)\b", "talks about being an AI"),
        (r"\b(?:dad )?jokes?\s*(?:about [^:\n]{1,40})?:\s", "'Joke:' header"),
        (r"\bpunch ?line\b|\bget it\?|\bbadum|\bba dum\b|\brimshot\b", "explains or announces the punchline"),
        (r"\blet me know\b|\bfeel free\b|\bwant (?:another|more)\b|\bi can (?:tell|make|write)\b", "talks to the user"),
        (r"\b(?:lol|lmao|rofl|haha\w*|hehe\w*)\b", "laughs at its own joke"),
        (r"(?:^|[.!?]\s*)enjoy\b", "'Enjoy!'"),
        (r"^#+\s|```", "markdown header or code fence"),
    ]
]


def _count_emoji(text: str) -> int:
    return sum(1 for ch in text if unicodedata.category(ch) == "So" or 0x1F300 <= ord(ch) <= 0x1FAFF)


@dataclass
class JokeVerdict:
    """Every rule's ``(passed, reason)``, the graded terms, and the overall verdict."""

    text: str
    rules: dict[str, tuple[bool, str]]
    question: str = ""
    answer: str = ""
    pun: float = 0.0
    novelty: float = 1.0
    novelty_corpus: float = 1.0
    novelty_recent: float = 1.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.rules.values())

    @property
    def failed_rules(self) -> list[str]:
        return [name for name, (ok, _) in self.rules.items() if not ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rules": {name: {"passed": ok, "reason": reason} for name, (ok, reason) in self.rules.items()},
            "question": self.question,
            "answer": self.answer,
            "pun": self.pun,
            "novelty": self.novelty,
            "novelty_corpus": self.novelty_corpus,
            "novelty_recent": self.novelty_recent,
        }


def _meta_reason(text: str) -> str | None:
    for line in text.splitlines() or [text]:
        for pattern, what in _META_PATTERNS:
            if pattern.search(line.strip()):
                return what
    if _count_emoji(text) >= 2:
        return f"{_count_emoji(text)} emoji"
    return None


def _answer_copy_reason(parsed: ParsedJoke) -> str | None:
    q, a = words(parsed.question), words(parsed.answer)
    if a == q:
        return "the answer repeats the question"
    q_content = [w for w in q if w not in STOPWORDS]
    a_content = [w for w in hyphen_aware_words(parsed.answer) if w not in STOPWORDS and not w.isdigit()]
    if a_content and all(any(same_word(w, x) for x in q_content) for w in a_content):
        return "the answer adds no word of its own: every content word comes from the question"
    return None


def _repetition_reason(parsed: ParsedJoke) -> str | None:
    toks = words(parsed.question) + words(parsed.answer)
    for i in range(len(toks) - 2):
        if toks[i] == toks[i + 1] == toks[i + 2]:
            return f"'{toks[i]}' three times in a row"
    answer = words(parsed.answer)
    seen: set[tuple[str, ...]] = set()
    for i in range(len(answer) - 2):
        gram = tuple(answer[i : i + 3])
        if gram in seen:
            return f"'{' '.join(gram)}' repeated in the answer"
        seen.add(gram)
    counts: dict[str, int] = {}
    for w in toks:
        if w not in STOPWORDS:
            counts[w] = counts.get(w, 0) + 1
    worst = max(counts.items(), key=lambda kv: kv[1], default=("", 0))
    if worst[1] >= 4:
        return f"'{worst[0]}' {worst[1]} times"
    return None


def as_index(corpus: Any) -> JokeIndex | None:
    """A ``JokeIndex`` from an index, joke texts, or dicts with question/answer (None -> None)."""
    if corpus is None or isinstance(corpus, JokeIndex):
        return corpus
    index = JokeIndex()
    for item in corpus:
        entry = joke_entry(item)
        if entry is not None:
            index.add(entry)
    return index


def joke_entry(item: Any) -> JokeEntry | None:
    if isinstance(item, JokeEntry):
        return item
    if isinstance(item, dict) and "question" in item and "answer" in item:
        return JokeEntry.make(str(item["question"]), str(item["answer"]))
    if isinstance(item, dict) and "text" in item:
        item = item["text"]
    parsed = parse_joke(item)
    if parsed.ok:
        return JokeEntry.make(parsed.question, parsed.answer)
    return None


def _as_recent(recent: Any) -> RecentJokes | None:
    if recent is None or isinstance(recent, RecentJokes):
        return recent
    window = RecentJokes(maxlen=10**6)
    for item in recent:
        entry = joke_entry(item)
        if entry is not None:
            window.add(entry)
    return window


def _novelty_rule(result: NoveltyResult, source: str) -> tuple[bool, str]:
    if result.finding in ("duplicate", "template_copy", "punchline_copy"):
        return False, f"{result.reason} ({source}): {result.nearest!r}"
    return True, f"{result.reason} ({source})" if result.finding != "new" else f"new against the {source}"


def validate_joke(
    text: object,
    *,
    corpus: Iterable[Any] | JokeIndex | None = None,
    recent: Iterable[Any] | RecentJokes | None = None,
    topic: str | None = None,
    wordplay_threshold: float = WORDPLAY_THRESHOLD,
) -> JokeVerdict:
    """Judge one completion.  ``corpus``: training jokes (texts, dicts or a ``JokeIndex``);
    ``recent``: recent samples (a ``RecentJokes`` window or texts); ``topic`` feeds the wordplay
    check (a pun on the topic word counts).  The window is read, never written, here."""
    try:
        return _validate(text, as_index(corpus), _as_recent(recent), topic, wordplay_threshold)
    except Exception as exc:  # a referee never crashes on model output; say what happened
        rules = {name: (False, f"validator error: {type(exc).__name__}") for name in RULES}
        return JokeVerdict(text=clean_unicode(text), rules=rules, pun=0.0, novelty=0.0, details={"error": repr(exc)})


def _validate(text: object, corpus: JokeIndex | None, recent: RecentJokes | None, topic: str | None, threshold: float) -> JokeVerdict:
    raw = text if isinstance(text, str) else clean_unicode(text)
    safe = clean_unicode(raw)
    parsed = parse_joke(raw)
    rules: dict[str, tuple[bool, str]] = {"format": (parsed.ok, parsed.reason)}
    body = parsed.joke if parsed.ok else safe.strip()
    n = len(body)
    rules["length"] = (MIN_CHARS <= n <= MAX_CHARS, f"{n} characters (allowed {MIN_CHARS}-{MAX_CHARS})")
    bad = find_profanity(safe)
    rules["clean"] = (not bad, f"contains {', '.join(repr(b) for b in bad[:3])}" if bad else "no profanity")
    meta = _meta_reason(safe)
    rules["no_meta"] = (meta is None, meta or "no meta commentary")
    verdict = JokeVerdict(text=safe, rules=rules, question=parsed.question, answer=parsed.answer)
    if not parsed.ok:
        for name in ("answer_not_copy", "no_repetition", "wordplay", "novelty"):
            rules[name] = (False, "not checked: no question/answer joke found")
        verdict.pun, verdict.novelty = 0.0, 0.0
        return verdict
    copy = _answer_copy_reason(parsed)
    rules["answer_not_copy"] = (copy is None, copy or "the answer adds something")
    loop = _repetition_reason(parsed)
    rules["no_repetition"] = (loop is None, loop or "no looping words")
    play: WordplayResult = wordplay(parsed.question, parsed.answer, topic)
    verdict.pun = play.score
    rules["wordplay"] = (play.score >= threshold, f"{play.score:.2f}: {play.reason}")
    verdict.details["wordplay_evidence"] = [e.kind for e in play.evidence]
    entry = JokeEntry.make(parsed.question, parsed.answer)
    checks: list[tuple[bool, str]] = []
    if corpus is not None and len(corpus):
        found = corpus.check(entry)
        verdict.novelty_corpus = found.score
        verdict.details["corpus_overlap"] = found.overlap
        checks.append(_novelty_rule(found, "corpus"))
    if recent is not None and len(recent):
        found = recent.check(entry)
        verdict.novelty_recent = found.score
        checks.append(_novelty_rule(found, "recent samples"))
    verdict.novelty = min(verdict.novelty_corpus, verdict.novelty_recent)
    if not checks:
        rules["novelty"] = (True, "not checked: no corpus or recent samples given")
    else:
        failed = [reason for ok, reason in checks if not ok]
        rules["novelty"] = (not failed, "; ".join(failed) if failed else "; ".join(r for _, r in checks))
    return verdict
