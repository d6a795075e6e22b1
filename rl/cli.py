"""`sparring rl`: the RL stage from the command line.

    sparring rl configs/jokes.yaml --init runs/<sft run>            # GRPO on top of the SFT adapter
    sparring rl configs/chess.yaml --algo dpo --rounds 5
    sparring rl configs/jokes.yaml --resume runs/<run>              # continues exactly where it stopped
    sparring rl configs/chess.yaml --ray-address auto               # joins an existing Ray cluster
    sparring rl configs/tiny-jokes.yaml --set rl.steps=4            # any config field

A new run writes a new run directory; ``--resume`` continues in the given one (its own
config.yaml is used, with ``--set`` overrides on top; CONFIG may then be left out).
Exit 2 for bad input, 1 for a failure during work.  Exercised by ``pytest tests/rl/test_rl_cli.py``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Optional

import typer


def _load(config: Path | None, resume: Path | None, overrides: list[str]):
    from sparring.config_io import load_config
    from sparring.errors import UserInputError

    if resume is not None:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            from sparring.rl.checkpoint import latest_checkpoint

            latest_checkpoint(Path(resume))  # names what is missing
        cfg = load_config(saved, overrides)
        if config is not None:
            given = load_config(config, overrides)
            if given.model_dump() != cfg.model_dump():
                typer.echo(f"note: resuming with the run's own config {saved} (it differs from {config})", err=True)
        return cfg
    if config is None:
        raise UserInputError("no config given", where="CONFIG", fix="sparring rl configs/jokes.yaml [--init RUN] (or --resume RUN)")
    return load_config(config, overrides)


def register(app: typer.Typer) -> None:
    @app.command("rl")
    def rl(
        config: Optional[Path] = typer.Argument(None, help="Run config YAML (optional with --resume)."),
        init: Optional[str] = typer.Option(None, "--init", help="SFT run directory or LoRA adapter directory to start from."),
        algo: Optional[str] = typer.Option(None, "--algo", help="grpo or dpo (overrides rl.algo)."),
        rounds: Optional[int] = typer.Option(None, "--rounds", help="DPO rounds (overrides rl.rounds)."),
        steps: Optional[int] = typer.Option(None, "--steps", help="GRPO steps (overrides rl.steps)."),
        resume: Optional[Path] = typer.Option(None, "--resume", help="Run directory to continue from its newest complete checkpoint."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join a Ray cluster ('auto' or host:port) instead of starting a local one."),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config field: --set rl.steps=4 (repeatable)."),
    ) -> None:
        """Reinforcement learning with Ray rollout actors: GRPO or iterative DPO (chess: self-play)."""
        from rich.console import Console

        from sparring.errors import UserInputError
        from sparring.rundir import RunDir
        from sparring.tracking import Tracker

        overrides = list(set_ or [])
        if algo is not None:
            if algo not in ("grpo", "dpo"):
                raise UserInputError(f"unknown algorithm {algo!r}", where="--algo", fix="use grpo or dpo")
            overrides.append(f"rl.algo={algo}")
        if rounds is not None:
            overrides.append(f"rl.rounds={rounds}")
        if steps is not None:
            overrides.append(f"rl.steps={steps}")
        cfg = _load(config, resume, overrides)
        from sparring.rl.stage import check_engine, run_rl

        check_engine(cfg)
        fresh = resume is None
        if resume is not None:
            from sparring.rl.checkpoint import latest_checkpoint

            latest_checkpoint(resume)  # names what is missing, before anything starts
            run = RunDir.open(resume)
        else:
            from sparring.rl.learner import resolve_init

            resolve_init(cfg, None, init)  # a missing or mismatched --init fails before a run dir exists
            run = RunDir.create(cfg, argv=["sparring", *sys.argv[1:]])
        console = Console(stderr=True)
        tracker = Tracker(run, cfg, job="rl")
        try:
            run_rl(cfg, run, tracker, init=init, resume=str(resume) if resume else None, ray_address=ray_address, console=console)
        except UserInputError:
            tracker.finish()
            if fresh and not (run.path / "rl").exists():  # refused before any work: leave nothing behind
                shutil.rmtree(run.path, ignore_errors=True)
            raise
        finally:
            tracker.finish()
            if run.path.exists():
                run.finish()
        typer.echo(str(run.path))
