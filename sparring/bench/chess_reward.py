"""Benchmark: chess reward throughput per worker (one Stockfish process), cached and uncached.

Issue 4's figure: ≥ 2,000 scored positions per second per worker from the cache and ≥ 150 per
second uncached at the default node limit, on a 2-core machine.  A "scored position" is one
``ChessEnv.score(prompt, completion)`` call: parse the answer, search the position (best move) and
the answer's move, turn both into the Lichess win% reward.

- ``uncached``: every call a new position with a random legal answer (two searches each, one when
  the answer is the best move);
- ``group``: GRPO's shape, ``--group`` answers per new position (the best-move search is shared);
- ``cached``: the uncached calls again (parse + cache lookup + reward);
- ``--accuracy N``: the reward's error against a 400k-node MultiPV search (what the node limit costs).

    python -m sparring.bench.chess_reward [--positions 400] [--nodes 1000 --nodes 2000] [--accuracy 30] [--out b.json]

Prints the JSON and one markdown table.  The machine may be shared: the JSON records the load, and
every rate is also given per CPU-second (this process plus its Stockfish), what one free core does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import chess

from sparring.envs.chess_env import ChessEnv, ChessOptions
from sparring.envs.chess_positions import position_key, source_fens
from sparring.evaluators.stockfish_pool import DEFAULT_NODES
from sparring.types import Prompt

TARGET_CACHED = 2000.0
TARGET_UNCACHED = 150.0


def distinct_positions(count: int, seed: int, skip: int = 0) -> list[str]:
    seen: dict[str, str] = {}
    for fen in source_fens("mixed", seed):
        seen.setdefault(position_key(fen), fen)
        if len(seen) >= count + skip:
            break
    return list(seen.values())[skip:]


def _answers(env: ChessEnv, fens: list[str], per_position: int, seed: int) -> list[tuple[Prompt, str]]:
    rng = random.Random(seed)
    calls = []
    for fen in fens:
        board = chess.Board(fen)
        prompt = env.prompt_for_fen(fen)
        moves = sorted(board.legal_moves, key=lambda m: m.uci())
        calls += [(prompt, board.san(rng.choice(moves))) for _ in range(per_position)]
    return calls


def _cpu_seconds(env: ChessEnv) -> float:
    """CPU time of this process plus its Stockfish processes (psutil)."""
    import psutil

    total = time.process_time()
    for eng in env.pool.engines:
        if eng.pid is not None:
            times = psutil.Process(eng.pid).cpu_times()
            total += times.user + times.system
    return total


def _rate(env: ChessEnv, calls: list[tuple[Prompt, str]]) -> dict[str, float]:
    """Calls per wall second, and per CPU second (what one free core would do on a shared machine)."""
    start, cpu = time.perf_counter(), _cpu_seconds(env)
    for prompt, text in calls:
        env.score(prompt, text)
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds(env) - cpu
    return {"per_s": round(len(calls) / seconds, 1), "per_cpu_s": round(len(calls) / max(cpu_seconds, 1e-9), 1),
            "seconds": round(seconds, 3), "calls": len(calls)}


def measure(nodes: int, positions: int, group: int, seed: int) -> dict[str, Any]:
    env = ChessEnv(ChessOptions(nodes=nodes, engines=1))
    try:
        warm = _answers(env, distinct_positions(5, seed + 99), 1, seed)
        _rate(env, warm)  # start the engine and load the network outside the timing
        calls = _answers(env, distinct_positions(positions, seed), 1, seed)
        uncached = _rate(env, calls)
        cached = _rate(env, calls * max(1, 2000 // max(1, len(calls))))
        group_fens = distinct_positions(max(1, positions // group), seed, skip=positions)
        grouped = _rate(env, _answers(env, group_fens, group, seed))
        searches = env.pool.engines[0].searches
    finally:
        env.close()
    return {
        "nodes": nodes, "positions": len(calls), "group": group, "searches": searches,
        "uncached": uncached, "group_completions": grouped, "cached": cached,
        "meets_uncached_target": uncached["per_s"] >= TARGET_UNCACHED,
        "meets_cached_target": cached["per_s"] >= TARGET_CACHED,
    }


def reward_error(nodes_list: list[int], positions: int, seed: int, reference_nodes: int = 400_000) -> list[dict[str, Any]]:
    """Mean |win_delta - reference| for 4 random moves per position, against one MultiPV search of
    ``reference_nodes`` over every legal move (slow: about a second per position)."""
    from sparring.evaluators.chess_metrics import win_delta, win_fraction
    from sparring.evaluators.stockfish_pool import StockfishEngine

    rng = random.Random(seed)
    fens = distinct_positions(positions, seed + 7)
    with StockfishEngine(nodes=reference_nodes, hash_mb=16, timeout_s=120) as deep:
        truth = {f: deep.analyse_moves(f) for f in fens}
    samples = [(f, u) for f in fens for u in rng.sample(sorted(truth[f]), min(4, len(truth[f])))]
    rows = []
    for nodes in nodes_list:
        with StockfishEngine(nodes=nodes) as eng:
            errors = []
            for f, u in samples:
                ms = eng.score_move(f, u)
                ref = win_fraction(truth[f][u]) - win_fraction(max(truth[f].values()))
                errors.append(abs(win_delta(ms.cp_best, ms.cp_move) - ref))
        rows.append({"nodes": nodes, "samples": len(samples), "mean_abs_error": round(sum(errors) / len(errors), 4),
                     "share_error_over_0.1": round(sum(e > 0.1 for e in errors) / len(errors), 3)})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=400, help="distinct positions for the uncached run")
    ap.add_argument("--group", type=int, default=8, help="answers per position in the GRPO-shaped run")
    ap.add_argument("--nodes", type=int, action="append", help=f"node limit(s) (default {DEFAULT_NODES})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--accuracy", type=int, default=0, metavar="N",
                    help="also measure the reward's error against a 400k-node search on N positions (slow)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    rows = [measure(n, args.positions, args.group, args.seed) for n in (args.nodes or [DEFAULT_NODES])]
    result = {
        "benchmark": "chess_reward", "default_nodes": DEFAULT_NODES, "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "targets": {"cached_per_s": TARGET_CACHED, "uncached_per_s": TARGET_UNCACHED}, "results": rows,
    }
    if args.accuracy:
        result["reward_error"] = reward_error(args.nodes or [DEFAULT_NODES], args.accuracy, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print("\n| nodes | uncached scored/s (per CPU-s) | GRPO group of %d: completions/s (per CPU-s) "
          "| cached scored/s (per CPU-s) |" % args.group)
    print("|---|---|---|---|")
    for r in rows:
        cells = [f"{r[k]['per_s']} ({r[k]['per_cpu_s']})" for k in ("uncached", "group_completions", "cached")]
        print(f"| {r['nodes']} | " + " | ".join(cells) + " |")
    print(f"load average before/after: {result['loadavg_before'][0]} / {result['loadavg_after'][0]} on {os.cpu_count()} CPUs")
    for r in result.get("reward_error", []):
        print(f"\nreward error at {r['nodes']} nodes: mean |delta win| {r['mean_abs_error']} over {r['samples']} moves")
    return result


if __name__ == "__main__":
    main()
