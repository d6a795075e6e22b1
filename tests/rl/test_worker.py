"""RolloutWorker actors: samples carry every field with rewards computed in the actor; chess
self-play turns each faced position into a Stockfish-scored group; a Stockfish crash inside the
actor is recovered there."""

from __future__ import annotations

import os
import signal

import pytest
import ray

from sparring.envs.base import make_env
from sparring.rl.engines.base import SamplingParams
from sparring.rl.worker import PolicyVersionMismatch, RolloutWorker

from .conftest import make_rl_config

CHESS_OPTIONS = {"max_plies": 8, "nodes": 300, "model_color": "black", "opponent": "stockfish:skill=0"}


@pytest.fixture(scope="module")
def jokes_worker(ray_cluster, tiny_base):
    cfg = make_rl_config(engine="llamacpp")
    worker = RolloutWorker.options(num_cpus=1).remote("worker-jokes", cfg.model_dump(mode="json"), str(tiny_base), "llamacpp", {"quant": "q8_0"})
    yield worker, cfg
    ray.kill(worker, no_restart=True)


@pytest.fixture(scope="module")
def chess_worker(ray_cluster, tiny_base):
    cfg = make_rl_config(engine="llamacpp", env="chess", env_options=CHESS_OPTIONS)
    worker = RolloutWorker.options(num_cpus=1).remote("worker-chess", cfg.model_dump(mode="json"), str(tiny_base), "llamacpp", {"quant": "q8_0"})
    yield worker, cfg
    ray.kill(worker, no_restart=True)


def test_samples_carry_ids_tokens_logprobs_and_the_envs_rewards(jokes_worker, tiny_tokenizer):
    worker, cfg = jokes_worker
    env = make_env("jokes")
    prompts = list(env.prompts("train", seed=0))[:2]
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, seed=cfg.seed)
    samples = ray.get(worker.generate.remote([p.to_dict() for p in prompts], 2, sampling, 4))
    assert [s.sample_id for s in samples] == [f"4-{p.id}-{k}" for p in prompts for k in range(2)]
    fresh = make_env("jokes")  # same scoring history as the actor's env: rewards must match
    for s, prompt in zip(samples, [p for p in prompts for _ in range(2)]):
        rendered = tiny_tokenizer.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True)
        assert s.prompt_id == prompt.id
        assert s.prompt_ids == tiny_tokenizer(rendered, add_special_tokens=False)["input_ids"]
        assert 1 <= len(s.completion_ids) <= 8 and len(s.logprobs) == len(s.completion_ids)
        assert s.completion == tiny_tokenizer.decode(s.completion_ids, skip_special_tokens=True)
        expected = fresh.score(prompt, s.completion)
        assert s.reward == pytest.approx(expected.total) and s.components == pytest.approx(expected.components)
        assert {"format", "clean", "novelty", "pun"} <= set(s.components)
        assert s.policy_version == -1 and s.worker_id == "worker-jokes"
        assert s.gen_seconds > 0 and s.reward_seconds > 0


def test_prompts_decoded_in_one_batch_sample_what_each_samples_alone(jokes_worker, tiny_tokenizer):
    from sparring.rl.worker import head_token_ids

    worker, cfg = jokes_worker
    prompts = list(make_env("jokes").prompts("train", seed=1))[:3]
    assert all(head_token_ids(tiny_tokenizer, p.messages) for p in prompts)  # a system prompt to share
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, seed=cfg.seed)
    together = ray.get(worker.generate.remote([p.to_dict() for p in prompts], 2, sampling, 5))
    alone = [s for p in prompts for s in ray.get(worker.generate.remote([p.to_dict()], 2, sampling, 5))]
    assert [s.sample_id for s in together] == [s.sample_id for s in alone]
    assert [s.completion_ids for s in together] == [s.completion_ids for s in alone]
    assert [s.logprobs for s in together] == [s.logprobs for s in alone]


def test_worker_refuses_to_generate_for_another_policy_version(jokes_worker):
    worker, _ = jokes_worker
    prompt = next(make_env("jokes").prompts("train", seed=0))
    with pytest.raises(PolicyVersionMismatch, match="holds policy version -1, the pool expects 3"):
        ray.get(worker.generate.remote([prompt.to_dict()], 2, SamplingParams(max_new_tokens=4), 0, 3))
    info = ray.get(worker.ping.remote())
    assert info["version"] == -1 and info["engine"] == "llamacpp"


def test_chess_selfplay_groups_every_faced_position_scored_by_stockfish(chess_worker):
    worker, cfg = chess_worker
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, seed=cfg.seed)
    out = ray.get(worker.selfplay_groups.remote(3, 2, "stockfish:skill=0", 1, sampling, list(range(100, 110))))
    samples, games = out["samples"], out["games"]
    assert out["positions"] == 3 and len(samples) == 6
    positions = list(dict.fromkeys(s.prompt_id for s in samples))
    assert len(positions) == 3
    for pid in positions:
        group = [s for s in samples if s.prompt_id == pid]
        assert [s.sample_id for s in group] == [f"1-{pid}-0", f"1-{pid}-1"]
        for s in group:
            assert {"parsed", "legal", "win_delta", "best_move"} == set(s.components)
            assert -1.0 <= s.reward <= 0.2
    assert games and all(g["result"] in ("1-0", "0-1", "1/2-1/2") for g in games)
    assert all(g["model_color"] == "black" and g["opponent"] == "stockfish:skill=0" for g in games)


def test_a_stockfish_crash_inside_the_actor_is_recovered_there(chess_worker):
    worker, cfg = chess_worker
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, seed=cfg.seed)
    ray.get(worker.selfplay_groups.remote(1, 2, "stockfish:skill=0", 2, sampling, [200, 201]))
    pids = ray.get(worker.referee_pids.remote())
    assert pids, "the actor runs its own Stockfish"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out = ray.get(worker.selfplay_groups.remote(2, 2, "stockfish:skill=0", 3, sampling, [300, 301, 302]))
    assert len(out["samples"]) == 4 and out["games"]
    new_pids = ray.get(worker.referee_pids.remote())
    assert new_pids and not set(new_pids) & set(pids)
