"""The dad-joke env: "Tell me a dad joke about <topic>." scored by the joke validator.

    env = make_env("jokes", {"one_shot": True})
    prompt = env.make_prompt(topic="bread")
    env.score(prompt, "Q: Why did the bread go to therapy?\\nA: It felt kneaded.")

Reward = gates x graded terms.  Gates (each 0 or 1): ``format``, ``length``, ``clean``,
``no_meta``, plus ``answer_not_copy`` and ``no_repetition`` (a looping or parroted answer is no
joke).  Graded terms in [0, 1]: ``pun`` (wordplay evidence), ``novelty`` (against the training
corpus, the one-shot example and a window of recent samples: a duplicate or a template copied onto
a new topic scores 0), ``topic`` (the topic word, or a sound-alike of it, is in the joke).  The
total is ``prod(gates) * weighted mean(graded)``; every component is in ``Score.components`` and
``Score.passed`` is the validator's verdict.  Splits: train/validation from the training topics
(seeded 90/10), test from the held-out topics.  Exercised by ``pytest tests/envs/test_jokes.py``
and ``sparring score jokes --topic bread --completion "..."``.
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path
from typing import Any, Iterator

from pydantic import Field

from sparring.envs.base import Env, EnvOptions
from sparring.envs.splits import require_split, seeded_order
from sparring.errors import UserInputError
from sparring.evaluators.joke_validator import JokeVerdict, joke_entry, validate_joke
from sparring.evaluators.novelty import JokeEntry, JokeIndex, RecentJokes
from sparring.evaluators.text_metrics import clean_unicode, words
from sparring.evaluators.wordplay import STOPWORDS, phones, same_word
from sparring.registry import register_env
from sparring.types import Prompt, Score

DEFAULT_SYSTEM_PROMPT = (
    "You are a dad-joke writer. Answer with exactly one original, family-friendly dad joke built on a pun, "
    "in two lines:\nQ: <question ending in ?>\nA: <punchline>\nNo introduction, no explanation, nothing else."
)
ONE_SHOT_USER = "Tell me a dad joke about cookies."
ONE_SHOT_ANSWER = "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy!"
GATES = ("format", "length", "clean", "no_meta", "answer_not_copy", "no_repetition")
_ABOUT = re.compile(r"\babout\s+(.+?)\s*[.!?]*\s*$", re.IGNORECASE)


class JokesOptions(EnvOptions):
    topics: str = Field("builtin", description="Training topics: 'builtin' (the shipped topic list) or a text file with one topic per line.")
    test_topics: str = Field("builtin", description="Held-out topics for the test split: 'builtin' (the shipped held-out list) or a text file, one per line.")
    corpus: str = Field("builtin", description="Reference jokes for the novelty term: 'builtin' (the training corpus), 'none', or a JSONL file with question/answer (or text) fields.")
    prompt_template: str = Field("Tell me a dad joke about {topic}.", description="User message; {topic} is replaced by the topic.")
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description="System message asking for the 'Q: ...\\nA: ...' format ('' for none).")
    one_shot: bool = Field(True, description="Prepend one example exchange (about cookies) before the request; copying it scores no novelty.")
    recent_window: int = Field(256, ge=0, description="Recent scored jokes kept for the novelty term (0: off).")
    pun_weight: float = Field(0.5, ge=0, description="Weight of the pun term in the graded part of the reward.")
    novelty_weight: float = Field(0.3, ge=0, description="Weight of the novelty term in the graded part of the reward.")
    topic_weight: float = Field(0.2, ge=0, description="Weight of the topic-relevance term in the graded part of the reward.")
    wordplay_threshold: float = Field(0.5, ge=0, le=1, description="Pun evidence a joke needs to pass (0.5: one strong finding or two weak ones; 0.25: any one finding). The graded pun term is in the reward either way.")
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Share of training topics held out for the validation split (seeded).")


def _read_lines(path: str, field: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise UserInputError("topic file not found", where=f"env.options.{field}={path}", fix="use 'builtin' or a text file with one topic per line")
    topics = [line.strip() for line in p.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip() and not line.startswith("#")]
    if not topics:
        raise UserInputError("topic file has no topics", where=f"env.options.{field}={path}", fix="write one topic per line")
    return topics


def load_reference_jokes(source: str) -> list[tuple[str, str]]:
    """(question, answer) pairs of the reference corpus named by the ``corpus`` option."""
    if source == "none":
        return []
    if source == "builtin":
        from sparring.sft.corpus import load_jokes

        return [(j["question"], j["answer"]) for j in load_jokes()]
    import json

    p = Path(source)
    if not p.is_file():
        raise UserInputError("joke corpus not found", where=f"env.options.corpus={source}", fix="use 'builtin', 'none' or a JSONL file with question/answer fields")
    pairs: list[tuple[str, str]] = []
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"malformed JSON ({exc.msg})", where=f"{p}:{n}", fix="one JSON object per line") from None
        entry = joke_entry(row)
        if entry is None:
            raise UserInputError("not a question/answer joke", where=f"{p}:{n}", fix='give "question" and "answer" fields, or a "text" with "Q: ...?\nA: ..."')
        pairs.append((entry.question, entry.answer))
    return pairs


def topic_relevance(topic: str, question: str, answer: str) -> float:
    """1.0 when a topic word (any inflection) is in the joke, 0.75 for a sound-alike, else 0."""
    topic_words = [w for w in words(topic) if w not in STOPWORDS] or words(topic)
    if not topic_words:
        return 1.0
    joke_words = words(question) + words(answer)
    if any(same_word(t, w) for t in topic_words for w in joke_words):
        return 1.0
    topic_sounds = {p for t in topic_words for p in phones(t) if len(p) >= 2}
    for w in joke_words:
        for p in phones(w):
            if any(p == t or (len(p) >= 3 and (p[: len(t)] == t or p[-len(t) :] == t)) for t in topic_sounds):
                return 0.75
    return 0.0


@functools.lru_cache(maxsize=1)
def _hand_judged_check() -> dict[str, Any]:
    """``model_output_check`` once per process: the labelled file and the rules do not change under it."""
    from sparring.evaluators.referee_trust import model_output_check

    return model_output_check()


@register_env("jokes")
class JokesEnv(Env):
    Options = JokesOptions
    name = "jokes"

    def __init__(self, options: JokesOptions | None = None):
        super().__init__(options)
        self.recent = RecentJokes(self.options.recent_window) if self.options.recent_window else None
        self._index: JokeIndex | None = None

    @classmethod
    def referee_note(cls) -> str | None:
        """The joke referee on completions of trained models that it (or an earlier version) passed
        and a person then judged (``evaluators/data/model_outputs_labelled.jsonl``): its pass rates
        overstate real puns, by how much is measured here, with the current rules."""
        result = _hand_judged_check()
        everything = result["groups"]["all"]
        return (
            f"Read the joke pass rates as an upper bound on real puns: of {result['rows']} completions of trained models that a "
            f"person judged ({result['puns']} puns), this referee passes {everything['non_puns_passed']:.0%} of the non-puns and "
            f"{everything['puns_passed']:.0%} of the puns, a precision of {everything['precision']:.2f} "
            "(`python -m sparring.bench.joke_validator`)."
        )

    # ------------------------------------------------------------------ prompts
    def _topics(self, split: str) -> list[str]:
        o = self.options
        if split == "test":
            if o.test_topics != "builtin":
                return _read_lines(o.test_topics, "test_topics")
            from sparring.sft.corpus import load_topics

            return list(load_topics(heldout=True))
        if o.topics != "builtin":
            topics = _read_lines(o.topics, "topics")
        else:
            from sparring.sft.corpus import load_topics

            topics = list(load_topics(heldout=False))
        ordered = sorted(dict.fromkeys(topics))
        random.Random(1234).shuffle(ordered)  # the split is fixed; `seed` only orders the prompts
        n_val = int(round(len(ordered) * o.validation_fraction))
        if split == "validation":
            return ordered[:n_val]
        if split == "train":
            return ordered[n_val:]
        require_split(split)
        return []

    def prompts(self, split: str = "train", seed: int = 0) -> Iterator[Prompt]:
        for i, topic in enumerate(seeded_order(self._topics(split), seed)):
            yield self._prompt(topic, f"jokes-{split}-{i}")

    def _prompt(self, topic: str, prompt_id: str) -> Prompt:
        o = self.options
        messages: list[dict[str, str]] = []
        if o.system_prompt:
            messages.append({"role": "system", "content": o.system_prompt})
        if o.one_shot:
            messages += [{"role": "user", "content": ONE_SHOT_USER}, {"role": "assistant", "content": ONE_SHOT_ANSWER}]
        messages.append({"role": "user", "content": o.prompt_template.replace("{topic}", topic)})
        return Prompt(id=prompt_id, messages=tuple(messages), meta={"env": "jokes", "topic": topic})

    def make_prompt(self, text: str | None = None, **fields: Any) -> Prompt:
        topic = fields.get("topic")
        if topic is None and text:
            first_line = clean_unicode(text).strip().splitlines()[0] if clean_unicode(text).strip() else ""
            m = _ABOUT.search(first_line)  # only the first line: injected "Q:/A:" lines are ignored
            topic = m.group(1) if m else first_line
        if topic is None or not clean_unicode(topic).strip():
            raise UserInputError("no topic given", where="--topic/--prompt", fix='pass --topic bread or --prompt "Tell me a dad joke about bread."')
        topic = clean_unicode(topic).strip()
        if "\n" in topic or len(topic) > 80:
            raise UserInputError(f"topic {topic[:40]!r}... is not a short one-line topic", where="--topic", fix="pass one topic of a few words")
        return self._prompt(topic, "cli")

    # ------------------------------------------------------------------ scoring
    @property
    def reference_index(self) -> JokeIndex:
        if self._index is None:
            pairs = load_reference_jokes(self.options.corpus)
            example_q, example_a = ONE_SHOT_ANSWER.split("\n")
            pairs.append((example_q[3:], example_a[3:]))
            self._index = JokeIndex.from_pairs(pairs)
        return self._index

    def verdict(self, prompt: Prompt, completion: str, remember: bool = True) -> JokeVerdict:
        """The validator's verdict in this env's context (corpus, recent window, topic)."""
        topic = str(prompt.meta.get("topic", "")) or None
        verdict = validate_joke(completion, corpus=self.reference_index, recent=self.recent, topic=topic, wordplay_threshold=self.options.wordplay_threshold)
        if remember and self.recent is not None and verdict.question:
            self.recent.add(JokeEntry.make(verdict.question, verdict.answer))
        return verdict

    def warm_up(self) -> None:
        """Build the corpus index and load CMUdict, word frequencies and the sound index (about 4 s),
        by judging one joke that is not remembered as a recent sample."""
        self.verdict(self.make_prompt(topic="bread"), "Q: Why did the bread go to school?\nA: To get a little more kneaded.", remember=False)

    def score(self, prompt: Prompt, completion: str) -> Score:
        try:
            return self._score(prompt, completion)
        except Exception as exc:  # never crash on model output
            return Score(0.0, {g: 0.0 for g in GATES}, False, {"error": repr(exc)})

    def _score(self, prompt: Prompt, completion: str) -> Score:
        o = self.options
        v = self.verdict(prompt, completion)
        components = {g: float(v.rules[g][0]) for g in GATES}
        gate = 1.0
        for g in GATES:
            gate *= components[g]
        topic = str(prompt.meta.get("topic", ""))
        relevance = topic_relevance(topic, v.question, v.answer) if v.question else 0.0
        graded = {"pun": v.pun, "novelty": v.novelty, "topic": relevance}
        weights = {"pun": o.pun_weight, "novelty": o.novelty_weight, "topic": o.topic_weight}
        total_w = sum(weights.values()) or 1.0
        quality = sum(graded[k] * weights[k] for k in graded) / total_w
        components.update(graded)
        components.update({"novelty_corpus": v.novelty_corpus, "novelty_recent": v.novelty_recent, "gate": gate, "quality": round(quality, 4)})
        details = {"rules": {k: {"passed": ok, "reason": r} for k, (ok, r) in v.rules.items()}, "question": v.question, "answer": v.answer}
        return Score(total=round(gate * quality, 4), components=components, passed=v.passed, details=details)

    def reset_recent(self) -> None:
        """Forget the recent-samples window (the harness does this before an evaluation)."""
        if self.recent is not None:
            self.recent = RecentJokes(self.options.recent_window)
