"""The report card: plots from metrics.jsonl, before/after table, artifacts, self-contained HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sparring.config import RunConfig
from sparring.report import write_report
from sparring.rundir import RunDir
from sparring.tracking import Tracker
from sparring.types import Artifact


def make_run(runs_dir: Path) -> RunDir:
    cfg = RunConfig(name="rep", output_dir=str(runs_dir))
    run = RunDir.create(cfg, argv=["sparring", "run"])
    with Tracker(run, cfg) as t:
        for step in range(1, 4):
            t.log({"sft/loss": 2.0 / step}, step=step)
            t.log({"rl/reward": 0.2 * step, "rl/reward/pun": 0.1 * step, "rl/kl": 0.01 * step, "rl/pass_rate": 0.3 * step,
                   "time/generate_s": 1.0, "time/learn_s": 0.5, "time/reward_s": 0.1, "time/sync_s": 0.2}, step=step)
    with run.stage("sft"):
        pass
    (run.path / "eval").mkdir()
    (run.path / "eval" / "summary.json").write_text(json.dumps({
        "env": "jokes", "prompts": 4,
        "before": {"pass_rate": 0.05, "latency/seconds_per_sample": 1.5},
        "after": {"pass_rate": 0.8, "latency/seconds_per_sample": 1.4},
        "samples": [{"prompt": "Tell me a dad joke about bread.", "before": "Bread is food | nice", "after": "Q: Why did the bread rise?\nA: It was kneaded."}],
    }))
    run.manifest.add_artifact(Artifact(str(run.path / "exports/step-3/gguf/model-q8_0.gguf"), "gguf", "a" * 64, 3 * 2**20, {"passed": True}))
    (run.path / "exports" / "failed" / "mlc-q4f16_1-x").mkdir(parents=True)
    return run


def test_report_has_every_section(runs_dir: Path):
    run = make_run(runs_dir)
    out = write_report(run)
    md = out["md"].read_text()
    for needle in ("Evaluation before/after", "| pass_rate | 0.05 | 0.8 | 0.75 | 16.00× |", "Samples on the same prompts", "model-q8_0.gguf", "verified", "mlc-q4f16_1-x", "config sha256"):
        assert needle in md, needle
    assert "Bread is food \\| nice" in md  # table cells are escaped
    # the jokes referee's own accuracy, measured on the hand-judged trained-model completions now
    assert re.search(r"upper bound on real puns: of \d+ completions .* a precision of 0\.\d\d", md)
    for png in ("reward", "loss", "pass_rate", "kl", "step_time"):
        assert (run.path / "plots" / f"{png}.png").stat().st_size > 1000
    page = out["html"].read_text()
    assert page.count("data:image/png;base64,") == 5 and "<img" in page and "src='plots/" not in page
    assert "&lt;" not in md and "Q: Why did the bread rise?" in page
    e2e = json.loads(out["e2e"].read_text())
    assert e2e["inference_metrics"]["pass_rate"] == 0.8 and e2e["export_formats"] == ["gguf"]
    assert e2e["final_losses"] == {"sft/loss": 2.0 / 3}


def test_only_an_env_with_a_referee_caveat_gets_one(runs_dir: Path):
    run = make_run(runs_dir)
    summary = json.loads((run.path / "eval" / "summary.json").read_text())
    (run.path / "eval" / "summary.json").write_text(json.dumps({**summary, "env": "qa"}))
    assert "upper bound" not in write_report(run)["md"].read_text()


def test_report_without_eval_or_artifacts(runs_dir: Path):
    run = RunDir.create(RunConfig(name="bare", output_dir=str(runs_dir)), argv=[])
    md = write_report(run)["md"].read_text()
    assert "eval/summary.json missing" in md and "No verified artifacts" in md


def test_report_cli_rejects_non_run_dir(tmp_path: Path):
    from typer.testing import CliRunner

    from sparring.cli import app

    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code != 0


def test_report_written_inside_its_own_stage(runs_dir: Path):
    run = make_run(runs_dir)
    with run.stage("report"):
        md = write_report(run)["md"].read_text()
    assert "| report |" not in md and "| sft | done |" in md and "| total |" in md
    assert "ended running" not in md and "report written" in md
