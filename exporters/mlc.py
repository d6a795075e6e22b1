"""The MLC exporter (WebLLM, mlc_llm): one verified bundle per quantization.

    sparring export runs/<run> --format mlc --quant q4f16_1,q0f16

Output ``<out>/<quant>/``: ``params_shard_*.bin`` + ``tensor-cache.json`` + ``ndarray-cache.json``
(weights, :mod:`sparring.exporters.mlc_weights`), ``mlc-chat-config.json`` and the tokenizer files
(:mod:`sparring.exporters.mlc_config`), ``webllm-app-config.json`` + ``index.html``
(:mod:`sparring.exporters.webllm`) and ``verify.json`` (:mod:`sparring.exporters.mlc_verify`).
``<out>/verify.json`` lists every bundle; the dir is published only when all of them pass.

Exercised by ``pytest tests/exporters/test_mlc.py``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from sparring.exporters import mlc_config, webllm
from sparring.exporters.base import ExportOptions, Exporter, atomic_export_dir, ensure_disk_space, write_json_atomic
from sparring.exporters.gguf_writer import read_config
from sparring.exporters.mlc_verify import GREEDY_TOKENS, verify_mlc_export
from sparring.exporters.mlc_weights import (
    MLC_QUANTS,
    SUPPORTED_MODEL_TYPES,
    bundle_bytes,
    check_q4_divisible,
    fuse_to_mlc,
    fused_shapes,
    get_quant,
    mlc_params,
    model_shape,
    read_hf_state_dict,
    write_tensor_cache,
)
from sparring.registry import register_exporter
from sparring.types import Artifact

DEFAULT_QUANTS = ("q4f16_1",)


def check_mlc_source(model_dir: Path, quants: list[str]) -> None:
    """Refuse before writing: architecture, quant names, q4 group divisibility, tokenizer, chat format."""
    shape = model_shape(read_config(model_dir), where=f"{model_dir}/config.json")
    for quant in quants:
        check_q4_divisible(fused_shapes(shape), get_quant(quant), where=f"{model_dir}/config.json")
    mlc_config.require_tokenizer(Path(model_dir))
    mlc_config.build_chat_config(Path(model_dir), shape, get_quant(quants[0] if quants else DEFAULT_QUANTS[0]))


def write_mlc_bundle(
    model_dir: Path,
    out_dir: Path,
    quant_name: str,
    *,
    model_id: str | None = None,
    model_url: str | None = None,
    system_message: str | None = None,
    sampling: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write one quantization's bundle into ``out_dir`` (a fresh directory); returns its summary."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    quant = get_quant(quant_name)
    config = read_config(model_dir)
    shape = model_shape(config, where=str(model_dir / "config.json"))
    chat_config = mlc_config.build_chat_config(model_dir, shape, quant, system_message=system_message, sampling=sampling)
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_disk_space(out_dir, bundle_bytes(shape, quant), what=f"the MLC {quant.name} export")
    started = time.perf_counter()
    fused = fuse_to_mlc(read_hf_state_dict(model_dir), shape, where=str(model_dir))
    check_q4_divisible({n: a.shape for n, a in fused.items()}, quant, where=str(model_dir / "config.json"))
    original_params = sum(a.size for a in fused.values())
    metadata = write_tensor_cache(mlc_params(fused, quant), out_dir, quant=quant, original_params=original_params)
    mlc_config.copy_tokenizer_files(model_dir, out_dir)
    mlc_config.write_chat_config(chat_config, out_dir)
    write_seconds = time.perf_counter() - started
    model_id = model_id or f"{model_dir.name}-{quant.name}-MLC"
    entry, note = webllm.app_config_entry(config, quant.name, model_id, model_url or webllm.DEFAULT_LOCAL_URL, metadata["ParamBytes"])
    app_config = webllm.write_app_config(out_dir, entry, note)
    webllm.write_index_html(out_dir, app_config, model_id)
    return {
        "quantization": quant.name,
        "model_type": shape.model_type,
        "params": int(original_params),
        "metadata": metadata,
        "conv_template": chat_config["conv_template"]["name"],
        "write_seconds": round(write_seconds, 3),
        "webllm": {"model_id": model_id, "model_lib": entry["model_lib"], "prebuilt": entry["model_lib"] is not None, "note": note, "model_url": entry["model"]},
    }


def export_mlc_quant(model_dir: Path, out_dir: Path, quant_name: str, *, reference: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Write + verify one bundle in ``out_dir``; writes ``verify.json`` there and returns it."""
    summary = write_mlc_bundle(model_dir, out_dir, quant_name, **kwargs)
    started = time.perf_counter()
    verify = verify_mlc_export(out_dir, model_dir, quant_name, reference=reference)
    verify["verify_seconds"] = round(time.perf_counter() - started, 3)
    verify["quant"] = quant_name
    verify["export"] = summary
    verify["webllm"] = summary["webllm"]
    write_json_atomic(Path(out_dir) / "verify.json", verify)
    return verify


