"""Benchmark: the chess figure of issue 5 — SFT + GRPO self-play from the embedded SmolLM2-135M, then
the legal-move rate and average centipawn loss on the same 200 held-out positions, SFT against GRPO.

Targets: legal-move rate >= 98% after GRPO, and a lower ACPL than the SFT model.
Runs the real commands as child processes (`sparring sft configs/chess.yaml`, then `sparring rl
configs/chess.yaml --init <run>`), or reuses a finished SFT run (``--sft-run``), then measures both
models in one `sparring eval --compare` call (same positions, same seed, greedy decoding).

    python -m sparring.bench.rl_chess [--sft-set data.count=800] [--set rl.steps=30]
                                      [--sft-run runs/<sft run>] [--n 200] [--out DIR]

The recipe's SFT (3,000 positions at 20k nodes, 2 epochs) takes hours on 2 cores; ``--sft-set``
resizes it and every override is recorded in the JSON.  Prints the JSON and a markdown table.
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
TARGET_LEGAL = 0.98


def sparring(*args: str) -> float:
    """Run a sparring command (its output goes to this terminal); return its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sparring", *args], cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"sparring {' '.join(args)} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0


def sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def latest_run(runs: Path) -> Path:
    """The run directory `sparring rl` just created under ``runs``."""
    done = [p for p in runs.iterdir() if (p / "manifest.json").exists()]
    if not done:
        raise SystemExit(f"no run directory with a manifest.json under {runs}")
    return max(done, key=lambda p: p.stat().st_mtime)


def metrics_of(report: dict[str, Any]) -> dict[str, Any]:
    pos = report.get("positions", report)
    keep = ("legal_rate", "parse_rate", "best_move_accuracy", "acpl", "blunders_per_100", "mean_win_delta_legal", "mean_reward")
    return {k: pos.get(k) for k in keep if k in pos} | {"seconds_per_sample": report.get("latency", {}).get("seconds_per_sample")}


def markdown(r: dict[str, Any]) -> str:
    sft, rl = r["sft_eval"], r["rl_eval"]
    rows = [(k, sft.get(k), rl.get(k)) for k in sft]
    rows.append(("training minutes (SFT / GRPO)", r["sft_minutes"], r["rl_minutes"]))
    head = [f"{r['n']} held-out positions, greedy; targets: legal >= {TARGET_LEGAL} after GRPO, ACPL below SFT's; "
            f"load avg {r['load_before']} -> {r['load_after']}", "", "| measure | after SFT | after SFT + GRPO |", "|---|---|---|"]
    return "\n".join(head + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "chess.yaml")
    ap.add_argument("--sft-run", type=Path, help="a finished SFT run to start GRPO from (skips SFT)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--sft-set", dest="sft_overrides", action="append", default=[], help="config override for the SFT run (repeatable)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override for the RL run (repeatable)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-rl-chess-"))
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"n": args.n, "config": str(args.config), "sft_overrides": args.sft_overrides,
                              "rl_overrides": args.overrides, "load_before": load_avg()}
    if args.sft_run:
        sft_run, sft_seconds = args.sft_run, None
    else:
        sft_run = out / "sft-run"
        sft_seconds = sparring("sft", str(args.config), "--run-dir", str(sft_run), *sets(args.sft_overrides))
    runs = out / "runs"
    rl_seconds = sparring("rl", str(args.config), "--init", str(sft_run), *sets(args.overrides + [f"output_dir={runs}"]))
    rl_run = latest_run(runs)
    result.update(sft_run=str(sft_run), rl_run=str(rl_run), rl_minutes=round(rl_seconds / 60, 1),
                  sft_minutes=round(sft_seconds / 60, 1) if sft_seconds else "reused")
    sft_model, rl_model = str(Path(sft_run) / "sft" / "merged"), str(rl_run / "rl" / "merged")
    sparring("eval", str(args.config), "--model", sft_model, "--compare", rl_model, "--samples", str(args.n),
             "--games", "0", "--out", str(out / "eval"))
    report = json.loads((out / "eval" / "eval" / "chess.json").read_text())
    result["sft_eval"], result["rl_eval"] = (metrics_of(report["models"][m]) for m in (sft_model, rl_model))
    result["load_after"] = load_avg()
    sft, rl = result["sft_eval"], result["rl_eval"]
    result["targets"] = {"legal_rate": TARGET_LEGAL, "legal_met": (rl.get("legal_rate") or 0) >= TARGET_LEGAL,
                         "acpl_below_sft": rl.get("acpl") is not None and sft.get("acpl") is not None and rl["acpl"] < sft["acpl"]}
    return emit(result, markdown(result), out / "bench_rl_chess.json")


if __name__ == "__main__":
    main()
