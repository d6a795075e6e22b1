"""GRPO on TRL's ``GRPOTrainer`` with completions from the Ray rollout actors.

    sparring rl configs/jokes.yaml --init runs/<sft run>          # algo: grpo (the default)
    result = run_grpo(session)

TRL keeps what it is good at — the GRPO loss, clipping, KL to the reference (the SFT policy),
advantages, the optimizer, scheduler and checkpoint format.  Generation leaves the learner:
``rollout_func`` maps TRL's prompts back to the env's ``Prompt`` objects and asks the
``RolloutPool`` for ``num_generations`` completions each; the actors return token ids, their own
logprobs and the referee's reward with its components (scored in the actors, in parallel with
generation).  The reward function TRL sees only reads that ``env_reward`` column.

Importance sampling: the actors' engine (llama.cpp on a quantized GGUF) does not compute exactly
the learner's probabilities, so each token's loss is weighted by the truncated ratio
``min(pi_learner / pi_rollout, is_cap)`` (TRL 1.16 applies its own correction only on its vLLM
path).  The weight multiplies the advantage, which for GRPO's clipped objective is the same as
multiplying the per-token loss; it is computed from the loss's own forward pass (no extra one).

The learner's forward runs the batch's common prompt prefix once and each group's prompt once
(``rl/prefix_share.py``, ``rl.share_prompt_prefix``): the same log-probabilities as TRL's per-row
forward for a fraction of the compute, in three model calls.

With ``rl.overlap_generation`` the next step's batch is generated while the learner trains on this
one, one policy version behind (``rl/overlap.py``).

After every ``max_staleness + 1`` optimizer steps a callback builds a ``PolicyUpdate`` and calls
``pool.sync``, which verifies version, checksum and a logprob probe on every worker (a mismatch
stops the run).  Checkpoints, the export hook and the metrics are callbacks too.
Exercised by ``pytest tests/rl/test_grpo.py``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Callable

from sparring.rl.overlap import NextBatch, PromptSchedule
from sparring.rl.session import (
    TRL_LOG_NAMES, PromptBook, RLProgress, RLSession, StepClock, actor_reward_share, sample_metrics, sample_rows,
    training_reward,
)

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def env_reward(prompts=None, completions=None, env_reward=None, **kwargs) -> list[float]:
    """TRL's reward function: the referee's reward the actors already computed."""
    if env_reward is None:
        raise RuntimeError("rollout_func returned no env_reward column")
    return [float(r) for r in env_reward]


def truncated_is_weight(learner_logps, rollout_logps, mask, cap: float):
    """Per-token ``min(exp(learner - rollout), cap)``; 1 where the rollout logprob is unknown or masked."""
    import torch

    valid = mask.bool() & ~torch.isnan(rollout_logps)
    ratio = torch.exp((learner_logps - torch.nan_to_num(rollout_logps)).clamp(max=20.0)).clamp(max=cap)
    return torch.where(valid, ratio, torch.ones_like(ratio))


def sparring_grpo_trainer_class():
    """``GRPOTrainer`` with the truncated importance-sampling weight and the shared-prompt forward
    (TRL imported lazily; TRL's loss, clipping, KL and logging are untouched)."""
    import torch
    from trl import GRPOTrainer

    from sparring.rl.prefix_share import shared_prefix_logps, supports_prefix_sharing

    class SparringGRPOTrainer(GRPOTrainer):
        def __init__(self, *args: Any, is_cap: float = 2.0, importance_sampling: bool = True, share_prompt_prefix: bool = False, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.is_cap = is_cap
            self.importance_sampling = importance_sampling
            self.share_prompt_prefix = share_prompt_prefix and supports_prefix_sharing(self.accelerator.unwrap_model(self.model))
            self._tis_inputs: dict[str, Any] | None = None
            self.tis_stats: dict[str, float] = {}

        def _get_train_sampler(self, dataset=None):
            # a twin with the same seed tells rl.overlap_generation which prompts come next
            self.twin_sampler = super()._get_train_sampler(dataset)
            return super()._get_train_sampler(dataset)

        def _compute_loss(self, model, inputs):
            use = self.importance_sampling and inputs.get("sampling_per_token_logps") is not None
            self._tis_inputs = inputs if use else None
            try:
                return super()._compute_loss(model, inputs)
            finally:
                self._tis_inputs = None

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs: Any):
            multimodal = any(v is not None for k, v in kwargs.items() if k != "compute_aux_loss")
            if self.share_prompt_prefix and not multimodal and not kwargs.get("compute_aux_loss"):
                with self.accelerator.autocast():
                    logps, entropies = shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep, self.temperature, compute_entropy,
                                                            entropy_grad=bool(getattr(self, "_entropy_bonus_enabled", True)))
                result = (logps, entropies, None)
            else:
                result = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, **kwargs)
            inputs = self._tis_inputs
            if inputs is not None and compute_entropy:
                self._tis_inputs = None  # the loss's own forward: weight its advantages once
                logps = result[0].detach()
                mask = inputs["completion_mask"] if "tool_mask" not in inputs else inputs["completion_mask"] * inputs["tool_mask"]
                rollout = inputs["sampling_per_token_logps"]
                weight = truncated_is_weight(logps, rollout, mask, self.is_cap)
                adv = inputs["advantages"]
                inputs["advantages"] = (adv.unsqueeze(1) if adv.dim() == 1 else adv) * weight
                m = mask.bool() & ~torch.isnan(rollout)
                if m.any():
                    self.tis_stats = {
                        "rl/is_weight": float(weight[m].mean()),
                        "rl/logprob_gap": float((logps - rollout)[m].abs().mean()),
                        "rl/is_truncated": float((torch.exp((logps - rollout)[m]) > self.is_cap).float().mean()),
                    }
            return result

    return SparringGRPOTrainer


