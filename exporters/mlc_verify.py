"""Prove an MLC export without a browser: TVM reads it back, the weights match, the model agrees.

Checks, each recorded in verify.json (``passed`` only when every one holds):

1. ``files``: mlc-chat-config.json, tensor-cache.json == ndarray-cache.json, tokenizer files.
2. ``shards``: every params shard has the size and md5 its record says.
3. ``tensor_cache``: ``tvm.contrib.tvmjs.load_tensor_cache`` reads every record; the names, shapes
   and dtypes are exactly what this model and quantization must have.
4. ``weights``: every dequantized tensor matches the merged HF weights within the quantization's
   bound: a cast (q0f16/q0f32, and norms/biases of q4) must equal the correctly rounded value bit for
   bit (so fp16 error <= |w| * 2^-11, float32 exact); a q4 weight must be within scale/2 of w in
   every group (+1e-4 relative slack for float32 arithmetic).  Max error per tensor class.
5. ``forward``: the dequantized tensors are un-fused into an HF state dict, loaded into the HF
   architecture and compared with transformers on the original weights for the 5 prompts the GGUF
   check uses (``gguf_verify.VERIFY_PROMPTS``), teacher-forced on transformers' greedy path (one
   forward each, the same code path for both weight sets): the next token must agree on every
   prompt and, for q0f16/q0f32, the greedy continuation of 16 tokens must match token for token;
   for q4 (whose weights the previous check bounds) the gate is GGUF's for its 4-bit types, mean
   logit correlation >= 0.9, and the next-token agreement is recorded (SmolLM2-135M changes some
   answers at 4 bits, as it does in GGUF q4_0/q4_k_m).
   Ties: a position where the export picks another token counts as agreement when transformers'
   own logits for the two tokens differ by at most ``TIE_NATS[quant]`` nats (q0f32 1e-4, q0f16 0.02,
   q4 0.5 = the two tokens' probabilities within a factor 1.65).  Tiny random models have nearly
   flat logits, so there most q4 disagreements are ties and the forward check proves little beyond
   "loads and runs".  Every tie is listed with its gap; mean logit correlation, top-1 agreement
   over all positions and the max logit difference are recorded.

Exercised by ``pytest tests/exporters/test_mlc.py`` and ``python -m sparring.bench.mlc_export``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from sparring.exporters.gguf_verify import DEFAULT_RULE, HFReference
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
TIE_NATS = {"q0f32": 1e-4, "q0f16": 2e-2, "q4f16_1": 0.5, "q4f32_1": 0.5}
GREEDY_REQUIRED = ("q0f16", "q0f32")
# 4-bit forward gate: the mean logit correlation floor GGUF's 4-bit types use (gguf_verify.DEFAULT_RULE)
Q4_MIN_CORRELATION = DEFAULT_RULE["min_corr"]
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


def _tensor_error(name: str, w: np.ndarray, d: np.ndarray, arrays: dict[str, np.ndarray], quant: MLCQuant) -> tuple[bool, float, float]:
    """(within bound, max |w - d|, max error / bound) for one fused tensor."""
    err = np.abs(w - d)
    if np.isnan(err).any():
        return False, float("inf"), float("inf")
    max_err = float(err.max(initial=0.0))
    if quant.quantized and is_quantized_tensor(name, w.ndim):
        stem = name[: -len(".weight")]
        half_step = arrays[f"{stem}.q_scale"].astype(np.float32)[:, :, None] / 2 * (1 + Q4_REL_SLACK) + 1e-12
        ratio = err.reshape(w.shape[0], -1, quant.group_size) / half_step
        worst = float(ratio.max(initial=0.0))
        return worst <= 1.0, max_err, worst
    # a cast: the stored value must be exactly the correctly rounded one (fp16 rounding is at most
    # |w| * 2^-11, 2^-25 for subnormals; float32 is exact)
    exact = w.astype(quant.float_dtype).astype(np.float32)
    ok = bool(np.array_equal(d, exact))
    bound = max(float(np.abs(w).max(initial=0.0)) * FP16_REL, FP16_SUBNORMAL_HALF_ULP) if quant.float_dtype == "float16" else 0.0
    return ok, max_err, (max_err / bound if bound else (0.0 if max_err == 0 else float("inf")))


def check_weights(fused: dict[str, np.ndarray], deq: dict[str, np.ndarray], arrays: dict[str, np.ndarray], quant: MLCQuant) -> dict[str, Any]:
    """Max error per tensor class; q4: the worst error / (scale/2) ratio (<= 1 passes); casts:
    bit-equal to the correctly rounded value (``max_error_over_bound`` relative to |w|max * 2^-11)."""
    classes: dict[str, dict[str, Any]] = {}
    failures = []
    for name, w in fused.items():
        ok, max_err, worst = _tensor_error(name, w, deq[name], arrays, quant)
        if not ok:
            failures.append(f"{name}: max error {_num(max_err)} exceeds the {quant.name} bound")
        stats = classes.setdefault(tensor_class(name), {"tensors": 0, "max_abs_error": 0.0, "max_error_over_bound": 0.0})
        stats["tensors"] += 1
        stats["max_abs_error"] = max(stats["max_abs_error"], max_err)
        stats["max_error_over_bound"] = max(stats["max_error_over_bound"], worst)
    for stats in classes.values():
        stats["max_abs_error"], stats["max_error_over_bound"] = _num(stats["max_abs_error"]), _num(stats["max_error_over_bound"])
    return {"passed": not failures, "classes": classes, "problems": failures[:20]}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else 0.0


def _continuation_logits(model: Any, prompt_ids: list[int], continuation: list[int]) -> np.ndarray:
    """One forward over prompt + continuation: the logits predicting each continuation token."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + continuation[:-1]])).logits[0, len(prompt_ids) - 1 :]
    return logits.float().numpy()


