"""SFT row formats: chat messages, alpaca and prompt/completion — detection, validation, conversion.

    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]}   chat
    {"instruction": "...", "input": "...", "output": "..."}                                     alpaca
    {"prompt": "...", "completion": "..."}                                                       completion

Every row becomes one ``ChatExample`` (a validated message list); the model's own chat template
is applied later, at tokenize time (``sft/dataset.py``).  A bad row raises ``RowError`` with the
kind of problem (missing field, empty string, wrong role...) so the loader can report it with
file:line.  ``sparring data template --format chat`` prints an example of each format.
Exercised by ``pytest tests/sft/test_formats.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("chat", "alpaca", "completion")
ROLES = ("system", "user", "assistant")
FORMAT_ALIASES = {"messages": "chat", "prompt-completion": "completion", "prompt_completion": "completion"}


class RowError(ValueError):
    """One row that cannot be used: ``kind`` is malformed_json | not_object | unknown_format |
    missing_field | empty_string | wrong_type | wrong_role."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class ChatExample:
    """A validated conversation: optional system message first, then user/assistant turns ending
    with an assistant turn.  ``meta`` carries what a referee needs (a topic, a FEN...)."""

    messages: tuple[dict[str, str], ...]
    source_format: str = "chat"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    line: int = 0

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """Everything before the final assistant turn (what the model is given)."""
        return [dict(m) for m in self.messages[:-1]]

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

    @property
    def system(self) -> str | None:
        return self.messages[0]["content"] if self.messages[0]["role"] == "system" else None

    def to_row(self, fmt: str = "chat") -> dict[str, Any]:
        """This example written in ``fmt`` (see ``convert``)."""
        return to_format(self, fmt)


def canonical_format(name: str) -> str:
    fmt = FORMAT_ALIASES.get(name.strip().lower(), name.strip().lower())
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}")
    return fmt


def detect_format(row: Any) -> str:
    """Which format a decoded JSON row is in (by its keys)."""
    if not isinstance(row, dict):
        raise RowError("not_object", f"a row must be a JSON object, got {type(row).__name__}")
    if "messages" in row:
        return "chat"
    if "instruction" in row or "output" in row:
        return "alpaca"
    if "prompt" in row or "completion" in row:
        return "completion"
    keys = ", ".join(sorted(row)) or "none"
    raise RowError("unknown_format", f"no 'messages', 'instruction'/'output' or 'prompt'/'completion' key (keys: {keys})")


