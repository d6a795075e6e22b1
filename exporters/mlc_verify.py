"""Prove an MLC export without a browser: TVM reads it back, the weights match, the model agrees.

Checks, each recorded in verify.json (``passed`` only when every one holds):

1. ``files``: mlc-chat-config.json, tensor-cache.json == ndarray-cache.json, tokenizer files.
2. ``shards``: every params shard has the size and md5 its record says.
3. ``tensor_cache``: ``tvm.contrib.tvmjs.load_tensor_cache`` reads every record; the names, shapes
   and dtypes are exactly what this model and quantization must have.
4. ``weights``: every dequantized tensor matches the merged HF weights within the quantization's
   bound: q0f32 exact; f16 casts within fp16 rounding (|w| * 2^-11, 2^-25 for subnormals); q4 within
   scale/2 per group (+1e-4 relative slack for float32 arithmetic).  Max error per tensor class.
5. ``forward``: the dequantized tensors are un-fused into an HF state dict, loaded into the HF
   architecture, and compared with transformers on the original weights for the 5 prompts the GGUF
   check uses (``gguf_verify.VERIFY_PROMPTS``), teacher-forced on transformers' greedy path with the
   same KV-cache steps: the next token must agree on every prompt; for q0f16/q0f32 the greedy
   continuation of 16 tokens must match token for token.  Ties: a position where the export picks
   another token counts as agreement when transformers' own logits for the two tokens differ by at
   most ``TIE_NATS[quant]`` (tiny random models have nearly flat logits, so their top tokens sit
   within rounding of each other); every tie is listed with its gap in verify.json.  Mean logit
   correlation, top-1 agreement over all positions and the max logit difference are recorded.

Exercised by ``pytest tests/exporters/test_mlc.py`` and ``python -m sparring.bench.mlc_export``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from sparring.exporters.gguf_verify import HFReference
from sparring.exporters.mlc_config import MLC_CHAT_CONFIG
from sparring.exporters.mlc_weights import (
    LEGACY_CACHE_JSON,
    TENSOR_CACHE_JSON,
    MLCQuant,
    ModelShape,
    dequantize_q4,
    expected_records,
    fuse_to_mlc,
    get_quant,
    is_quantized_tensor,
    model_shape,
    read_hf_state_dict,
    unfuse_to_hf,
)

GREEDY_TOKENS = 16
# A disagreement is a tie when the reference's own logits for the two tokens differ by at most this
# (nats; 0.1 nats = the two tokens' probabilities within 10%).
TIE_NATS = {"q0f32": 1e-4, "q0f16": 2e-2, "q4f16_1": 0.1, "q4f32_1": 0.1}
GREEDY_REQUIRED = ("q0f16", "q0f32")
FP16_REL = 2.0**-11
FP16_SUBNORMAL_HALF_ULP = 2.0**-25
Q4_REL_SLACK = 1e-4


def tensor_class(name: str) -> str:
    for key, label in (
        ("embed_tokens", "embedding"),
        ("lm_head", "lm_head"),
        ("qkv_proj", "attn_qkv"),
        ("c_attn.weight", "attn_qkv"),
        ("c_attn.bias", "attn_qkv_bias"),
        ("o_proj", "attn_out"),
        ("gate_up_proj", "mlp_gate_up"),
        ("down_proj", "mlp_down"),
    ):
        if key in name:
            return label
    return "norm"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _num(value: float) -> float | str:
    """JSON-safe: non-finite numbers become strings ("inf")."""
    return value if np.isfinite(value) else str(value)


def check_files(export_dir: Path) -> dict[str, Any]:
    problems = []
    for name in (MLC_CHAT_CONFIG, TENSOR_CACHE_JSON, LEGACY_CACHE_JSON):
        if not (export_dir / name).is_file():
            problems.append(f"{name} missing")
    if not problems and (export_dir / TENSOR_CACHE_JSON).read_bytes() != (export_dir / LEGACY_CACHE_JSON).read_bytes():
        problems.append(f"{LEGACY_CACHE_JSON} differs from {TENSOR_CACHE_JSON}")
    if (export_dir / MLC_CHAT_CONFIG).is_file():
        chat = json.loads((export_dir / MLC_CHAT_CONFIG).read_text())
        problems += [f"tokenizer file {f} missing" for f in chat.get("tokenizer_files", []) if not (export_dir / f).is_file()]
        if not isinstance(chat.get("conv_template"), dict):
            problems.append("conv_template is not a full object")
    return {"passed": not problems, "problems": problems}


def check_shards(export_dir: Path, cache: dict[str, Any]) -> dict[str, Any]:
    problems, largest = [], 0
    for shard in cache["records"]:
        path = export_dir / shard["dataPath"]
        if not path.is_file():
            problems.append(f"{shard['dataPath']} missing")
            continue
        size = path.stat().st_size
        largest = max(largest, size)
        if size != shard["nbytes"]:
            problems.append(f"{shard['dataPath']} has {size} bytes, record says {shard['nbytes']}")
        elif _md5(path) != shard.get("md5sum"):
            problems.append(f"{shard['dataPath']} md5 differs from its record")
    return {"passed": not problems, "shards": len(cache["records"]), "largest_shard_bytes": largest, "problems": problems}


def load_back(export_dir: Path, expected: dict[str, tuple[list[int], str]]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read the export with TVM's own reader and compare its layout with what it must be."""
    import tvm
    from tvm.contrib import tvmjs

    try:
        loaded, metadata = tvmjs.load_tensor_cache(str(export_dir), tvm.cpu())
    except Exception as exc:  # a truncated shard trips TVM's own asserts
        return {"passed": False, "problems": [f"load_tensor_cache failed: {type(exc).__name__}: {exc}"]}, {}
    arrays = {name: arr.numpy() for name, arr in loaded.items()}
    problems = [f"missing {n}" for n in expected if n not in arrays] + [f"unexpected {n}" for n in arrays if n not in expected]
    for name, (shape, dtype) in expected.items():
        if name in arrays and (list(arrays[name].shape) != shape or str(arrays[name].dtype) != dtype):
            problems.append(f"{name}: {list(arrays[name].shape)} {arrays[name].dtype}, expected {shape} {dtype}")
    record = {"passed": not problems, "records": len(arrays), "metadata": metadata, "problems": problems[:20]}
    return record, arrays


