"""`sparring run` end to end on a tiny random Llama: every stage, report, verified exports, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.config_io import load_config
from sparring.errors import UserInputError
from sparring.pipeline import parse_stages, run_pipeline
from sparring.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
TINY_OVERRIDES = [
    "sft.max_steps=2",
    "sft.batch_size=4",
    "data.count=16",
    "eval.samples=4",
    "eval.max_new_tokens=8",
    "eval.batch_size=4",
    "export.formats=[hf,gguf,mlc,ollama]",
    "export.gguf_quants=[f32]",
    "export.mlc_quants=[q0f32]",
    "export.model_card=true",
]


def tiny_cfg(runs_dir: Path, *extra: str):
    return load_config(REPO / "configs" / "tiny-jokes.yaml", [f"output_dir={runs_dir}", *TINY_OVERRIDES, *extra])


@pytest.mark.slow
def test_whole_pipeline_on_a_tiny_model(runs_dir: Path):
    cfg = tiny_cfg(runs_dir)
    run = run_pipeline(cfg, stages=["data", "sft", "rl", "eval", "export", "report"])
    m = run.manifest.read()
    assert [m["stages"][s]["status"] for s in ("data", "sft", "rl", "eval", "export", "report")] == ["done"] * 6
    assert (run.path / "sft" / "adapter" / "adapter_config.json").is_file()
    assert (run.path / "rl" / "final").is_dir()
    summary = json.loads((run.path / "eval" / "summary.json").read_text())
    assert summary["prompts"] == 4 and "pass_rate" in summary["after"] and "pass_rate" in summary["before"]
    formats = {a["format"] for a in m["artifacts"]}
    assert {"hf", "gguf", "mlc", "ollama"} <= formats, formats
    assert all(a["verified"] for a in m["artifacts"])
    exported = [a for a in m["artifacts"] if "/exports/" in a["path"]]
    assert {a["format"] for a in exported} >= {"hf", "gguf", "mlc", "ollama"}
    for a in exported:
        verify = Path(a["path"]) if Path(a["path"]).is_dir() else Path(a["path"]).parent
        assert json.loads((verify / "verify.json").read_text())["passed"] is True
    report = (run.path / "report.md").read_text()
    assert "Evaluation before/after" in report and "NOT verified" not in report
    assert (run.path / "report.html").stat().st_size > 10_000
    assert json.loads((run.path / "e2e_summary.json").read_text())["model_id"] == "tiny-random-llama"
    assert m["ended_at"]

    # re-run on the same directory: every stage's outputs exist and verify, so all are skipped
    before = {s: m["stages"][s]["ended_at"] for s in m["stages"]}
    again = run_pipeline(cfg, run_dir=str(run.path))
    after = again.manifest.read()["stages"]
    assert {s: after[s]["ended_at"] for s in before} == before


def test_rerun_with_a_different_config_is_refused(runs_dir: Path):
    cfg = tiny_cfg(runs_dir)
    run = RunDir.create(cfg, argv=[])
    other = tiny_cfg(runs_dir, "seed=8")
    with pytest.raises(UserInputError, match="different config"):
        run_pipeline(other, stages=["report"], run_dir=str(run.path))
    run_pipeline(other, stages=["report"], run_dir=str(run.path), force=True)
    assert "seed: 8" in (run.path / "config.yaml").read_text()


def test_rl_without_sft_init_is_refused_before_anything_is_written(runs_dir: Path):
    cfg = tiny_cfg(runs_dir, "rl.allow_base_init=false")
    with pytest.raises(UserInputError, match="needs an SFT init"):
        run_pipeline(cfg, stages=["rl"])
    assert not any(runs_dir.iterdir())


def test_stage_names_are_checked_and_ordered():
    cfg = load_config(REPO / "configs" / "tiny-jokes.yaml")
    assert parse_stages("report,sft", cfg) == ["sft", "report"]
    with pytest.raises(UserInputError, match="unknown stage"):
        parse_stages("sft,train", cfg)


def test_failed_stage_is_named_and_earlier_outputs_survive(runs_dir: Path, monkeypatch):
    from sparring import pipeline
    from sparring.errors import SparringError

    cfg = tiny_cfg(runs_dir)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(pipeline.STAGE_FUNCS, "export", boom)
    with pytest.raises(SparringError, match="stage export failed: RuntimeError: disk on fire"):
        run_pipeline(cfg, stages=["report", "export"])
    run = RunDir(next(runs_dir.iterdir()))
    stages = run.manifest.read()["stages"]
    assert stages["export"]["status"] == "failed"


@pytest.mark.parametrize("model, message", [("/no/such/model", "does not exist"), ("not-a-model", "unknown model")])
def test_bad_model_fails_before_a_run_directory_is_written(runs_dir: Path, model: str, message: str):
    cfg = tiny_cfg(runs_dir, f"model.name={model}")
    with pytest.raises(UserInputError, match=message):
        run_pipeline(cfg, stages=["sft"])
    assert not any(runs_dir.iterdir())
