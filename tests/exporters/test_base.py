"""The exporter framework: atomic verified dirs, failed/ quarantine, disk check, quant routing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from sparring.errors import SparringError, UserInputError
from sparring.exporters.base import ExportOptions, Exporter, atomic_export_dir, ensure_disk_space, read_verify, sha256_file
from sparring.exporters.export import assign_quants, split_list
from sparring.registry import EXPORTERS


def test_passing_export_is_published_with_verify_json_and_checksums(tmp_path: Path):
    final = tmp_path / "exports" / "step-3" / "gguf"
    with atomic_export_dir(final, format="gguf") as stage:
        (stage.path / "model.bin").write_bytes(b"weights")
        assert not final.exists()  # nothing visible before verification
        stage.records["model.bin"] = {"passed": True, "quant": "f16"}
    assert (final / "model.bin").read_bytes() == b"weights"
    verify = read_verify(final)
    assert verify["passed"] is True and verify["format"] == "gguf"
    assert verify["artifacts"]["model.bin"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    [artifact] = stage.artifacts
    assert artifact.path == str(final / "model.bin") and artifact.verified and artifact.size_bytes == 7
    assert not [p for p in final.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_failed_verification_moves_to_failed_and_raises(tmp_path: Path):
    final = tmp_path / "exports" / "step-3" / "gguf"
    with pytest.raises(SparringError, match="failed verification.*model.bin"):
        with atomic_export_dir(final, format="gguf", failed_root=tmp_path / "exports", failed_name="step-3-gguf") as stage:
            (stage.path / "model.bin").write_bytes(b"bad")
            stage.records["model.bin"] = {"passed": False, "tokenization": {"passed": False}}
    assert not final.exists()
    [kept] = list((tmp_path / "exports" / "failed").iterdir())
    assert kept.name.startswith("step-3-gguf-")
    assert (kept / "model.bin").read_bytes() == b"bad"
    assert json.loads((kept / "verify.json").read_text())["passed"] is False


def test_exception_inside_keeps_partial_output_in_failed_with_the_error(tmp_path: Path):
    with pytest.raises(RuntimeError):
        with atomic_export_dir(tmp_path / "gguf", format="gguf") as stage:
            (stage.path / "half.gguf").write_bytes(b"x")
            raise RuntimeError("writer crashed")
    [kept] = list((tmp_path / "failed").iterdir())
    assert "writer crashed" in (kept / "verify.json").read_text()
    assert not (tmp_path / "gguf").exists()


def test_bad_input_inside_leaves_nothing_behind(tmp_path: Path):
    with pytest.raises(UserInputError):
        with atomic_export_dir(tmp_path / "gguf", format="gguf"):
            raise UserInputError("bad quant", where="--quant")
    assert list(tmp_path.iterdir()) == []


def test_empty_records_never_pass(tmp_path: Path):
    with pytest.raises(SparringError):
        with atomic_export_dir(tmp_path / "hf", format="hf") as stage:
            (stage.path / "x").write_text("x")
    assert not (tmp_path / "hf").exists()


def test_reexport_replaces_the_previous_dir(tmp_path: Path):
    final = tmp_path / "gguf"
    for content in (b"one", b"two"):
        with atomic_export_dir(final, format="gguf") as stage:
            (stage.path / "m").write_bytes(content)
            stage.records["m"] = {"passed": True}
    assert (final / "m").read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gguf"]


def test_disk_check_refuses_before_writing(tmp_path: Path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(UserInputError, match="not enough disk"):
        ensure_disk_space(tmp_path / "not" / "yet", free * 2)
    ensure_disk_space(tmp_path, 1024)


def test_sha256_file(tmp_path: Path):
    p = tmp_path / "f"
    p.write_bytes(b"abc" * 1000)
    assert sha256_file(p, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_quants_are_routed_to_the_formats_that_know_them():
    exporters = {name: EXPORTERS.get(name)() for name in ("gguf", "ollama", "hf")}
    assert split_list("gguf, HF,gguf") == ["gguf", "hf"]
    routed = assign_quants(exporters, ["f16", "q4_k_m"])
    assert routed == {"gguf": ["f16", "q4_k_m"], "ollama": ["f16", "q4_k_m"], "hf": []}
    with pytest.raises(UserInputError) as err:
        assign_quants(exporters, ["q3_xyz"])
    assert "q8_0" in str(err.value) and "q4_k_m" in str(err.value)


def test_exporter_check_refuses_quant_and_architecture(tiny_qwen2_dir: Path):
    class OnlyLlama(Exporter):
        format = "demo"
        quants = ("a", "b")
        model_types = ("llama",)

        def export(self, model_dir, out_dir, options):  # pragma: no cover - never reached
            raise AssertionError

    class AnyArchitecture(OnlyLlama):
        model_types = None

    with pytest.raises(UserInputError, match="Qwen2ForCausalLM") as err:
        OnlyLlama().check(tiny_qwen2_dir, ExportOptions())
    assert "demo supports model types: llama" in str(err.value)
    with pytest.raises(UserInputError, match="valid demo quant types: a, b"):
        AnyArchitecture().check(tiny_qwen2_dir, ExportOptions(quants=["c"]))
    AnyArchitecture().check(tiny_qwen2_dir, ExportOptions(quants=["a"]))


def test_registry_lists_the_built_in_exporters():
    assert {"gguf", "ollama", "hf"} <= set(EXPORTERS.names())
