"""The eval stage of a run: the trained model and the base model on the same held-out prompts.

    summary = evaluate_run(cfg, run, model="runs/<run>/rl/final", base="smollm2-135m")

Writes the harness reports (``eval/<env>.json`` / ``.md``, side by side when a base is given), the
chess extras (matches, puzzles) for the chess env, and ``eval/summary.json`` — the flat
before/after table and paired samples the report card reads.  Exercised by ``sparring run`` and
``pytest tests/sparring/test_pipeline.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparring.config import RunConfig
from sparring.envs.base import make_env
from sparring.evaluators.harness import compare, evaluate
from sparring.generation import load_generator
from sparring.rundir import RunDir, atomic_write_text


def eval_gguf(model: str, cfg: RunConfig, run: RunDir) -> Path:
    """``model`` as a GGUF of ``eval.gguf_quant`` for the llamacpp engine.  A ``.gguf`` is used as
    is; a model this run trained is converted from its merged directory into ``<run>/eval/gguf``;
    any other model (the base) once into the shared cache (``~/.cache/sparring/rollout-gguf``)."""
    from sparring.models import materialize
    from sparring.rl.engines.gguf_policy import cached_base_gguf, write_model_gguf

    path = Path(model)
    if path.suffix == ".gguf":
        return path
    quant = cfg.eval.gguf_quant
    merged = path.parent / "merged"  # a stage's adapter (rl/final, sft/adapter) sits beside its merged model
    if (path / "adapter_config.json").is_file() and (merged / "config.json").is_file():
        hf_dir = merged
    else:
        hf_dir = materialize(model)
    if run.path.resolve() in hf_dir.resolve().parents:
        stage = hf_dir.resolve().relative_to(run.path.resolve()).parts[0]
        return write_model_gguf(hf_dir, run.path / "eval" / "gguf" / f"{stage}.{quant}.gguf", quant)
    return cached_base_gguf(hf_dir, quant)


def _generate_fn(model: str, cfg: RunConfig, run: RunDir):
    if cfg.eval.engine == "llamacpp":
        from sparring.generation import LlamaCppGenerator
        from sparring.models import load_tokenizer

        # the prompt is rendered with the model's HF chat template, as on the hf engine
        gen: Any = LlamaCppGenerator(eval_gguf(model, cfg, run), tokenizer=load_tokenizer(model), n_ctx=cfg.model.max_seq_len + cfg.eval.max_new_tokens, name=str(model))
    else:
        gen = load_generator(model, engine="hf", batch_size=cfg.eval.batch_size)

    def fn(prompts):
        return gen.generate(prompts, max_new_tokens=cfg.eval.max_new_tokens, temperature=cfg.eval.temperature, seed=cfg.seed)

    return fn


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    """One flat dict of every numeric metric, component mean, rule pass rate and latency figure."""
    out: dict[str, float] = {}
    for section, prefix in (("metrics", ""), ("components", "component/"), ("rules", "rule/"), ("latency", "latency/")):
        for k, v in (result.get(section) or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{prefix}{k}"] = v
    return out


def evaluate_run(cfg: RunConfig, run: RunDir, *, model: str, base: str | None) -> dict[str, Any]:
    env = make_env(cfg.env.name, cfg.env.options)
    try:
        after_fn = _generate_fn(model, cfg, run)
        if base is not None:
            res = compare(env, after_fn, _generate_fn(base, cfg, run), samples=cfg.eval.samples, seed=cfg.seed, out_dir=run.path, labels=("after", "before"))
            after, before = res["models"]["after"], res["models"]["before"]
        else:
            after, before = evaluate(env, after_fn, samples=cfg.eval.samples, seed=cfg.seed, out_dir=run.path, label="after"), {}
        summary: dict[str, Any] = {
            "env": env.name,
            "model": model,
            "base": base,
            "prompts": after.get("samples"),
            "after": flat_metrics(after),
            "before": flat_metrics(before) if before else {},
            "samples": [
                {"prompt": a["prompt"], "after": a["completion"], "before": (before.get("rows") or [{}] * (i + 1))[i].get("completion", "") if before else ""}
                for i, a in enumerate(after.get("rows", [])[:20])
            ],
        }
        if cfg.env.name == "chess" and (cfg.eval.games or cfg.eval.puzzles):
            from sparring.evaluators.chess_eval import evaluate_chess

            texts = lambda ps: [g.text for g in after_fn(ps)]  # noqa: E731
            chess = evaluate_chess(texts, env, positions=cfg.eval.samples, games=cfg.eval.games, opponents=tuple(cfg.eval.opponents), puzzles=cfg.eval.puzzles, seed=cfg.seed)
            summary["chess"] = chess
            atomic_write_text(run.path / "eval" / "chess_matches.json", json.dumps(chess, indent=2, default=str))
    finally:
        env.close()
    atomic_write_text(run.path / "eval" / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary
