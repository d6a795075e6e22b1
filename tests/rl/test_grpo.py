"""GRPO through real Ray rollout actors: TRL's GRPOTrainer fed by ``rollout_func``, rewards from the
actors, verified sync after every step, checkpoints, outputs and metrics (metrics.jsonl == W&B)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_stage(config: str, overrides: list[str], init: str | None = None):
    from sparring.config_io import load_config
    from sparring.rl.stage import run_rl_in_new_run

    return run_rl_in_new_run(load_config(CONFIGS / config, overrides), init=init, argv=["test"])



def test_truncated_is_weight_caps_and_ignores_unknown_tokens():
    import torch

    from sparring.rl.grpo import truncated_is_weight

    learner = torch.tensor([[-1.0, -1.0, -1.0, -1.0]])
    rollout = torch.tensor([[-1.0, -3.0, -0.5, float("nan")]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = truncated_is_weight(learner, rollout, mask, cap=2.0)
    assert w[0, 0] == pytest.approx(1.0)
    assert w[0, 1] == pytest.approx(2.0)  # exp(2) truncated at the cap
    assert w[0, 2] == pytest.approx(math.exp(-0.5))
    assert w[0, 3] == 1.0  # masked / unknown rollout logprob: no correction
    assert torch.isfinite(w).all()


@pytest.mark.parametrize("split_head, buckets", [(True, 1), (True, 2), (False, 2)], ids=["decoder-then-head", "two-length-buckets", "full-model-calls"])
def test_shared_prefix_logps_equal_the_per_row_forward(tiny_base, split_head, buckets, monkeypatch):
    """The batch's common prefix once, each prompt's remainder once, completions on the repeated KV
    cache == TRL's per-row forward: log-probabilities, entropies and LoRA gradients (rows shuffled,
    left-padded prompts of three lengths sharing 5 tokens, ragged completions); through the decoder
    with one vocabulary projection, with the completions split in two length buckets, and through
    whole-model calls (LMs that scale their logits)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sparring import kv_cache
    from sparring.kv_cache import decoder_and_head
    from sparring.rl import prefix_share
    from sparring.rl.prefix_share import common_length, shared_prefix_logps, supports_prefix_sharing

    gen = torch.Generator().manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "o_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    assert supports_prefix_sharing(model)
    assert decoder_and_head(model) is not None
    model.config.final_logit_softcapping = 30.0  # a forward that does more than lm_head(hidden): not split
    assert decoder_and_head(model) is None
    model.config.final_logit_softcapping = None
    if not split_head:
        monkeypatch.setattr(kv_cache, "decoder_and_head", lambda m: None)
    monkeypatch.setattr(prefix_share, "MIN_BUCKET_SAVING", 0.0 if buckets == 2 else 1.0)
    P, C, G, pad = 12, 6, 3, 2
    rows, masks, prompts = [], [], []
    head = torch.randint(5, 1000, (5,), generator=gen)  # like a system prompt every prompt starts with
    for length in (9, 12, 7):
        prompt = torch.cat([head, torch.randint(5, 1000, (length - 5,), generator=gen)])
        prompts.append(prompt)
        for g in range(G):
            n = C - g  # ragged completions
            rows.append(torch.cat([torch.full((P - length,), pad), prompt, torch.randint(5, 1000, (n,), generator=gen), torch.full((C - n,), pad)]))
            masks.append(torch.cat([torch.zeros(P - length), torch.ones(length + n), torch.zeros(C - n)]))
    perm = torch.randperm(len(rows), generator=gen)
    ids, mask = torch.stack(rows)[perm], torch.stack(masks).long()[perm]

    logits = model(input_ids=ids, attention_mask=mask).logits[:, -C - 1 : -1].float() / 0.7
    ref_all = torch.log_softmax(logits, -1)
    ref = ref_all.gather(-1, ids[:, -C:, None]).squeeze(-1)
    ref_entropy = -(ref_all.exp() * ref_all).sum(-1)
    assert common_length(prompts) == 5 and common_length(prompts[:1]) == 8  # one own token is always left
    assert len(prefix_share.length_buckets(mask[:, -C:].sum(1).tolist())) == buckets
    logps, entropy = shared_prefix_logps(model, ids, mask, C, temperature=0.7)
    keep = mask[:, -C:].bool()
    assert float((logps - ref)[keep].abs().max()) < 1e-4
    assert float((entropy - ref_entropy)[keep].abs().max()) < 1e-3
    assert logps.requires_grad and not entropy.requires_grad  # no graph kept for a logged-only entropy
    assert shared_prefix_logps(model, ids, mask, C, temperature=0.7, entropy_grad=True)[1].requires_grad  # an entropy bonus
    ref[keep].sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    logps[keep].sum().backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, expected[n], atol=1e-4, rtol=1e-3), n


