"""Benchmark: `sparring sft configs/jokes.yaml` on the embedded SmolLM2-135M, then the joke pass rate
of the tuned model against the base with the same harness.

Issue 3's figures: SFT finishes in <= 20 minutes on 2 CPU cores; the tuned model passes the joke
validator on >= 80% of 200 samples (the base about 3%); SFT throughput (tokens/s) and peak memory.
The SFT runs as its own process (the real CLI), so its wall time and peak RSS are that command's.
Both models are then measured by ``sparring.bench.eval_jokes.run`` (the eval harness on the jokes
env's held-out test topics, same prompts, same seed, novelty against the corpus).

    python -m sparring.bench.sft [--config configs/jokes.yaml] [--n 200] [--set sft.epochs=1]
                                 [--run-dir DIR (reuse a finished run: evaluate only)] [--out DIR]

Prints the JSON and a markdown table.  The machine may be shared with other work: the JSON records
the load average before and after, so timings can be read in that light.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sparring.bench import emit, load_avg

TARGET_MINUTES = 20.0
TARGET_PASS_RATE = 0.80



def run_sft_process(config: Path, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """`sparring sft CONFIG --run-dir DIR` as a child process: wall time, peak RSS, the stage result."""
    cmd = [sys.executable, "-m", "sparring", "sft", str(config), "--run-dir", str(run_dir)]
    for o in overrides:
        cmd += ["--set", o]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sparring sft failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    stage = json.loads((run_dir / "manifest.json").read_text())["stages"]["sft"]
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "command": " ".join(cmd[2:]),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        # on an otherwise idle machine the wall time is about CPU time / cores used
        "idle_machine_estimate_seconds": round(cpu / max(1, min(os.cpu_count() or 1, 2)), 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stage": stage,
    }


def evaluate_model(model: str, n: int, seed: int, out: Path) -> dict[str, Any]:
    from sparring.bench.eval_jokes import run

    r = run(n, model, batch_size=16, max_new_tokens=48, temperature=0.7, seed=seed, out=out, one_shot=True)
    keep = ("pass_rate", "total_mean", "rule_pass_rates", "duplicate_rate", "distinct_2", "corpus_overlap", "seconds_per_joke", "examples")
    return {k: r.get(k) for k in keep}


def markdown(r: dict[str, Any]) -> str:
    sft = r.get("sft") or {}
    stage = sft.get("stage", {})
    rows = [
        ("SFT wall time (whole command)", f"{sft.get('wall_seconds', 0) / 60:.1f} min (target <= {TARGET_MINUTES:.0f})" if sft else "reused run"),
        ("SFT CPU time / idle-machine estimate", f"{sft.get('cpu_seconds', 0) / 60:.1f} min / {sft.get('idle_machine_estimate_seconds', 0) / 60:.1f} min" if sft else "-"),
        ("training time (trainer)", f"{stage.get('train_seconds')} s"),
        ("SFT throughput", f"{stage.get('tokens_per_s')} tokens/s"),
        ("tokens trained", stage.get("tokens")),
        ("steps / epochs", f"{stage.get('steps')} / {stage.get('epochs')}"),
        ("train / val rows", f"{stage.get('train_rows')} / {stage.get('val_rows')}"),
        ("eval loss (best)", stage.get("best_eval_loss")),
        ("peak RSS of `sparring sft`", f"{sft.get('peak_rss_mb')} MB" if sft else "-"),
        ("pass rate, base", r["base"]["pass_rate"] if r.get("base") else "-"),
        ("pass rate, SFT", f"{r['tuned']['pass_rate']} (target >= {TARGET_PASS_RATE})"),
        ("duplicate rate base / SFT", f"{(r.get('base') or {}).get('duplicate_rate')} / {r['tuned']['duplicate_rate']}"),
        ("load average before / after", f"{r['load_before']} / {r['load_after']}"),
    ]
    rules = r["tuned"]["rule_pass_rates"] or {}
    base_rules = (r.get("base") or {}).get("rule_pass_rates") or {}
    rows += [(f"rule {k}: base / SFT", f"{base_rules.get(k, '-')} / {v}") for k, v in rules.items()]
    return "\n".join(["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[2] / "configs" / "jokes.yaml")
    ap.add_argument("--n", type=int, default=200, help="jokes per model for the pass rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override for the SFT run (repeatable)")
    ap.add_argument("--run-dir", type=Path, help="a finished SFT run to evaluate instead of training")
    ap.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    ap.add_argument("--out", type=Path, help="where the run and the eval reports go (default: a temp dir)")
    args = ap.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-sft-"))
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"config": str(args.config), "overrides": args.overrides, "n": args.n, "cpu_count": os.cpu_count(), "load_before": load_avg()}
    if args.run_dir:
        run_dir = args.run_dir
        result["sft"] = None
    else:
        run_dir = out / "run"
        result["sft"] = run_sft_process(args.config, run_dir, args.overrides)
    result["run_dir"] = str(run_dir)
    result["tuned"] = evaluate_model(str(run_dir / "sft" / "merged"), args.n, args.seed, out / "eval-sft")
    if not args.skip_base:
        from sparring.config_io import load_config

        base = load_config(run_dir / "config.yaml").model.name
        result["base"] = evaluate_model(base, args.n, args.seed, out / "eval-base")
    result["load_after"] = load_avg()
    sft = result["sft"] or {}
    result["targets"] = {
        "sft_minutes": TARGET_MINUTES,
        "sft_minutes_met": (sft.get("wall_seconds", 0) / 60 <= TARGET_MINUTES) if sft else None,
        "pass_rate": TARGET_PASS_RATE,
        "pass_rate_met": (result["tuned"]["pass_rate"] or 0) >= TARGET_PASS_RATE,
    }
    return emit(result, markdown(result), out / "bench_sft.json")


if __name__ == "__main__":
    main()
