"""Chess self-play GRPO against the real Stockfish: the actors play games (vs Stockfish skill 0,
then vs an earlier checkpoint from the opponent pool), the positions the policy faced become GRPO
groups, game results and Elo estimates are logged, and the opponent pool lands in the checkpoint."""

from __future__ import annotations

from pathlib import Path

import json

import pytest

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_stage(config: str, overrides: list[str], init: str | None = None):
    from sparring.config_io import load_config
    from sparring.rl.stage import run_rl_in_new_run

    return run_rl_in_new_run(load_config(CONFIGS / config, overrides), init=init, argv=["test"])



def test_game_ledger_elo_estimates():
    from sparring.rl.chess_selfplay import GameLedger, known_elo, opponent_slug

    ledger = GameLedger()
    games = [{"opponent": "stockfish:elo=1400", "model_score": s, "plies": 10} for s in (1.0, 0.5, 0.0, 0.0)]
    out = ledger.add(games)
    assert out["chess/games"] == 4 and out["chess/score"] == pytest.approx(0.375)
    slug = opponent_slug("stockfish:elo=1400")
    assert slug == "stockfish_elo_1400" and known_elo("stockfish:elo=1400") == 1400.0
    assert out[f"chess/{slug}/elo_diff"] < 0 and out["chess/elo"] == pytest.approx(1400 + out[f"chess/{slug}/elo_diff"])
    assert out[f"chess/{slug}/elo_diff_low"] < out[f"chess/{slug}/elo_diff"] < out[f"chess/{slug}/elo_diff_high"]
    again = GameLedger(ledger.record).add([])  # a resumed run continues the record
    assert again[f"chess/{slug}/games"] == 4


def test_chess_selfplay_steps_against_stockfish(ray_cluster, tmp_path):
    from sparring.config_io import load_config
    from sparring.rl.checkpoint import latest_checkpoint

    overrides = [f"output_dir={tmp_path}", 'rl.selfplay_opponents=["stockfish:skill=0", "checkpoint"]', "rl.opponent_pool_every=1",
                 "env.options.max_plies=4"]
    cfg = load_config(CONFIGS / "tiny-chess.yaml", overrides)
    run, result, rows = run_stage("tiny-chess.yaml", overrides)
    assert result["algo"] == "chess-selfplay" and result["steps"] == 2
    assert [r["step"] for r in rows] == [1, 2]
    step1, step2 = rows
    # step 1: games against Stockfish skill 0, every faced position a group of num_generations candidate moves
    assert step1["chess/games"] >= 1 and step1["chess/stockfish_skill_0/games"] >= 1
    assert step1["chess/opponent_is_checkpoint"] == 0.0
    assert "chess/stockfish_skill_0/score" in step1
    for key in ("rl/legal_rate", "rl/reward/legal", "rl/reward/win_delta", "rl/reward/best_move", "rl/reward/parsed"):
        assert key in step1, key
    assert step1["rl/num_samples"] == cfg.rl.batch_size
    # step 2: the opponent is the checkpoint added to the pool after step 1
    assert step2["chess/opponent_is_checkpoint"] == 1.0
    # the ledger is cumulative: step 2 still reports the Stockfish record of step 1
    assert step2["chess/stockfish_skill_0/games"] == step1["chess/stockfish_skill_0/games"]

    samples = [json.loads(line) for line in (run.path / "samples.jsonl").read_text().splitlines()]
    by_prompt: dict[tuple[int, str], int] = {}
    for s in samples:
        by_prompt[(s["step"], s["prompt"])] = by_prompt.get((s["step"], s["prompt"]), 0) + 1
    assert set(by_prompt.values()) == {cfg.rl.num_generations}  # groups: k candidates per faced position

    ckpt, state = latest_checkpoint(run.path)
    assert state.algo == "chess-selfplay" and state.step == 2
    assert [e["version"] for e in state.opponent_pool] == [1, 2]
    assert all((ckpt / e["file"]).is_file() for e in state.opponent_pool)
    assert "stockfish:skill=0" in state.games and sum(state.games["stockfish:skill=0"].values()) >= 1
