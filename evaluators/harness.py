"""The eval harness: measure a model on an env's test prompts, or two models side by side.

    result = evaluate(env, generate_fn, samples=200, seed=0, out_dir="runs/x", label="sft")
    both = compare(env, gen_sft, gen_base, samples=200, seed=0, out_dir="runs/x", labels=("sft", "base"))

``generate_fn(list[Prompt]) -> list[str | Generation]`` (a ``Generation`` has ``.text``,
``.completion_tokens`` and ``.seconds``; plain strings work too and are timed by the harness).
Prompts are the env's test split in a seeded order, cycled (with a new seed per round) when
``samples`` exceeds the split, so two models always see the same prompts.  The result holds the
pass rate, the mean total and every component's mean, per-rule pass rates (jokes), distinct-1/2
and the duplicate rate of the outputs, n-gram overlap with the corpus (jokes), seconds per sample
and tokens/s; it is written to ``<out_dir>/eval/<env>.json`` (all rows) and ``<env>.md`` (a table
and 20 sample outputs), both written to a temp file first and renamed.
Exercised by ``sparring eval configs/jokes.yaml --model smollm2-135m`` and
``pytest tests/evaluators/test_harness.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from sparring.envs.base import Env
from sparring.rundir import atomic_write_text
from sparring.evaluators.report_md import comparison_markdown, result_markdown
from sparring.evaluators.text_metrics import clean_unicode, distinct_n, duplicate_rate
from sparring.types import Prompt

GenerateFn = Callable[[list[Prompt]], list[Any]]
MD_SAMPLES = 20


def eval_prompts(env: Env, samples: int, seed: int = 0, split: str = "test") -> list[Prompt]:
    """``samples`` prompts from ``split``, cycling with a fresh shuffle per round; ids stay unique."""
    out: list[Prompt] = []
    round_no = 0
    while len(out) < samples:
        batch = list(env.prompts(split, seed=seed + round_no))
        if not batch:
            break
        for p in batch[: samples - len(out)]:
            pid = p.id if round_no == 0 else f"{p.id}#{round_no}"
            out.append(Prompt(id=pid, messages=p.messages, meta=p.meta))
        round_no += 1
    return out


def _generate(generate_fn: GenerateFn, prompts: list[Prompt], batch_size: int, label: str = "", progress: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    starts = range(0, len(prompts), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=f"generating ({label})", unit="batch", total=len(starts))
    for start in starts:
        chunk = prompts[start : start + batch_size]
        t0 = time.perf_counter()
        outs = list(generate_fn(chunk))
        wall = (time.perf_counter() - t0) / max(1, len(chunk))
        if len(outs) != len(chunk):
            raise ValueError(f"generate_fn returned {len(outs)} outputs for {len(chunk)} prompts")
        for out in outs:
            text = out if isinstance(out, str) else getattr(out, "text", "")
            tokens = getattr(out, "completion_tokens", None)
            seconds = getattr(out, "seconds", None)
            rows.append({"text": clean_unicode(text), "tokens": tokens, "seconds": float(seconds) if seconds is not None else wall})
    return rows


def _mean(values: Sequence[float]) -> float:
    return round(statistics.fmean(values), 4) if values else 0.0


def summarize(env_name: str, prompts: list[Prompt], gens: list[dict[str, Any]], scores: list[Any]) -> dict[str, Any]:
    """Aggregate per-sample scores and timings into the metrics of one model."""
    comp_names = sorted({k for s in scores for k in s.components})
    components = {k: _mean([float(s.components.get(k, 0.0)) for s in scores]) for k in comp_names}
    rules: dict[str, float] = {}
    rule_names = sorted({r for s in scores for r in s.details.get("rules", {})})
    for r in rule_names:
        rules[r] = _mean([1.0 if s.details.get("rules", {}).get(r, {}).get("passed") else 0.0 for s in scores])
    texts = [g["text"] for g in gens]
    seconds = [g["seconds"] for g in gens]
    tokens = [g["tokens"] for g in gens if g["tokens"] is not None]
    metrics: dict[str, Any] = {
        "pass_rate": _mean([1.0 if s.passed else 0.0 for s in scores]),
        "total_mean": _mean([s.total for s in scores]),
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
        "duplicate_rate": round(duplicate_rate(texts), 4),
    }
    if "novelty_corpus" in components:
        metrics["corpus_overlap"] = round(1.0 - components["novelty_corpus"], 4)
    latency = {
        "seconds_per_sample": _mean(seconds),
        "total_seconds": round(sum(seconds), 3),
        "completion_tokens_mean": _mean(tokens) if tokens else None,
        "tokens_per_second": round(sum(tokens) / sum(seconds), 2) if tokens and sum(seconds) > 0 else None,
    }
    rows = [
        {
            "prompt_id": p.id,
            "prompt": p.text,
            "completion": g["text"],
            "total": s.total,
            "passed": s.passed,
            "components": s.components,
            "failed_rules": [r for r, v in s.details.get("rules", {}).items() if not v.get("passed")],
            "seconds": round(g["seconds"], 4),
            "tokens": g["tokens"],
        }
        for p, g, s in zip(prompts, gens, scores)
    ]
    return {"env": env_name, "samples": len(rows), "metrics": metrics, "components": components, "rules": rules, "latency": latency, "rows": rows}


def _score_all(env: Env, prompts: list[Prompt], gens: list[dict[str, Any]]) -> list[Any]:
    reset = getattr(env, "reset_recent", None)
    if callable(reset):
        reset()  # each model starts with an empty recent-samples window
    return env.score_batch(prompts, [g["text"] for g in gens])


def run_model(env: Env, generate_fn: GenerateFn, prompts: list[Prompt], *, batch_size: int = 16, label: str = "model", progress: bool = False) -> dict[str, Any]:
    gens = _generate(generate_fn, prompts, batch_size, label, progress)
    result = summarize(env.name, prompts, gens, _score_all(env, prompts, gens))
    result["label"] = label
    return result


def write_report(result: dict[str, Any], out_dir: str | os.PathLike[str], env_name: str, markdown: str) -> dict[str, str]:
    """Write ``eval/<env>.json`` and ``eval/<env>.md`` under ``out_dir``; return their paths."""
    base = Path(out_dir) / "eval"
    json_path, md_path = base / f"{env_name}.json", base / f"{env_name}.md"
    atomic_write_text(json_path, json.dumps(result, indent=2, ensure_ascii=True, default=str) + "\n")
    atomic_write_text(md_path, markdown)
    return {"json": str(json_path), "md": str(md_path)}


def evaluate(
    env: Env,
    generate_fn: GenerateFn,
    *,
    samples: int = 200,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    label: str = "model",
    split: str = "test",
    batch_size: int = 16,
    settings: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate on ``samples`` test prompts, score them, aggregate, and write the report."""
    prompts = eval_prompts(env, samples, seed, split)
    result = run_model(env, generate_fn, prompts, batch_size=batch_size, label=label, progress=progress)
    result.update({"seed": seed, "split": split, "settings": settings or {}})
    if out_dir is not None:
        result["files"] = write_report(result, out_dir, env.name, result_markdown(result, MD_SAMPLES))
    return result


