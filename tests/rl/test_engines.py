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


def test_llamacpp_flash_attention_is_an_option_that_reaches_llamacpp(engines, tiny_base, tiny_tokenizer):
    """Off by default (the faster CPU kernel); on when asked: both compute the policy transformers
    does, and they differ from each other (the option reaches llama.cpp)."""
    ids, start = probe_token_ids(tiny_tokenizer)
    off = engines["llamacpp"].logprobs(ids, start)
    engine = make_engine("llamacpp", tiny_base, threads=1, options={"quant": "q8_0", "flash_attn": True})
    try:
        on = engine.logprobs(ids, start)
    finally:
        engine.close()
    hf = engines["hf"].logprobs(ids, start)
    assert probe_gap(off, hf) < 0.01 and probe_gap(on, hf) < 0.01
    assert probe_gap(on, off) > 1e-5


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


def test_sampler_draws_from_the_softmax_across_vocabulary_blocks():
    from sparring.rl.engines.base import SAMPLE_BLOCK, log_softmax

    rng = np.random.default_rng(0)
    levels = np.array([0.0, 1.0, 2.0, -1.0, 0.5], dtype=np.float32)
    logits = np.tile(levels, 130)  # 650 tokens: two full blocks and a padded third
    logits[SAMPLE_BLOCK + 7] = -np.inf  # a masked token is never drawn
    probs = np.exp(log_softmax(logits / 0.7))
    draws = [sample_token(logits, 0.7, 1.0, rng) for _ in range(30000)]
    tokens = np.array([t for t, _ in draws])
    assert tokens.max() < logits.size and SAMPLE_BLOCK + 7 not in set(tokens.tolist())
    assert all(abs(lp - float(np.log(probs[t]))) < 1e-5 for t, lp in draws[:200])
    for expected, observed in ((probs[i::5].sum(), np.isin(tokens % 5, [i]).mean()) for i in range(5)):  # mass per logit level
        assert abs(observed - expected) < 5 * np.sqrt(expected / len(tokens))
    for b in range(3):  # mass per block
        expected = probs[b * SAMPLE_BLOCK : (b + 1) * SAMPLE_BLOCK].sum()
        assert abs(np.mean(tokens // SAMPLE_BLOCK == b) - expected) < 5 * np.sqrt(expected / len(tokens))


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


@pytest.fixture(scope="module")
def chats_sharing_a_head(tiny_tokenizer):
    """Three chats with the same system prompt and example turn and different last questions, as
    prompt ids, and the token length of that shared head."""
    from sparring.rl.worker import head_token_ids

    head = [{"role": "system", "content": "You answer with one short dad joke about the topic you are given."},
            {"role": "user", "content": "Topic: bread"}, {"role": "assistant", "content": "Q: Why did the loaf rise? A: It kneaded to."}]
    prompts = []
    for topic in ("chess", "the moon", "umbrellas"):
        messages = head + [{"role": "user", "content": f"Topic: {topic}"}]
        text = tiny_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
    head_ids = head_token_ids(tiny_tokenizer, head + [{"role": "user", "content": "Topic: chess"}])
    assert 0 < len(head_ids) < min(map(len, prompts)) and all(p[: len(head_ids)] == head_ids for p in prompts)
    assert head_token_ids(tiny_tokenizer, head[:1]) == []  # a one-message chat has no head to share
    return prompts, len(head_ids)


def test_llamacpp_decodes_a_shared_head_once_and_the_groups_as_one_batch(engines, chats_sharing_a_head, monkeypatch):
    engine = engines["llamacpp"]
    prompts, k = chats_sharing_a_head
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, seed=1)
    seeds = [[completion_seed(1, 0, str(i), j) for j in range(2)] for i in range(3)]
    calls: list[int] = []
    decode = engine.c.decode
    monkeypatch.setattr(engine.c, "decode", lambda tokens, *a, **kw: calls.append(len(tokens)) or decode(tokens, *a, **kw))
    groups = engine.generate(prompts, 2, sampling, seeds, prefix_lens=[k] * 3)
    rows = [c for g in groups for c in g]
    # the head once, each prompt's rest once, then one token per live row per step (the last sampled one is not decoded)
    assert sum(calls) == k + sum(len(p) - k for p in prompts) + sum(len(c.ids) - 1 for c in rows)
    steps = max(len(c.ids) for c in rows) - 1
    assert len(calls) == 1 + len(prompts) + steps  # every step of the 6 rows is one batch
    # split at its own head, a prompt samples the same whatever else is in the batch, and the batch
    # respects n_seq_max (2 groups of 2 per call) without changing a token
    alone = [engine.generate([p], 2, sampling, [s], prefix_lens=[k])[0] for p, s in zip(prompts, seeds)]
    assert [[c.ids for c in g] for g in groups] == [[c.ids for c in g] for g in alone]
    assert engine.groups_per_call(2) == engine.n_seq_max // 2
    monkeypatch.setattr(engine, "n_seq_max", 4)
    assert [[c.ids for c in g] for g in engine.generate(prompts, 2, sampling, seeds, prefix_lens=[k] * 3)] == [[c.ids for c in g] for g in groups]
    monkeypatch.setattr(engine, "n_seq_max", 1)  # a group of more rows than a batch holds: its rows in chunks
    assert [[c.ids for c in g] for g in engine.generate(prompts, 2, sampling, seeds, prefix_lens=[k] * 3)] == [[c.ids for c in g] for g in groups]
    with pytest.raises(UserInputError, match="exceeds the llama.cpp context"):
        engine.generate([prompts[0] * 400], 2, sampling, seeds[:1])
    # the recorded logprobs are still the policy's own (teacher forcing decodes the prompt in one
    # piece, the split prompt a little differently: llama.cpp's kernels depend on the batch size)
    for p, g in zip(prompts, groups):
        for c in g:
            assert np.allclose(engine.logprobs(p + c.ids, len(p)), c.logprobs, atol=1e-2)
