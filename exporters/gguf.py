"""The GGUF exporter (llama.cpp): one ``model-<quant>.gguf`` per requested type, each verified.

    sparring export runs/<run> --format gguf --quant f16,q8_0,q4_k_m

F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 are written by :mod:`sparring.exporters.gguf_writer`;
K-quants are made by llama.cpp's quantizer from an F32 GGUF (the requested f32 file, or a temporary
one).  Each file is loaded by llama-cpp-python and compared with transformers
(:mod:`sparring.exporters.gguf_verify`); the dir is published only if all of them pass.

Exercised by ``pytest tests/exporters/test_gguf.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sparring.exporters.base import ExportOptions, Exporter, atomic_export_dir, weights_bytes
from sparring.exporters.gguf_writer import GGUF_QUANTS, K_QUANTS, SUPPORTED_MODEL_TYPES, kquantize, write_gguf
from sparring.registry import register_exporter
from sparring.types import Artifact

# approximate bits per weight, for the disk-space estimate
BITS_PER_WEIGHT = {
    "f32": 32, "f16": 16, "bf16": 16, "q8_0": 8.5, "q4_0": 4.5, "q4_1": 5.0, "q5_0": 5.5, "q5_1": 6.0,
    "q4_k_s": 4.6, "q4_k_m": 4.9, "q5_k_s": 5.5, "q5_k_m": 5.7, "q6_k": 6.6,
}


def gguf_file_name(quant: str, prefix: str = "model") -> str:
    return f"{prefix}-{quant}.gguf"


def parameter_count(model_dir: Path) -> int:
    """Parameters from the checkpoint size and its stored dtype (no tensor is loaded)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    return weights_bytes(model_dir) // (4 if "32" in dtype else 2)


def estimate_gguf_bytes(model_dir: Path, quants: list[str]) -> int:
    params = parameter_count(model_dir)
    total = sum(params * BITS_PER_WEIGHT[q] / 8 for q in quants)
    if any(q in K_QUANTS for q in quants) and "f32" not in quants:
        total += params * 4  # the temporary F32 source of llama.cpp's quantizer
    return int(total)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_ggufs(
    model_dir: Path, out_dir: Path, quants: list[str], reference: Any, options: ExportOptions, *, prefix: str = "model"
) -> dict[str, dict[str, Any]]:
    """Write and verify ``<prefix>-<quant>.gguf`` for each quant into ``out_dir``; return records."""
    from sparring.exporters.gguf_verify import verify_gguf

    records: dict[str, dict[str, Any]] = {}
    kquant_source: Path | None = None
    ordered = sorted(quants, key=lambda q: q in K_QUANTS)  # numpy types first: f32 may feed K-quants
    for quant in ordered:
        name = gguf_file_name(quant, prefix)
        path = out_dir / name
        reused = options.reuse.get(f"gguf:{prefix}:{quant}")
        if reused is not None and Path(reused).is_file():
            _link_or_copy(Path(reused), path)
            previous = json.loads((Path(reused).parent / "verify.json").read_text())["artifacts"].get(Path(reused).name, {})
            if previous.get("passed"):
                records[name] = {**previous, "reused_from": str(reused)}
                continue
        if quant in K_QUANTS:
            if kquant_source is None:
                kquant_source = out_dir / gguf_file_name("f32", prefix)
                if not kquant_source.is_file():
                    kquant_source = out_dir / f".{prefix}-kquant-source-f32.gguf"
                    write_gguf(model_dir, kquant_source, "f32", name=options.name)
            report = kquantize(kquant_source, path, quant, threads=options.threads)
        else:
            report = write_gguf(model_dir, path, quant, name=options.name)
        record = {"format": "gguf", "quant": quant, "file": name, "write": report}
        record.update(verify_gguf(path, reference, quant))
        records[name] = record
    if kquant_source is not None and kquant_source.name.startswith("."):
        kquant_source.unlink(missing_ok=True)
    return records


@register_exporter("gguf")
class GGUFExporter(Exporter):
    """GGUF files for llama.cpp (and Ollama), Llama-family and Qwen2."""

    format = "gguf"
    quants = GGUF_QUANTS
    default_quants = ("q8_0",)
    model_types = SUPPORTED_MODEL_TYPES

    def estimate_bytes(self, model_dir: Path, options: ExportOptions) -> int:
        return estimate_gguf_bytes(model_dir, options.quants_or(self.default_quants))

    def export(self, model_dir: Path, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        from sparring.exporters.gguf_verify import HFReference

        model_dir = Path(model_dir)
        quants = options.quants_or(self.default_quants)
        self.check(model_dir, ExportOptions(quants=quants))
        reference = HFReference.build(model_dir)
        with atomic_export_dir(out_dir, format=self.format, failed_root=options.exports_root, failed_name=options.label) as stage:
            stage.info["source"] = options.source or str(model_dir)
            stage.records.update(build_ggufs(model_dir, stage.path, quants, reference, options))
        return stage.artifacts
