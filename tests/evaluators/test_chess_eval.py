"""The chess evaluation with real Stockfish: baselines on positions, puzzles and a short match."""

from __future__ import annotations

import pytest

from sparring.envs.chess_env import ChessEnv, ChessOptions
from sparring.evaluators.chess_eval import (
    chess_report_markdown, evaluate_chess, pick_puzzles, random_policy, stockfish_policy,
)


@pytest.fixture(scope="module")
def env():
    with ChessEnv(ChessOptions(count=5, max_plies=16)) as e:  # eval takes its own count of positions
        yield e


@pytest.fixture(scope="module")
def baselines(env: ChessEnv):
    sf = stockfish_policy()
    try:
        yield {
            "random": evaluate_chess(random_policy(0), env, positions=12, puzzles=8, games=2, opponents=("random",), seed=0),
            "stockfish": evaluate_chess(sf, env, positions=12, puzzles=8, seed=0),
        }
    finally:
        sf.close()


def test_stockfish_beats_random_on_best_move_accuracy_acpl_and_puzzles(baselines) -> None:
    rnd, sf = baselines["random"], baselines["stockfish"]
    assert rnd["positions"]["positions"] == sf["positions"]["positions"] == 12
    assert rnd["positions"]["legal_rate"] == sf["positions"]["legal_rate"] == 1.0
    assert sf["positions"]["best_move_accuracy"] > rnd["positions"]["best_move_accuracy"]
    assert sf["positions"]["acpl"] < rnd["positions"]["acpl"]
    assert sf["positions"]["blunders_per_100"] <= rnd["positions"]["blunders_per_100"]
    assert sf["puzzles"]["accuracy"] > rnd["puzzles"]["accuracy"]


def test_report_sections_and_fields(baselines) -> None:
    rnd = baselines["random"]
    pos = rnd["positions"]
    assert sum(pos["status_counts"].values()) == 12 and len(pos["samples"]) == 12
    assert set(pos["move_classes"]) == {"best", "good", "inaccuracy", "mistake", "blunder"}
    puzzles = rnd["puzzles"]
    assert puzzles["puzzles"] == 8 and sum(b["puzzles"] for b in puzzles["by_rating"].values()) == 8
    assert len(puzzles["by_rating"]) == 4  # drawn evenly across the rating buckets
    match = rnd["matches"]["random"]
    assert match["games"] == 2 and match["wins"] + match["draws"] + match["losses"] == 2
    assert {"elo", "elo_low", "elo_high", "score", "sample_pgn"} <= set(match)
    assert "stockfish" not in baselines["stockfish"].get("matches", {})
    markdown = chess_report_markdown(rnd)
    assert "| random |" in markdown and "best move" in markdown and ">=2000" in markdown


def test_a_policy_that_never_answers_a_move_forfeits_everything(env: ChessEnv) -> None:
    report = evaluate_chess(lambda prompts: ["I resign."] * len(prompts), env, positions=4, puzzles=2, games=2,
                            opponents=("random",))
    assert report["positions"]["legal_rate"] == 0.0 and report["positions"]["acpl"] is None
    assert report["positions"]["status_counts"]["unparseable"] == 4
    assert report["puzzles"]["accuracy"] == 0.0
    match = report["matches"]["random"]
    assert match["losses"] == 2 and match["forfeits"] == 2 and match["elo"] is None


def test_generate_fn_must_answer_every_prompt(env: ChessEnv) -> None:
    with pytest.raises(ValueError, match="completions"):
        evaluate_chess(lambda prompts: [], env, positions=2)


def test_puzzle_pick_is_seeded_and_even() -> None:
    a, b = pick_puzzles(40, seed=1), pick_puzzles(40, seed=1)
    assert [p.id for p in a] == [p.id for p in b] and [p.id for p in a] != [p.id for p in pick_puzzles(40, seed=2)]
    ratings = [p.rating for p in a]
    assert sum(r < 1000 for r in ratings) == sum(r >= 2000 for r in ratings) == 10
