"""The RL stage: start Ray and the rollout actors, load the learner, run GRPO / DPO / chess
self-play, write the trained policy.

    sparring rl configs/jokes.yaml --init runs/<sft run>
    result = run_rl(cfg, run, tracker, init="runs/<sft run>", resume=None, ray_address=None)

Order of work: bad input is refused first (vllm without CUDA, a missing or mismatched ``--init``,
``--resume`` without a complete checkpoint, a Ray address that does not answer) — all before any
model is loaded.  Then Ray (the dashboard URL and the W&B run are printed), the learner's LoRA
policy, the ``RolloutPool`` (one Ray actor per worker, each with its engine and its own referee),
the algorithm, and finally ``<run>/rl/final`` (adapter) and ``<run>/rl/merged`` (verified, in the
manifest).  The pool and a Ray cluster this process started are shut down on the way out, also
after an error.  Exercised by ``pytest tests/rl/test_rl_cli.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.rundir import RunDir


def check_engine(cfg: RunConfig) -> None:
    """vllm needs CUDA: refuse early, with the fix."""
    if cfg.rl.rollout.engine == "vllm":
        import torch

        if not torch.cuda.is_available():
            raise UserInputError(
                "rl.rollout.engine is vllm, which needs an NVIDIA GPU with CUDA, and none is available",
                where="rl.rollout.engine",
                fix="use --set rl.rollout.engine=llamacpp (fast on CPU) or hf",
            )


def algorithm(cfg: RunConfig) -> str:
    if cfg.rl.algo == "dpo":
        return "dpo"
    if cfg.env.name == "chess" and cfg.rl.chess_selfplay:
        return "chess-selfplay"
    return "grpo"


def _describe_start(console: Console, cfg: RunConfig, run: RunDir, tracker: Any, ray_info: Any, algo: str, init: Path | None, resume_step: int | None) -> None:
    console.print(f"[bold]sparring rl[/] {algo} on env {cfg.env.name!r}, model {cfg.model.name!r}, run dir {run.path}")
    console.print(ray_info.describe())
    wandb_run = getattr(tracker, "wandb_run", None)
    if wandb_run is not None:
        mode = run.manifest.read().get("wandb", {})
        console.print(f"W&B run: {wandb_run.name} ({mode.get('mode', '?')}; {mode.get('sync') or getattr(wandb_run, 'url', '')})")
    else:
        console.print(f"W&B: off (metrics in {run.metrics_path}; enable with --set tracking.wandb.enabled=true)")
    console.print(f"init: {init or 'fresh LoRA on the base model'}" + (f"; resuming after step {resume_step}" if resume_step is not None else ""))


def run_rl(cfg: RunConfig, run: RunDir, tracker: Any, *, init: str | None = None, resume: str | None = None, ray_address: str | None = None, console: Console | None = None) -> dict[str, Any]:
    """Run the RL stage in ``run`` and return a summary (steps, final metrics, outputs)."""
    from sparring.envs.base import make_env
    from sparring.raycluster import start_ray, stop_ray
    from sparring.rl.checkpoint import latest_checkpoint, truncate_logs_after
    from sparring.rl.learner import load_policy_model, portable_base_name, resolve_init, save_rl_outputs
    from sparring.rl.session import RLSession
    from sparring.seeding import seed_everything

    console = console or Console(stderr=True)
    check_engine(cfg)
    algo = algorithm(cfg)
    resume_from = resume_state = None
    if resume:
        resume_from, resume_state = latest_checkpoint(Path(resume))
        if resume_state.algo != algo:
            raise UserInputError(f"the checkpoint {resume_from} was written by {resume_state.algo}, but this run is {algo}", where="--resume / rl.algo", fix=f"resume with --algo {resume_state.algo}")
        init_adapter = Path(resume_state.init_adapter) if resume_state.init_adapter else None
        if init_adapter is not None and not (init_adapter / "adapter_config.json").is_file():
            raise UserInputError(f"the checkpoint was trained from {init_adapter}, which no longer exists", where="--resume", fix="restore that adapter directory, or start a new run")
    else:
        init_adapter = resolve_init(cfg, run, init)
    make_env(cfg.env.name, cfg.env.options).close()  # bad env options fail here, before Ray starts
    import ray

    owns_ray = not ray.is_initialized()
    ray_info = start_ray(cfg.ray, address=ray_address)
    pool = None
    exporter = None
    started = time.time()
    try:
        with run.stage("rl"):
            _describe_start(console, cfg, run, tracker, ray_info, algo, init_adapter, resume_state.step if resume_state else None)
            if resume_state is not None:
                truncate_logs_after(run.path, resume_state.step)
            seed_everything(cfg.seed)
            model, tokenizer, base_dir = load_policy_model(cfg, init_adapter)
            from sparring.rl.pool import RolloutPool

            pool = RolloutPool(cfg, base_dir)
            if cfg.export.every_steps:
                from sparring.rl.export_hook import ExportHook

                exporter = ExportHook(cfg, run, portable_base_name(cfg, base_dir))
            env = make_env(cfg.env.name, cfg.env.options)
            session = RLSession(cfg=cfg, run=run, tracker=tracker, pool=pool, env=env, model=model, tokenizer=tokenizer, base_dir=base_dir,
                                init_adapter=init_adapter, resume_from=resume_from, resume_state=resume_state, ray_info=ray_info,
                                exporter=exporter, console=console)
            try:
                if algo == "dpo":
                    from sparring.rl.dpo import run_dpo

                    result = run_dpo(session)
                elif algo == "chess-selfplay":
                    from sparring.rl.chess_selfplay import run_chess_selfplay

                    result = run_chess_selfplay(session)
                else:
                    from sparring.rl.grpo import run_grpo

                    result = run_grpo(session)
            finally:
                env.close()
            outputs = save_rl_outputs(session.model, tokenizer, run, cfg, base_dir)
            if exporter is not None:
                console.print("waiting for the periodic exports still running...")
                result["exports"] = exporter.wait()
            history = result.pop("history", [])
            last = history[-1] if history else {}
            summary = {
                **result,
                **outputs,
                "final": {k: v for k, v in last.items() if k.startswith("rl/")},
                "seconds": round(time.time() - started, 1),
                "ray": {"address": ray_info.address, "dashboard": ray_info.dashboard_url, "nodes": ray_info.nodes},
            }
            run.manifest.record_stage("rl", summary={k: v for k, v in summary.items() if k != "exports"})
            console.print(f"[green]rl done[/]: {summary.get('steps')} steps, adapter {outputs['adapter']}, merged {outputs['merged']}")
            return summary
    finally:
        if pool is not None:
            pool.close()
        if owns_ray and ray_info.local:
            stop_ray()


def run_rl_in_new_run(cfg: RunConfig, *, init: str | None = None, argv: list[str] | None = None, job: str = "rl") -> tuple[RunDir, dict[str, Any], list[dict[str, Any]]]:
    """Create a run directory for ``cfg``, run the stage in it (tests, benchmarks, notebooks):
    returns the run, the stage summary and the per-step metric rows."""
    from sparring.tracking import Tracker, read_metrics

    run = RunDir.create(cfg, argv or ["sparring", "rl"])
    tracker = Tracker(run, cfg, job=job)
    try:
        result = run_rl(cfg, run, tracker, init=init)
    finally:
        tracker.finish()
        run.finish()
    return run, result, [r for r in read_metrics(run.metrics_path) if "rl/reward" in r]
