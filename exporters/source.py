"""What ``sparring export SOURCE`` exports: a run's latest model, a checkpoint, or any loadable model.

A run directory (``manifest.json`` + ``config.yaml``) exports its newest trained model, in this
order: ``rl/final``, ``rl/merged``, ``sft/merged``, ``sft/adapter``.  A directory inside a run (an RL
checkpoint ``rl/checkpoints/step-N``) exports into that run.  Anything else goes through
``sparring.models.resolve_model`` (aliases, Hub cache, HF dirs, LoRA adapter dirs, .gguf files).
The step number N of ``exports/step-N/`` comes from the checkpoint: ``trainer_state.json``'s
``global_step``, a ``step`` field in ``sparring-checkpoint.json``/``checkpoint.json``, or a
``step-N``/``checkpoint-N`` folder name, for ``rl/final`` and ``rl/merged`` the finished RL stage's
last step (from the manifest); 0 when none says.

Exercised by ``pytest tests/exporters/test_export_cli.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sparring.errors import UserInputError

RUN_MODEL_DIRS = ("rl/final", "rl/merged", "sft/merged", "sft/adapter")
_STEP_DIR = re.compile(r"^(?:step|checkpoint|global_step)[-_]?(\d+)$")


@dataclass
class ExportSource:
    """The resolved source: ``model_dir`` has full weights (for an adapter: its base, until merged)."""

    source: str
    model_dir: Path
    adapter_dir: Path | None
    base_dir: Path | None
    run_dir: Path | None
    step: int
    label: str
    system_prompt: str | None

    @property
    def is_adapter(self) -> bool:
        return self.adapter_dir is not None


def is_run_dir(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "config.yaml").is_file()


def enclosing_run(path: Path, levels: int = 4) -> Path | None:
    for parent in list(path.resolve().parents)[:levels]:
        if is_run_dir(parent):
            return parent
    return None


def run_model_dir(run: Path) -> Path:
    for rel in RUN_MODEL_DIRS:
        cand = run / rel
        if (cand / "config.json").is_file() or (cand / "adapter_config.json").is_file():
            return cand
    raise UserInputError(
        f"run directory {run} holds no trained model yet (looked for {', '.join(RUN_MODEL_DIRS)})",
        where=str(run),
        fix="run its sft or rl stage first, or pass a model directory as SOURCE",
    )


def checkpoint_step(model_dir: Path) -> int:
    """The training step a checkpoint dir was saved at (0 when nothing says)."""
    for name, key in (("trainer_state.json", "global_step"), ("sparring-checkpoint.json", "step"), ("checkpoint.json", "step")):
        path = model_dir / name
        if path.is_file():
            try:
                value = json.loads(path.read_text()).get(key)
            except (json.JSONDecodeError, AttributeError):
                value = None
            if isinstance(value, int):
                return value
    for part in (model_dir.name, model_dir.parent.name):
        if m := _STEP_DIR.match(part):
            return int(m.group(1))
    return 0


def finished_rl_step(run: Path, model_dir: Path) -> int:
    """The last step of the run's finished RL stage when ``model_dir`` is its ``rl/final`` or
    ``rl/merged`` (they carry no trainer state); 0 otherwise."""
    try:
        if model_dir.resolve().parent != (run / "rl").resolve():
            return 0
        steps = json.loads((run / "manifest.json").read_text())["stages"]["rl"]["summary"]["steps"]
        return int(steps)
    except (OSError, KeyError, TypeError, ValueError):
        return 0


def run_system_prompt(run: Path) -> str | None:
    """The system prompt of the run's env (its options' ``system_prompt`` or the module's constant)."""
    try:
        import importlib

        from sparring.envs.base import env_class, parse_env_options
        from sparring.rundir import RunDir

        cfg = RunDir.open(run).config()
        options = parse_env_options(cfg.env.name, cfg.env.options)
        prompt = getattr(options, "system_prompt", None)
        if prompt is None:
            prompt = getattr(importlib.import_module(env_class(cfg.env.name).__module__), "SYSTEM_PROMPT", None)
        return prompt or None
    except Exception:  # a run written by another version, an env not installed: no SYSTEM line
        return None


def resolve_export_source(source: str | Path, *, run_dir: str | Path | None = None, step: int | None = None) -> ExportSource:
    from sparring.models import check_not_quantized, resolve_model

    text = str(source)
    path = Path(text).expanduser()
    run = Path(run_dir) if run_dir else None
    inner: Path | None = None
    if path.is_dir() and is_run_dir(path):
        run, inner = path, run_model_dir(path)
    elif path.exists():
        inner = path
        run = run or enclosing_run(path)
    resolved = resolve_model(inner if inner is not None else text, where="SOURCE")
    check_not_quantized(resolved.path, where=f"{resolved.path}/config.json: quantization_config")
    if step is None:
        step = checkpoint_step(inner) if inner is not None and inner.is_dir() else 0
        if not step and run is not None and inner is not None:
            step = finished_rl_step(run, inner)
    label = run.name if run is not None else (inner.name if inner is not None else text.replace("/", "--"))
    return ExportSource(
        source=text,
        model_dir=resolved.path,
        adapter_dir=resolved.adapter_path,
        base_dir=resolved.base_path,
        run_dir=run,
        step=int(step),
        label=label,
        system_prompt=run_system_prompt(run) if run is not None else None,
    )