def dequantized(arrays: dict[str, np.ndarray], fused_names: list[str], quant: MLCQuant) -> dict[str, np.ndarray]:
    out = {}
    for name in fused_names:
        stem = name[: -len(".weight")] if name.endswith(".weight") else name
        if f"{stem}.q_weight" in arrays:
            out[name] = dequantize_q4(arrays[f"{stem}.q_weight"], arrays[f"{stem}.q_scale"], quant.group_size)
        else:
            out[name] = arrays[name].astype(np.float32)
    return out


def check_weights(fused: dict[str, np.ndarray], deq: dict[str, np.ndarray], arrays: dict[str, np.ndarray], quant: MLCQuant) -> dict[str, Any]:
    """Max error per tensor class and the worst error / bound ratio (≤ 1 passes; NaN fails)."""
    classes: dict[str, dict[str, float]] = {}
    failures = []
    for name, w in fused.items():
        d = deq[name]
        err = np.abs(w - d)
        if quant.quantized and is_quantized_tensor(name, w.ndim):
            stem = name[: -len(".weight")]
            scale = arrays[f"{stem}.q_scale"].astype(np.float32)
            bound = np.repeat(scale / 2 * (1 + Q4_REL_SLACK), quant.group_size, axis=1) + 1e-12
        elif quant.float_dtype == "float32":
            bound = np.zeros_like(w)
        else:
            bound = np.maximum(np.abs(w) * FP16_REL, FP16_SUBNORMAL_HALF_ULP)
        ok = bool(np.all(err <= bound))  # NaN compares False
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(bound > 0, err / np.where(bound > 0, bound, 1.0), np.where(err > 0, np.inf, 0.0))
        worst = float("inf") if np.isnan(err).any() else float(ratios.max(initial=0.0))
        if not ok:
            failures.append(f"{name}: max error {_num(float(np.max(err)))} exceeds the {quant.name} bound")
        stats = classes.setdefault(tensor_class(name), {"tensors": 0, "max_abs_error": 0.0, "max_error_over_bound": 0.0})
        stats["tensors"] += 1
        stats["max_abs_error"] = max(stats["max_abs_error"], float("inf") if np.isnan(err).any() else float(err.max(initial=0.0)))
        stats["max_error_over_bound"] = max(stats["max_error_over_bound"], worst)
    for stats in classes.values():
        stats["max_abs_error"], stats["max_error_over_bound"] = _num(stats["max_abs_error"]), _num(stats["max_error_over_bound"])
    return {"passed": not failures, "classes": classes, "problems": failures[:20]}


