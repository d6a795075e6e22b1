"""Synthetic Q/A and timeline generators: deterministic for a seed, the plan's checks, schema."""

from __future__ import annotations

import json

import pytest

from sparring.errors import UserInputError
from sparring.sft.generators.qa import CAPITALS, check_qa, generate_qa, qa_messages
from sparring.sft.generators.timeline import TIMELINE_SCHEMA, generate_timelines, timeline_json, timeline_messages, validate_timeline


def test_qa_deterministic_and_passes_the_checks():
    rows = generate_qa(300, seed=42)
    assert rows == generate_qa(300, seed=42) and rows != generate_qa(300, seed=43)
    report = check_qa(rows)
    assert report["ok"] and report["unique_ratio"] >= 0.95 and report["empty_fields"] == 0
    assert {r["kind"] for r in rows} == {"capital", "arithmetic", "unit"}


def test_qa_answers_are_right():
    for r in generate_qa(200, seed=1):
        q, a = r["question"], r["answer"]
        if r["kind"] == "capital":
            assert CAPITALS[q.removeprefix("What is the capital of ").rstrip("?")] == a
        elif r["kind"] == "unit":
            assert a.isdigit()
        else:
            nums = [int(t) for t in q.replace(".", " ").replace("?", " ").split() if t.isdigit()]
            assert int(a) in {nums[0] + nums[1], nums[0] - nums[1], nums[0] * nums[1], nums[0] // nums[1]}


def test_check_qa_flags_problems():
    rows = [{"question": "What is the capital of France?", "answer": ""}] + [{"question": "Same question here?", "answer": "x"}] * 5
    report = check_qa(rows)
    assert not report["ok"] and report["empty_fields"] == 1 and report["unique_ratio"] < 0.95 and len(report["problems"]) == 3


def test_qa_bad_arguments():
    with pytest.raises(UserInputError, match="distinct"):
        generate_qa(500, kinds=["capital"])
    with pytest.raises(UserInputError, match="kinds"):
        generate_qa(5, kinds=["poetry"])
    with pytest.raises(UserInputError):
        generate_qa(-1)
    assert qa_messages({"question": "Q?", "answer": "A"})["messages"][-1] == {"role": "assistant", "content": "A"}


def test_timelines_valid_and_deterministic():
    rows = generate_timelines(50, seed=3)
    assert rows == generate_timelines(50, seed=3)
    assert len({r["log"] for r in rows}) == 50
    for r in rows:
        assert validate_timeline(r["timeline"]) == []
        log_events = [line for line in r["log"].splitlines() if not any(k in line for k in ("CHAT", "DEBUG", "END"))]
        assert len(log_events) == len(r["timeline"]["events"])
        assert f"END winner={r['timeline']['winner']}" in r["log"]
        times = [e["time"] for e in r["timeline"]["events"]]
        assert times == sorted(times)
    assert json.loads(timeline_json(rows[0]["timeline"])) == rows[0]["timeline"]
    assert timeline_messages(rows[0])["messages"][0]["role"] == "system"


def test_timeline_schema_rejects_bad_shapes():
    assert validate_timeline({"winner": "red"})
    assert validate_timeline({"winner": "red", "events": [{"time": "1:00", "type": "kill", "player": "A", "target": None}]})
    assert validate_timeline({"winner": "red", "events": [], "extra": 1})
    assert TIMELINE_SCHEMA["required"] == ["winner", "events"]
    with pytest.raises(UserInputError):
        generate_timelines(3, min_events=4, max_events=2)
