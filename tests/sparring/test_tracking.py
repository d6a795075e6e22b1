"""metrics.jsonl always; W&B offline for real, read back from its run files."""

from __future__ import annotations

import json
from pathlib import Path

from sparring.config import RunConfig
from sparring.rundir import RunDir
from sparring.tracking import Tracker, read_metrics, read_wandb_history


def test_jsonl_metrics_and_tables(runs_dir: Path):
    run = RunDir.create(RunConfig(name="m", output_dir=str(runs_dir)), argv=[])
    with Tracker(run, run.config()) as t:
        t.log({"loss": 1.5, "nan": float("nan")}, step=1)
        t.log({"loss": 1.0}, step=2)
        t.log_table("samples", [{"prompt": "p", "completion": "c", "reward": 0.5}], step=2)
    rows = read_metrics(run.metrics_path)
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["loss"] == 1.0 and rows[0]["nan"] is None
    sample = json.loads((run.path / "samples.jsonl").read_text().splitlines()[0])
    assert sample["table"] == "samples" and sample["reward"] == 0.5


def test_wandb_offline_run_is_written_and_readable(runs_dir: Path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = RunConfig(name="w", output_dir=str(runs_dir), tracking={"wandb": {"enabled": True, "project": "sparring-test"}})
    run = RunDir.create(cfg, argv=[])
    t = Tracker(run, cfg)
    assert t.wandb_run is not None
    for step in range(1, 6):  # the pipeline's order: SFT steps first, then RL from step 0 in the same run
        t.log({"sft/loss": 2.0 / step}, step=step)
    for step in range(3):
        t.log({"rl/reward": 0.1 * step, "time/learn_s": 1.0}, step=step)
    t.log_table("rl/samples", [{"completion": "Q: a?\nA: b", "reward": 1.0}], step=2)
    t.finish()
    meta = run.manifest.read()["wandb"]
    assert meta["mode"] == "offline"
    offline = list((run.path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    history = read_wandb_history(next(offline[0].glob("*.wandb")), wait_s=30)
    rewards = [float(h["rl/reward"]) for h in history if "rl/reward" in h]
    assert rewards == [0.0, 0.1, 0.2]  # none dropped behind the SFT steps
    assert [h["rl/step"] for h in history if "rl/reward" in h] == [0, 1, 2]
    assert [h["sft/step"] for h in history if "sft/loss" in h] == [1, 2, 3, 4, 5]
    assert any(any(k.startswith("rl/samples") for k in h) for h in history), history
