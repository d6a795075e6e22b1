"""Benchmark: the GRPO learner's step on the embedded SmolLM2-135M — TRL's per-row forward against
sparring's shared-prompt forward (``rl/prefix_share.py``), each with the frozen base in float32 and
in bf16 (``rl.learner_bf16``, ``rl/learner.py::load_learner_base``).

A batch shaped like the jokes recipe's (``--prompts`` prompts x ``--num-generations`` completions):
the env's real chat prompts, left-padded as TRL lays them out, and completions of seeded random
tokens whose lengths are drawn between 8 and ``--max-new-tokens`` (one row at the cap, as a batch
whose longest completion hit it).  A step is the per-token log-probabilities of the completions,
a loss on them, backward and an AdamW step on the LoRA adapter; the variants run interleaved, so
a busy machine slows all alike.  Reported: seconds per step (median) and the ratio to TRL's
float32 per-row step.

    python -m sparring.bench.grpo_step [--prompts 4] [--num-generations 4] [--max-new-tokens 48] [--steps 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from sparring.bench import emit, load_avg

QUICK_ARGS = ["--prompts", "2", "--num-generations", "2", "--max-new-tokens", "8", "--steps", "1"]


def batch(prompts: int, n: int, cap: int, seed: int = 0):
    """``(input_ids, attention_mask, C)``: TRL's layout — left-padded prompts, right-padded completions."""
    import torch

    from sparring.envs.base import make_env
    from sparring.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    env = make_env("jokes", {})
    chats = [list(p.messages) for p, _ in zip(env.prompts("train", seed=seed), range(prompts))]
    env.close()
    ids = [tok(tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True), add_special_tokens=False)["input_ids"] for m in chats]
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, cap + 1, (prompts * n,), generator=gen).tolist()
    lengths[0] = cap
    P, pad = max(map(len, ids)), tok.pad_token_id or 0
    rows, masks = [], []
    for r, L in enumerate(lengths):
        prompt = ids[r // n]
        comp = torch.randint(100, 40000, (L,), generator=gen).tolist()
        rows.append([pad] * (P - len(prompt)) + prompt + comp + [pad] * (cap - L))
        masks.append([0] * (P - len(prompt)) + [1] * (len(prompt) + L) + [0] * (cap - L))
    return torch.tensor(rows), torch.tensor(masks), cap


def per_row_logps(model: Any, ids, mask, C: int):
    """TRL's path: every row's whole sequence through the model, the last C positions scored."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=C + 1).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, -C:, None]).squeeze(-1)


def learner(bf16: bool):
    import torch
    from peft import get_peft_model
    from trl.trainer.utils import disable_dropout_in_model

    from sparring.config import RunConfig
    from sparring.rl.learner import base_model_dir, load_learner_base
    from sparring.sft.lora import make_lora_config

    cfg = RunConfig.model_validate({"name": "bench", "model": {"name": "smollm2-135m"}, "env": {"name": "jokes"},
                                    "rl": {"allow_base_init": True, "learner_bf16": bf16}})
    torch.manual_seed(0)
    model = load_learner_base(cfg, base_model_dir(cfg))
    model = get_peft_model(model, make_lora_config(model, cfg.rl.lora))
    disable_dropout_in_model(model)  # rl.disable_dropout, as both benches' learners run
    model.train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from sparring.rl.prefix_share import shared_prefix_logps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--num-generations", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per variant (after one warm-up each)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    ids, mask, C = batch(args.prompts, args.num_generations, args.max_new_tokens)
    keep = mask[:, -C:].bool()
    paths = {"trl per-row": lambda m: per_row_logps(m, ids, mask, C), "shared prefix": lambda m: shared_prefix_logps(m, ids, mask, C)[0]}
    models = {precision: learner(precision == "bf16") for precision in ("fp32", "bf16")}
    variants = {(precision, path): (models[precision], fn) for precision in models for path, fn in paths.items()}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in variants}
    load_before = load_avg()
    for i in range(args.steps + 1):
        for key, ((model, opt), fn) in variants.items():
            t0 = time.perf_counter()
            loss = -fn(model)[keep].mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            if i:  # the first round warms up
                times[key].append(time.perf_counter() - t0)
    base = statistics.median(times[("fp32", "trl per-row")])
    rows = {f"{precision} {path}": {"s_per_step": round(statistics.median(t), 3), "vs_trl_fp32": round(base / statistics.median(t), 2)}
            for (precision, path), t in times.items()}
    result = {"prompts": args.prompts, "num_generations": args.num_generations, "max_new_tokens": C, "prompt_tokens": int(ids.size(1) - C),
              "completion_tokens_mean": round(float(keep.sum(1).float().mean()), 1), "steps": args.steps,
              "load_before": load_before, "load_after": load_avg(), "variants": rows}
    head = (f"GRPO learner step, {args.prompts} prompts x {args.num_generations} completions (<= {C} tokens, mean {result['completion_tokens_mean']}), "
            f"prompts {result['prompt_tokens']} tokens padded, SmolLM2-135M, LoRA, load avg {load_before} -> {result['load_after']}")
    table = "\n".join([head, "", "| variant | s/step | vs TRL per-row fp32 |", "|---|---|---|"]
                      + [f"| {k} | {v['s_per_step']} | {v['vs_trl_fp32']}x |" for k, v in rows.items()])
    return emit(result, table, args.out)


if __name__ == "__main__":
    main()