def compare_forward(model_dir: Path, deq_hf: dict[str, np.ndarray], quant: MLCQuant, *, reference: HFReference | None = None, greedy_tokens: int = GREEDY_TOKENS) -> dict[str, Any]:
    """Next-token agreement and greedy match of the dequantized weights against transformers.

    One model is loaded: its logits on each prompt + transformers' greedy continuation are taken
    first with the original weights, then again after every parameter is replaced by the exported
    (dequantized) tensors, through the identical forward path (so q0f32 must match bit for bit).
    """
    import torch
    from transformers import AutoModelForCausalLM

    reference = reference or HFReference.build(model_dir, n_tokens=greedy_tokens)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    cases = [(ids, toks[:greedy_tokens]) for ids, toks in zip(reference.prompt_ids, reference.tokens)]
    ref_logits = [_continuation_logits(model, ids, toks) for ids, toks in cases]
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in deq_hf.items()}, strict=False)
    if missing or unexpected:  # a parameter not replaced would silently keep the original weights
        return {"passed": False, "problems": [f"state dict mismatch: missing {missing[:4]}, unexpected {unexpected[:4]}"]}
    exp_logits = [_continuation_logits(model, ids, toks) for ids, toks in cases]
    tie_nats = TIE_NATS[quant.name]
    rows, ties, corrs, max_diff = [], [], [], 0.0
    for (ids, ref_tokens), ref, exp in zip(cases, ref_logits, exp_logits):
        prompt = reference.tokenizer.decode(ids)
        max_diff = max(max_diff, float(np.max(np.abs(ref - exp))))
        corrs += [_correlation(r, e) for r, e in zip(ref, exp)]
        agreements = []
        for pos, want in enumerate(ref_tokens):
            got = int(np.argmax(exp[pos]))
            gap = float(ref[pos, want] - ref[pos, got])
            agree = got == want or gap <= tie_nats
            if got != want and agree:
                ties.append({"prompt": prompt, "position": pos, "reference_token": want, "export_token": got, "reference_logit_gap": round(gap, 6)})
            agreements.append(agree)
        matched = next((i for i, ok in enumerate(agreements) if not ok), len(agreements))
        rows.append({"prompt": prompt, "next_token_agrees": agreements[0], "greedy_match": matched, "top1_agreement": sum(agreements) / len(agreements)})
    next_agree = sum(r["next_token_agrees"] for r in rows)
    need_greedy = quant.name in GREEDY_REQUIRED
    greedy_min = min(r["greedy_match"] for r in rows)
    correlation = float(np.mean(corrs))
    problems, notes = [], []
    if quant.quantized:
        # 4-bit: the same gate as GGUF's 4-bit types -- the weights check above proves every group
        # is within half a step; here the logits must still follow the original's (a wrong fusion,
        # name or layout drops the correlation far below the floor); agreement is recorded
        passed = correlation >= Q4_MIN_CORRELATION
        if not passed:
            problems.append(f"logit correlation {correlation:.4f} < {Q4_MIN_CORRELATION} (the GGUF 4-bit floor)")
        if next_agree < len(rows):
            notes.append(f"4-bit changes the next token on {len(rows) - next_agree}/{len(rows)} prompts (top-1 over all positions "
                         f"{sum(r['top1_agreement'] for r in rows) / len(rows):.2f}); small models lose more at 4 bits: q0f16 is exact")
    else:
        passed = next_agree == len(rows) and (greedy_min == greedy_tokens or not need_greedy)
        if not passed:
            problems.append(f"next token agrees on {next_agree}/{len(rows)} prompts" + (f", greedy match {greedy_min}/{greedy_tokens} tokens" if need_greedy else ""))
    return {
        "passed": passed,
        "prompts": len(rows),
        "next_token_agreement": next_agree / len(rows),
        "greedy_tokens": greedy_tokens,
        "greedy_required": need_greedy,
        "greedy_match_min": greedy_min,
        "greedy_match_mean": sum(r["greedy_match"] for r in rows) / len(rows),
        "top1_agreement_all_positions": round(sum(r["top1_agreement"] for r in rows) / len(rows), 4),
        "logit_correlation_mean": round(correlation, 6),
        "max_abs_logit_diff": round(max_diff, 6),
        "tie_nats": tie_nats,
        "ties": ties,
        "per_prompt": rows,
        "problems": problems,
        "notes": notes,
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