def teacher_forced_torch(model: Any, prompt_ids: list[int], continuation: list[int]) -> np.ndarray:
    """Logits predicting each token of ``continuation``, computed step by step with the KV cache
    exactly as ``greedy_torch`` computes the reference's (so identical weights give identical logits)."""
    import torch

    past, ids, rows = None, torch.tensor([prompt_ids]), []
    with torch.no_grad():
        for token in continuation:
            out = model(input_ids=ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            rows.append(out.logits[0, -1].float().numpy().copy())
            ids = torch.tensor([[token]])
    return np.stack(rows)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else 0.0


def load_exported_model(model_dir: Path, deq_hf: dict[str, np.ndarray]) -> tuple[Any, list[str]]:
    """The HF architecture of ``model_dir`` holding the dequantized tensors (and any key mismatch)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in deq_hf.items()}, strict=False)
    problems = [f"missing {k}" for k in missing if "rotary" not in k] + [f"unexpected {k}" for k in unexpected]
    return model, problems


def compare_forward(model_dir: Path, deq_hf: dict[str, np.ndarray], quant: MLCQuant, *, reference: HFReference | None = None, greedy_tokens: int = GREEDY_TOKENS) -> dict[str, Any]:
    """Next-token agreement and greedy match of the dequantized weights against transformers."""
    reference = reference or HFReference.build(model_dir, n_tokens=greedy_tokens)
    exported, problems = load_exported_model(model_dir, deq_hf)
    if problems:
        return {"passed": False, "problems": [f"state dict mismatch: {', '.join(problems[:4])}"]}
    tie_nats = TIE_NATS[quant.name]
    rows, ties, corrs, max_diff = [], [], [], 0.0
    for ids, ref_tokens, ref_logits in zip(reference.prompt_ids, reference.tokens, reference.logits):
        ref_tokens, ref_logits = ref_tokens[:greedy_tokens], ref_logits[:greedy_tokens]
        exp_logits = teacher_forced_torch(exported, ids, ref_tokens)
        max_diff = max(max_diff, float(np.max(np.abs(ref_logits - exp_logits))))
        corrs += [_correlation(r, e) for r, e in zip(ref_logits, exp_logits)]
        agreements = []
        for pos, want in enumerate(ref_tokens):
            got = int(np.argmax(exp_logits[pos]))
            gap = float(ref_logits[pos, want] - ref_logits[pos, got])
            agree = got == want or gap <= tie_nats
            if got != want and agree:
                ties.append({"prompt": reference.tokenizer.decode(ids), "position": pos, "reference_token": want, "export_token": got, "reference_logit_gap": round(gap, 6)})
            agreements.append(agree)
        matched = next((i for i, ok in enumerate(agreements) if not ok), len(agreements))
        rows.append({"prompt": reference.tokenizer.decode(ids), "next_token_agrees": agreements[0], "greedy_match": matched, "top1_agreement": sum(agreements) / len(agreements)})
    next_agree = sum(r["next_token_agrees"] for r in rows)
    need_greedy = quant.name in GREEDY_REQUIRED
    greedy_min = min(r["greedy_match"] for r in rows)
    passed = next_agree == len(rows) and (greedy_min == greedy_tokens or not need_greedy)
    problems = []
    if not passed:
        problems.append(f"next token agrees on {next_agree}/{len(rows)} prompts" + (f", greedy match {greedy_min}/{greedy_tokens} tokens" if need_greedy else ""))
        if quant.quantized:
            problems.append("4-bit quantization changes this model's predictions (small models such as SmolLM2-135M lose too much at 4 bits); export q0f16 instead")
    return {
        "passed": passed,
        "prompts": len(rows),
        "next_token_agreement": next_agree / len(rows),
        "greedy_tokens": greedy_tokens,
        "greedy_required": need_greedy,
        "greedy_match_min": greedy_min,
        "greedy_match_mean": sum(r["greedy_match"] for r in rows) / len(rows),
        "top1_agreement_all_positions": round(sum(r["top1_agreement"] for r in rows) / len(rows), 4),
        "logit_correlation_mean": round(float(np.mean(corrs)), 6),
        "max_abs_logit_diff": round(max_diff, 6),
        "tie_nats": tie_nats,
        "ties": ties,
        "per_prompt": rows,
        "problems": problems,
    }


def verify_mlc_export(export_dir: Path, model_dir: Path, quant_name: str, *, reference: HFReference | None = None, greedy_tokens: int = GREEDY_TOKENS, forward: bool = True) -> dict[str, Any]:
    """Run every check; never raises on a bad export (a broken artifact is a failed record)."""
    export_dir, model_dir = Path(export_dir), Path(model_dir)
    quant = get_quant(quant_name)
    shape: ModelShape = model_shape(json.loads((model_dir / "config.json").read_text()), where=str(model_dir / "config.json"))
    fused = fuse_to_mlc(read_hf_state_dict(model_dir), shape, where=str(model_dir))
    checks: dict[str, Any] = {"files": check_files(export_dir)}
    try:
        cache = json.loads((export_dir / TENSOR_CACHE_JSON).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        checks["shards"] = {"passed": False, "problems": [f"{TENSOR_CACHE_JSON}: {exc}"]}
        return _summary(checks, quant)
    checks["shards"] = check_shards(export_dir, cache)
    checks["tensor_cache"], arrays = load_back(export_dir, expected_records({n: a.shape for n, a in fused.items()}, quant))
    if checks["tensor_cache"]["passed"]:
        deq = dequantized(arrays, list(fused), quant)
        checks["weights"] = check_weights(fused, deq, arrays, quant)
        if forward:
            checks["forward"] = compare_forward(model_dir, unfuse_to_hf(deq, shape), quant, reference=reference, greedy_tokens=greedy_tokens)
    return _summary(checks, quant)


def _summary(checks: dict[str, Any], quant: MLCQuant) -> dict[str, Any]:
    required = ["files", "shards", "tensor_cache", "weights"] + (["forward"] if "forward" in checks else [])
    passed = all(checks.get(name, {}).get("passed", False) for name in required)
    problems = [f"{name}: {p}" for name, c in checks.items() for p in c.get("problems", [])]
    return {"format": "mlc", "quantization": quant.name, "passed": passed, "checks": checks, "problems": problems}
