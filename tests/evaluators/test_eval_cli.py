"""`sparring validate-joke`, `sparring score` and `sparring eval`: output and exit codes
(0 pass, 1 fail, 2 bad input), JSONL verdicts with file:line for malformed lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparring.cli import main

GOOD = "Q: Why did the cookie go to the doctor?\\nA: Because it felt crummy!"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    """The real entry point in-process (exit codes included)."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_validate_joke_pass_fail_and_bad_input(capsys):
    code, out, _ = run(["validate-joke", GOOD], capsys)
    assert code == 0 and "PASSED" in out
    for rule in ("format", "length", "clean", "no_meta", "wordplay", "novelty"):
        assert rule in out
    code, out, _ = run(["validate-joke", "Sure! Here's a joke: why did the cookie cross the road?"], capsys)
    assert code == 1 and "FAIL  format" in out and "FAIL  no_meta" in out
    code, _, err = run(["validate-joke"], capsys)
    assert code == 2 and "TEXT or --jsonl" in err


def test_validate_joke_json_and_corpus(capsys, tmp_path: Path):
    code, out, _ = run(["validate-joke", GOOD, "--json"], capsys)
    assert code == 0 and json.loads(out)["passed"] is True
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"question": "Why did the cookie go to the doctor?", "answer": "Because it felt crummy!"}) + "\n")
    code, out, _ = run(["validate-joke", GOOD, "--corpus", str(corpus)], capsys)
    assert code == 1 and "FAIL  novelty" in out


def test_validate_joke_jsonl(capsys, tmp_path: Path):
    f = tmp_path / "jokes.jsonl"
    f.write_text(
        json.dumps({"text": GOOD.replace("\\n", "\n")}) + "\n"
        + "not json\n\n"
        + json.dumps({"text": "Here's a joke!"}) + "\n"
        + json.dumps({"nope": 1}) + "\n"
    )
    code, out, err = run(["validate-joke", "--jsonl", str(f)], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(lines) == 4
    assert lines[0]["passed"] is True and lines[0]["rules"]["format"]["passed"] is True and lines[0]["line"] == 1
    assert lines[1] == {"line": 2, "passed": False, "error": "malformed JSON (Expecting value)"}
    assert lines[2]["passed"] is False and lines[2]["line"] == 4
    assert f"{f}:2: malformed JSON" in err and f"{f}:5:" in err
    good_only = tmp_path / "good.jsonl"
    good_only.write_text(json.dumps({"text": GOOD.replace("\\n", "\n")}) + "\n")
    assert run(["validate-joke", "--jsonl", str(good_only)], capsys)[0] == 0
    code, _, err = run(["validate-joke", "--jsonl", str(tmp_path / "missing.jsonl")], capsys)
    assert code == 2 and "not found" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert run(["validate-joke", "--jsonl", str(empty)], capsys)[0] == 2


def test_score_prints_the_score_as_json(capsys):
    code, out, _ = run(["score", "qa", "--question", "What is the capital of France?", "--answer", "Paris", "--completion", "Paris."], capsys)
    score = json.loads(out)
    assert code == 0 and score["total"] == 1.0 and score["components"]["normalized"] == 1.0 and score["passed"]
    code, out, _ = run(["score", "jokes", "--prompt", "Tell a dad joke about bread.", "--completion", "Q: Why did the bread go to therapy?\\nA: It felt kneaded.", "--option", "corpus=none"], capsys)
    score = json.loads(out)
    assert code == 0 and score["passed"] and "pun" in score["components"] and score["details"]["question"]
    code, out, _ = run(["score", "timeline", "--prompt", "[00:01] END winner=red", "--answer", '{"winner": "red", "events": []}', "--completion", '{"winner":"red","events":[]}]}]}]}'], capsys)
    assert code == 0 and json.loads(out)["components"]["bracket_loop"] == 1.0


def test_score_bad_input_exits_2(capsys):
    assert run(["score", "nope", "--completion", "x"], capsys)[0] == 2
    code, _, err = run(["score", "qa", "--question", "Who?", "--completion", "x"], capsys)
    assert code == 2 and "--answer" in err
    assert run(["score", "jokes", "--completion", "x", "--option", "corpus=none"], capsys)[0] == 2
    assert run(["score", "jokes", "--topic", "bread", "--completion", "x", "--option", "bogus=1"], capsys)[0] == 2


def test_eval_bad_config_exits_2(capsys, tmp_path: Path):
    code, _, err = run(["eval", str(tmp_path / "none.yaml"), "--model", "tiny-random-llama"], capsys)
    assert code == 2 and "not found" in err


@pytest.mark.slow
def test_eval_end_to_end_with_compare(tmp_path: Path, tiny_llama):
    cfg = tmp_path / "qa.yaml"
    cfg.write_text("name: qa-eval\nseed: 3\nenv:\n  name: qa\n  options: {pool_size: 50}\neval:\n  max_new_tokens: 3\n  batch_size: 4\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "sparring", "eval", str(cfg), "--model", "tiny-random-llama", "--compare", str(tiny_llama), "--samples", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "eval" / "qa.json").read_text())
    assert result["compare"] and result["samples"] == 3 and len(result["labels"]) == 2
    # the same seeded model twice: identical outputs, zero deltas
    a, b = (result["models"][label]["rows"] for label in result["labels"])
    assert [r["completion"] for r in a] == [r["completion"] for r in b]
    assert all(v == 0 for v in result["delta"].values())
    assert "| metric | tiny-random-llama |" in (out / "eval" / "qa.md").read_text()


@pytest.mark.slow
def test_eval_chess_goes_through_evaluate_chess(tmp_path: Path, tiny_llama):
    cfg = tmp_path / "chess.yaml"
    cfg.write_text("name: chess-eval\nenv:\n  name: chess\neval:\n  max_new_tokens: 4\n  batch_size: 4\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "sparring", "eval", str(cfg), "--model", str(tiny_llama), "--samples", "2", "--games", "0", "--puzzles", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "eval" / "chess.json").read_text())
    assert result["positions"]["positions"] == 2 and result["latency"]["generations"] == 2
    assert "| positions.legal_rate |" in (out / "eval" / "chess.md").read_text()
