"""Benchmark: one SFT training step on the embedded SmolLM2-135M, TRL's per-row forward against the
shared-prompt-prefix forward (``sft/shared_prefix.py``), on the same batches of an env's built-in data.

Both paths run interleaved on the same trainer (forward + backward + optimizer step), so a busy
machine slows both alike; reported: seconds per step, training tokens/s (TRL's count: every
unpadded token of the batch), the share of tokens the shared prefix skips, and the ratio.

    python -m sparring.bench.sft_step [--config configs/jokes.yaml] [--steps 6] [--bf16 auto|on|off] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sparring.bench import emit, load_avg

REPO = Path(__file__).resolve().parents[2]


def build(config: Path, bf16: str, tmp: Path):
    from sparring.config_io import load_config
    from sparring.rundir import RunDir
    from sparring.sft.trainer import build_trainer
    from sparring.tracking import Tracker

    overrides = [f"output_dir={tmp}", "sft.eval_every=0", "tracking.wandb.enabled=false"]
    if bf16 != "auto":
        overrides.append(f"sft.bf16={'true' if bf16 == 'on' else 'false'}")
    cfg = load_config(config, overrides)
    run = RunDir.create(cfg, ["bench"])
    with Tracker(run, cfg) as tracker:
        return build_trainer(cfg, run, tracker).trainer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "jokes.yaml")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per path (after one warm-up each)")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sft-step-") as tmp:
        trainer = build(args.config, args.bf16, Path(tmp))
        trainer.create_optimizer_and_scheduler(num_training_steps=2 * args.steps + 2)
        trainer.current_gradient_accumulation_steps = 1
        batches = iter(trainer.get_train_dataloader())
        times: dict[bool, list[float]] = {False: [], True: []}
        tokens: dict[bool, int] = {False: 0, True: 0}
        shared_tokens = total_tokens = 0
        model = trainer.model
        model.train()
        load_before = load_avg()
        for i in range(args.steps + 1):
            batch = trainer._prepare_inputs(next(batches))
            n = trainer._prefix_to_share(batch)
            total_tokens += int(batch["attention_mask"].sum())
            shared_tokens += (n - 1) * (batch["input_ids"].size(0) - 1) if n else 0
            for shared in (False, True):
                trainer.shared_prefix_ok = shared
                t0 = time.perf_counter()
                trainer.training_step(model, dict(batch))
                trainer.optimizer.step()
                trainer.optimizer.zero_grad()
                if i:  # the first step of each path is a warm-up
                    times[shared].append(time.perf_counter() - t0)
                    tokens[shared] += int(batch["attention_mask"].sum())
        cfg_rows = trainer.args.per_device_train_batch_size
    rows = {}
    for shared, label in ((False, "trl_per_row"), (True, "shared_prefix")):
        rows[label] = {"seconds_per_step": round(statistics.mean(times[shared]), 3),
                       "tokens_per_s": round(tokens[shared] / sum(times[shared]), 1)}
    result = {"config": str(args.config), "model": "smollm2-135m", "batch_rows": cfg_rows, "steps": args.steps, "bf16": args.bf16,
              "load_before": load_before, "load_after": load_avg(), **rows,
              "tokens_skipped_share": round(shared_tokens / max(1, total_tokens), 3),
              "speedup": round(rows["trl_per_row"]["seconds_per_step"] / rows["shared_prefix"]["seconds_per_step"], 2)}
    table = "\n".join([
        f"{args.config.name}, {cfg_rows} rows per step, {args.steps} steps per path, bf16 {args.bf16}, load {result['load_before']} -> {result['load_after']}", "",
        "| path | s / step | tokens/s |", "|---|---|---|",
        *(f"| {k} | {v['seconds_per_step']} | {v['tokens_per_s']} |" for k, v in rows.items()),
        f"| speedup | {result['speedup']}x | (prefix tokens skipped: {result['tokens_skipped_share']:.0%}) |",
    ])
    return emit(result, table, args.out)


if __name__ == "__main__":
    main()