@register_exporter("mlc")
class MLCExporter(Exporter):
    """MLC tensor-cache bundles for WebLLM / mlc_llm, Llama-family and Qwen2."""

    format = "mlc"
    quants = tuple(MLC_QUANTS)
    default_quants = DEFAULT_QUANTS
    model_types = SUPPORTED_MODEL_TYPES

    def check(self, model_dir: Path, options: ExportOptions) -> None:
        super().check(model_dir, options)
        check_mlc_source(Path(model_dir), options.quants_or(self.default_quants))

    def estimate_bytes(self, model_dir: Path, options: ExportOptions) -> int:
        shape = model_shape(read_config(model_dir), where=f"{model_dir}/config.json")
        return sum(bundle_bytes(shape, get_quant(q)) for q in options.quants_or(self.default_quants))

    def export(self, model_dir: Path, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        from sparring.exporters.gguf_verify import HFReference

        model_dir = Path(model_dir)
        quants = options.quants_or(self.default_quants)
        self.check(model_dir, ExportOptions(quants=quants))
        reference = HFReference.build(model_dir, n_tokens=GREEDY_TOKENS)  # one transformers reference for every quant
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", options.name or model_dir.name).strip("-") or "model"
        with atomic_export_dir(out_dir, format=self.format, failed_root=options.exports_root, failed_name=options.label) as stage:
            stage.info["source"] = options.source or str(model_dir)
            for quant in quants:
                verify = export_mlc_quant(
                    model_dir, stage.path / quant, quant, reference=reference, model_id=f"{name}-{quant}-MLC", system_message=options.system_prompt
                )
                stage.records[quant] = {
                    "format": "mlc", "quant": quant, "passed": verify["passed"], "problems": verify["problems"],
                    **({} if verify["passed"] else {"error": "; ".join(verify["problems"][:3])}),
                    "checks": {k: {"passed": v.get("passed")} for k, v in verify["checks"].items()},
                    "forward": _forward_summary(verify), "continuation": _continuation_summary(verify), "webllm": verify["webllm"],
                    "write_seconds": verify["export"]["write_seconds"], "verify_seconds": verify["verify_seconds"],
                }
        return stage.artifacts


def _forward_summary(verify: dict[str, Any]) -> dict[str, Any]:
    forward = verify["checks"].get("forward", {})
    keys = ("next_token_agreement", "greedy_match_min", "greedy_tokens", "top1_agreement_all_positions", "logit_correlation_mean", "max_abs_logit_diff")
    return {k: forward.get(k) for k in keys} | {"ties": len(forward.get("ties", []))}


def _continuation_summary(verify: dict[str, Any]) -> dict[str, Any]:
    """The figures the export table shows for every format (top-1 agreement, exact greedy prompts)."""
    forward = verify["checks"].get("forward", {})
    rows = forward.get("per_prompt", [])
    exact = sum(1 for r in rows if r.get("greedy_match") == forward.get("greedy_tokens"))
    return {"top1_agreement": forward.get("top1_agreement_all_positions"), "greedy_exact_prompts": exact if rows else None}
