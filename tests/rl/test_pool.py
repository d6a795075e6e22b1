"""RolloutPool with the hf engine: prompts sharded over 2 actors come back ordered by (prompt, k),
exactly once each, identical to what one engine produces from the same seeds; LoRA state reaches
the workers through the object store; max_staleness decides when to sync."""

from __future__ import annotations

import pytest

from sparring.envs.base import make_env
from sparring.errors import UserInputError
from sparring.rl.engines.base import SamplingParams, completion_seed, make_engine
from sparring.rl.policy_sync import learner_probe, make_policy_update
from sparring.rl.pool import RolloutPool

from .conftest import lora_policy, make_rl_config


@pytest.fixture(scope="module")
def cfg():
    return make_rl_config(engine="hf", max_staleness=1)


@pytest.fixture(scope="module")
def pool(ray_cluster, tiny_base, cfg):
    with RolloutPool(cfg, tiny_base) as p:
        yield p


@pytest.fixture(scope="module")
def prompts():
    return list(make_env("jokes").prompts("train", seed=1))[:5]


def test_generate_returns_every_sample_once_in_prompt_then_k_order(pool, cfg, prompts):
    sampling = SamplingParams.from_config(cfg.rl.rollout, cfg.seed)
    samples = pool.generate(prompts, 3, sampling, step=2)
    assert [s.sample_id for s in samples] == [f"2-{p.id}-{k}" for p in prompts for k in range(3)]
    assert {s.worker_id for s in samples} == {"rollout-0", "rollout-1"}  # both actors worked
    stats = pool.last_stats
    assert stats["samples"] == 15 and stats["duplicates_dropped"] == 0 and stats["redispatched"] == 0
    assert stats["completion_tokens"] == sum(len(s.completion_ids) for s in samples) and stats["tokens_per_second"] > 0
    assert stats["gen_seconds"] > 0 and stats["reward_seconds"] > 0


def test_samples_do_not_depend_on_which_worker_made_them(pool, cfg, prompts, tiny_base, tiny_tokenizer):
    sampling = SamplingParams.from_config(cfg.rl.rollout, cfg.seed)
    samples = pool.generate(prompts[:3], 2, sampling, step=9)
    local = make_engine("hf", tiny_base)
    for prompt in prompts[:3]:
        ids = [s for s in samples if s.prompt_id == prompt.id][0].prompt_ids
        seeds = [[completion_seed(cfg.seed, 9, prompt.id, k) for k in range(2)]]
        expected = local.generate([ids], 2, sampling, seeds)[0]
        assert [s.completion_ids for s in samples if s.prompt_id == prompt.id] == [c.ids for c in expected]


def test_lora_sync_through_the_object_store_and_max_staleness(pool, cfg, prompts, tiny_base, tiny_tokenizer, tmp_path):
    assert pool.version == -1 and pool.needs_sync(0) is False  # lag 1 <= max_staleness 1
    assert pool.needs_sync(1) is True
    policy = lora_policy(tiny_base, seed=3)
    update = make_policy_update(policy, tiny_tokenizer, 1, "hf", tmp_path)
    reports = pool.sync(1, update, learner_probe(policy, tiny_tokenizer, pool.probe_ids, pool.probe_start))
    assert [r.worker_id for r in reports] == ["rollout-0", "rollout-1"]
    assert all(r.version == 1 and r.checksum == update.checksum and r.probe_gap < 1e-4 for r in reports)
    assert pool.last_sync_stats["kind"] == "lora" and pool.last_sync_stats["nbytes"] == update.nbytes
    assert pool.staleness(2) == 1 and not pool.needs_sync(2)
    samples = pool.generate(prompts[:2], 2, SamplingParams.from_config(cfg.rl.rollout, cfg.seed), step=3)
    assert {s.policy_version for s in samples} == {1}


def test_shards_fill_an_engine_batch_while_every_worker_gets_one():
    from types import SimpleNamespace

    def sizes(workers: int, items: int, per_call: int) -> list[int]:
        return [len(s) for s in RolloutPool._shards(SimpleNamespace(workers=[None] * workers), list(range(items)), per_call)]

    assert sizes(1, 2, 4) == [2]  # one actor batching 4 groups: both prompts in one call
    assert sizes(2, 2, 4) == [1, 1]  # two actors: one prompt each
    assert sizes(2, 8, 4) == [4, 4]
    assert sizes(2, 8, 1) == [2, 2, 2, 2]  # an engine without batching: two shards per worker
    assert sizes(2, 20, 4) == [5, 5, 5, 5]


def test_duplicate_prompt_ids_in_one_step_are_refused(pool, prompts):
    with pytest.raises(ValueError, match="prompt ids must be unique"):
        pool.generate([prompts[0], prompts[0]], 2, SamplingParams(max_new_tokens=4), step=0)


def test_vllm_pool_without_cuda_fails_before_any_actor_starts(tiny_base):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserInputError, match="engine vllm needs CUDA"):
        RolloutPool(make_rl_config(engine="vllm"), tiny_base)
