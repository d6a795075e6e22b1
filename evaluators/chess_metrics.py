"""Chess numbers that compare across papers: Lichess win%, move classes, centipawn loss, Elo.

- ``win_percent(cp)``: Lichess' win chance for the side with ``cp`` centipawns,
  ``50 + 50 * (2 / (1 + exp(-0.00368208 * cp)) - 1)``, cp clipped to ±1000; a mate is scored at
  the cap (see ``MATE_CP`` / ``cp_from_score``).
- ``classify_move(cp_best, cp_move)``: Lichess' thresholds on the drop in win chance on the
  −1..1 scale: ≥0.3 blunder, ≥0.2 mistake, ≥0.1 inaccuracy.
- ``centipawn_loss`` / ``average_centipawn_loss``: cp lost against the engine's best, clipped
  at ±1000 like Lichess' ACPL.
- ``elo_estimate(wins, draws, losses)``: the Elo difference a match score implies under the
  logistic model, with a 95% interval from the Wilson bound on the score.

Pure functions, no engine.  Exercised by ``pytest tests/evaluators/test_chess_metrics.py``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

LICHESS_WIN_K = 0.00368208
CP_CLIP = 1000
# Mate scores are mapped to MATE_CP - plies_to_mate so a faster mate ranks higher; win% clips
# them to the ±1000 cap ("mate at the cap").
MATE_CP = 100_000

INACCURACY = 0.1
MISTAKE = 0.2
BLUNDER = 0.3
MOVE_CLASSES = ("best", "good", "inaccuracy", "mistake", "blunder")


def clip_cp(cp: float) -> float:
    return max(-CP_CLIP, min(CP_CLIP, cp))


def win_chance(cp: float) -> float:
    """Win chance on the −1..1 scale (Lichess' ``winningChances``) for ``cp`` from the mover's view."""
    return 2.0 / (1.0 + math.exp(-LICHESS_WIN_K * clip_cp(cp))) - 1.0


def win_percent(cp: float) -> float:
    """Lichess win% (0..100) for ``cp`` centipawns from the mover's view; ±1000 cap, mate at the cap."""
    return 50.0 + 50.0 * win_chance(cp)


def win_fraction(cp: float) -> float:
    """Win% on the 0..1 scale (what rewards use)."""
    return win_percent(cp) / 100.0


def cp_from_score(score: Any) -> int:
    """Centipawns from a python-chess ``Score`` (already from the right point of view).

    Mate in n → ``MATE_CP - n``; mated in n → ``-(MATE_CP - n)``.  win% clips both to the cap.
    """
    return int(score.score(mate_score=MATE_CP))


def win_delta(cp_best: float, cp_move: float) -> float:
    """win%(move) − win%(best) on the 0..1 scale, never above 0 (search noise is clipped)."""
    return min(0.0, win_fraction(cp_move) - win_fraction(cp_best))


def win_chance_drop(cp_best: float, cp_move: float) -> float:
    """Drop in win chance on the −1..1 scale (≥0: the move is no better than the best)."""
    return max(0.0, win_chance(cp_best) - win_chance(cp_move))


def classify_move(cp_best: float, cp_move: float, *, is_best: bool = False) -> str:
    """One of ``MOVE_CLASSES`` by Lichess' thresholds on the win-chance drop."""
    if is_best:
        return "best"
    drop = win_chance_drop(cp_best, cp_move)
    if drop >= BLUNDER:
        return "blunder"
    if drop >= MISTAKE:
        return "mistake"
    if drop >= INACCURACY:
        return "inaccuracy"
    return "good"


def centipawn_loss(cp_best: float, cp_move: float) -> float:
    """cp lost against the best move, both clipped to ±1000 (Lichess' ACPL convention)."""
    return max(0.0, clip_cp(cp_best) - clip_cp(cp_move))


def average_centipawn_loss(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean centipawn loss over ``(cp_best, cp_move)`` pairs; None when there are none."""
    losses = [centipawn_loss(b, m) for b, m in pairs]
    return sum(losses) / len(losses) if losses else None


def elo_from_score(score: float) -> float | None:
    """Elo difference implied by an expected score (logistic model); None at 0 or 1 (unbounded)."""
    if score <= 0.0 or score >= 1.0:
        return None
    return -400.0 * math.log10(1.0 / score - 1.0)


def wilson_interval(score: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion ``score`` observed over ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1.0 + z * z / n
    centre = (score + z * z / (2 * n)) / denom
    half = z * math.sqrt(score * (1.0 - score) / n + z * z / (4 * n * n)) / denom
    low, high = centre - half, centre + half
    # at a score of exactly 0 or 1 the bound is exactly 0 or 1; keep float noise from making it finite
    return (0.0 if low < 1e-12 else low), (1.0 if high > 1.0 - 1e-12 else high)


def elo_estimate(wins: int, draws: int, losses: int) -> dict[str, Any]:
    """Match result → score, Elo difference and its 95% interval.

    The interval is the Wilson bound on the score (draws count half; this is slightly wide when
    there are many draws), mapped through the logistic model.  An end at 0 or 1 is unbounded and
    reported as None, as is the point estimate after a clean sweep.
    """
    games = wins + draws + losses
    if games == 0:
        return {"games": 0, "wins": 0, "draws": 0, "losses": 0, "score": None,
                "elo": None, "elo_low": None, "elo_high": None}
    score = (wins + 0.5 * draws) / games
    low, high = wilson_interval(score, games)
    return {
        "games": games,
        "wins": wins,
        "draws": draws,
        "losses": losses,
        "score": score,
        "elo": _round(elo_from_score(score)),
        "elo_low": _round(elo_from_score(low)),
        "elo_high": _round(elo_from_score(high)),
        "score_low": low,
        "score_high": high,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)
