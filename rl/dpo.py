"""Iterative DPO: sample on the actors, pair best against worst, train a round with TRL, sync, repeat.

    sparring rl configs/chess.yaml --algo dpo --rounds 5

Each round the rollout actors sample ``num_generations`` completions for ``rl.dpo_prompts``
prompts (the env's training prompts in a seeded rotation); the actors' referee scores them.  For
every prompt the best and the worst completion become a (chosen, rejected) pair when their rewards
differ by at least ``rl.dpo_margin``.  TRL's ``DPOTrainer`` trains on the round's pairs (the
reference is the policy at the start of the round: TRL's frozen "ref" copy of the adapter), the new
policy is synced and verified on every worker, and the next round samples from it.  A round is one
"step" in metrics.jsonl; a checkpoint (adapter, RNG states, round) is written every
``rl.checkpoint_every`` rounds and ``--resume`` continues at the next round.
Exercised by ``pytest tests/rl/test_dpo.py``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from sparring.rl.session import (
    TRL_LOG_NAMES, RLProgress, RLSession, actor_reward_share, sample_metrics, sample_rows, sync_policy,
    training_reward,
)
from sparring.types import Prompt, Sample

DPO_CHECKPOINT_FILES = ("adapter_config.json", "adapter_model.safetensors", "rng_state.pth")


def preference_pairs(prompts: Sequence[Prompt], samples: Sequence[Sample], k: int, margin: float, reward: str = "total") -> list[dict[str, Any]]:
    """(chosen, rejected) per prompt: its best and worst completion when they differ by >= margin.

    ``samples`` are ordered by prompt then k (as ``RolloutPool.generate`` returns them)."""
    pairs = []
    for i, prompt in enumerate(prompts):
        group = list(samples[i * k : (i + 1) * k])
        if len(group) < 2:
            continue
        best = max(group, key=lambda s: training_reward(s, reward))  # first of equals: deterministic
        worst = min(group, key=lambda s: training_reward(s, reward))
        gap = training_reward(best, reward) - training_reward(worst, reward)
        if gap >= margin and gap > 0 and best.completion != worst.completion:
            pairs.append({
                "prompt": [dict(m) for m in prompt.messages],
                "chosen": [{"role": "assistant", "content": best.completion}],
                "rejected": [{"role": "assistant", "content": worst.completion}],
                "prompt_id": prompt.id,
                "margin": gap,
            })
    return pairs


def round_prompts(prompts: Sequence[Prompt], round_index: int, n: int) -> list[Prompt]:
    """The ``n`` prompts of a round: a rotation through the (seeded) training order."""
    start = (round_index * n) % len(prompts)
    return [prompts[(start + i) % len(prompts)] for i in range(min(n, len(prompts)))]


def dpo_arguments(session: RLSession, output_dir: Path, n_pairs: int, round_index: int):
    import torch
    from trl import DPOConfig

    cfg, rl = session.cfg, session.cfg.rl
    return DPOConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=max(1, min(8, n_pairs)),
        gradient_accumulation_steps=1,
        num_train_epochs=rl.dpo_epochs,
        learning_rate=rl.learning_rate,
        lr_scheduler_type="constant",
        beta=rl.dpo_beta,
        max_length=cfg.model.max_seq_len,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,  # rl.learner_bf16 holds the frozen base in bf16 (load_learner_base): no autocast
        disable_dropout=rl.disable_dropout,
        seed=cfg.seed + round_index,
        dataloader_num_workers=0,
        gradient_checkpointing=False,
    )


def _fresh_policy(session: RLSession, adapter_dir: Path):
    """Base + the current adapter (trainable), rebuilt each round so TRL's "ref" copy and fused
    LM head are set up on a clean model."""
    from peft import PeftModel

    from sparring.rl.learner import load_learner_base

    return PeftModel.from_pretrained(load_learner_base(session.cfg, session.base_dir), adapter_dir, is_trainable=True)


def _save_adapter(model: Any, out: Path) -> Path:
    model.save_pretrained(out, safe_serialization=True, selected_adapters=["default"], save_embedding_layers=False)
    return out


def train_round(session: RLSession, pairs: list[dict[str, Any]], round_index: int, work: Path) -> dict[str, float]:
    """One DPOTrainer run over the round's pairs; leaves the trained policy in ``session.model``."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOTrainer

    current = _save_adapter(session.model, work / f"round-{round_index}-start")
    model = _fresh_policy(session, current)
    logs: list[dict[str, float]] = []

    class Collect(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                collected.append(dict(logs))

    collected = logs
    data = Dataset.from_dict({key: [p[key] for p in pairs] for key in ("prompt", "chosen", "rejected")})
    trainer = DPOTrainer(model=model, args=dpo_arguments(session, work / "staging", len(pairs), round_index), train_dataset=data, processing_class=session.tokenizer, callbacks=[Collect()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    if "ref" in trained.peft_config:
        trained.delete_adapter("ref")
    trained.set_adapter("default")
    session.model = trained
    out: dict[str, float] = {}
    for key, name in TRL_LOG_NAMES.items():
        vals = [row[key] for row in logs if isinstance(row.get(key), (int, float))]
        if vals:
            out[name] = sum(vals) / len(vals)
    out["rl/dpo_steps"] = float(trainer.state.global_step)
    return out


def _checkpoint_round(session: RLSession, round_done: int) -> None:
    from sparring.config_io import dump_config
    from sparring.rl.checkpoint import RLState, commit_checkpoint, prune_checkpoints, save_rng_state

    staged = Path(tempfile.mkdtemp(prefix=".dpo-ckpt-", dir=session.stage_dir))
    _save_adapter(session.model, staged)
    save_rng_state(staged / "rng_state.pth")
    state = RLState(step=round_done, policy_version=round_done, round=round_done, algo="dpo",
                    prompt_cursor=round_done * session.cfg.rl.dpo_prompts,
                    init_adapter=str(session.init_adapter) if session.init_adapter else None)
    commit_checkpoint(session.run.path, state, dump_config(session.cfg), trainer_dir=staged, required=DPO_CHECKPOINT_FILES)
    prune_checkpoints(session.run.path, session.cfg.rl.keep_checkpoints)


def _restore(session: RLSession) -> int:
    from sparring.rl.checkpoint import restore_rng_state

    if session.resume_from is None:
        return 0
    trainer_dir = session.resume_from / "trainer"
    session.model = _fresh_policy(session, trainer_dir)
    restore_rng_state(trainer_dir / "rng_state.pth")
    return int(session.resume_state.round)


def run_dpo(session: RLSession) -> dict[str, Any]:
    from sparring.rl.engines.base import SamplingParams

    cfg = session.cfg
    k = cfg.rl.num_generations
    sampling = SamplingParams.from_config(cfg.rl.rollout, cfg.seed)
    prompts = list(session.env.prompts("train", seed=cfg.seed))
    by_id = {p.id: p for p in prompts}
    start_round = _restore(session)
    history: list[dict[str, Any]] = []
    sync_policy(session, session.model, start_round)
    work = Path(tempfile.mkdtemp(prefix=".dpo-work-", dir=session.stage_dir))
    try:
        with RLProgress(cfg.rl.rounds, "rl dpo", session.console, start=start_round) as progress:
            for r in range(start_round, cfg.rl.rounds):
                t0 = time.perf_counter()
                batch = round_prompts(prompts, r, cfg.rl.dpo_prompts)
                samples = session.pool.generate(batch, k, sampling, r + 1)
                wall = time.perf_counter() - t0
                reward_share = actor_reward_share(samples, len(session.pool.worker_ids), wall)
                pairs = preference_pairs(batch, samples, k, cfg.rl.dpo_margin, cfg.rl.reward)
                row: dict[str, Any] = sample_metrics(samples, session.pass_metric, r, cfg.rl.reward)
                row["rl/dpo_pairs"] = float(len(pairs))
                t1 = time.perf_counter()
                if pairs:
                    row.update(train_round(session, pairs, r, work))
                learn = time.perf_counter() - t1
                sync_s = sync_policy(session, session.model, r + 1) if pairs else 0.0
                row.update({"time/generate_s": wall - reward_share, "time/reward_s": reward_share, "time/learn_s": learn, "time/sync_s": sync_s, "time/step_s": time.perf_counter() - t0})
                session.tracker.log(row, step=r + 1)
                if cfg.tracking.sample_table_rows:
                    session.tracker.log_table("rl/samples", sample_rows(samples, by_id, cfg.tracking.sample_table_rows), step=r + 1)
                history.append({"step": r + 1, **row})
                progress.update(r + 1, row, session.pass_metric)
                if (r + 1) % cfg.rl.checkpoint_every == 0 or r + 1 == cfg.rl.rounds:
                    _checkpoint_round(session, r + 1)
                if session.exporter is not None:
                    session.exporter.maybe_export(r + 1, session.model, session.tokenizer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"algo": "dpo", "rounds": cfg.rl.rounds, "steps": cfg.rl.rounds, "history": history, "policy_version": cfg.rl.rounds}

