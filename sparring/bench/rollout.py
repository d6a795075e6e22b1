"""Benchmark: rollout throughput (completion tokens/s) of sparring's engines on the embedded model.

Same prompts (the jokes env's chat prompts), same group size, same completion cap, sampling at
temperature 1 with no top-k/top-p/penalties, on 2 CPU cores:

- ``llama-cpp-python raw``: ``Llama.create_completion`` once per completion (its prefix cache reuses
  the prompt), 2 threads, on the same q8_0 GGUF sparring's engine runs — and on the Q4_1 GGUF the
  embedded package ships (ANCHORS: ~100 tok/s for one sequence);
- ``sparring llamacpp engine``: one group = n sequences decoded together (unified KV, shared prompt),
  2 threads, in-process; then several prompts' groups per batch, with flash attention off (the
  engine's default) and on (llama.cpp's own default);
- ``sparring RolloutPool``: the real rollout path — 2 Ray actors x 1 thread, and 1 actor x 2 threads
  (one actor decodes several prompts' groups in one batch, their shared system prompt once), rewards
  computed in the actors (the jokes referee), tokens/s over the wall time of ``pool.generate``;
- ``transformers generate``: ``model.generate(num_return_sequences=n)`` fp32 (what TRL's GRPOTrainer
  does without vLLM), and one sequence at a time (ANCHORS: ~14 tok/s); plus sparring's hf engine.

    python -m sparring.bench.rollout [--prompts 8] [--n 4] [--max-new-tokens 32] [--threads 2] [--quick] [--out DIR]

Prints the JSON and a markdown table.  The machine may be shared: the JSON records the load
average and, for in-process rows, tokens per CPU-second (less sensitive to other work).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

QUICK_ARGS = ["--quick"]


def load_avg() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _measure(name: str, fn: Callable[[], int], notes: str = "") -> dict[str, Any]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tokens = fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"[rollout bench] {name}: {tokens} tokens in {wall:.1f} s ({tokens / wall if wall else 0:.1f} tok/s)", file=sys.stderr, flush=True)
    return {"name": name, "tokens": tokens, "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "tokens_per_second": round(tokens / wall, 1) if wall else 0.0,
            "tokens_per_cpu_second": round(tokens / cpu, 1) if cpu else None, "notes": notes}


def _prompt_ids(tokenizer: Any, count: int) -> tuple[list[Any], list[list[int]]]:
    from sparring.envs.base import make_env

    prompts = list(make_env("jokes").prompts("test", seed=0))[:count]
    ids = []
    for p in prompts:
        text = tokenizer.apply_chat_template(list(p.messages), tokenize=False, add_generation_prompt=True)
        ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return prompts, ids


def raw_llamacpp(gguf: Path, prompt_ids: list[list[int]], n: int, max_new: int, threads: int) -> Callable[[], int]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
    llm.create_completion(prompt_ids[0], max_tokens=4)  # warm-up

    def run() -> int:
        tokens = 0
        for i, ids in enumerate(prompt_ids):
            for k in range(n):
                out = llm.create_completion(ids, max_tokens=max_new, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0,
                                            repeat_penalty=1.0, seed=1000 * i + k)
                tokens += int(out["usage"]["completion_tokens"])
        return tokens

    return run


def sparring_engine(engine: Any, prompt_ids: list[list[int]], n: int, max_new: int, prefix_lens: list[int] | None = None) -> Callable[[], int]:
    from sparring.rl.engines.base import SamplingParams

    sampling = SamplingParams(max_new_tokens=max_new, temperature=1.0, top_p=1.0, seed=0)
    engine.generate(prompt_ids[:1], 1, SamplingParams(max_new_tokens=4))  # warm-up
    return lambda: sum(len(c.ids) for g in engine.generate(prompt_ids, n, sampling, prefix_lens=prefix_lens) for c in g)


def hf_generate(model: Any, tokenizer: Any, prompt_ids: list[list[int]], n: int, max_new: int, batched: bool) -> Callable[[], int]:
    import torch

    eos = tokenizer.eos_token_id

    def count(rows: Any, start: int) -> int:
        total = 0
        for row in rows[:, start:].tolist():
            total += row.index(eos) + 1 if eos in row else len(row)
        return total

    def gen(ids: list[int], copies: int) -> Any:
        with torch.inference_mode():
            return model.generate(torch.tensor([ids]), do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new,
                                  num_return_sequences=copies, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)

    gen(prompt_ids[0], 1)  # warm-up

    def run() -> int:
        torch.manual_seed(0)
        tokens = 0
        for ids in prompt_ids:
            if batched:
                tokens += count(gen(ids, n), len(ids))
            else:
                for _ in range(n):
                    tokens += count(gen(ids, 1), len(ids))
        return tokens

    return run


def pool_rollout(base_dir: Path, prompts: list[Any], n: int, max_new: int, workers: int) -> tuple[Callable[[], int], Any]:
    from sparring.config import RunConfig
    from sparring.raycluster import start_ray
    from sparring.rl.engines.base import SamplingParams
    from sparring.rl.pool import RolloutPool

    cfg = RunConfig.model_validate({
        "seed": 0, "env": {"name": "jokes"},
        "rl": {"num_generations": n, "batch_size": n * 2,
               "rollout": {"engine": "llamacpp", "num_workers": workers, "num_cpus_per_worker": 1, "threads_per_worker": max(1, 2 // workers), "max_new_tokens": max_new}},
        "ray": {"num_cpus": 2, "dashboard": False},
    })
    start_ray(cfg.ray)
    pool = RolloutPool(cfg, base_dir)
    sampling = SamplingParams(max_new_tokens=max_new, temperature=1.0, seed=0)
    pool.generate(prompts[:2], 1, SamplingParams(max_new_tokens=4), step=-1)  # warm-up

    def run() -> int:
        return sum(len(s.completion_ids) for s in pool.generate(prompts, n, sampling, step=0))

    return run, pool


def run(quick: bool = False, *, n_prompts: int = 8, n: int = 4, max_new: int = 32, threads: int = 2) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sparring.models import embedded_gguf_path, materialize_embedded
    from sparring.rl.engines.base import make_engine
    from sparring.rl.engines.gguf_policy import cached_base_gguf

    if quick:
        n_prompts, max_new = 2, 16
    load_before = load_avg()
    base_dir = materialize_embedded()
    q8 = cached_base_gguf(base_dir, "q8_0")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    prompts, prompt_ids = _prompt_ids(tokenizer, n_prompts)
    rows = [
        _measure("llama-cpp-python raw, q8_0", raw_llamacpp(q8, prompt_ids, n, max_new, threads), "one completion per call, prompt prefix cached"),
        _measure("llama-cpp-python raw, Q4_1 (shipped)", raw_llamacpp(embedded_gguf_path(), prompt_ids, n, max_new, threads), "the embedded package's own GGUF"),
    ]
    engine = make_engine("llamacpp", base_dir, threads=threads, options={"base_gguf": str(q8), "n_seq_max": n, "max_new_tokens": max_new})
    rows.append(_measure("sparring llamacpp engine, q8_0", sparring_engine(engine, prompt_ids, n, max_new), f"{n} sequences per group in one batch"))
    engine.close()
    from sparring.rl.worker import head_token_ids

    heads = [len(head_token_ids(tokenizer, p.messages)) for p in prompts]
    for flash_attn in (False, True):  # the engine's default (off) against llama.cpp's own (auto: on)
        engine = make_engine("llamacpp", base_dir, threads=threads, options={"base_gguf": str(q8), "n_seq_max": 16, "max_new_tokens": max_new, "flash_attn": flash_attn})
        rows.append(_measure(f"sparring llamacpp engine, q8_0, groups batched{', flash attention' if flash_attn else ''}",
                             sparring_engine(engine, prompt_ids, n, max_new, heads),
                             f"{16 // n} prompts' groups per batch, shared system prompt decoded once; flash attention {'on' if flash_attn else 'off'}"))
        engine.close()
    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    rows.append(_measure("transformers generate, fp32, group batched", hf_generate(model, tokenizer, prompt_ids, n, max_new, True), f"num_return_sequences={n} (TRL's path)"))
    rows.append(_measure("transformers generate, fp32, one sequence", hf_generate(model, tokenizer, prompt_ids, n, max_new, False), "ANCHORS: ~14 tok/s"))
    del model
    hf = make_engine("hf", base_dir, threads=threads)
    rows.append(_measure("sparring hf engine, fp32", sparring_engine(hf, prompt_ids, n, max_new), "group batched, numpy sampler"))
    hf.close()
    import ray

    for workers, label in ((2, "2 actors x 1 thread"), (1, "1 actor x 2 threads")):
        pool_run, pool = pool_rollout(base_dir, prompts, n, max_new, workers)
        try:
            row = _measure(f"sparring RolloutPool, llamacpp q8_0, {label}", pool_run, "rewards computed in the actors; CPU time is in the actors")
            row["tokens_per_cpu_second"] = None
            row["pool_stats"] = pool.last_stats
            rows.append(row)
        finally:
            pool.close()
            ray.shutdown()  # the next pool starts its own Ray with the 2 CPUs free
    by = {r["name"]: r["tokens_per_second"] for r in rows}
    hf_batched = by["transformers generate, fp32, group batched"] or 1e-9
    result = {
        "benchmark": "rollout",
        "model": "smollm2-135m (embedded)",
        "prompts": n_prompts, "group_size": n, "max_new_tokens": max_new, "threads": threads,
        "load_avg_before": load_before, "load_avg_after": load_avg(),
        "rows": rows,
        "ratios": {
            "engine_vs_raw_llamacpp_q8": round(by["sparring llamacpp engine, q8_0"] / (by["llama-cpp-python raw, q8_0"] or 1e-9), 2),
            "flash_attn_off_vs_on": round(by["sparring llamacpp engine, q8_0, groups batched"] / (by["sparring llamacpp engine, q8_0, groups batched, flash attention"] or 1e-9), 2),
            "engine_vs_transformers_batched": round(by["sparring llamacpp engine, q8_0"] / hf_batched, 2),
            "pool_vs_transformers_batched": round(max(by["sparring RolloutPool, llamacpp q8_0, 2 actors x 1 thread"], by["sparring RolloutPool, llamacpp q8_0, 1 actor x 2 threads"]) / hf_batched, 2),
        },
    }
    result["summary"] = {r["name"]: r["tokens_per_second"] for r in rows}
    return result


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Rollout throughput, {r['model']}: {r['prompts']} prompts x {r['group_size']} completions, <= {r['max_new_tokens']} new tokens, "
             f"{r['threads']} threads (load average {r['load_avg_before']} -> {r['load_avg_after']})", "",
             "| engine | tokens | wall s | tokens/s | tokens/CPU-s | notes |", "|---|---:|---:|---:|---:|---|"]
    for row in r["rows"]:
        per_cpu = row["tokens_per_cpu_second"] if row["tokens_per_cpu_second"] is not None else "-"
        lines.append(f"| {row['name']} | {row['tokens']} | {row['wall_seconds']} | {row['tokens_per_second']} | {per_cpu} | {row['notes']} |")
    lines += ["", "ratios: " + ", ".join(f"{k} {v}x" for k, v in r["ratios"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4, help="completions per prompt (the group size)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="compute threads of the in-process rows (the pool rows run 2 actors x 1 thread and 1 actor x 2 threads)")
    ap.add_argument("--quick", action="store_true", help="2 prompts x 16 tokens (smoke size)")
    ap.add_argument("--out", type=Path, default=None, help="also write bench_rollout.json and .md here")
    args = ap.parse_args(argv)
    result = run(args.quick, n_prompts=args.prompts, n=args.n, max_new=args.max_new_tokens, threads=args.threads)
    print(json.dumps(result, indent=2))
    print(markdown(result))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_rollout.json").write_text(json.dumps(result, indent=2))
        (args.out / "bench_rollout.md").write_text(markdown(result) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
