"""Rollout engines on tiny-random-llama: hf (transformers + PEFT) and llamacpp (GGUF + hot-swapped
LoRA adapter) generate with per-token logprobs, are seeded per completion, take a LoRA update whose
checksum and probe match the learner; vllm refuses to start without CUDA."""

from __future__ import annotations

import numpy as np
import pytest

from sparring.errors import UserInputError
from sparring.rl.engines.base import SamplingParams, completion_seed, make_engine, sample_token
from sparring.rl.policy_sync import compare_probes, learner_probe, make_policy_update, probe_gap, probe_token_ids

from .conftest import lora_policy

ENGINES = ("hf", "llamacpp")


@pytest.fixture(scope="module")
def engines(tiny_base):
    built = {name: make_engine(name, tiny_base, threads=1, options={"quant": "q8_0"}) for name in ENGINES}
    yield built
    for engine in built.values():
        engine.close()


@pytest.fixture(scope="module")
def prompt_ids(tiny_tokenizer):
    texts = ["Tell me a dad joke about bread.", "What is the best reply to 1. e4?"]
    out = []
    for text in texts:
        rendered = tiny_tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        out.append(tiny_tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return out


@pytest.mark.parametrize("name", ENGINES)
def test_generate_returns_completions_with_logprobs_of_the_sampled_tokens(engines, prompt_ids, name):
    engine = engines[name]
    sampling = SamplingParams(max_new_tokens=12, temperature=1.0, seed=3)
    groups = engine.generate(prompt_ids, 3, sampling)
    assert [len(g) for g in groups] == [3, 3]
    for prompt, group in zip(prompt_ids, groups):
        for c in group:
            assert 1 <= len(c.ids) <= 12 and len(c.logprobs) == len(c.ids)
            assert all(lp <= 0.0 for lp in c.logprobs)
            assert c.finish_reason in ("stop", "length")
            assert c.text == engine.tokenizer.decode(c.ids, skip_special_tokens=True)
            # the recorded logprobs are the policy's own: teacher forcing the same tokens agrees
            forced = engine.logprobs(prompt + c.ids, len(prompt))
            assert np.allclose(forced, c.logprobs, atol=2e-3)
        assert len({tuple(c.ids) for c in group}) > 1  # different seeds, different samples


@pytest.mark.parametrize("name", ENGINES)
def test_a_completion_depends_on_its_seed_only_not_on_its_batch(engines, prompt_ids, name):
    engine = engines[name]
    sampling = SamplingParams(max_new_tokens=10, temperature=1.0, seed=0)
    seeds = [[completion_seed(7, 3, "a", k) for k in range(3)], [completion_seed(7, 3, "b", k) for k in range(3)]]
    both = engine.generate(prompt_ids, 3, sampling, seeds)
    alone = engine.generate(prompt_ids[1:], 3, sampling, seeds[1:])
    assert [c.ids for c in both[1]] == [c.ids for c in alone[0]]
    again = engine.generate(prompt_ids, 3, sampling, seeds)
    assert [[c.ids for c in g] for g in again] == [[c.ids for c in g] for g in both]


def test_llamacpp_q8_runs_the_same_policy_as_transformers(engines, tiny_tokenizer):
    ids, start = probe_token_ids(tiny_tokenizer)
    gap = probe_gap(engines["llamacpp"].logprobs(ids, start), engines["hf"].logprobs(ids, start))
    assert gap < 0.01


@pytest.mark.parametrize("name", ENGINES)
def test_lora_update_reaches_the_engine_checksum_and_probe_match_the_learner(engines, tiny_base, tiny_tokenizer, tmp_path, name):
    engine = engines[name]
    ids, start = probe_token_ids(tiny_tokenizer)
    policy = lora_policy(tiny_base, seed=11)
    reference = learner_probe(policy, tiny_tokenizer, ids, start)
    assert reference.base is not None  # the learner's base: the same model with the adapter off
    before = engine.probe(ids, start)
    update = make_policy_update(policy, tiny_tokenizer, 5, name, tmp_path)
    assert update.kind == ("lora" if name == "hf" else "gguf")
    checksum = engine.load_policy(update)
    assert checksum == update.checksum and engine.version == 5
    after = engine.probe(ids, start)
    synced, stale = compare_probes(after, reference), compare_probes(before, reference)
    assert synced.delta_gap < 0.01 and synced.gap < 0.01 and synced.base_noise < 0.01
    assert stale.delta_gap is None and stale.gap > 0.01  # no adapter yet: compared as a whole
    # a second version is hot-swapped in place of the first
    policy2 = lora_policy(tiny_base, seed=12)
    update2 = make_policy_update(policy2, tiny_tokenizer, 6, name, tmp_path)
    assert engine.load_policy(update2) == update2.checksum != checksum
    reference2 = learner_probe(policy2, tiny_tokenizer, ids, start)
    probe2 = engine.probe(ids, start)
    assert compare_probes(probe2, reference2).delta_gap < 0.01
    assert compare_probes(after, reference2).delta_gap > 0.01  # the previous version is told apart
    # the base half (computed once per engine) still matches the learner's base after the swap
    assert probe_gap(probe2.base, reference2.base) < 0.01 and probe_gap(probe2.policy, probe2.base) > 0.01


def test_learner_probe_base_cache_keeps_the_base_and_follows_the_policy(tiny_base, tiny_tokenizer):
    ids, start = probe_token_ids(tiny_tokenizer)
    cache: dict = {}
    first = learner_probe(lora_policy(tiny_base, seed=11), tiny_tokenizer, ids, start, base_cache=cache)
    policy2 = lora_policy(tiny_base, seed=12)
    second = learner_probe(policy2, tiny_tokenizer, ids, start, base_cache=cache)
    fresh = learner_probe(policy2, tiny_tokenizer, ids, start)
    assert len(cache) == 1 and second.base == first.base
    assert probe_gap(second.base, fresh.base) < 1e-6 and second.policy == pytest.approx(fresh.policy, abs=1e-6)


@pytest.mark.parametrize("name", ENGINES)
def test_a_policy_without_lora_arrives_whole(tiny_base, tiny_tokenizer, tmp_path, name):
    """No adapter: hf gets the full state dict, llamacpp a merged GGUF it writes and reloads."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    with torch.no_grad():
        model.model.layers[0].self_attn.o_proj.weight.mul_(3.0)
    ids, start = probe_token_ids(tiny_tokenizer)
    reference = learner_probe(model, tiny_tokenizer, ids, start)
    assert reference.base is None
    engine = make_engine(name, tiny_base, threads=1)
    try:
        before = compare_probes(engine.probe(ids, start), reference).gap
        update = make_policy_update(model, tiny_tokenizer, 2, name, tmp_path)
        assert (update.kind, update.payload.get("role")) == (("full", None) if name == "hf" else ("gguf", "model"))
        assert engine.load_policy(update) == update.checksum
        assert compare_probes(engine.probe(ids, start), reference).gap < 0.01 < before
    finally:
        engine.close()


def test_sampler_greedy_and_nucleus():
    rng = np.random.default_rng(0)
    logits = np.array([0.0, 5.0, 4.0, -2.0], dtype=np.float32)
    token, logp = sample_token(logits, 0.0, 1.0, rng)
    assert token == 1 and logp == pytest.approx(float(logits[1] - np.log(np.exp(logits.astype(np.float64)).sum())), abs=1e-6)
    drawn = {sample_token(logits, 1.0, 0.5, rng)[0] for _ in range(50)}
    assert drawn == {1}  # token 1 alone holds more than half of the mass
    drawn = {sample_token(logits, 1.0, 1.0, rng)[0] for _ in range(300)}
    assert {1, 2} <= drawn


def test_vllm_without_cuda_is_a_user_error(tiny_base):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserInputError, match="engine vllm needs CUDA; use llamacpp or hf"):
        make_engine("vllm", tiny_base)


def test_bad_sampling_and_engine_names_are_user_errors(tiny_base):
    with pytest.raises(UserInputError, match="temperature"):
        SamplingParams(temperature=-1.0)
    with pytest.raises(UserInputError, match="unknown engine"):
        make_engine("llamacpp2", tiny_base)