def test_env_reward_reads_the_actor_column():
    from sparring.rl.grpo import env_reward

    assert env_reward(prompts=["a", "b"], completions=["x", "y"], env_reward=[0.5, -1.0]) == [0.5, -1.0]
    with pytest.raises(RuntimeError):
        env_reward(prompts=["a"], completions=["x"])


def test_prompt_book_maps_trl_chats_back_to_env_prompts():
    from sparring.rl.session import PromptBook
    from sparring.types import Prompt

    a = Prompt("a", ({"role": "user", "content": "Tell me a dad joke about bread."},), {"topic": "bread"})
    b = Prompt("b", ({"role": "user", "content": "Tell me a dad joke about cats."},), {"topic": "cats"})
    book = PromptBook([a, b, Prompt("a2", a.messages, {"topic": "bread"})])
    assert len(book.prompts) == 2  # identical chats are one prompt
    assert book.find([{"role": "user", "content": "Tell me a dad joke about cats."}]).meta["topic"] == "cats"
    with pytest.raises(KeyError):
        book.find([{"role": "user", "content": "something else"}])


def _init_adapter(base_dir: Path, out: Path) -> Path:
    """An "SFT" adapter on tiny-random-llama (random LoRA B, so it changes the policy)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(3)) * 0.05)
    model.save_pretrained(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "tiny-random-llama"
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def test_grpo_two_steps_through_ray_actors(ray_cluster, tiny_base, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from sparring.rl.checkpoint import checkpoint_problems, list_checkpoints
    from sparring.tracking import read_wandb_history

    monkeypatch.setenv("WANDB_MODE", "offline")
    init = _init_adapter(tiny_base, tmp_path / "sft-adapter")
    # reward = the validator's length gate (20+ characters): 3 random tokens pass it about half the time
    # (measured 0.55 over 200 samples), so of 4 groups of 4 all are uniform with p ~ 3e-4 and the GRPO
    # advantages are not all zero: the adapter must move; beta > 0: KL to the init policy
    run, result, rows = run_stage("tiny-jokes.yaml", [
        f"output_dir={tmp_path / 'runs'}", "rl.reward=length", "rl.rollout.max_new_tokens=3", "rl.batch_size=8", "rl.num_generations=4", "tracking.sample_table_rows=8", "rl.learning_rate=0.01", "rl.beta=0.05",
        "tracking.wandb.enabled=true", "tracking.wandb.project=sparring-test",
        "export.every_steps=2", "export.formats=[gguf]", "export.gguf_quants=[f32]",
    ], init=str(init))
    assert result["steps"] == 2 and result["policy_version"] == 2

    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        for key in ("rl/reward", "rl/reward/format", "rl/reward/length", "rl/pass_rate", "rl/entropy", "rl/kl", "rl/staleness",
                    "rl/is_weight", "rl/logprob_gap", "rl/loss", "time/generate_s", "time/reward_s", "time/learn_s", "time/sync_s"):
            assert key in r, key
        assert r["rl/staleness"] == 0.0  # max_staleness 0: every step samples the newest policy
        # hf engine in fp32: the actors' logprobs are the learner's, so the IS weight is 1 (the init
        # adapter carries lora_dropout 0.1: with rl.disable_dropout off, the learner's would be noisy)
        assert r["rl/logprob_gap"] < 1e-3 and r["rl/is_weight"] == pytest.approx(1.0, abs=1e-3)
    assert [r["rl/policy_version"] for r in rows] == [0.0, 1.0]
    assert any(r["rl/grad_norm"] > 0 for r in rows)

    samples = [json.loads(line) for line in (run.path / "samples.jsonl").read_text().splitlines()]
    assert {s["table"] for s in samples} == {"rl/samples"}
    assert {s["worker"] for s in samples} == {"rollout-0", "rollout-1"}  # both actors generated

    # RL continued the init adapter (same tensors, no reference copy leaked) and moved it
    final = load_file(run.path / "rl" / "final" / "adapter_model.safetensors")
    start = load_file(init / "adapter_model.safetensors")
    assert final.keys() == start.keys()
    assert max(float((final[k] - start[k]).abs().max()) for k in final) > 1e-6
    assert rows[0]["rl/kl"] == pytest.approx(0.0, abs=1e-6)  # step 1: the policy is the reference
    arts = {Path(a["path"]).name: a for a in run.manifest.artifacts}
    assert arts["final"]["verified"] and arts["merged"]["verified"]
    ckpts = list_checkpoints(run.path)
    assert [c.name for c in ckpts] == ["step-000001", "step-000002"]
    assert all(checkpoint_problems(c) == [] for c in ckpts)
    stage = run.manifest.read()["stages"]["rl"]
    assert stage["status"] == "done" and stage["summary"]["final"]["rl/reward"] == rows[-1]["rl/reward"]

    # the periodic export: a Ray task exported the step-2 snapshot to GGUF, verified, into the manifest
    exports = run.manifest.read()["rl_exports"]
    assert [e["step"] for e in exports] == [2], exports
    assert exports[0]["status"] == "ok", exports[0]
    assert exports[0]["learner_blocked_seconds"] < exports[0]["seconds"]  # training waited for the snapshot only
    gguf = [a for a in run.manifest.artifacts if a["format"].startswith("gguf") and "step-000002" in a["path"]]
    assert gguf and all(a["verified"] for a in gguf)

    # the same metric names in W&B as in metrics.jsonl
    offline = list((run.path / "wandb").glob("offline-run-*"))
    assert offline, "no offline W&B run written"
    history = read_wandb_history(next(offline[0].glob("*.wandb")), wait_s=30)
    wandb_keys = {k for row in history for k in row}
    assert {"rl/reward", "rl/reward/length", "rl/pass_rate", "time/learn_s", "rl/entropy"} <= wandb_keys
    assert {k for r in rows for k in r if k.startswith(("rl/", "time/"))} <= wandb_keys | {k for r in rows for k in r if r[k] is None}


def test_length_buckets_cut_where_it_saves_positions():
    from sparring.rl.prefix_share import length_buckets

    lengths = [48, 10, 12, 30, 48, 20, 25, 31, 40, 15, 18, 22, 35, 44, 9, 28]
    (short, w1), (long, w2) = length_buckets(lengths)
    assert sorted(short + long) == list(range(16)) and max(lengths[i] for i in short) <= min(lengths[i] for i in long)
    assert (w1, w2) == (max(lengths[i] for i in short), 48)
    assert len(short) * w1 + len(long) * w2 < 0.8 * 16 * 48  # >= 20% of the positions skipped
    assert length_buckets([6, 5, 4, 6, 5, 4]) == [([2, 5, 1, 4, 0, 3], 6)]  # too little to gain: one forward
    assert length_buckets([0, 0]) == [([0, 1], 1)] and length_buckets([3]) == [([0], 3)]  # the first token is always scored


def test_overlap_generates_the_next_batch_beside_the_step_and_never_across_a_checkpoint(ray_cluster, tiny_base, tmp_path):
    """rl.overlap_generation: step n + 1's batch is generated while the learner trains on step n,
    with the policy the actors hold then (one version behind); a checkpoint step prefetches nothing,
    so the step after it samples the newest policy, as a run resumed there does."""
    init = _init_adapter(tiny_base, tmp_path / "sft-adapter")
    run, result, rows = run_stage("tiny-jokes.yaml", [
        f"output_dir={tmp_path / 'runs'}", "rl.steps=4", "rl.checkpoint_every=2", "rl.overlap_generation=true",
        "rl.reward=length", "rl.rollout.max_new_tokens=3", "rl.batch_size=8", "rl.num_generations=4", "rl.learning_rate=0.01",
    ], init=str(init))
    assert result["steps"] == 4 and [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r["rl/policy_version"] for r in rows] == [0.0, 0.0, 2.0, 2.0]
    assert [r["rl/staleness"] for r in rows] == [0.0, 1.0, 0.0, 1.0]
    assert all(r["rl/prefetch_dropped"] == 0.0 for r in rows)  # every prefetched batch was the one TRL asked for
    assert any(r["rl/is_weight"] != pytest.approx(1.0, abs=1e-6) for r in rows[1::2])  # the stale steps are reweighted


def test_overlap_takes_a_prefetched_batch_only_for_its_own_step_and_groups():
    from types import SimpleNamespace

    from sparring.rl.overlap import NextBatch, PromptSchedule

    calls = []

    class Pool:
        def generate(self, groups, n, sampling, step):
            calls.append((step, [g.id for g in groups]))
            return [f"{step}-{g.id}-{k}" for g in groups for k in range(n)]

    a, b = SimpleNamespace(id="a"), SimpleNamespace(id="b")
    ahead = NextBatch(Pool(), sampling=None, n=2)
    ahead.start(2, [a, b])
    assert ahead.take(2, [a, b]) == ["2-a-0", "2-a-1", "2-b-0", "2-b-1"]
    assert ahead.take(3, [a]) is None  # nothing in flight
    ahead.start(3, [a])
    assert ahead.take(3, [b]) is None and ahead.mispredicted == 1  # TRL asked for other prompts: dropped
    assert calls == [(2, ["a", "b"]), (3, ["a"])]

    # the schedule reads a sampler epoch after epoch, each step's rows in order
    class Sampler:
        epoch = 0

        def __iter__(self):
            Sampler.epoch += 1
            return iter([10 * Sampler.epoch + i for i in (0, 0, 1, 1)])

    schedule = PromptSchedule(Sampler(), rows_per_step=4)
    assert schedule.groups(2, 2) == [20, 21] and schedule.groups(1, 2) == [10, 11] and schedule.rows(3) == [30, 30, 31, 31]
