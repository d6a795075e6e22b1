"""`sparring data generate|info|template|convert` and `sparring sft` through the real entry point,
with the exit codes a user sees (0 ok, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_qa_generation_is_deterministic_and_checked(tmp_path: Path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    code, out, _ = run_cli(["data", "generate", "qa", "--count", "30", "--seed", "42", "--out", str(a)], capsys)
    assert code == 0 and json.loads(out)["checks"]["ok"] and json.loads(out)["rows"] == 30
    run_cli(["data", "generate", "qa", "--count", "30", "--seed", "42", "--out", str(b)], capsys)
    assert a.read_bytes() == b.read_bytes()
    run_cli(["data", "generate", "qa", "--count", "30", "--seed", "43", "--out", str(b)], capsys)
    assert a.read_bytes() != b.read_bytes()
    row = json.loads(a.read_text().splitlines()[0])
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"] and row["meta"]["answer"] == row["messages"][-1]["content"]


def test_builtin_jokes_are_validated_and_asked_like_the_env(tmp_path: Path, capsys):
    from sparring.envs.base import make_env
    from sparring.evaluators.joke_validator import validate_joke

    out = tmp_path / "jokes.jsonl"
    code, text, _ = run_cli(["data", "generate", "jokes", "--out", str(out)], capsys)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and json.loads(text)["rows"] == len(rows) >= 100
    env_prompt = make_env("jokes", {}).make_prompt(topic=rows[0]["meta"]["topic"])
    assert rows[0]["messages"][:-1] == [dict(m) for m in env_prompt.messages]
    assert all(validate_joke(r["messages"][-1]["content"], topic=r["meta"]["topic"]).passed for r in rows[:40])


@pytest.mark.parametrize("kind", ["quotes", "timeline"])
def test_other_builtin_kinds(tmp_path: Path, capsys, kind: str):
    out = tmp_path / f"{kind}.jsonl"
    code, _, _ = run_cli(["data", "generate", kind, "--count", "10", "--out", str(out)], capsys)
    assert code == 0 and len(out.read_text().splitlines()) == 10


def test_chess_without_stockfish_is_exit_2(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("SPARRING_STOCKFISH", str(tmp_path / "no-stockfish"))
    code, _, err = run_cli(["data", "generate", "chess", "--positions", "3", "--out", str(tmp_path / "c.jsonl")], capsys)
    assert code == 2 and "stockfish" in err.lower() and "fix:" in err


def test_info_template_and_convert(tmp_path: Path, capsys):
    code, out, _ = run_cli(["data", "template", "--format", "alpaca"], capsys)
    lines = out.splitlines()
    assert code == 0 and all("instruction" in json.loads(line) for line in lines)
    src = tmp_path / "alpaca.jsonl"
    src.write_text(out + "{broken\n")
    dst = tmp_path / "chat.jsonl"
    code, out, err = run_cli(["data", "convert", str(src), "--to", "chat", "--out", str(dst)], capsys)
    assert code == 0 and json.loads(out)["skipped"] == 1 and f"{src}:3" in err
    assert all("messages" in json.loads(line) for line in dst.read_text().splitlines())
    code, out, _ = run_cli(["data", "info", str(src), "--json", "--model", "tiny-random-llama"], capsys)
    info = json.loads(out)
    assert code == 0 and info["valid_rows"] == 2 and info["bad_rows"] == 1 and info["tokens"]["max"] > 0
    code, out, _ = run_cli(["data", "info", str(dst)], capsys)
    assert code == 0 and "valid rows" in out
    code, _, err = run_cli(["data", "template", "--format", "sharegpt"], capsys)
    assert code == 2


def test_zero_valid_rows_and_bad_resume_are_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n\n{oops\n')
    code, _, err = run_cli(["data", "info", str(bad)], capsys)
    assert code == 2 and "no valid rows" in err
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{name: tiny-random-llama, max_seq_len: 64}}\ndata: {{source: {bad}}}\noutput_dir: {tmp_path / 'runs'}\n")
    code, _, err = run_cli(["sft", str(config)], capsys)
    assert code == 2 and "no valid rows" in err
    run_dir = next((tmp_path / "runs").iterdir())
    code, _, err = run_cli(["sft", "--resume", str(run_dir)], capsys)
    assert code == 2 and "no checkpoint" in err
    code, _, err = run_cli(["sft", str(config), "--set", "sft.qlora=true"], capsys)
    assert code == 2 and "sft.qlora: false" in err


@pytest.mark.slow
def test_sft_command_on_builtin_jokes(tmp_path: Path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: cli\nmodel: {name: tiny-random-llama, max_seq_len: 256}\nenv: {name: jokes}\ndata: {source: builtin, count: 24}\n"
        f"sft: {{max_steps: 1, batch_size: 4, lora: {{r: 2, alpha: 4}}}}\noutput_dir: {tmp_path / 'runs'}\n"
    )
    run_dir = tmp_path / "runs" / "mine"
    code, out, _ = run_cli(["sft", str(config), "--run-dir", str(run_dir)], capsys)
    assert code == 0 and f"adapter: {run_dir}/sft/adapter" in out and f"merged:  {run_dir}/sft/merged" in out
    assert (run_dir / "data" / "jokes_sft.jsonl").is_file() and (run_dir / "sft" / "merged" / "model.safetensors").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["sft"]["status"] == "done" and manifest["stages"]["sft"]["train_rows"] + manifest["stages"]["sft"]["val_rows"] == 24
    code, _, err = run_cli(["sft", str(config), "--run-dir", str(run_dir), "--set", "sft.lora.r=4"], capsys)
    assert code == 2 and "different config" in err
