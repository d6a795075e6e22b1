"""The `sparring` command line: help, config commands, models, doctor, exit codes for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sparring.cli import app, main

runner = CliRunner()


def run_main(args: list[str]) -> tuple[int, str]:
    """Run the real entry point (exit codes included) in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "sparring", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_help_lists_every_group():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for group in ("models", "data", "sft", "rl", "eval", "export", "run", "serve", "config", "doctor"):
        assert group in res.output


def test_config_show_with_override_and_explain(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("name: demo\n")
    res = runner.invoke(app, ["config", "show", str(p), "--set", "sft.epochs=3"])
    assert res.exit_code == 0 and "epochs: 3" in res.output
    res = runner.invoke(app, ["config", "show", str(p), "--explain"])
    assert res.exit_code == 0 and "Peak learning rate" in res.output


def test_config_validate_exit_codes(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text("name: g\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sft:\n  epocs: 1\n")
    code, out = run_main(["config", "validate", str(good)])
    assert code == 0 and "ok" in out
    code, out = run_main(["config", "validate", str(good), str(bad)])
    assert code == 2 and "epocs" in out and "epochs" in out
    code, out = run_main(["config", "show", str(tmp_path / "missing.yaml")])
    assert code == 2 and "missing.yaml" in out and "not found" in out


def test_models_info_and_bad_path(tiny_llama: Path):
    res = runner.invoke(app, ["models", "info", str(tiny_llama)])
    assert res.exit_code == 0 and '"model_type": "llama"' in res.output
    code, out = run_main(["models", "info", "/does/not/exist"])
    assert code == 2 and "does not exist" in out


def test_models_list_shows_aliases():
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "smollm2-135m" in res.output and "tiny-random-llama" in res.output


def test_models_pull_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out = run_main(["models", "pull", "HuggingFaceTB/SmolLM2-360M-Instruct"])
    assert code == 1 and "could not download" in out


def test_doctor_reports_parts(monkeypatch):
    res = runner.invoke(app, ["doctor"])
    assert "stockfish" in res.output and "embedded model" in res.output
    assert res.exit_code == 0, res.output


def test_doctor_names_the_fix_for_a_missing_stockfish(monkeypatch):
    import sparring.doctor as doctor

    monkeypatch.setattr(doctor, "stockfish_path", lambda: None)
    rows = {c.name: c for c in doctor.checks()}
    assert not rows["stockfish"].ok and "apt-get install -y stockfish" in rows["stockfish"].fix
    res = runner.invoke(app, ["doctor"])
    assert res.exit_code == 1 and "1 part(s) missing" in res.output


def test_doctor_warns_about_low_disk_without_failing(monkeypatch):
    import shutil
    from collections import namedtuple

    import sparring.doctor as doctor

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _where: usage(10 * 2**30, 9 * 2**30, int(1.2 * 2**30)))
    disk = doctor.disk_check(Path("."))
    assert not disk.ok and not disk.required and "1.2 GiB free" in disk.detail and "5 GiB" in disk.fix
    res = runner.invoke(app, ["doctor"])
    assert "low" in res.output and "1.2 GiB free" in res.output
    assert res.exit_code == 0, res.output


def test_doctor_flags_a_llamacpp_build_with_the_amx_matmul():
    import llama_cpp

    from sparring.doctor import llamacpp_amx_check

    installed = llamacpp_amx_check()  # `make install` builds without it: rollout actors segfault with it
    assert installed is not None and installed.ok, llama_cpp.llama_print_system_info()
    amx = llamacpp_amx_check(b"CPU : AVX512 = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | REPACK = 1 | ")
    assert not amx.ok and "-mno-amx-int8" in amx.fix and "ggml_backend_amx_mul_mat" in amx.detail
    assert llamacpp_amx_check(b"CPU : AVX512 = 1 | AVX512_BF16 = 1 | REPACK = 1 | ").ok

def test_main_turns_user_errors_into_exit_2(tmp_path: Path):
    with pytest.raises(SystemExit) as exc:
        main(["config", "show", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2