def _text(row: dict[str, Any], key: str, *, required: bool = True, allow_empty: bool = False) -> str:
    if key not in row or row[key] is None:
        if required:
            raise RowError("missing_field", f"missing field {key!r}")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise RowError("wrong_type", f"field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip() and not allow_empty:
        raise RowError("empty_string", f"field {key!r} is empty")
    return value


def check_messages(messages: Any, *, where: str = "messages", need_answer: bool = True) -> tuple[dict[str, str], ...]:
    """Validate a message list: roles, order, non-empty strings, ending on the assistant."""
    if not isinstance(messages, list):
        raise RowError("wrong_type", f"{where!r} must be a list of messages, got {type(messages).__name__}")
    if not messages:
        raise RowError("empty_string", f"{where!r} is an empty list")
    out: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(msg, dict):
            raise RowError("wrong_type", f"{at} must be an object with 'role' and 'content'")
        if "role" not in msg:
            raise RowError("missing_field", f"{at} has no 'role'")
        if "content" not in msg or msg["content"] is None:
            raise RowError("missing_field", f"{at} has no 'content'")
        role, content = msg["role"], msg["content"]
        if role not in ROLES:
            raise RowError("wrong_role", f"{at}.role is {role!r}; allowed roles: {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise RowError("wrong_type", f"{at}.content must be a string, got {type(content).__name__}")
        if not content.strip():
            raise RowError("empty_string", f"{at}.content ({role}) is empty")
        if role == "system" and i != 0:
            raise RowError("wrong_role", f"{at} is a system message; only the first message may be 'system'")
        out.append({"role": role, "content": content})
    turns = out[1:] if out[0]["role"] == "system" else out
    if not turns:
        raise RowError("wrong_role", f"{where!r} has only a system message; add user and assistant turns")
    for j, msg in enumerate(turns):
        expected = "user" if j % 2 == 0 else "assistant"
        if msg["role"] != expected:
            raise RowError("wrong_role", f"{where} turn {j} is {msg['role']!r}, expected {expected!r} (turns alternate user/assistant, starting with user)")
    if need_answer and turns[-1]["role"] != "assistant":
        raise RowError("wrong_role", f"{where!r} ends with a {turns[-1]['role']!r} message; the last message must be the assistant's answer")
    return tuple(out)


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise RowError("wrong_type", f"field 'meta' must be an object, got {type(meta).__name__}")
    return meta


def parse_row(row: Any, *, line: int = 0, need_answer: bool = True) -> ChatExample:
    """Turn one decoded JSON row of any format into a validated ``ChatExample``.

    With ``need_answer=False`` a row may stop at the user turn (prompt files for distillation)."""
    fmt = detect_format(row)
    if fmt == "chat":
        messages = check_messages(row["messages"], need_answer=need_answer)
    elif fmt == "alpaca":
        instruction = _text(row, "instruction")
        extra = _text(row, "input", required=False, allow_empty=True)
        system = _text(row, "system", required=False, allow_empty=True)
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        msgs = ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": user}]
        if need_answer or row.get("output") is not None:
            msgs.append({"role": "assistant", "content": _text(row, "output")})
        messages = tuple(msgs)
    else:
        prompt, completion = row.get("prompt"), row.get("completion")
        if isinstance(prompt, list):  # TRL's conversational prompt/completion
            msgs = list(prompt) + (list(completion) if isinstance(completion, list) else [])
            if completion is not None and not isinstance(completion, list):
                raise RowError("wrong_type", "'completion' must be a message list when 'prompt' is one")
            messages = check_messages(msgs, where="prompt+completion", need_answer=need_answer)
        else:
            system = _text(row, "system", required=False, allow_empty=True)
            msgs = ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": _text(row, "prompt")}]
            if need_answer or completion is not None:
                msgs.append({"role": "assistant", "content": _text(row, "completion")})
            messages = tuple(msgs)
    return ChatExample(messages=messages, source_format=fmt, meta=_meta(row), line=line)


def parse_line(text: str, *, line: int = 0, need_answer: bool = True) -> ChatExample:
    """Decode one JSONL line and parse it (``RowError('malformed_json')`` on bad JSON)."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowError("malformed_json", f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    return parse_row(row, line=line, need_answer=need_answer)


def to_format(example: ChatExample, fmt: str) -> dict[str, Any]:
    """Write ``example`` in ``fmt``.  Multi-turn chats flatten into alpaca/completion by putting the
    earlier turns, rendered as ``Role: text`` lines, into the prompt; the system message is kept
    in a ``system`` field."""
    fmt = canonical_format(fmt)
    meta = {"meta": dict(example.meta)} if example.meta else {}
    if fmt == "chat":
        return {"messages": [dict(m) for m in example.messages], **meta}
    turns = [m for m in example.messages[:-1] if m["role"] != "system"]
    if len(turns) == 1:
        prompt = turns[0]["content"]
    else:
        prompt = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in turns)
    system = {"system": example.system} if example.system else {}
    if fmt == "alpaca":
        return {"instruction": prompt, "input": "", "output": example.answer, **system, **meta}
    return {"prompt": prompt, "completion": example.answer, **system, **meta}


def convert(row: dict[str, Any], to: str) -> dict[str, Any]:
    """Convert one row of any format into ``to`` (chat | alpaca | completion)."""
    return to_format(parse_row(row), to)


def to_prompt_completion(example: ChatExample) -> list[dict[str, Any]]:
    """TRL's conversational prompt/completion rows, one per assistant turn: the loss then falls on
    each assistant reply only, whatever the model's chat template (no ``{% generation %}`` needed)."""
    rows = []
    for i, msg in enumerate(example.messages):
        if msg["role"] == "assistant":
            rows.append({"prompt": [dict(m) for m in example.messages[:i]], "completion": [dict(msg)]})
    return rows


TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "chat": [
        {"messages": [
            {"role": "system", "content": "You tell short, original, family-friendly dad jokes as a question and an answer."},
            {"role": "user", "content": "Tell me a dad joke about bread."},
            {"role": "assistant", "content": "Q: Why did the baguette see a therapist?\nA: It was feeling crumby."},
        ]},
        {"messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris"},
        ], "meta": {"answer": "Paris"}},
    ],
    "alpaca": [
        {"instruction": "Tell me a dad joke about bread.", "input": "", "output": "Q: Why did the baguette see a therapist?\nA: It was feeling crumby."},
        {"instruction": "Answer with one word.", "input": "What is the capital of France?", "output": "Paris"},
    ],
    "completion": [
        {"prompt": "Tell me a dad joke about bread.", "completion": "Q: Why did the baguette see a therapist?\nA: It was feeling crumby."},
        {"prompt": "What is the capital of France?", "completion": "Paris", "system": "Answer with one word."},
    ],
}


def template_jsonl(fmt: str) -> str:
    """Example JSONL lines for ``fmt`` (what ``sparring data template`` prints)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in TEMPLATES[canonical_format(fmt)])