def compare(
    env: Env,
    generate_a: GenerateFn,
    generate_b: GenerateFn,
    *,
    samples: int = 200,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    labels: tuple[str, str] = ("model", "base"),
    split: str = "test",
    batch_size: int = 16,
    settings: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Both models on the same prompts; ``delta`` is first minus second for every metric."""
    if labels[0] == labels[1]:
        labels = (labels[0], f"{labels[1]} (2)")
    prompts = eval_prompts(env, samples, seed, split)
    a = run_model(env, generate_a, prompts, batch_size=batch_size, label=labels[0], progress=progress)
    b = run_model(env, generate_b, prompts, batch_size=batch_size, label=labels[1], progress=progress)
    delta: dict[str, float] = {}
    for section in ("metrics", "components", "rules"):
        for k, v in a[section].items():
            other = b[section].get(k)
            if isinstance(v, (int, float)) and isinstance(other, (int, float)):
                delta[f"{section}.{k}" if section != "metrics" else k] = round(v - other, 4)
    result = {"env": env.name, "compare": True, "labels": list(labels), "seed": seed, "split": split, "samples": len(prompts), "settings": settings or {}, "models": {labels[0]: a, labels[1]: b}, "delta": delta}
    if out_dir is not None:
        result["files"] = write_report(result, out_dir, env.name, comparison_markdown(result, MD_SAMPLES))
    return result
