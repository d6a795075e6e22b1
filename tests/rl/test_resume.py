"""Kill-and-resume equality: a `sparring rl` process killed with SIGKILL after a checkpoint and resumed
with `--resume` reaches the same per-step metrics and samples as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparring.rl.checkpoint import RLState, checkpoint_problems, commit_checkpoint, latest_checkpoint, truncate_logs_after
from sparring.errors import UserInputError

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
COMPARED = ("rl/loss", "rl/grad_norm", "rl/reward", "rl/reward/length", "rl/entropy", "rl/is_weight", "rl/pass_rate", "rl/policy_version")
OVERRIDES = ["rl.steps=2", "rl.checkpoint_every=1", "rl.keep_checkpoints=5", "rl.reward=length", "rl.rollout.max_new_tokens=4",
             "rl.learning_rate=0.01", "rl.rollout.num_workers=1", "tracking.sample_table_rows=4"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sparring", "rl", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}


def _start(out: Path, log: Path, extra: list[str]) -> subprocess.Popen:
    sets = [a for o in OVERRIDES + extra + [f"output_dir={out}"] for a in ("--set", o)]
    return subprocess.Popen(_cli(str(REPO / "configs" / "tiny-jokes.yaml"), *sets), cwd=REPO, env=_env(), stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group of the run we started (its Ray helpers too)
    except ProcessLookupError:
        pass


def _rows(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rl_rows = [r for r in rows if "rl/reward" in r]
    steps = [r["step"] for r in rl_rows]
    assert len(steps) == len(set(steps)), f"a step was logged twice: {steps}"
    return {r["step"]: r for r in rl_rows}


def _samples(run: Path) -> dict[str, str]:
    return {s["sample_id"]: s["completion"] for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines())}


@pytest.mark.parametrize("steps, extra", [
    (2, []),
    # generation beside learning: step 2 is a checkpoint, so step 3 is generated after it in both
    # runs with the policy it holds, and step 4 beside step 3 with that same policy
    (4, ["rl.steps=4", "rl.checkpoint_every=2", "rl.overlap_generation=true"]),
], ids=["in-turn", "overlap-generation"])
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, steps, extra):
    full_out, killed_out = tmp_path / "full", tmp_path / "killed"
    full = _start(full_out, tmp_path / "full.log", extra)  # both run at once: wall time, not results, is shared
    victim = _start(killed_out, tmp_path / "killed.log", extra)
    try:
        deadline = time.time() + 240
        first_ckpt = None
        while time.time() < deadline and first_ckpt is None:
            found = list(killed_out.glob("*/rl/checkpoints/step-*/state.json"))
            first_ckpt = found[0] if found else None
            if victim.poll() is not None:
                pytest.fail("the run ended before it could be killed:\n" + (tmp_path / "killed.log").read_text()[-3000:])
            time.sleep(0.1)
        assert first_ckpt is not None, "no checkpoint within 240 s:\n" + (tmp_path / "killed.log").read_text()[-3000:]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        _kill_group(victim)
    run_dir = first_ckpt.parents[3]
    ckpt, state = latest_checkpoint(run_dir)
    assert state.step < steps, "the killed run had already finished"
    assert not (run_dir / "rl" / "final").exists()

    resumed = subprocess.run(_cli("--resume", str(run_dir)), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
    assert f"resuming after step {state.step}" in resumed.stderr.replace("\n", " ")
    assert full.wait(timeout=400) == 0, (tmp_path / "full.log").read_text()[-4000:]

    full_run = next(full_out.iterdir())
    expected, got = _rows(full_run), _rows(run_dir)
    assert sorted(got) == sorted(expected) == list(range(1, steps + 1))
    for step in range(1, steps + 1):
        for key in COMPARED:
            assert got[step][key] == pytest.approx(expected[step][key], rel=1e-4, abs=1e-6), (step, key)
    assert any(expected[s]["rl/grad_norm"] > 0 for s in expected)  # the comparison covers real updates
    assert _samples(run_dir) == _samples(full_run)  # the same completions, sampled after the resume too
    from safetensors.torch import load_file

    a = load_file(full_run / "rl" / "final" / "adapter_model.safetensors")
    b = load_file(run_dir / "rl" / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert all(float((a[k] - b[k]).abs().max()) < 1e-5 for k in a)


def _fake_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("name: x\n")
    (path / "manifest.json").write_text("{}")
    return path


def test_checkpoint_is_atomic_and_resume_names_what_is_missing(tmp_path):
    run = _fake_run(tmp_path / "run")
    with pytest.raises(UserInputError, match="no RL checkpoint"):
        latest_checkpoint(run)
    trainer = tmp_path / "staged"
    trainer.mkdir()
    (trainer / "adapter_model.safetensors").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="optimizer.pt"):  # an incomplete trainer save is never published
        commit_checkpoint(run, RLState(step=1), "name: x\n", trainer_dir=trainer)
    assert not list((run / "rl" / "checkpoints").iterdir())
    # a folder left by a killed write (no state.json) is reported, with the file it lacks
    partial = run / "rl" / "checkpoints" / "step-000002" / "trainer"
    partial.mkdir(parents=True)
    with pytest.raises(UserInputError, match="state.json"):
        latest_checkpoint(run)
    # a complete one is found and verified by checksum
    good = tmp_path / "good"
    good.mkdir()
    (good / "adapter_model.safetensors").write_bytes(b"weights")
    ckpt = commit_checkpoint(run, RLState(step=1, policy_version=1), "name: x\n", trainer_dir=good, required=("adapter_model.safetensors",))
    assert checkpoint_problems(ckpt) == []
    assert latest_checkpoint(run)[1].step == 1
    (ckpt / "trainer" / "adapter_model.safetensors").write_bytes(b"tampered")
    assert any("checksum" in p for p in checkpoint_problems(ckpt))


def test_truncate_logs_drops_rows_after_the_checkpoint(tmp_path):
    run = _fake_run(tmp_path / "run")
    rows = [{"step": 1, "rl/reward": 0.1}, {"step": 5, "sft/loss": 1.0}, {"step": 2, "rl/reward": 0.2}, {"step": 3, "rl/reward": 0.3}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "rl/rew')
    (run / "samples.jsonl").write_text(json.dumps({"table": "rl/samples", "step": 3, "sample_id": "3-a-0"}) + "\n")
    appender = open(run / "metrics.jsonl", "a", encoding="utf-8")  # like a Tracker opened before the resume
    truncate_logs_after(run, 2)
    appender.write(json.dumps({"step": 3, "rl/reward": 0.33}) + "\n")
    appender.close()
    kept = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in kept] == [1, 5, 2, 3]  # other stages' rows stay; the cut line is gone
    assert kept[-1]["rl/reward"] == 0.33
    assert (run / "samples.jsonl").read_text() == ""
