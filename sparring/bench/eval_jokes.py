"""Benchmark: evaluate N jokes from a model with the eval harness (transformers generation).

Issue 4's figure: seconds per joke for the embedded SmolLM2-135M in transformers over 200 jokes,
and its pass rate on the joke validator (the "before" number every later report compares to).
Runs the real path of ``sparring eval configs/jokes.yaml --model smollm2-135m --samples N``:
the jokes env's held-out test topics, the model's chat template, one-shot example on, seeded
sampling, batched generation, the full validator with novelty against the training corpus.

    python -m sparring.bench.eval_jokes [--n 200] [--model smollm2-135m] [--batch-size 16]
                                        [--max-new-tokens 48] [--temperature 0.7] [--out DIR]

Prints the JSON summary and a markdown table; ``--out`` keeps eval/jokes.json and .md (all
samples).  Timings on a shared 2-core machine are noisy; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sparring.bench import emit


def run(n: int, model: str, batch_size: int, max_new_tokens: int, temperature: float, seed: int, out: Path | None, one_shot: bool) -> dict[str, Any]:
    from sparring.envs.base import make_env
    from sparring.evaluators.harness import evaluate
    from sparring.generation import load_generator

    t0 = time.perf_counter()
    generator = load_generator(model, engine="hf", batch_size=batch_size)
    load_seconds = time.perf_counter() - t0
    env = make_env("jokes", {"one_shot": one_shot})
    calls = {"n": 0}

    def generate_fn(prompts):
        calls["n"] += 1
        return generator.generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 1000 * calls["n"])

    out_dir = out or Path(tempfile.mkdtemp(prefix="bench-eval-jokes-"))
    t1 = time.perf_counter()
    result = evaluate(env, generate_fn, samples=n, seed=seed, out_dir=out_dir, label=model, batch_size=batch_size, progress=True)
    wall = time.perf_counter() - t1
    return {
        "model": model,
        "engine": "hf (transformers, float32)",
        "jokes": result["samples"],
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "one_shot": one_shot,
        "torch_threads": _torch_threads(),
        "model_load_seconds": round(load_seconds, 2),
        "wall_seconds": round(wall, 2),
        "seconds_per_joke": round(wall / max(1, result["samples"]), 3),
        "generation_seconds_per_joke": result["latency"]["seconds_per_sample"],
        "tokens_per_second": result["latency"]["tokens_per_second"],
        "completion_tokens_mean": result["latency"]["completion_tokens_mean"],
        "pass_rate": result["metrics"]["pass_rate"],
        "total_mean": result["metrics"]["total_mean"],
        "rule_pass_rates": result["rules"],
        "distinct_2": result["metrics"]["distinct_2"],
        "duplicate_rate": result["metrics"]["duplicate_rate"],
        "corpus_overlap": result["metrics"].get("corpus_overlap"),
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "files": result.get("files", {}),
        "examples": [r["completion"] for r in result["rows"][:5]],
    }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def markdown(r: dict[str, Any]) -> str:
    rows = [
        ("model", r["model"]),
        ("jokes", r["jokes"]),
        ("seconds per joke (wall, incl. scoring)", r["seconds_per_joke"]),
        ("generation seconds per joke", r["generation_seconds_per_joke"]),
        ("tokens / s", r["tokens_per_second"]),
        ("pass rate (validator)", r["pass_rate"]),
        ("mean reward", r["total_mean"]),
        ("duplicate rate", r["duplicate_rate"]),
        ("distinct-2", r["distinct_2"]),
    ] + [(f"rule pass: {k}", v) for k, v in r["rule_pass_rates"].items()]
    return "\n".join(["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="jokes to generate and score")
    ap.add_argument("--model", default="smollm2-135m", help="model name (alias, Hub id, dir)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-one-shot", action="store_true", help="ask without the one-shot example")
    ap.add_argument("--out", type=Path, help="keep eval/jokes.json and .md under this directory")
    args = ap.parse_args(argv)
    result = run(args.n, args.model, args.batch_size, args.max_new_tokens, args.temperature, args.seed, args.out, not args.no_one_shot)
    return emit(result, markdown(result))


if __name__ == "__main__":
    main()
