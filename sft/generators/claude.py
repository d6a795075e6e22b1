"""Dad jokes written by Claude through the ``anthropic`` SDK, every one checked by the joke validator.

    sparring data generate jokes --provider anthropic --count 10000 --out data/jokes.jsonl

Each batch asks for one joke per topic (topics from the shipped training list, few-shot examples
sampled from the corpus, both seeded by batch number), parses the reply, and runs every joke
through ``validate_joke`` (against the corpus) and a near-duplicate check against the jokes
already accepted.  Accepted jokes are appended to ``--out`` as chat rows asked the way the jokes env
asks; rejects go to ``<out>.rejects.jsonl`` with their reasons; ``<out>.progress.jsonl`` gets one
line per finished batch (calls, tokens, counts).  Everything is append-only, so an interrupted run
resumes at the next batch without repeating a paid call.  Diversity comes from the seeded topics and
examples of each batch; ``temperature``, when given, is sent in the request body (the 2.x SDK has
no sampling parameters of its own).  429 and 5xx replies, connection errors
and malformed replies are retried with exponential backoff (``retry-after`` respected).
``ANTHROPIC_API_KEY`` missing -> exit 2; ``ANTHROPIC_BASE_URL`` (or ``base_url``) points the real
SDK elsewhere, which is how ``pytest tests/sft/test_claude_generator.py`` tests it against a local
server.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparring.errors import SparringError, UserInputError
from sparring.seeding import derive_seed

log = logging.getLogger("sparring.sft.claude")
DEFAULT_MODEL = "claude-sonnet-5"
SYSTEM_PROMPT = (
    "You write original, family-friendly dad jokes. Every joke is a pun told in exactly two lines:\n"
    "Q: <a question ending with ?>\nA: <the punchline>\n"
    "Never repeat a joke you have seen, never reuse a punchline with a new subject, no profanity, "
    "no introductions, numbering, explanations or emoji."
)
_TOPIC = re.compile(r"^\s*topic\s*:\s*(.+?)\s*$", re.IGNORECASE)
_Q = re.compile(r"^\s*(?:\d+[.)]\s*)?q\s*[:.]\s*(.+?)\s*$", re.IGNORECASE)
_A = re.compile(r"^\s*a\s*[:.]\s*(.+?)\s*$", re.IGNORECASE)


class MalformedReply(Exception):
    """A 200 reply without usable text (retried like a transient error)."""


@dataclass
class ClaudeSettings:
    count: int
    model: str = DEFAULT_MODEL
    batch_size: int = 20
    temperature: float | None = None  # sent as extra_body: the 2.x SDK has no sampling parameters
    max_tokens: int = 2048
    few_shot: int = 6
    seed: int = 0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    base_url: str | None = None

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share (they decide each batch's request)."""
        return {"model": self.model, "batch_size": self.batch_size, "few_shot": self.few_shot, "seed": self.seed}


@dataclass
class Totals:
    batches: int = 0
    calls: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    accepted: int = 0
    rejected: int = 0
    rejects_by_rule: dict[str, int] = field(default_factory=dict)

    def add(self, rec: dict[str, Any]) -> None:
        self.batches += 1
        for k in ("calls", "retries", "input_tokens", "output_tokens", "accepted", "rejected"):
            setattr(self, k, getattr(self, k) + int(rec.get(k, 0)))
        for rule, n in rec.get("rejects_by_rule", {}).items():
            self.rejects_by_rule[rule] = self.rejects_by_rule.get(rule, 0) + n


def side_paths(out: Path) -> tuple[Path, Path]:
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.rejects.jsonl"), out.with_name(f"{stem}.progress.jsonl")


def require_api_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise UserInputError(
            "ANTHROPIC_API_KEY is not set",
            where="--provider anthropic",
            fix="export ANTHROPIC_API_KEY=<your key> (console.anthropic.com -> API keys), or generate offline with --provider builtin",
        )
    return key


