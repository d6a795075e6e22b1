"""The shared-prefix SFT forward gives TRL's loss, gradients and metrics, and falls back where it must.

Run: ``pytest tests/sft/test_shared_prefix.py`` (~20 s: tiny random Llama and GPT-2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sparring.config_io import load_config
from sparring.rundir import RunDir
from sparring.sft.shared_prefix import common_prefix_length
from sparring.tracking import Tracker

SYSTEM = "You tell dad jokes. Every joke is a question line and an answer line that turns on a pun."


def write_data(path: Path, n: int = 16) -> Path:
    topics = ["cats", "a big red barn", "socks", "the moon", "soup", "trains", "clocks", "owls"]
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Tell me a dad joke about {topics[i % len(topics)]} number {i}."},
                {"role": "assistant", "content": f"Q: Why did thing {i} nap?\nA: It was {'very ' * (i % 3)}tired."},
            ]}) + "\n")
    return path


def config_for(tmp_path: Path, arch: str = "llama", *extra: str):
    return load_config(None, [
        f"model.name=tiny-random-{arch}", f"data.source={write_data(tmp_path / 'data.jsonl')}", f"output_dir={tmp_path / 'runs'}",
        "model.max_seq_len=128", "sft.batch_size=4", "sft.max_steps=2", "data.val_fraction=0.0",
        "sft.lora.r=4", "sft.lora.alpha=8", "sft.lora.dropout=0.0", "sft.bf16=false", *extra,
    ])


def trainer_for(tmp_path: Path, arch: str = "llama"):
    from sparring.sft.trainer import build_trainer

    cfg = config_for(tmp_path, arch)
    run = RunDir.create(cfg, ["test"])
    with Tracker(run, cfg) as tracker:
        return build_trainer(cfg, run, tracker).trainer


def one_batch(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    return {k: v for k, v in batch.items()}


def loss_and_grads(trainer, batch, shared: bool):
    model = trainer.model
    model.zero_grad()
    trainer.shared_prefix_ok = shared
    loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=None)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def test_common_prefix_length_stops_at_the_first_difference_or_padding():
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 1, 0], [5, 6, 7, 8, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    assert common_prefix_length(ids, mask) == 3
    assert common_prefix_length(ids[[0, 2]], mask[[0, 2]]) == 4  # row 2's pad ends the shared part
    assert common_prefix_length(ids[:1], mask[:1]) == 5


def test_shared_prefix_loss_and_gradients_equal_trls(tmp_path: Path):
    trainer = trainer_for(tmp_path)
    batch = one_batch(trainer)
    n = trainer._prefix_to_share(batch)
    assert n >= 16, "the chat template + system prompt should be shared by every row"
    torch.manual_seed(0)
    ref_loss, ref_grads = loss_and_grads(trainer, batch, shared=False)
    assert trainer.shared_prefix_stats["shared"] == 0
    got_loss, got_grads = loss_and_grads(trainer, batch, shared=True)
    assert trainer.shared_prefix_stats["shared"] == 1 and trainer.shared_prefix_stats["tokens_saved"] > 0
    torch.testing.assert_close(got_loss, ref_loss, rtol=1e-5, atol=1e-5)
    assert ref_grads.keys() == got_grads.keys() and ref_grads
    for name in ref_grads:
        torch.testing.assert_close(got_grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    # the metrics TRL logs are recorded on this path too, and agree with TRL's
    acc = trainer._metrics["train"]["mean_token_accuracy"]
    assert len(acc) == 2 and acc[0] == pytest.approx(acc[1], abs=1e-6)


def test_sft_stage_trains_on_the_shared_prefix(tmp_path: Path):
    from sparring.sft.trainer import run_sft

    cfg = config_for(tmp_path)
    run = RunDir.create(cfg, ["test"])
    with Tracker(run, cfg) as tracker:
        summary = run_sft(cfg, run, tracker)
    assert summary["steps"] == 2 and summary["train_loss"] > 0
    assert summary["shared_prefix"]["shared"] >= 2 and summary["shared_prefix"]["tokens_saved"] > 0
    assert summary["tokens"] > 0  # TRL's token count still advances on this path


def test_falls_back_without_a_prefix_to_share(tmp_path: Path):
    trainer = trainer_for(tmp_path, "gpt2")  # absolute positions: a shifted suffix would change the result
    assert not trainer.shared_prefix_ok
    batch = one_batch(trainer)
    assert trainer._prefix_to_share(batch) == 0
    (tmp_path / "llama").mkdir()
    llama = trainer_for(tmp_path / "llama")
    batch = one_batch(llama)
    labels = batch["labels"].clone()
    labels[0, 2] = batch["input_ids"][0, 2]  # a trained token inside the shared part: not exact, so TRL's path
    assert llama._prefix_to_share({**batch, "labels": labels}) == 0
    llama.min_shared_prefix = 10_000
    assert llama._prefix_to_share(batch) == 0
