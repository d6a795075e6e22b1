"""Lichess win%, move classes, centipawn loss and the Elo estimate, against hand-computed values."""

from __future__ import annotations

import math

import chess.engine
import pytest

from sparring.evaluators.chess_metrics import (
    MATE_CP, average_centipawn_loss, centipawn_loss, classify_move, cp_from_score, elo_estimate, elo_from_score,
    win_chance, win_delta, win_percent, wilson_interval,
)


def lichess(cp: float) -> float:
    return 50 + 50 * (2 / (1 + math.exp(-0.00368208 * cp)) - 1)


@pytest.mark.parametrize("cp", [0, 50, -50, 100, 300, -300, 999])
def test_win_percent_is_the_lichess_formula(cp: int) -> None:
    assert win_percent(cp) == pytest.approx(lichess(cp))


def test_win_percent_known_values_and_the_cap() -> None:
    assert win_percent(0) == 50.0
    assert win_percent(100) == pytest.approx(59.10, abs=0.01)
    assert win_percent(-300) == pytest.approx(24.89, abs=0.01)
    assert win_percent(5000) == win_percent(1000) == pytest.approx(97.55, abs=0.01)
    assert win_percent(-5000) == win_percent(-1000)


def test_mate_is_scored_at_the_cap_and_ordered() -> None:
    mate_in_1 = cp_from_score(chess.engine.Mate(1))
    mate_in_5 = cp_from_score(chess.engine.Mate(5))
    mated = cp_from_score(chess.engine.Mate(-2))
    assert MATE_CP > mate_in_1 > mate_in_5 > 1000 and mated < -1000
    assert win_percent(mate_in_5) == win_percent(1000)
    assert cp_from_score(chess.engine.Cp(-37)) == -37


def test_win_delta_is_never_positive() -> None:
    assert win_delta(100, 100) == 0.0
    assert win_delta(100, 300) == 0.0  # search noise above the best is clipped
    assert win_delta(0, -300) == pytest.approx((lichess(-300) - 50) / 100)


@pytest.mark.parametrize("best, move, cls", [
    (0, 0, "good"),
    (0, -50, "good"),        # drop 0.092
    (0, -60, "inaccuracy"),  # drop 0.110
    (0, -115, "mistake"),    # drop 0.209
    (0, -170, "blunder"),    # drop 0.303
    (1000, 600, "inaccuracy"),  # winning anyway: 400 cp is only a small drop on the -1..1 scale
])
def test_move_classes_follow_lichess_thresholds(best: int, move: int, cls: str) -> None:
    assert classify_move(best, move) == cls
    assert abs(win_chance(best) - win_chance(move)) >= {"good": 0, "inaccuracy": 0.1, "mistake": 0.2, "blunder": 0.3}[cls]


def test_classify_best_and_centipawn_loss() -> None:
    assert classify_move(0, -500, is_best=True) == "best"
    assert centipawn_loss(50, -20) == 70
    assert centipawn_loss(3000, -3000) == 2000  # both clipped to ±1000
    assert centipawn_loss(10, 40) == 0
    assert average_centipawn_loss([(50, -20), (0, 0)]) == 35
    assert average_centipawn_loss([]) is None


def test_elo_estimate_even_score_is_zero_with_a_symmetric_interval() -> None:
    r = elo_estimate(10, 0, 10)
    assert r["score"] == 0.5 and r["elo"] == 0.0
    assert r["elo_low"] == pytest.approx(-r["elo_high"], abs=0.2) and r["elo_low"] < -100


def test_elo_estimate_values() -> None:
    r = elo_estimate(30, 10, 10)  # score 0.7
    assert r["elo"] == pytest.approx(-400 * math.log10(1 / 0.7 - 1), abs=0.1)
    assert r["elo_low"] < r["elo"] < r["elo_high"]
    assert elo_from_score(0.76) == pytest.approx(200, abs=1)


def test_elo_estimate_sweeps_and_empty() -> None:
    assert elo_estimate(10, 0, 0)["elo_high"] is None and elo_estimate(0, 0, 10)["elo_low"] is None
    sweep = elo_estimate(8, 0, 0)
    assert sweep["score"] == 1.0 and sweep["elo"] is None and sweep["elo_high"] is None and sweep["elo_low"] > 0
    lost = elo_estimate(0, 0, 8)
    assert lost["elo"] is None and lost["elo_high"] < 0
    assert elo_estimate(0, 0, 0)["score"] is None


def test_wilson_interval_contains_the_score() -> None:
    low, high = wilson_interval(0.3, 50)
    assert 0 < low < 0.3 < high < 1
    assert wilson_interval(0.5, 0) == (0.0, 1.0)