def parse_jokes(text: str, topics: list[str]) -> list[tuple[str, str]]:
    """(topic, joke text) for every joke-shaped chunk of a reply.  A chunk starts at a ``Topic:``
    line, at a ``Q:`` line after a finished Q/A pair, or after a blank line; a clean Q/A pair is
    normalized to "Q: ...\nA: ...", anything else is kept as written so the validator rejects it
    with a reason.  A chunk without a Topic line takes the next requested topic."""
    chunks: list[tuple[str | None, list[str]]] = []
    topic: str | None = None
    lines: list[str] = []

    def flush() -> None:
        nonlocal topic, lines
        if lines:
            chunks.append((topic, lines))
        topic, lines = None, []

    for line in text.splitlines():
        if not line.strip():
            flush()
        elif m := _TOPIC.match(line):
            flush()
            topic = m.group(1).strip()
        elif _Q.match(line) and any(_A.match(x) for x in lines):
            kept_topic = topic if not lines else None
            flush()
            topic = kept_topic
            lines.append(line)
        else:
            lines.append(line)
    flush()
    out: list[tuple[str, str]] = []
    for chunk_topic, chunk in chunks:
        qs = [m.group(1) for x in chunk if (m := _Q.match(x))]
        answers = [m.group(1) for x in chunk if (m := _A.match(x))]
        joke = f"Q: {qs[0]}\nA: {answers[0]}" if len(chunk) == 2 and len(qs) == 1 and len(answers) == 1 and _Q.match(chunk[0]) else "\n".join(chunk)
        use = chunk_topic if chunk_topic else (topics[len(out)] if len(out) < len(topics) else "")
        out.append((use, joke))
    return out


