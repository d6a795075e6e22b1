"""Benchmark: MLC export of the embedded SmolLM2-135M — time, size and verification figures.

Issue 6's figure: MLC q4f16_1 export <= 30 s on 2 cores.  For each quantization (default q4f16_1,
q0f16) it times the write (read safetensors, fuse, quantize, TVM's tensor-cache writer, config,
tokenizer, WebLLM files) and the verification (TVM read-back, per-tensor bounds, forward agreement
with transformers), and reports the size, the max abs error per tensor class, the next-token
agreement, the greedy match and whether a prebuilt WebLLM library fits.  It also prints the MLC
sizes of a TinyLlama-1.1B-class model, computed from its config (no download).

    python -m sparring.bench.mlc_export [--quants q4f16_1,q0f16] [--out bench-mlc.json]

Prints the JSON and markdown tables.  The machine may be shared: the JSON records the load average.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sparring.bench import export_rows, quants_main

TARGET_Q4F16_SECONDS = 30.0
TINYLLAMA_CONFIG = {  # TinyLlama-1.1B-Chat-v1.0's config.json (the fields that set its size)
    "model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
    "num_key_value_heads": 4, "vocab_size": 32000, "tie_word_embeddings": False,
}


def bench_quant(model_dir: Path, work: Path, quant: str, reference: Any) -> dict[str, Any]:
    from sparring.exporters.mlc import write_mlc_bundle
    from sparring.exporters.mlc_verify import verify_mlc_export

    out = work / quant
    started = time.perf_counter()
    summary = write_mlc_bundle(model_dir, out, quant, model_id=f"SmolLM2-135M-Instruct-{quant}-MLC")
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    verify = verify_mlc_export(out, model_dir, quant, reference=reference)
    verify_s = time.perf_counter() - started
    checks = verify["checks"]
    forward = checks.get("forward", {})
    shards = sorted(out.glob("params_shard_*.bin"))
    return {
        "quant": quant,
        "export_seconds": round(export_s, 2),
        "verify_seconds": round(verify_s, 2),
        "weights_mb": round(sum(p.stat().st_size for p in shards) / 1e6, 1),
        "shards": len(shards),
        "largest_shard_mb": round(max(p.stat().st_size for p in shards) / 1e6, 1),
        "passed": verify["passed"],
        "problems": verify["problems"],
        "checks": {name: check.get("passed") for name, check in checks.items()},
        "max_abs_error_by_class": {k: v["max_abs_error"] for k, v in checks.get("weights", {}).get("classes", {}).items()},
        "max_error_over_bound": max((v["max_error_over_bound"] for v in checks.get("weights", {}).get("classes", {}).values()), default=None),
        "next_token_agreement": forward.get("next_token_agreement"),
        "greedy_match_min": forward.get("greedy_match_min"),
        "greedy_match_mean": forward.get("greedy_match_mean"),
        "top1_agreement_all_positions": forward.get("top1_agreement_all_positions"),
        "logit_correlation_mean": forward.get("logit_correlation_mean"),
        "max_abs_logit_diff": forward.get("max_abs_logit_diff"),
        "ties": len(forward.get("ties", [])),
        "webllm_prebuilt_lib": summary["webllm"]["model_lib"],
        "webllm_note": summary["webllm"]["note"],
    }


def run(quants: list[str]) -> dict[str, Any]:
    from sparring.exporters.mlc_verify import GREEDY_TOKENS
    from sparring.exporters.model_card import size_estimate

    result = export_rows(bench_quant, quants, "sparring-bench-mlc-", n_tokens=GREEDY_TOKENS)
    by = {r["quant"]: r for r in result["results"]}
    return {
        **result,
        "targets": {
            "q4f16_1_export_seconds_max": TARGET_Q4F16_SECONDS,
            "q4f16_1_met": by["q4f16_1"]["export_seconds"] <= TARGET_Q4F16_SECONDS if "q4f16_1" in by else None,
        },
        "tinyllama_1.1b_mlc_sizes_mb_from_config": {q: round(size_estimate(TINYLLAMA_CONFIG, q) / 1e6, 1) for q in ("q0f16", "q0f32", "q4f16_1", "q4f32_1")},
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| MLC quant | export s | verify s | weights MB | shards | verified | next token /5 | greedy match min/16 | top-1 (all pos.) | logit corr | ties | WebLLM lib |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        agree = r["next_token_agreement"]
        lines.append(
            f"| {r['quant']} | {r['export_seconds']} | {r['verify_seconds']} | {r['weights_mb']} | {r['shards']} | {'yes' if r['passed'] else 'NO'} | "
            f"{round(agree * 5) if agree is not None else '-'} | {r['greedy_match_min']} | {r['top1_agreement_all_positions']} | {r['logit_correlation_mean']} | {r['ties']} | "
            f"{'prebuilt' if r['webllm_prebuilt_lib'] else 'none'} |"
        )
    classes = sorted({c for r in result["results"] for c in r["max_abs_error_by_class"]})
    lines += ["", "| max abs weight error | " + " | ".join(r["quant"] for r in result["results"]) + " |", "|---" * (len(result["results"]) + 1) + "|"]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(f"{r['max_abs_error_by_class'].get(c, float('nan')):.3g}" for r in result["results"]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return quants_main(__doc__, "q4f16_1,q0f16", run, markdown, argv)


if __name__ == "__main__":
    main()
