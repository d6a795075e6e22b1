"""Benchmark: the jokes figure of issue 5 — SFT + GRPO from the embedded SmolLM2-135M, then the
validator pass rate and the share of distinct jokes on 200 samples, before (SFT) and after (GRPO).

Targets: pass rate >= 95% with >= 90% distinct jokes, within 45 minutes of CPU training in total.
Runs the real commands as child processes (`sparring sft configs/jokes.yaml`, then
`sparring rl configs/jokes.yaml --init <run>`), or reuses a finished SFT run (``--sft-run``), then
measures both models with the same harness, prompts and seed (``sparring.bench.eval_jokes``).

    python -m sparring.bench.rl_jokes [--sft-run runs/<sft run>] [--n 200] [--set rl.steps=40] [--out DIR]

Prints the JSON and a markdown table; the load average is recorded (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sparring.bench import emit, load_avg

REPO = Path(__file__).resolve().parents[2]
TARGET_PASS, TARGET_DISTINCT, TARGET_MINUTES = 0.95, 0.90, 45.0



def sparring(*args: str) -> tuple[str, float]:
    """Run a sparring command; return the run directory it printed last and its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sparring", *args], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"sparring {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1], time.perf_counter() - t0


def recorded_sft_seconds(run_dir: Path) -> float | None:
    """The SFT stage's seconds from a finished run's manifest.json, or None when it has none."""
    try:
        return float(json.loads((Path(run_dir) / "manifest.json").read_text())["stages"]["sft"]["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def evaluate(model: Path, n: int, seed: int, out: Path) -> dict[str, Any]:
    from sparring.bench.eval_jokes import run

    r = run(n, str(model), batch_size=16, max_new_tokens=48, temperature=0.7, seed=seed, out=out, one_shot=True)
    keep = ("pass_rate", "total_mean", "rule_pass_rates", "duplicate_rate", "distinct_2", "corpus_overlap", "seconds_per_joke", "examples")
    out_row = {k: r.get(k) for k in keep}
    if r.get("duplicate_rate") is not None:
        out_row["distinct_jokes"] = round(1.0 - float(r["duplicate_rate"]), 4)
    return out_row


def markdown(r: dict[str, Any]) -> str:
    sft, rl = r["sft_eval"], r["rl_eval"]
    rows = [
        ("validator pass rate", sft["pass_rate"], f"{rl['pass_rate']} (target >= {TARGET_PASS})"),
        ("distinct jokes", sft.get("distinct_jokes"), f"{rl.get('distinct_jokes')} (target >= {TARGET_DISTINCT})"),
        ("mean reward (validator total)", sft.get("total_mean"), rl.get("total_mean")),
        ("distinct-2", sft.get("distinct_2"), rl.get("distinct_2")),
        ("training minutes (SFT / GRPO / total)", f"{r['sft_minutes']}", f"{r['rl_minutes']} / {r['total_minutes']} (target <= {TARGET_MINUTES:.0f})"),
    ]
    return "\n".join([f"{r['n']} jokes each, load avg {r['load_before']} -> {r['load_after']}", "",
                      "| measure | after SFT | after SFT + GRPO |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "jokes.yaml")
    ap.add_argument("--sft-run", type=Path, help="a finished SFT run to start GRPO from (skips SFT)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override for the RL run (repeatable)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-rl-jokes-"))
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"n": args.n, "config": str(args.config), "overrides": args.overrides, "load_before": load_avg()}
    sets = [a for o in args.overrides + [f"output_dir={out / 'runs'}"] for a in ("--set", o)]
    if args.sft_run:
        # the stage's own time, as the reused run recorded it (the command's start-up not included)
        sft_run, sft_seconds = args.sft_run, recorded_sft_seconds(args.sft_run)
        result["sft_seconds_from"] = "the reused run's manifest" if sft_seconds else None
    else:
        sft_run = out / "sft-run"
        _, sft_seconds = sparring("sft", str(args.config), "--run-dir", str(sft_run))
    rl_run, rl_seconds = sparring("rl", str(args.config), "--init", str(sft_run), *sets)
    result.update(sft_run=str(sft_run), rl_run=rl_run, sft_minutes=round(sft_seconds / 60, 1) if sft_seconds else "unknown (reused)",
                  rl_minutes=round(rl_seconds / 60, 1))
    result["total_minutes"] = round((sft_seconds or 0) / 60 + rl_seconds / 60, 1) if sft_seconds else None
    result["sft_eval"] = evaluate(Path(sft_run) / "sft" / "merged", args.n, args.seed, out / "eval-sft")
    result["rl_eval"] = evaluate(Path(rl_run) / "rl" / "merged", args.n, args.seed, out / "eval-rl")
    result["load_after"] = load_avg()
    rl = result["rl_eval"]
    result["targets"] = {"pass_rate": TARGET_PASS, "distinct": TARGET_DISTINCT, "minutes": TARGET_MINUTES,
                         "pass_rate_met": (rl["pass_rate"] or 0) >= TARGET_PASS, "distinct_met": (rl.get("distinct_jokes") or 0) >= TARGET_DISTINCT,
                         "minutes_met": bool(result["total_minutes"] and result["total_minutes"] <= TARGET_MINUTES)}
    result["summary"] = {"pass_rate_sft": result["sft_eval"]["pass_rate"], "pass_rate_rl": rl["pass_rate"], "distinct_rl": rl.get("distinct_jokes")}
    return emit(result, markdown(result), out / "bench_rl_jokes.json")


if __name__ == "__main__":
    main()
