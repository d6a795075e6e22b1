"""``sparring export``: a run's adapter exported into exports/step-N/ and its manifest; exit codes
for bad input (2) and for a failure during work (1: pushing to the Hub offline)."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from sparring.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), " ".join((captured.out + captured.err).split())  # rich wraps lines


@pytest.fixture
def run_with_adapter(tmp_path: Path, tiny_llama_adapter_dir: Path) -> Path:
    from sparring.config import RunConfig
    from sparring.rundir import RunDir

    run = RunDir.create(RunConfig(name="demo"), argv=["test"], path=tmp_path / "runs" / "demo")
    adapter = run.path / "sft" / "adapter"
    shutil.copytree(tiny_llama_adapter_dir, adapter)
    (adapter / "trainer_state.json").write_text(json.dumps({"global_step": 7}))
    return run.path


def test_export_run_to_step_dir_manifest_and_latest(run_with_adapter: Path, capsys: pytest.CaptureFixture[str]):
    from sparring.rundir import RunDir

    code, out = run_cli(["export", str(run_with_adapter), "--format", "gguf,ollama", "--quant", "q8_0"], capsys)
    assert code == 0, out
    step = run_with_adapter / "exports" / "step-7"
    assert (step / "gguf" / "model-q8_0.gguf").is_file() and (step / "gguf" / "verify.json").is_file()
    assert (step / "ollama" / "Modelfile").is_file() and (step / "ollama" / "model-q8_0.gguf").is_file()
    listed = {Path(a["path"]).relative_to(run_with_adapter).as_posix() for a in RunDir.open(run_with_adapter).manifest.artifacts}
    assert listed == {"exports/step-7/gguf/model-q8_0.gguf", "exports/step-7/ollama/model-q8_0.gguf", "exports/step-7/ollama/Modelfile"}
    assert all(a["verified"] for a in RunDir.open(run_with_adapter).manifest.artifacts)
    latest = json.loads((run_with_adapter / "exports" / "latest.json").read_text())
    assert latest["step"] == 7 and latest["formats"] == {"gguf": "step-7/gguf", "ollama": "step-7/ollama"}
    from sparring.envs.jokes import DEFAULT_SYSTEM_PROMPT

    modelfile = (step / "ollama" / "Modelfile").read_text()
    assert f'SYSTEM """{DEFAULT_SYSTEM_PROMPT}"""' in modelfile  # the run's env (jokes) system prompt
    assert not list((run_with_adapter / "exports").glob(".merge-*"))  # the fp32 merge scratch is gone


BAD_INPUT = {
    "unknown format": (["--format", "onnx"], "valid exporters"),
    "unknown quant": (["--format", "gguf", "--quant", "q9_9"], "q4_k_m"),
    "no output folder": (["--format", "gguf"], "--out"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exits_2(case: str, tiny_llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    extra, expected = BAD_INPUT[case]
    if case != "no output folder":
        extra = [*extra, "--out", str(tmp_path / "out")]
    code, out = run_cli(["export", str(tiny_llama_dir), *extra], capsys)
    assert code == 2 and expected in out, out
    assert not (tmp_path / "out").exists()


def test_unsupported_architecture_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from sparring.models import make_tiny_model

    code, out = run_cli(["export", str(make_tiny_model("gpt2")), "--format", "gguf", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "GPT2LMHeadModel" in out and "llama, qwen2" in out


def test_4bit_source_exits_2(tiny_llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    src = tmp_path / "q4"
    shutil.copytree(tiny_llama_dir, src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (src / "config.json").write_text(json.dumps(cfg))
    code, out = run_cli(["export", str(src), "--format", "gguf", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "bitsandbytes" in out


def test_not_enough_disk_exits_2_before_writing(tiny_llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    import sparring.exporters.base as base

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(base.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    code, out = run_cli(["export", str(tiny_llama_dir), "--format", "gguf", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "not enough disk" in out
    assert not (tmp_path / "o").exists()


def test_push_to_hub_offline_fails_clearly_after_exporting(tiny_llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out = run_cli(["export", str(tiny_llama_dir), "--format", "hf", "--out", str(tmp_path / "o"), "--push-to-hub", "someone/tiny"], capsys)
    assert code == 1 and "offline" in out and "someone/tiny" in out
    assert (tmp_path / "o" / "hf" / "model.safetensors").is_file()  # the local export is complete


def test_rl_final_exports_under_the_rl_stage_last_step(tmp_path: Path, tiny_llama_adapter_dir: Path):
    from sparring.config import RunConfig
    from sparring.exporters.source import resolve_export_source
    from sparring.rundir import RunDir

    run = RunDir.create(RunConfig(name="demo"), argv=["test"], path=tmp_path / "runs" / "demo")
    shutil.copytree(tiny_llama_adapter_dir, run.path / "rl" / "final")
    assert resolve_export_source(run.path).step == 0  # the RL stage has not recorded its steps
    run.manifest.record_stage("rl", status="done", summary={"steps": 40})
    assert resolve_export_source(run.path).step == 40
    assert resolve_export_source(run.path, step=3).step == 3  # --step still wins
