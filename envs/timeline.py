"""The JSON-timeline env: a game event log in, the JSON timeline of its events out.

    env = make_env("timeline")
    prompt = next(env.prompts("test"))
    env.score(prompt, '{"winner":"blue","events":[...]}')

Components: ``parses`` (a JSON object can be decoded from the completion; a ```json fence is
tolerated), ``clean_end`` (nothing but whitespace after it), ``schema`` (valid against
``TIMELINE_SCHEMA`` with ``jsonschema``), ``field_accuracy`` (share of the reference's fields —
winner, then time/type/player/target of each event aligned by position — reproduced exactly;
missing and extra events count as wrong), ``bracket_loop`` (1 when the completion ends in a run of
closing brackets deeper than a timeline can nest, the "}]}]}]" loop small models fall into).
Total = 0 for a bracket loop, else 0.1 parses + 0.1 clean_end + 0.2 schema + 0.6 field_accuracy.
Passed = schema-valid, clean end and every field right.  Exercised by
``pytest tests/envs/test_text_envs.py -k timeline``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from pydantic import Field

from sparring.envs.base import Env, EnvOptions
from sparring.envs.splits import require_split, seeded_order, split_of
from sparring.errors import UserInputError
from sparring.evaluators.text_metrics import clean_unicode
from sparring.registry import register_env
from sparring.sft.generators.timeline import (
    MAX_CLOSING_RUN,
    SYSTEM_PROMPT,
    generate_timelines,
    timeline_user_message,
    validate_timeline,
)
from sparring.types import Prompt, Score

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?|\n?\s*```\s*$", re.IGNORECASE)
_EVENT_FIELDS = ("time", "type", "player", "target")


class TimelineOptions(EnvOptions):
    pool_size: int = Field(600, ge=10, description="Logs generated for the prompt pool (split 80/10/10 by log hash).")
    data_seed: int = Field(0, description="Seed of the log generator (fixes the pool).")
    min_events: int = Field(2, ge=1, description="Fewest game events in a log.")
    max_events: int = Field(5, ge=1, description="Most game events in a log.")
    system_prompt: str = Field(SYSTEM_PROMPT, description="System message describing the JSON shape ('' for none).")


def longest_closing_run(text: str) -> int:
    """Length of the longest run of '}'/']' characters, whitespace between them ignored."""
    best = run = 0
    for ch in text:
        if ch in "}]":
            run += 1
            best = max(best, run)
        elif not ch.isspace():
            run = 0
    return best


def extract_json(text: str) -> tuple[Any, str, str]:
    """(value or None, trailing text, error) for the first JSON object in ``text``."""
    body = _FENCE.sub("", text.strip())
    start = body.find("{")
    if start < 0:
        return None, "", "no '{' in the completion"
    try:
        value, end = json.JSONDecoder().raw_decode(body, start)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, "", f"invalid JSON: {getattr(exc, 'msg', type(exc).__name__)}"
    return value, body[end:], ""


def field_accuracy(value: Any, reference: dict[str, Any]) -> float:
    """Share of reference fields matched; extra predicted events count against it."""
    if not isinstance(value, dict):
        return 0.0
    ref_events = reference.get("events", [])
    pred_events = value.get("events") if isinstance(value.get("events"), list) else []
    total = 1 + len(_EVENT_FIELDS) * max(len(ref_events), len(pred_events))
    right = int(value.get("winner") == reference.get("winner"))
    for ref, pred in zip(ref_events, pred_events):
        if isinstance(pred, dict):
            right += sum(1 for f in _EVENT_FIELDS if f in pred and pred[f] == ref.get(f))
    return right / total if total else 0.0


@register_env("timeline")
class TimelineEnv(Env):
    Options = TimelineOptions
    name = "timeline"

    def __init__(self, options: TimelineOptions | None = None):
        super().__init__(options)
        self._pool: list[dict[str, Any]] | None = None

    def _rows(self) -> list[dict[str, Any]]:
        if self._pool is None:
            o = self.options
            self._pool = generate_timelines(o.pool_size, seed=o.data_seed, min_events=o.min_events, max_events=max(o.max_events, o.min_events))
        return self._pool

    def prompts(self, split: str = "train", seed: int = 0) -> Iterator[Prompt]:
        require_split(split)
        rows = seeded_order([r for r in self._rows() if split_of(r["log"]) == split], seed)
        for i, row in enumerate(rows):
            yield self._prompt(row["log"], row["timeline"], f"timeline-{split}-{i}")

    def _prompt(self, log: str, timeline: dict[str, Any], prompt_id: str) -> Prompt:
        messages = []
        if self.options.system_prompt:
            messages.append({"role": "system", "content": self.options.system_prompt})
        messages.append({"role": "user", "content": timeline_user_message(log)})
        return Prompt(id=prompt_id, messages=tuple(messages), meta={"env": "timeline", "log": log, "reference": timeline})

    def make_prompt(self, text: str | None = None, **fields: Any) -> Prompt:
        """A prompt from a log (``text``/``log``) and its reference timeline (``answer``: JSON),
        or a log of the pool (reference looked up)."""
        log = fields.get("log") or fields.get("question") or text
        if not log or not str(log).strip():
            raise UserInputError("no game log given", where="--prompt", fix='pass --prompt "<log lines>" --answer \'<reference JSON>\'')
        log = str(log).replace("\\n", "\n").strip()
        if log.startswith("Game log:"):
            log = log[len("Game log:") :].strip()
        answer = fields.get("answer")
        if answer:
            try:
                reference = json.loads(answer)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"reference is not JSON ({exc.msg})", where="--answer", fix="pass the expected timeline as JSON") from None
            errors = validate_timeline(reference)
            if errors:
                raise UserInputError(f"reference does not match the timeline schema: {errors[0]}", where="--answer", fix="fix the reference JSON")
        else:
            known = {r["log"]: r["timeline"] for r in self._rows()}
            if log not in known:
                raise UserInputError("no reference timeline given", where="--answer", fix="pass --answer '<reference JSON>'")
            reference = known[log]
        return self._prompt(log, reference, "cli")

    def score(self, prompt: Prompt, completion: str) -> Score:
        try:
            return self._score(prompt, completion)
        except Exception as exc:  # never crash on model output
            return Score(0.0, {"parses": 0.0}, False, {"error": repr(exc)})

    def _score(self, prompt: Prompt, completion: str) -> Score:
        text = clean_unicode(completion)
        reference = prompt.meta.get("reference", {})
        run = longest_closing_run(text)
        loop = run > MAX_CLOSING_RUN
        value, trailing, error = extract_json(text)
        parses = value is not None and isinstance(value, dict)
        errors = validate_timeline(value) if parses else ["does not parse"]
        comps = {
            "parses": float(parses),
            "clean_end": float(parses and not trailing.strip()),
            "schema": float(parses and not errors),
            "field_accuracy": round(field_accuracy(value, reference), 4) if parses else 0.0,
            "bracket_loop": float(loop),
        }
        total = 0.0 if loop else 0.1 * comps["parses"] + 0.1 * comps["clean_end"] + 0.2 * comps["schema"] + 0.6 * comps["field_accuracy"]
        passed = not loop and comps["schema"] == 1.0 and comps["clean_end"] == 1.0 and comps["field_accuracy"] == 1.0
        details = {"parse_error": error, "schema_errors": errors[:5], "longest_closing_run": run}
        if loop:
            details["bracket_loop"] = f"a run of {run} closing brackets (a valid timeline ends with at most {MAX_CLOSING_RUN}: '}}]}}')"
        return Score(round(total, 4), comps, passed, details)
