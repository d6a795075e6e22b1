"""Benchmark: GGUF export of the embedded SmolLM2-135M — time, size and verification figures.

Issue 6's figures: GGUF f16 export ≤ 15 s on 2 cores, q4_k_m ≤ 110 MB.  For each type (default
f16, q8_0, q4_k_m) it times the write (for a K-quant: the F32 source + llama.cpp's quantizer) and
the verification in llama-cpp-python, and reports the file size, the tokenization check, the greedy
matches, the top-1 agreement and the logit correlation against transformers.  It also prints the
sizes a TinyLlama-1.1B-class model would have, computed from its config (no download).

    python -m sparring.bench.export [--quants f16,q8_0,q4_k_m] [--out bench-export.json]

Prints the JSON and one markdown table.  The machine may be shared: the JSON records the load.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sparring.bench import export_rows, quants_main

TARGET_F16_SECONDS = 15.0
TARGET_Q4_K_M_MB = 110.0
TINYLLAMA_CONFIG = {  # TinyLlama-1.1B-Chat-v1.0's config.json (the fields that set its size)
    "model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
    "num_key_value_heads": 4, "vocab_size": 32000, "tie_word_embeddings": False,
}


def config_sizes_mb(cfg: dict[str, Any], quants: list[str]) -> dict[str, float]:
    from sparring.exporters.model_card import size_estimate

    return {q: round(size_estimate(cfg, q) / 1e6, 1) for q in quants}


def bench_quant(model_dir: Path, work: Path, quant: str, reference: Any) -> dict[str, Any]:
    from sparring.exporters.gguf_verify import verify_gguf
    from sparring.exporters.gguf_writer import K_QUANTS, kquantize, write_gguf

    path = work / f"model-{quant}.gguf"
    started = time.perf_counter()
    if quant in K_QUANTS:
        source = work / "kquant-source-f32.gguf"
        write_gguf(model_dir, source, "f32")
        report = kquantize(source, path, quant)
        source.unlink()
    else:
        report = write_gguf(model_dir, path, quant)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    record = verify_gguf(path, reference, quant)
    verify_s = time.perf_counter() - started
    cont = record.get("continuation", {})
    row = {
        "quant": quant,
        "export_seconds": round(export_s, 2),
        "verify_seconds": round(verify_s, 2),
        "size_mb": round(path.stat().st_size / 1e6, 1),
        "passed": record["passed"],
        "tokenization_passed": record.get("tokenization", {}).get("passed"),
        "greedy_exact_prompts": cont.get("greedy_exact_prompts"),
        "greedy_ties": len(cont.get("greedy_ties", [])),
        "top1_agreement": cont.get("top1_agreement"),
        "logit_correlation_mean": cont.get("logit_correlation_mean"),
        "max_abs_logit_diff": cont.get("max_abs_logit_diff"),
        "tensor_types": report.get("tensor_types"),
        "fallback_tensors": len(report.get("fallbacks", [])),
    }
    path.unlink()
    return row


def run(quants: list[str]) -> dict[str, Any]:
    result = export_rows(bench_quant, quants, "sparring-bench-export-")
    by = {r["quant"]: r for r in result["results"]}
    return {
        **result,
        "targets": {
            "f16_export_seconds_max": TARGET_F16_SECONDS,
            "f16_met": by["f16"]["export_seconds"] <= TARGET_F16_SECONDS if "f16" in by else None,
            "q4_k_m_mb_max": TARGET_Q4_K_M_MB,
            "q4_k_m_met": by["q4_k_m"]["size_mb"] <= TARGET_Q4_K_M_MB if "q4_k_m" in by else None,
        },
        "tinyllama_1.1b_sizes_mb_from_config": config_sizes_mb(TINYLLAMA_CONFIG, ["f16", "q8_0", "q4_k_m", "q4_0"]),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| GGUF type | export s | verify s | size MB | verified | tokenization | greedy exact /5 (ties) | top-1 agreement | logit corr |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        lines.append(
            f"| {r['quant']} | {r['export_seconds']} | {r['verify_seconds']} | {r['size_mb']} | {'yes' if r['passed'] else 'NO'} | "
            f"{'equal' if r['tokenization_passed'] else 'DIFFERS'} | {r['greedy_exact_prompts']} ({r['greedy_ties']}) | "
            f"{r['top1_agreement']} | {r['logit_correlation_mean']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return quants_main(__doc__, "f16,q8_0,q4_k_m", run, markdown, argv)


if __name__ == "__main__":
    main()
