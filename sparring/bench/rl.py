"""Benchmark: GRPO samples per second on the embedded SmolLM2-135M, sparring (llama.cpp rollout
actors on Ray, rewards in the actors) against TRL's own GRPOTrainer (transformers generation,
rewards in the learner), side by side in one run.

The step is the shipped jokes recipe's (``--config configs/jokes.yaml``): its batch, group size,
completion cap, sampling temperature, KL coefficient, learning rate, LoRA and learner precision
(``rl.learner_bf16``, auto: bf16 where the CPU has AVX-512 BF16/AMX), each overridable by a flag.
Both sides: the same jokes prompts in the same order (TRL's seeded sampler over the same dataset),
the same step shape and number of optimizer steps, from the same fresh LoRA on the same base,
dropout off in both learners (``rl.disable_dropout``), the same precision (with bf16 both hold the
frozen base in bf16 under a float32 LoRA; TRL also runs its default bf16 autocast).  Each side runs
in its own child process, one after the other (so neither competes with the other for the 2 cores).
Reported: samples/s over the training loop (both count their first step), the ratio (issue 5's
target: sparring >= 3x), the mean step-time split (generate / reward / learn / sync), mean
completion length (the cap is the same; EOS makes the real lengths differ a little), and the
one-time startup of each side (Ray, actors, the base GGUF), listed apart.  A 2-core VM's speed
drifts by 15-40% over minutes: ``--rounds N`` runs the pair N times, the sides alternating, and
reports the mean ratio with each round's.

    python -m sparring.bench.rl [--steps 4] [--config configs/jokes.yaml] [--batch-size N] [--num-generations N]
                                [--max-new-tokens N] [--beta B] [--precision auto|bf16|fp32] [--workers 1]
                                [--keep-dropout] [--overlap] [--rounds N] [--out DIR]

Prints the JSON and a markdown table.  The machine may be shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sparring.bench import emit, load_avg

QUICK_ARGS = ["--steps", "2", "--batch-size", "4", "--num-generations", "2", "--max-new-tokens", "16"]
TARGET_RATIO = 3.0
SEED = 42
REPO = Path(__file__).resolve().parents[2]
PRECISION = {"auto": None, "bf16": True, "fp32": False}


def bench_config(args: argparse.Namespace, out: Path):
    """The recipe's GRPO step (flags override it) as a fresh-LoRA run from the base: no SFT init,
    no checkpoints inside the timed steps."""
    from sparring.config import RunConfig
    from sparring.config_io import load_config

    rl = load_config(args.config).rl
    pick = lambda flag, recipe: recipe if flag is None else flag  # noqa: E731
    return RunConfig.model_validate({
        "name": "bench-rl", "seed": SEED, "output_dir": str(out),
        "model": {"name": "smollm2-135m", "max_seq_len": 512},
        "env": {"name": "jokes"},
        "rl": {
            "algo": "grpo", "allow_base_init": True, "steps": args.steps, "batch_size": pick(args.batch_size, rl.batch_size),
            "num_generations": pick(args.num_generations, rl.num_generations), "learning_rate": rl.learning_rate,
            "beta": pick(args.beta, rl.beta), "lora": rl.lora.model_dump(), "checkpoint_every": args.steps + 1,
            "learner_bf16": rl.learner_bf16 if args.precision is None else PRECISION[args.precision], "disable_dropout": not args.keep_dropout,
            "overlap_generation": args.overlap,
            # overlapped, the actors and the learner split the 2 cores; in turn, each takes both
            "rollout": {"engine": "llamacpp", "num_workers": args.workers, "num_cpus_per_worker": 1,
                        "threads_per_worker": 1 if args.overlap else max(1, 2 // args.workers), "max_new_tokens": pick(args.max_new_tokens, rl.rollout.max_new_tokens),
                        "temperature": rl.rollout.temperature, "gguf_quant": args.quant},
        },
        "ray": {"num_cpus": 2, "dashboard": False},
        "tracking": {"sample_table_rows": 0},
    })


# ---------------------------------------------------------------------------------------------- sides


def run_sparring(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from sparring.rl.stage import run_rl_in_new_run

    cfg = bench_config(args, out)
    started = time.perf_counter()
    run, _, rows = run_rl_in_new_run(cfg, argv=["bench-rl"], job="bench")
    total = time.perf_counter() - started
    loop = sum(r["time/step_s"] for r in rows)
    split = {k: sum(r[k] for r in rows) / len(rows) for k in ("time/generate_s", "time/reward_s", "time/learn_s", "time/sync_s", "time/step_s")}
    samples = sum(int(r["rl/num_samples"]) for r in rows)
    return {
        "samples": samples, "loop_seconds": round(loop, 2), "samples_per_s": round(samples / loop, 3),
        "total_seconds": round(total, 2), "startup_and_outputs_seconds": round(total - loop, 2),
        "step_split_s": {k.split("/")[1]: round(v, 3) for k, v in split.items()},
        "completion_tokens_mean": round(sum(r.get("rl/completion_tokens", 0) for r in rows) / len(rows), 2),
        "reward_mean": round(sum(r["rl/reward"] for r in rows) / len(rows), 4),
        "logprob_gap_mean": round(sum(r.get("rl/logprob_gap", 0) for r in rows) / len(rows), 4),
        "run_dir": str(run.path),
    }


def run_trl(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from sparring.envs.base import make_env
    from sparring.envs.rewards import reward_funcs_for
    from sparring.models import load_tokenizer, materialize
    from sparring.rl.session import PromptBook
    from sparring.seeding import seed_everything
    from sparring.sft.lora import make_lora_config
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import TrainerCallback

    from sparring.rl.learner import learner_uses_bf16

    cfg = bench_config(args, out)
    bf16 = learner_uses_bf16(cfg)
    seed_everything(SEED)
    started = time.perf_counter()
    env = make_env("jokes", {})
    model = AutoModelForCausalLM.from_pretrained(materialize("smollm2-135m"), dtype=torch.bfloat16 if bf16 else torch.float32)
    tokenizer = load_tokenizer("smollm2-135m")
    dataset = PromptBook(list(env.prompts("train", seed=SEED))).dataset()
    timers = {"generate": 0.0, "reward": 0.0}

    def timed(name: str, key: str):
        def method(self: Any, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return getattr(GRPOTrainer, name)(self, *a, **k)
            finally:
                timers[key] += time.perf_counter() - t0

        return method

    # the same trainer, with its generate and reward phases timed
    TimedGRPO = type("TimedGRPO", (GRPOTrainer,), {"_generate_single_turn": timed("_generate_single_turn", "generate"),
                                                   "_calculate_rewards": timed("_calculate_rewards", "reward")})

    steps: list[dict[str, float]] = []

    class StepTimes(TrainerCallback):
        def on_step_begin(self, a, s, c, **kw):
            timers.update(generate=0.0, reward=0.0, t0=time.perf_counter())

        def on_step_end(self, a, s, c, **kw):
            steps.append({"step": time.perf_counter() - timers["t0"], "generate": timers["generate"], "reward": timers["reward"]})

        def on_log(self, a, s, c, logs=None, **kw):
            if logs and "completions/mean_length" in logs and steps:
                steps[-1]["completion_tokens"] = logs["completions/mean_length"]
                steps[-1]["reward_mean"] = logs.get("reward", 0.0)

    rl = cfg.rl
    grpo_args = GRPOConfig(
        output_dir=str(out / "trl"), per_device_train_batch_size=rl.batch_size, gradient_accumulation_steps=1,
        num_generations=rl.num_generations, max_completion_length=rl.rollout.max_new_tokens, temperature=rl.rollout.temperature, top_p=1.0,
        max_steps=rl.steps, learning_rate=rl.learning_rate, lr_scheduler_type="constant", beta=rl.beta, disable_dropout=rl.disable_dropout, logging_steps=1,
        save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=not torch.cuda.is_available(), bf16=bf16, seed=SEED,
        data_seed=SEED, dataloader_num_workers=0,
    )
    trainer = TimedGRPO(model=model, reward_funcs=reward_funcs_for(env), args=grpo_args, train_dataset=dataset,
                        processing_class=tokenizer, peft_config=make_lora_config(model, rl.lora), callbacks=[StepTimes()])
    env.warm_up()  # as sparring's actors do at start: the referee's lexicons load outside the loop on both sides
    setup = time.perf_counter() - started
    t0 = time.perf_counter()
    trainer.train()
    loop = time.perf_counter() - t0
    samples = rl.steps * rl.batch_size
    n = len(steps)
    mean = lambda key: sum(s.get(key, 0.0) for s in steps) / n  # noqa: E731
    split = {"generate_s": mean("generate"), "reward_s": mean("reward"), "sync_s": 0.0, "step_s": mean("step")}
    split["learn_s"] = split["step_s"] - split["generate_s"] - split["reward_s"]
    env.close()
    return {
        "samples": samples, "loop_seconds": round(loop, 2), "samples_per_s": round(samples / loop, 3),
        "total_seconds": round(setup + loop, 2), "startup_and_outputs_seconds": round(setup, 2),
        "step_split_s": {k: round(v, 3) for k, v in split.items()},
        "completion_tokens_mean": round(mean("completion_tokens"), 2), "reward_mean": round(mean("reward_mean"), 4),
    }


# ---------------------------------------------------------------------------------------------- driver


def child(side: str, argv: list[str], out: Path) -> dict[str, Any]:
    """Run one side in its own process; its last stdout line is its JSON."""
    result_file = out / f"{side}.json"
    cmd = [sys.executable, "-m", "sparring.bench.rl", "--side", side, "--out", str(out), *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"})
    if proc.returncode != 0 or not result_file.is_file():
        return {"error": f"exit {proc.returncode}", "stderr_tail": proc.stderr[-3000:]}
    return json.loads(result_file.read_text())


def rounds_note(r: dict[str, Any]) -> str:
    """The ratio row's note when more than one round ran: each round's ratio, how many reach the target."""
    rounds = r.get("rounds", [])
    if len(rounds) < 2:
        return ""
    each = ", ".join(f"{x['ratio']}x" if x["ratio"] is not None else "failed" for x in rounds)
    return f", mean of {len(rounds)} rounds: {each} ({r['targets']['rounds_met']} reach it; the rows below are the median round's)"


def markdown(r: dict[str, Any]) -> str:
    s, t = r["sparring"], r["trl"]
    if "error" in s or "error" in t:
        return f"benchmark failed: sparring {s.get('error', 'ok')}, trl {t.get('error', 'ok')}"

    def split(x: dict[str, Any]) -> str:
        p = x["step_split_s"]
        return " / ".join(f"{p.get(k, 0):.2f}" for k in ("generate_s", "reward_s", "learn_s", "sync_s"))

    rows = [
        ("GRPO samples/s (training loop)", f"{s['samples_per_s']}", f"{t['samples_per_s']}"),
        ("ratio sparring / TRL", f"**{r['ratios']['sparring_vs_trl_grpo']}x** (target >= {TARGET_RATIO:.0f}x)" + rounds_note(r), ""),
        ("seconds per step", f"{s['step_split_s']['step_s']:.2f}", f"{t['step_split_s']['step_s']:.2f}"),
        ("split generate / reward / learn / sync (s)", split(s), split(t)),
        ("mean completion tokens (cap the same)", s["completion_tokens_mean"], t["completion_tokens_mean"]),
        ("mean reward", s["reward_mean"], t["reward_mean"]),
        ("startup (+ outputs) outside the loop, s", s["startup_and_outputs_seconds"], t["startup_and_outputs_seconds"]),
    ]
    head = (f"{r['steps']} steps x {r['batch_size']} completions ({r['num_generations']} per prompt, <= {r['max_new_tokens']} tokens, beta {r['beta']}, "
            f"{r['precision']} learners; shape from {Path(r['recipe']).name}), SmolLM2-135M, load avg {r['load_before']} -> {r['load_after']}")
    return head + "\n\n" + "\n".join(["| measure | sparring (llama.cpp actors) | TRL GRPOTrainer (transformers) |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "jokes.yaml", help="the recipe whose GRPO step is measured")
    ap.add_argument("--batch-size", type=int, help="completions per step (default: the recipe's rl.batch_size)")
    ap.add_argument("--num-generations", type=int, help="completions per prompt (default: the recipe's)")
    ap.add_argument("--max-new-tokens", type=int, help="completion cap (default: the recipe's rl.rollout.max_new_tokens)")
    ap.add_argument("--beta", type=float, help="KL coefficient (default: the recipe's rl.beta)")
    ap.add_argument("--workers", type=int, default=1, help="sparring rollout actors, 2 threads in all (1 actor x 2 threads decodes both prompts' groups in one batch: ~15%% faster than 2 x 1 on 2 cores)")
    ap.add_argument("--quant", default="q8_0", choices=["f32", "f16", "q8_0"], help="GGUF type of the rollout policy")
    ap.add_argument("--precision", choices=sorted(PRECISION), help="both learners' precision (default: the recipe's rl.learner_bf16)")
    ap.add_argument("--keep-dropout", action="store_true", help="both learners keep LoRA dropout (rl.disable_dropout=false): the before of that change")
    ap.add_argument("--overlap", action="store_true", help="sparring generates the next step beside the learner's step (rl.overlap_generation; 1 actor thread, 1 learner thread)")
    ap.add_argument("--rounds", type=int, default=1, help="run both sides this many times, alternating; the ratio reported is the mean (with min / max)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--side", choices=["sparring", "trl"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-rl-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.side:
        result = run_sparring(args, out / "sparring") if args.side == "sparring" else run_trl(args, out)
        (out / f"{args.side}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
        return result

    from sparring.rl.learner import learner_uses_bf16

    cfg = bench_config(args, out)
    rl, precision = cfg.rl, "bf16" if learner_uses_bf16(cfg) else "fp32"
    passthrough = ["--steps", str(args.steps), "--config", str(args.config), "--batch-size", str(rl.batch_size), "--num-generations", str(rl.num_generations),
                   "--max-new-tokens", str(rl.rollout.max_new_tokens), "--beta", str(rl.beta), "--workers", str(args.workers), "--quant", args.quant,
                   "--precision", precision]
    passthrough += ["--keep-dropout"] * args.keep_dropout + ["--overlap"] * args.overlap
    result: dict[str, Any] = {
        "recipe": str(args.config), "steps": args.steps, "batch_size": rl.batch_size, "num_generations": rl.num_generations,
        "max_new_tokens": rl.rollout.max_new_tokens, "beta": rl.beta, "temperature": rl.rollout.temperature, "learning_rate": rl.learning_rate,
        "workers": args.workers, "quant": args.quant, "precision": precision,
        "keep_dropout": args.keep_dropout, "overlap": args.overlap, "cpu_count": os.cpu_count(), "load_before": load_avg(),
    }
    from sparring.models import materialize_embedded

    materialize_embedded()  # the one-time GGUF -> safetensors conversion is not part of either side
    rounds = []
    for k in range(args.rounds):
        # the sides alternate, so a drift in the machine's speed reaches both
        where = out if args.rounds == 1 else out / f"round-{k + 1}"
        where.mkdir(parents=True, exist_ok=True)
        rounds.append({"trl": child("trl", passthrough, where), "sparring": child("sparring", passthrough, where)})
    result["load_after"] = load_avg()
    result.update(summarize_rounds(rounds))
    return emit(result, markdown(result), out / "bench_rl.json")


def summarize_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each round's ratio, their mean / min / max and how many reach the target; the detailed
    sides shown are those of the median round.  A round where either side failed has no ratio."""
    def ratio(r: dict[str, Any]) -> float | None:
        ok = "error" not in r["sparring"] and "error" not in r["trl"]
        return round(r["sparring"]["samples_per_s"] / r["trl"]["samples_per_s"], 2) if ok else None

    each = [ratio(r) for r in rounds]
    ratios = [x for x in each if x is not None]
    measured = sorted((x, i) for i, x in enumerate(each) if x is not None)
    shown = rounds[measured[len(measured) // 2][1]] if measured else rounds[0]
    mean = round(sum(ratios) / len(ratios), 2) if ratios else None
    return {
        "trl": shown["trl"], "sparring": shown["sparring"],
        "rounds": [{"ratio": x, "sparring_samples_per_s": r["sparring"].get("samples_per_s"), "trl_samples_per_s": r["trl"].get("samples_per_s")} for x, r in zip(each, rounds)],
        "ratios": {"sparring_vs_trl_grpo": mean, "min": min(ratios, default=None), "max": max(ratios, default=None)},
        "targets": {"ratio": TARGET_RATIO, "ratio_met": bool(mean and mean >= TARGET_RATIO),
                    "rounds_met": sum(x >= TARGET_RATIO for x in ratios), "rounds": len(rounds)},
        "summary": {"sparring_samples_per_s": shown["sparring"].get("samples_per_s"), "trl_samples_per_s": shown["trl"].get("samples_per_s"), "ratio": mean},
    }


if __name__ == "__main__":
    main()