def grpo_arguments(session: RLSession, output_dir: Path, *, max_steps: int | None = None):
    from trl import GRPOConfig

    import torch

    cfg, rl = session.cfg, session.cfg.rl
    cuda = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=rl.batch_size,
        gradient_accumulation_steps=1,
        num_generations=rl.num_generations,
        max_completion_length=rl.rollout.max_new_tokens,
        temperature=rl.rollout.temperature if rl.rollout.temperature > 0 else 1.0,
        top_p=rl.rollout.top_p,
        max_steps=max_steps or rl.steps,
        learning_rate=rl.learning_rate,
        lr_scheduler_type="constant",
        beta=rl.beta,
        epsilon=rl.epsilon,
        logging_steps=1,
        save_strategy="steps",
        save_steps=rl.checkpoint_every,
        save_only_model=False,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=False,  # rl.learner_bf16 holds the frozen base in bf16 (load_learner_base): no autocast
        disable_dropout=rl.disable_dropout,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        log_completions=False,
        gradient_checkpointing=False,
        model_init_kwargs=None,
    )


def make_rollout_func(session: RLSession, book: PromptBook, clock: StepClock, state: dict[str, Any]) -> Callable:
    """``rollout_func(prompts, trainer)``: TRL's repeated prompts -> groups on the actors."""
    from sparring.rl.engines.base import SamplingParams

    cfg = session.cfg
    sampling = SamplingParams.from_config(cfg.rl.rollout, cfg.seed)
    g = cfg.rl.num_generations
    ahead = NextBatch(session.pool, sampling, g) if cfg.rl.overlap_generation else None
    state["ahead"] = ahead
    schedule: PromptSchedule | None = None  # the twin sampler exists once TRL built its dataloader

    def prefetch_next(step: int, trainer: Any) -> None:
        """Start generating step + 1's groups, unless this step ends in a checkpoint or the run."""
        nonlocal schedule
        if ahead is None or step % cfg.rl.checkpoint_every == 0 or step >= trainer.args.max_steps:
            return
        schedule = schedule or PromptSchedule(trainer.twin_sampler, cfg.rl.batch_size)
        rows = schedule.groups(step + 1, g)
        if rows is not None:
            ahead.start(step + 1, [book.prompts[i] for i in rows])

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, list]:
        if len(prompts) % g:
            raise RuntimeError(f"rollout_func got {len(prompts)} prompts, not a multiple of num_generations={g}")
        groups = [book.find(prompts[i]) for i in range(0, len(prompts), g)]
        for i in range(0, len(prompts), g):
            if any(book.find(prompts[j]).id != groups[i // g].id for j in range(i, i + g)):
                raise RuntimeError("TRL's batch does not hold num_generations copies of each prompt in a row")
        step = int(trainer.state.global_step) + 1
        started = time.perf_counter()
        samples = ahead.take(step, groups) if ahead is not None else None
        if samples is None:
            samples = session.pool.generate(groups, g, sampling, step)
        wall = time.perf_counter() - started  # with overlap_generation: the wait for the prefetched batch
        if len(samples) != len(prompts):
            raise RuntimeError(f"the pool returned {len(samples)} samples for {len(prompts)} requested")
        clock.add_rollout(wall, actor_reward_share(samples, len(session.pool.worker_ids), wall))
        state["samples"] = samples
        state["samples_per_s"] = len(samples) / wall if wall > 0 else 0.0
        out: dict[str, list] = {
            "prompt_ids": [list(s.prompt_ids) for s in samples],
            "completion_ids": [list(s.completion_ids) for s in samples],
            "logprobs": [list(s.logprobs) for s in samples],
            "env_reward": [training_reward(s, cfg.rl.reward) for s in samples],
            "env_passed": [bool(s.passed) for s in samples],
        }
        for name in sorted({k for s in samples for k in s.components}):
            out[f"component_{name}"] = [float(s.components.get(name, 0.0)) for s in samples]
        if ahead is not None:
            state.setdefault("extra_metrics", {})["rl/prefetch_dropped"] = float(ahead.mispredicted)
        prefetch_next(step, trainer)
        return out

    return rollout_func


def learner_callbacks(session: RLSession, trainer_ref: dict[str, Any], clock: StepClock, state: dict[str, Any], progress: RLProgress | None, book: PromptBook | None):
    """Sync, metrics, checkpoint and export callbacks around TRL's training loop."""
    from transformers import TrainerCallback

    from sparring.rl.checkpoint import RLState, commit_checkpoint, prune_checkpoints
    from sparring.rl.session import sync_policy
    from sparring.config_io import dump_config

    cfg = session.cfg
    prompts_by_id = {p.id: p for p in book.prompts} if book is not None else {}

    class RLCallback(TrainerCallback):
        def on_train_begin(self, args, state_, control, **kwargs):
            state["version"] = int(state_.global_step)
            clock.add_sync(sync_policy(session, trainer_ref["trainer"].model, state["version"]))

        def on_step_begin(self, args, state_, control, **kwargs):
            clock.reset()

        def on_step_end(self, args, state_, control, **kwargs):
            step = int(state_.global_step)
            if state.get("ahead") is not None:
                waited = time.perf_counter()
                state["ahead"].wait()  # the next batch, generated beside this step, is in before the pool syncs
                clock.add_rollout(time.perf_counter() - waited, 0.0)  # what the learner waited for it is generation time
            # checkpoint steps are sync points too, so a resumed run continues from the same worker policy
            if session.pool.needs_sync(step) or step % cfg.rl.checkpoint_every == 0:
                state["version"] = step
                clock.add_sync(sync_policy(session, trainer_ref["trainer"].model, step))
            if session.extra.get("after_step") is not None:
                session.extra["after_step"](step, trainer_ref["trainer"].model)
            if session.exporter is not None:
                session.exporter.maybe_export(step, trainer_ref["trainer"].model, session.tokenizer)

        def on_log(self, args, state_, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            step = int(state_.global_step)
            samples = state.get("samples") or []
            row: dict[str, Any] = {name: logs[key] for key, name in TRL_LOG_NAMES.items() if key in logs}
            row.update(sample_metrics(samples, session.pass_metric, step - 1, cfg.rl.reward))
            row.update(trainer_ref["trainer"].tis_stats if hasattr(trainer_ref["trainer"], "tis_stats") else {})
            row["rl/samples_per_s"] = state.get("samples_per_s", 0.0)
            row.update(state.pop("extra_metrics", {}))
            row.update(clock.split())
            if step % cfg.tracking.log_every == 0 or step >= args.max_steps:
                session.tracker.log(row, step=step)
                if cfg.tracking.sample_table_rows:
                    session.tracker.log_table("rl/samples", sample_rows(samples, prompts_by_id, cfg.tracking.sample_table_rows), step=step)
            state.setdefault("history", []).append({"step": step, **row})
            if progress is not None:
                progress.update(step, row, session.pass_metric)

        def on_save(self, args, state_, control, **kwargs):
            step = int(state_.global_step)
            staged = Path(args.output_dir) / f"checkpoint-{step}"
            rl_state = RLState(
                step=step,
                policy_version=int(state.get("version", step)),
                prompt_cursor=step * cfg.rl.prompts_per_step,
                algo=state.get("algo", "grpo"),
                init_adapter=str(session.init_adapter) if session.init_adapter else None,
                opponent_pool=list(session.extra.get("opponent_pool", [])),
                games=dict(session.extra.get("games", {})),
            )
            commit_checkpoint(session.run.path, rl_state, dump_config(cfg), trainer_dir=staged, files=dict(session.extra.get("checkpoint_files", {})))
            prune_checkpoints(session.run.path, cfg.rl.keep_checkpoints)

    return RLCallback()


def build_trainer(session: RLSession, dataset, rollout_func: Callable, callbacks: list, *, max_steps: int | None = None):
    from transformers.trainer_callback import PrinterCallback

    trainer_cls = sparring_grpo_trainer_class()
    staging = session.stage_dir / ".trainer-staging"
    trainer = trainer_cls(
        model=session.model,
        reward_funcs=[env_reward],
        args=grpo_arguments(session, staging, max_steps=max_steps),
        train_dataset=dataset,
        processing_class=session.tokenizer,
        rollout_func=rollout_func,
        callbacks=callbacks,
        is_cap=session.cfg.rl.is_cap,
        importance_sampling=session.cfg.rl.importance_sampling,
        share_prompt_prefix=session.cfg.rl.share_prompt_prefix,
    )
    trainer.remove_callback(PrinterCallback)  # metrics go through the tracker and the progress bar
    return trainer


def train_with_rollouts(session: RLSession, dataset, rollout_factory: Callable, *, algo: str, book: PromptBook | None) -> dict[str, Any]:
    """Run TRL's loop with our rollout function and callbacks; shared by GRPO and chess self-play."""
    clock = StepClock()
    state: dict[str, Any] = {"algo": algo}
    trainer_ref: dict[str, Any] = {}
    start = session.resume_state.step if session.resume_state is not None else 0
    with RLProgress(session.cfg.rl.steps, f"rl {algo}", session.console, start=start) as progress:
        callback = learner_callbacks(session, trainer_ref, clock, state, progress, book)
        trainer = build_trainer(session, dataset, rollout_factory(clock, state), [callback])
        trainer_ref["trainer"] = trainer
        resume = str(session.resume_from / "trainer") if session.resume_from is not None else None
        with _learner_threads(session.cfg) if state.get("ahead") is not None else contextlib.nullcontext():
            output = trainer.train(resume_from_checkpoint=resume)
    session.model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)  # the bare PEFT model (no accelerate wrapper)
    return {"algo": algo, "steps": int(trainer.state.global_step), "train_seconds": round(output.metrics.get("train_runtime", 0.0), 2), "history": state.get("history", []), "policy_version": state.get("version", 0)}


@contextlib.contextmanager
def _learner_threads(cfg):
    """With generation beside learning, the learner keeps the cores the local actors do not take."""
    import torch

    before = torch.get_num_threads()
    actors = cfg.rl.rollout.num_workers * cfg.rl.rollout.threads_per_worker
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - actors))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_grpo(session: RLSession) -> dict[str, Any]:
    """GRPO over the env's training prompts."""
    book = PromptBook(list(session.env.prompts("train", seed=session.cfg.seed)))

    def factory(clock: StepClock, state: dict[str, Any]) -> Callable:
        return make_rollout_func(session, book, clock, state)

    return train_with_rollouts(session, book.dataset(), factory, algo="grpo", book=book)
