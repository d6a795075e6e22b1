"""The LoRA SFT stage on TRL's ``SFTTrainer`` + PEFT.

    sparring sft configs/jokes.yaml [--set sft.lora.r=8] [--resume runs/<run>]
    result = run_sft(cfg, run, tracker)            # -> {"adapter": ..., "merged": ..., "steps": ...}

The data (``sft/data_build.py``) is deduped, over-length rows are counted and left out, and a
seeded 90/10 split is written to ``<run>/sft/data/{train,val}.jsonl`` (a resumed run reuses it).
Each chat becomes TRL conversational prompt/completion rows, one per assistant turn, so the loss
falls on assistant tokens only (``completion_only_loss``: prompt tokens get label -100) whatever
the model's chat template — SmolLM2's ChatML has no ``{% generation %}`` markers and TRL cannot
patch it for ``assistant_only_loss``.  Cosine schedule with warmup, gradient accumulation,
optional packing, evaluation every N steps, early stopping on validation loss, checkpoints every N
steps in ``<run>/sft/checkpoints`` keeping the best, ``--resume`` from the latest one.  On CPU:
``use_cpu=True`` with the frozen base in bfloat16 where the CPU has AVX-512 BF16 or AMX (``sft.bf16``,
``sft/base_model.py``; the adapter, its gradients and the optimizer stay float32, the outputs are
rebuilt on the ``model.dtype`` base); QLoRA (bitsandbytes 4-bit) needs CUDA.  Metrics go to the
tracker as ``sft/loss``, ``sft/eval_loss``, ``sft/lr``, ``sft/tokens_per_s``...  Outputs:
``<run>/sft/adapter`` and ``<run>/sft/merged`` (``sft/artifacts.py``), both verified and listed
in the manifest.  Exercised by ``pytest tests/sft/test_trainer.py``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.rundir import RunDir
from sparring.sft.base_model import check_qlora, load_base, merge_full_precision, use_bf16
from sparring.sft.formats import ChatExample, to_prompt_completion

LOG_NAMES = {
    "loss": "sft/loss",
    "eval_loss": "sft/eval_loss",
    "learning_rate": "sft/lr",
    "grad_norm": "sft/grad_norm",
    "mean_token_accuracy": "sft/token_accuracy",
    "eval_mean_token_accuracy": "sft/eval_token_accuracy",
    "epoch": "sft/epoch",
    "num_tokens": "sft/tokens",
    "train_loss": "sft/train_loss_mean",
    "train_runtime": "sft/train_seconds",
}


def tracker_callback(tracker: Any, console: Any = None):
    """A TRL/transformers callback forwarding every log to ``tracker.log`` under ``sft/*`` names,
    with ``sft/tokens_per_s`` computed between logs, and the stage's progress (``StepProgress``:
    a bar on a terminal, a line every 30 s in a log) showing loss, eval loss and tokens/s."""
    from transformers import TrainerCallback

    from sparring.progress import StepProgress

    class TrackerCallback(TrainerCallback):
        def __init__(self) -> None:
            self.last: tuple[float, float] | None = None
            self.tokens_per_s: list[float] = []
            self.progress: StepProgress | None = None
            self.figures: dict[str, str] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = (time.perf_counter(), 0.0)
            self.progress = StepProgress(state.max_steps, "sft", console, start=state.global_step).__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(state.global_step, "  ".join(self.figures.values()))

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.__exit__(None, None, None)
                self.progress = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs:
                return
            out = {LOG_NAMES[k]: v for k, v in logs.items() if k in LOG_NAMES and isinstance(v, (int, float))}
            if "num_tokens" in logs and self.last is not None:
                now, tokens = time.perf_counter(), float(logs["num_tokens"])
                then, before = self.last
                if now > then and tokens > before:
                    rate = (tokens - before) / (now - then)
                    out["sft/tokens_per_s"] = round(rate, 1)
                    self.tokens_per_s.append(rate)
                self.last = (now, tokens)
            for key, label in (("sft/loss", "loss {:.3f}"), ("sft/eval_loss", "eval {:.3f}"), ("sft/tokens_per_s", "{:.0f} tok/s")):
                if key in out:
                    self.figures[key] = label.format(out[key])
            if out:
                tracker.log(out, step=state.global_step)

    return TrackerCallback()


# ------------------------------------------------------------------------------------------ data


def _write_split(path: Path, examples: list[ChatExample]) -> None:
    from sparring.rundir import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(ex.to_row("chat"), ensure_ascii=False) + "\n" for ex in examples))


def prepare_split(cfg: RunConfig, run: RunDir, tokenizer: Any, *, reuse: bool) -> tuple[list[ChatExample], list[ChatExample], dict[str, Any]]:
    """Train/validation examples for this run: reused from ``<run>/sft/data`` when resuming."""
    from sparring.sft.dataset import load_jsonl, prepare_sft_data

    data_dir = run.stage_dir("sft") / "data"
    train_path, val_path, report_path = data_dir / "train.jsonl", data_dir / "val.jsonl", data_dir / "report.json"
    if reuse and train_path.is_file() and val_path.is_file():
        train = load_jsonl(train_path, on_bad_line="fail").examples
        val = load_jsonl(val_path, on_bad_line="fail").examples if val_path.stat().st_size else []
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
        return train, val, report
    from sparring.sft.data_build import build_sft_dataset

    source = build_sft_dataset(cfg, run)
    prepared = prepare_sft_data(
        source, tokenizer, max_len=cfg.model.max_seq_len, val_fraction=cfg.data.val_fraction,
        seed=cfg.seed, on_bad_line=cfg.data.on_bad_line, count=cfg.data.count,
    )
    _write_split(train_path, prepared.train)
    _write_split(val_path, prepared.val)
    from sparring.rundir import atomic_write_text

    atomic_write_text(report_path, json.dumps(prepared.report, indent=2))
    return prepared.train, prepared.val, prepared.report


def to_trl_dataset(examples: list[ChatExample]):
    """TRL prompt/completion rows, one per assistant turn; a (prompt, completion) pair already seen
    is trained once (a fixed few-shot exchange in every prompt is context, not a target 400 times)."""
    from datasets import Dataset

    seen: set[str] = set()
    rows = []
    for ex in examples:
        for row in to_prompt_completion(ex):
            key = json.dumps(row, sort_keys=True)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return Dataset.from_list(rows)


# ------------------------------------------------------------------------------------------ schedule


def schedule_args(cfg: RunConfig, has_val: bool) -> dict[str, Any]:
    """Evaluation/save/best-model settings that transformers accepts together."""
    s = cfg.sft
    if not has_val:
        if s.early_stopping_patience:
            raise UserInputError("early stopping needs a validation split", where="sft.early_stopping_patience", fix="set data.val_fraction > 0 (e.g. 0.1) or sft.early_stopping_patience: 0")
        return {"eval_strategy": "no", "save_strategy": "steps" if s.save_every else "no", "save_steps": s.save_every or 500}
    if s.eval_every and s.save_every and s.save_every % s.eval_every:
        raise UserInputError(
            f"sft.save_every={s.save_every} is not a multiple of sft.eval_every={s.eval_every}",
            where="sft.save_every",
            fix=f"checkpoints are chosen by validation loss, so save at evaluation steps: e.g. --set sft.save_every={s.eval_every * max(1, round(s.save_every / s.eval_every))}",
        )
    every = s.eval_every or s.save_every
    strategy = "steps" if every else "epoch"
    return {
        "eval_strategy": strategy,
        "eval_steps": every or None,
        "save_strategy": strategy,
        "save_steps": (s.save_every or every) or None,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
    }


def find_checkpoint(run: RunDir, resume: bool | str) -> str | None:
    """The checkpoint to resume from; resuming with none there is an error, never a silent restart.
    ``resume="auto"``: the latest checkpoint of this run if there is one, else a fresh start."""
    if not resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    if resume == "auto":
        folder = run.path / "sft" / "checkpoints"
        return get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if isinstance(resume, str):
        p = Path(resume)
        if (p / "trainer_state.json").is_file():
            return str(p)
        folder = p / "sft" / "checkpoints" if (p / "sft").is_dir() else p
    else:
        folder = run.path / "sft" / "checkpoints"
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if last is None:
        raise UserInputError(
            f"no checkpoint to resume from in {folder} (no checkpoint-N folder with trainer_state.json)",
            where="--resume",
            fix="start a new run without --resume, or set sft.save_every so checkpoints are written",
        )
    return last


def sft_arguments(cfg: RunConfig, run: RunDir, has_val: bool):
    import torch
    from trl import SFTConfig

    s = cfg.sft
    cuda = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(run.stage_dir("sft") / "checkpoints"),
        num_train_epochs=s.epochs,
        max_steps=s.max_steps if s.max_steps > 0 else -1,
        learning_rate=s.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=s.warmup_ratio,
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        packing=s.packing,
        max_length=cfg.model.max_seq_len,
        completion_only_loss=s.assistant_only_loss,
        assistant_only_loss=False,
        gradient_checkpointing=False,
        logging_steps=cfg.tracking.log_every,
        logging_first_step=True,
        save_total_limit=2,
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not cuda,
        bf16=cuda and (use_bf16(s.bf16, cuda) or bool(torch.cuda.is_bf16_supported() and (cfg.model.dtype != "float32" or s.qlora))),  # CPU: bf16_base
        fp16=False,
        dataloader_num_workers=0,
        disable_tqdm=True,  # progress and metrics go through tracker_callback
        **schedule_args(cfg, has_val),
    )


# ------------------------------------------------------------------------------------------ stage


@dataclass
class SFTSetup:
    """Everything ``run_sft`` trains with (tests inspect ``trainer.train_dataset`` labels)."""

    trainer: Any
    tokenizer: Any
    train: list[ChatExample]
    val: list[ChatExample]
    data_report: dict[str, Any]
    base_dir: Path
    checkpoint: str | None
    args: Any


def build_trainer(cfg: RunConfig, run: RunDir, tracker: Any, *, resume: bool | str = False) -> SFTSetup:
    """Check the config, find the checkpoint, load the base, prepare the split, build the trainer."""
    from sparring.seeding import seed_everything
    from sparring.sft.lora import make_lora_config

    check_qlora(cfg)
    checkpoint = find_checkpoint(run, resume)
    seed_everything(cfg.seed)
    model, tokenizer, base_dir = load_base(cfg)
    train, val, data_report = prepare_split(cfg, run, tokenizer, reuse=bool(checkpoint))
    peft_config = make_lora_config(model, cfg.sft.lora)
    args = sft_arguments(cfg, run, has_val=bool(val))

    from transformers import EarlyStoppingCallback
    from trl import SFTTrainer

    from sparring.sft.shared_prefix import shared_prefix_sft_trainer_class

    callbacks: list[Any] = [tracker_callback(tracker)]
    if cfg.sft.early_stopping_patience and val:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.sft.early_stopping_patience))
    trainer_class = shared_prefix_sft_trainer_class() if cfg.sft.share_prompt_prefix else SFTTrainer
    if not sys.stderr.isatty():  # in a log file, TRL's dataset preparation bars are carriage-return noise
        import datasets

        datasets.disable_progress_bars()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=to_trl_dataset(train),
        eval_dataset=to_trl_dataset(val) if val else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # logs go to the tracker, progress to tracker_callback's bar
    run.manifest.record_stage("sft", status="running", resumed_from=checkpoint, data=data_report, lora={"target_modules": sorted(peft_config.target_modules), "r": peft_config.r, "alpha": peft_config.lora_alpha})
    return SFTSetup(trainer, tokenizer, train, val, data_report, base_dir, checkpoint, args)


def run_sft(cfg: RunConfig, run: RunDir, tracker: Any, *, resume: bool | str = False) -> dict[str, Any]:
    """Train a LoRA adapter on the run's data; write, verify and record the adapter and merged model.

    ``resume``: False (fresh), True (latest checkpoint of this run, an error if none), "auto"
    (latest if any), or a path (a checkpoint-N folder or another run directory)."""
    from sparring.sft.artifacts import probe_logits, save_adapter, save_merged

    t0 = time.perf_counter()
    setup = build_trainer(cfg, run, tracker, resume=resume)
    trainer, tokenizer, train, val, checkpoint, args = setup.trainer, setup.tokenizer, setup.train, setup.val, setup.checkpoint, setup.args
    base_dir = setup.base_dir
    result = trainer.train(resume_from_checkpoint=checkpoint)
    final_eval = trainer.evaluate() if val else {}  # the kept (best) model's loss, logged by the callback

    peft_model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)  # drop a bf16 autocast wrapper
    peft_model.eval()
    if not cfg.sft.qlora:
        from sparring.sft.lora import adapter_in_dtype

        peft_model = adapter_in_dtype(peft_model, cfg.model.dtype, base_dir)  # a bf16 training base: outputs on the model.dtype base
    probe = tokenizer.apply_chat_template(train[0].prompt_messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    reference = probe_logits(peft_model, probe)
    stage = run.stage_dir("sft")
    exact = not cfg.sft.qlora  # a 4-bit model's logits differ from the full-precision reload by design
    adapter = save_adapter(peft_model, tokenizer, stage / "adapter", base_name=_portable_base_name(cfg.model.name, base_dir), reference_logits=reference if exact else None, probe_ids=probe)
    if cfg.sft.qlora:
        merged_model = merge_full_precision(cfg, stage / "adapter")
    else:
        merged_model = peft_model.merge_and_unload()
    merged_model.config.use_cache = True  # training turned the KV cache off; generation wants it
    merged = save_merged(merged_model, tokenizer, stage / "merged", reference_logits=reference if exact else None, probe_ids=probe)
    for art in (adapter, merged):
        if not art.verified:
            from sparring.errors import SparringError

            raise SparringError(f"the SFT output {art.path} failed verification: {art.verify}")
        run.manifest.add_artifact(art)

    history = trainer.state.log_history
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    runtime = float(result.metrics.get("train_runtime", 0.0))
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    summary = {
        "adapter": adapter.path,
        "merged": merged.path,
        "steps": trainer.state.global_step,
        "epochs": round(float(trainer.state.epoch or 0), 3),
        "train_loss": round(float(result.training_loss), 4),
        "eval_loss": round(float(final_eval["eval_loss"]), 4) if final_eval else None,
        "best_eval_loss": round(min(evals), 4) if evals else None,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "stopped_early": bool(cfg.sft.early_stopping_patience and trainer.state.global_step < trainer.state.max_steps),
        "train_rows": len(train),
        "val_rows": len(val),
        "tokens": int(tokens),
        "train_seconds": round(runtime, 1),
        "tokens_per_s": round(tokens / runtime, 1) if runtime else None,
        "shared_prefix": getattr(trainer, "shared_prefix_stats", None),
        "resumed_from": checkpoint,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    run.manifest.record_stage("sft", **{k: v for k, v in summary.items() if k != "resumed_from"})
    return summary


def _portable_base_name(name: str, base_dir: Path) -> str:
    """The adapter's base: the config's alias or Hub id (resolves on any machine), else the
    absolute directory the base was loaded from (a local dir, or a merged earlier adapter)."""
    p = Path(name).expanduser()
    if p.exists():
        return str(Path(base_dir).resolve())
    return name
