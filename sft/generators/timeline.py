"""Synthetic game event logs and the JSON timeline a model should extract from them.

    rows = generate_timelines(50, seed=0)     # [{"log": str, "timeline": dict}], deterministic
    validate_timeline(rows[0]["timeline"])    # [] (JSON Schema errors, none for generated rows)
    timeline_messages(rows[0])                # {"messages": [system, user log, assistant JSON]}

A log is a few lines from a capture-the-flag match server::

    [00:03] KILL Nova -> Rex (rifle)
    [00:17] CHAT Rex: gg
    [00:41] CAPTURE Nova flag
    [01:02] DEBUG tick=1240
    [03:00] END winner=blue

The timeline keeps the game events (kill, heal, capture, death) in order, drops chat and debug
noise, and names the winner; ``TIMELINE_SCHEMA`` (JSON Schema draft 2020-12) fixes its shape.
Exercised by ``sparring data generate timeline --count 50`` and
``pytest tests/sft/test_qa_timeline_generators.py``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from sparring.errors import UserInputError

EVENT_TYPES = ("kill", "heal", "capture", "death")
PLAYERS = {"red": ("Nova", "Rex", "Ivy", "Axel"), "blue": ("Zed", "Luna", "Orin", "Mila")}
WEAPONS = ("rifle", "bow", "laser", "sword")
CAUSES = ("fall", "lava", "trap")
SYSTEM_PROMPT = (
    "Convert the game log into a JSON timeline. Keep only kill, heal, capture and death events, in order; "
    'ignore CHAT and DEBUG lines. Output only JSON: {"winner": "red"|"blue"|"draw", "events": '
    '[{"time": "MM:SS", "type": "...", "player": "...", "target": "..." or null}]}'
)

TIMELINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Game timeline",
    "type": "object",
    "additionalProperties": False,
    "required": ["winner", "events"],
    "properties": {
        "winner": {"enum": ["red", "blue", "draw"]},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["time", "type", "player", "target"],
                "properties": {
                    "time": {"type": "string", "pattern": "^[0-9]{2}:[0-5][0-9]$"},
                    "type": {"enum": list(EVENT_TYPES)},
                    "player": {"type": "string", "minLength": 1},
                    "target": {"type": ["string", "null"]},
                },
            },
        },
    },
}
# Deepest nesting of a valid timeline: object > array > object, so "}]}" is the longest run of
# closing brackets a valid answer can end with.
MAX_CLOSING_RUN = 3


def _clock(seconds: int) -> str:
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _one(rng: random.Random, min_events: int, max_events: int) -> dict[str, Any]:
    n_events = rng.randint(min_events, max_events)
    n_noise = rng.randint(0, 2)
    kinds = ["event"] * n_events + ["noise"] * n_noise
    rng.shuffle(kinds)
    t = 0
    lines: list[str] = []
    events: list[dict[str, Any]] = []
    everyone = PLAYERS["red"] + PLAYERS["blue"]
    for kind in kinds:
        t += rng.randint(5, 50)
        stamp = _clock(t)
        if kind == "noise":
            if rng.random() < 0.5:
                lines.append(f"[{stamp}] CHAT {rng.choice(everyone)}: {rng.choice(['gg', 'nice', 'lol', 'go go', 'brb'])}")
            else:
                lines.append(f"[{stamp}] DEBUG tick={rng.randint(100, 9999)}")
            continue
        etype = rng.choice(EVENT_TYPES)
        team = rng.choice(["red", "blue"])
        player = rng.choice(PLAYERS[team])
        target: str | None = None
        if etype == "kill":
            target = rng.choice(PLAYERS["blue" if team == "red" else "red"])
            lines.append(f"[{stamp}] KILL {player} -> {target} ({rng.choice(WEAPONS)})")
        elif etype == "heal":
            target = rng.choice([p for p in PLAYERS[team] if p != player])
            lines.append(f"[{stamp}] HEAL {player} -> {target}")
        elif etype == "capture":
            lines.append(f"[{stamp}] CAPTURE {player} flag")
        else:
            lines.append(f"[{stamp}] DEATH {player} ({rng.choice(CAUSES)})")
        events.append({"time": stamp, "type": etype, "player": player, "target": target})
    winner = rng.choice(["red", "blue", "draw"])
    lines.append(f"[{_clock(t + rng.randint(5, 30))}] END winner={winner}")
    return {"log": "\n".join(lines), "timeline": {"winner": winner, "events": events}}


def generate_timelines(count: int, seed: int = 0, min_events: int = 2, max_events: int = 5) -> list[dict[str, Any]]:
    """``count`` (log, timeline) rows, the same for the same arguments; logs never repeat."""
    if count < 0 or min_events < 1 or max_events < min_events:
        raise UserInputError(
            f"bad sizes count={count} min_events={min_events} max_events={max_events}",
            where="data.options",
            fix="count >= 0 and 1 <= min_events <= max_events",
        )
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < count:
        row = _one(rng, min_events, max_events)
        if row["log"] not in seen:
            seen.add(row["log"])
            rows.append(row)
    return rows


def validate_timeline(value: Any) -> list[str]:
    """JSON Schema errors of ``value`` against ``TIMELINE_SCHEMA`` (empty list when valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(TIMELINE_SCHEMA)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in validator.iter_errors(value)]


def timeline_json(timeline: dict[str, Any]) -> str:
    """The canonical answer text: compact one-line JSON."""
    return json.dumps(timeline, separators=(",", ":"))


def timeline_user_message(log: str) -> str:
    return f"Game log:\n{log}"


def timeline_messages(row: dict[str, Any], system_prompt: str = SYSTEM_PROMPT) -> dict[str, Any]:
    messages = [
        {"role": "user", "content": timeline_user_message(row["log"])},
        {"role": "assistant", "content": timeline_json(row["timeline"])},
    ]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": messages}