def _repair_tail(path: Path) -> None:
    """Cut a line left half-written by a crash (everything after the last newline)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


class ClaudeJokeGenerator:
    def __init__(self, out: str | Path, settings: ClaudeSettings, *, api_key: str | None = None, sleep=time.sleep):
        import anthropic

        from sparring.envs.base import make_env
        from sparring.evaluators.novelty import JokeIndex
        from sparring.sft.corpus import joke_text, load_jokes, load_topics

        if settings.count < 1 or settings.batch_size < 1:
            raise UserInputError("count and batch size must be >= 1", where="--count", fix="pass --count N with N >= 1")
        self.settings, self.sleep = settings, sleep
        self.out = Path(out)
        self.rejects_path, self.progress_path = side_paths(self.out)
        base_url = settings.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        self.client = anthropic.Anthropic(api_key=require_api_key(api_key), base_url=base_url, max_retries=0, timeout=120.0)
        self.anthropic = anthropic
        self.env = make_env("jokes", {})
        self.corpus = load_jokes()
        self.examples = [joke_text(j) for j in self.corpus]
        self.topics = list(load_topics(heldout=False))
        self.corpus_index = JokeIndex.from_pairs((j["question"], j["answer"]) for j in self.corpus)
        self.accepted_index = JokeIndex()
        self.totals = Totals()

    # ------------------------------------------------------------------ state
    def _load_state(self) -> set[int]:
        """Batches already done (from the progress log and, after a crash, the output files)."""
        from sparring.evaluators.joke_format import parse_joke
        from sparring.evaluators.novelty import JokeEntry

        for p in (self.out, self.rejects_path, self.progress_path):
            _repair_tail(p)
        done: set[int] = set()
        for rec in _read_jsonl(self.progress_path):
            if "settings" in rec:
                if rec["settings"] != self.settings.identity():
                    diff = {k: (v, self.settings.identity().get(k)) for k, v in rec["settings"].items() if self.settings.identity().get(k) != v}
                    raise UserInputError(
                        f"{self.out} was started with other settings {diff} (was, now)",
                        where=str(self.progress_path),
                        fix="resume with the same --model/--seed/batch size, or write to a new --out",
                    )
                continue
            done.add(int(rec["batch"]))
            self.totals.add(rec)
        accepted = _read_jsonl(self.out)
        for row in accepted:
            batch = int(row.get("meta", {}).get("batch", -1))
            if batch >= 0 and batch not in done:  # crashed after writing rows, before the progress line
                done.add(batch)
                self.totals.batches += 1
            parsed = parse_joke(row["messages"][-1]["content"])
            if parsed.ok:
                self.accepted_index.add(JokeEntry.make(parsed.question, parsed.answer))
        self.totals.accepted = len(accepted)
        rejected_batches = {int(row.get("batch", -1)) for row in _read_jsonl(self.rejects_path)}
        return done | (rejected_batches - {-1})

    # ------------------------------------------------------------------ one batch
    def request(self, batch: int) -> dict[str, Any]:
        s = self.settings
        rng = random.Random(derive_seed(s.seed, "claude-batch", batch))
        topics = rng.sample(self.topics, min(s.batch_size, len(self.topics)))
        shots = rng.sample(self.examples, min(s.few_shot, len(self.examples)))
        user = (
            "Examples of the style (do not repeat them or reuse their punchlines):\n\n"
            + "\n\n".join(shots)
            + f"\n\nWrite one new dad joke for each of these {len(topics)} topics, in this order. "
            "For each, write a line 'Topic: <topic>', then the Q: line and the A: line, then a blank line.\n\nTopics:\n"
            + "\n".join(f"- {t}" for t in topics)
        )
        request = {"model": s.model, "max_tokens": s.max_tokens, "system": SYSTEM_PROMPT, "messages": [{"role": "user", "content": user}], "_topics": topics}
        if s.temperature is not None:
            request["extra_body"] = {"temperature": s.temperature}
        return request

    def _delay(self, exc: Exception, attempt: int) -> float:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            value = headers.get(name)
            if value:
                try:
                    return min(self.settings.backoff_max_s, max(0.0, float(value) * scale))
                except ValueError:
                    pass
        base = self.settings.backoff_base_s * (2**attempt)
        return min(self.settings.backoff_max_s, base) * (1.0 + 0.25 * random.random())

    def call(self, request: dict[str, Any], counters: dict[str, int]) -> str:
        """One Messages API request with retries; returns the reply text."""
        a = self.anthropic
        params = {k: v for k, v in request.items() if not k.startswith("_")}
        last: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            counters["calls"] += 1
            try:
                message = self.client.messages.create(**params)
                usage = getattr(message, "usage", None)
                counters["input_tokens"] += int(getattr(usage, "input_tokens", 0) or 0)
                counters["output_tokens"] += int(getattr(usage, "output_tokens", 0) or 0)
                blocks = getattr(message, "content", None)
                if not isinstance(blocks, list):
                    raise MalformedReply("reply has no content list")
                text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text")
                if not text.strip():
                    raise MalformedReply("reply has no text")
                return text
            except a.AuthenticationError:
                raise UserInputError("the Anthropic API rejected the key (401)", where="ANTHROPIC_API_KEY", fix="set a valid key: export ANTHROPIC_API_KEY=...") from None
            except (a.BadRequestError, a.NotFoundError, a.PermissionDeniedError) as exc:
                raise UserInputError(f"the Anthropic API refused the request: {exc}", where=f"--model {self.settings.model}", fix="check the model name and your account's access") from None
            except (a.RateLimitError, a.InternalServerError, a.APIConnectionError, a.APIResponseValidationError, MalformedReply, json.JSONDecodeError) as exc:
                last = exc
            except a.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                    raise SparringError(f"Anthropic API error {exc.status_code}: {exc}") from None
                last = exc
            if attempt == self.settings.max_retries:
                break
            counters["retries"] += 1
            delay = self._delay(last, attempt)
            log.warning("attempt %d failed (%s: %s); retrying in %.1fs", attempt + 1, type(last).__name__, str(last)[:120], delay)
            self.sleep(delay)
        raise SparringError(f"gave up after {self.settings.max_retries + 1} attempts: {type(last).__name__}: {last}. Rerun the same command to resume.")

    def judge(self, batch: int, pairs: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from sparring.evaluators.joke_validator import validate_joke
        from sparring.evaluators.novelty import JokeEntry

        accepted, rejected = [], []
        for topic, text in pairs:
            verdict = validate_joke(text, corpus=self.corpus_index, topic=topic or None)
            reasons = {name: reason for name, (ok, reason) in verdict.rules.items() if not ok}
            if verdict.passed:
                entry = JokeEntry.make(verdict.question, verdict.answer)
                near = self.accepted_index.check(entry)
                if near.finding in ("duplicate", "template_copy", "punchline_copy"):
                    reasons["near_duplicate"] = f"{near.reason}: {near.nearest!r}"
                else:
                    self.accepted_index.add(entry)
                    prompt = self.env.make_prompt(topic=topic) if topic else None
                    messages = list(prompt.messages) if prompt else [{"role": "user", "content": "Tell me a dad joke."}]
                    clean = f"Q: {verdict.question}\nA: {verdict.answer}"
                    accepted.append({"messages": messages + [{"role": "assistant", "content": clean}], "meta": {"topic": topic, "source": "anthropic", "model": self.settings.model, "batch": batch}})
                    continue
            rejected.append({"batch": batch, "topic": topic, "text": text, "failed": sorted(reasons), "reasons": reasons})
        return accepted, rejected

    # ------------------------------------------------------------------ the run
    def run(self, progress: bool = True) -> dict[str, Any]:
        from tqdm import tqdm

        self.out.parent.mkdir(parents=True, exist_ok=True)
        done = self._load_state()
        if not self.progress_path.is_file() or self.progress_path.stat().st_size == 0:
            with open(self.progress_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"settings": self.settings.identity()}) + "\n")
        s = self.settings
        max_batches = 4 * -(-s.count // s.batch_size) + 2
        bar = tqdm(total=s.count, initial=min(self.totals.accepted, s.count), desc="jokes accepted", disable=not progress, unit="joke")
        batch = 0
        try:
            while self.totals.accepted < s.count and batch < max_batches:
                if batch in done:
                    batch += 1
                    continue
                counters = {"calls": 0, "retries": 0, "input_tokens": 0, "output_tokens": 0}
                request = self.request(batch)
                text = self.call(request, counters)
                accepted, rejected = self.judge(batch, parse_jokes(text, request["_topics"]))
                accepted = accepted[: s.count - self.totals.accepted]
                self._append(self.out, accepted)
                self._append(self.rejects_path, rejected)
                by_rule: dict[str, int] = {}
                for r in rejected:
                    for rule in r["failed"] or ["unparsed"]:
                        by_rule[rule] = by_rule.get(rule, 0) + 1
                rec = {"batch": batch, **counters, "accepted": len(accepted), "rejected": len(rejected), "rejects_by_rule": by_rule}
                self._append(self.progress_path, [rec])
                self.totals.add(rec)
                bar.update(len(accepted))
                batch += 1
        finally:
            bar.close()
        if self.totals.accepted < s.count:
            log.warning("stopped after %d batches with %d of %d jokes accepted (acceptance too low)", batch, self.totals.accepted, s.count)
        return {**asdict(self.totals), "out": str(self.out), "rejects": str(self.rejects_path), "progress": str(self.progress_path), "target": s.count}

    @staticmethod
    def _append(path: Path, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with open(path, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def generate_jokes_with_claude(out: str | Path, settings: ClaudeSettings, *, api_key: str | None = None, progress: bool = True, sleep=time.sleep) -> dict[str, Any]:
    return ClaudeJokeGenerator(out, settings, api_key=api_key, sleep=sleep).run(progress=progress)
