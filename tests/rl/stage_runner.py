"""Run the RL stage in-process on a shipped config (tests share the module's Ray cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_stage(config: str, overrides: list[str]) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """``run_rl`` on ``configs/<config>`` with overrides: (run dir, result, the per-step metric rows)."""
    from sparring.config_io import load_config
    from sparring.rl.stage import run_rl
    from sparring.rundir import RunDir
    from sparring.tracking import Tracker, read_metrics

    cfg = load_config(CONFIGS / config, overrides)
    run = RunDir.create(cfg, ["test"])
    tracker = Tracker(run, cfg, job="rl")
    try:
        result = run_rl(cfg, run, tracker)
    finally:
        tracker.finish()
    rows = [r for r in read_metrics(run.metrics_path) if "rl/reward" in r]
    return run, result, rows
