"""Full, atomic RL checkpoints and exact resume.

    sparring rl configs/tiny-jokes.yaml --set rl.checkpoint_every=1     # writes rl/checkpoints/step-N/
    sparring rl --resume runs/<run>                                     # continues from the newest one

A checkpoint is one folder ``<run>/rl/checkpoints/step-NNNNNN/`` holding

- ``trainer/``: what the TRL/transformers trainer saves (adapter weights, optimizer, scheduler,
  RNG states of python, numpy and torch, trainer_state.json with the step and log history);
- ``state.json``: sparring's own state: step, policy version, prompt cursor, the chess opponent
  pool and game record, the DPO round, the ``--init`` adapter, and a sha256 of every file;
- ``config.yaml``: the resolved config that ran.

It is assembled in a hidden temp folder and renamed into place, so a SIGKILL at any moment leaves
either a complete checkpoint or none.  ``latest_checkpoint`` refuses a run without a complete one
and names what is missing.  On resume, log rows written after the checkpoint (by the killed
process) are dropped so no step is counted twice.  Exercised by ``pytest tests/rl/test_resume.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError

CHECKPOINTS_DIR = Path("rl") / "checkpoints"
STATE_FILE = "state.json"
TRAINER_FILES = ("adapter_config.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")
FORMAT_VERSION = 1


@dataclass
class RLState:
    """Everything beyond the trainer's own state that a resumed run needs."""

    step: int = 0
    policy_version: int = 0
    prompt_cursor: int = 0
    algo: str = "grpo"
    round: int = 0
    init_adapter: str | None = None
    opponent_pool: list[dict[str, Any]] = field(default_factory=list)
    games: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RLState":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def checkpoints_root(run_path: Path) -> Path:
    return Path(run_path) / CHECKPOINTS_DIR


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def commit_checkpoint(run_path: Path, state: RLState, config_text: str, *, trainer_dir: Path | None = None, files: dict[str, Path] | None = None, required: tuple[str, ...] = TRAINER_FILES) -> Path:
    """Assemble a checkpoint in a temp folder and rename it to ``step-N`` (atomic).

    ``trainer_dir`` (moved, not copied) is what the trainer saved; ``files`` are extra files or
    folders copied in under their given names.  Returns the final path.
    """
    root = checkpoints_root(run_path)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(state.step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        if trainer_dir is not None:
            os.replace(trainer_dir, tmp / "trainer")
            missing = [f for f in required if not (tmp / "trainer" / f).is_file()]
            if missing:
                raise RuntimeError(f"the trainer checkpoint lacks {', '.join(missing)}")
        for name, src in (files or {}).items():
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if Path(src).is_dir():
                shutil.copytree(src, dst)
            else:
                shutil.copy2(src, dst)
        (tmp / "config.yaml").write_text(config_text, encoding="utf-8")
        sums = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        payload = {"format": FORMAT_VERSION, "state": state.to_dict(), "required": list(required) if trainer_dir is not None else [], "sha256": sums}
        (tmp / STATE_FILE).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        _fsync_tree(tmp)
        if final.exists():  # a resumed run re-reaching a step: replace the old one
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def checkpoint_problems(ckpt: Path) -> list[str]:
    """What a checkpoint folder lacks (empty when it is complete and its checksums match)."""
    ckpt = Path(ckpt)
    state_path = ckpt / STATE_FILE
    if not state_path.is_file():
        return [f"{state_path} (written last: the checkpoint never completed)"]
    try:
        payload = json.loads(state_path.read_text())
    except json.JSONDecodeError as exc:
        return [f"{state_path} is not valid JSON ({exc})"]
    problems = []
    if not (ckpt / "config.yaml").is_file():
        problems.append(str(ckpt / "config.yaml"))
    for name in payload.get("required", []):
        if not (ckpt / "trainer" / name).is_file():
            problems.append(str(ckpt / "trainer" / name))
    for rel, digest in payload.get("sha256", {}).items():
        p = ckpt / rel
        if not p.is_file():
            problems.append(str(p))
        elif p.stat().st_size < (1 << 26) and _sha256(p) != digest:
            problems.append(f"{p} (checksum differs from state.json)")
    return problems


def load_state(ckpt: Path) -> RLState:
    return RLState.from_dict(json.loads((Path(ckpt) / STATE_FILE).read_text())["state"])


def list_checkpoints(run_path: Path) -> list[Path]:
    root = checkpoints_root(run_path)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")), key=lambda p: p.name)


def latest_checkpoint(run_path: Path) -> tuple[Path, RLState]:
    """The newest complete checkpoint of a run, or a ``UserInputError`` naming what is missing."""
    run_path = Path(run_path)
    where = f"--resume {run_path}"
    fix = "resume a run that wrote at least one checkpoint (rl.checkpoint_every steps), or start a new run without --resume"
    if not run_path.is_dir():
        raise UserInputError(f"{run_path} does not exist", where=where, fix=fix)
    for name in ("config.yaml", "manifest.json"):
        if not (run_path / name).is_file():
            raise UserInputError(f"{run_path} is not a sparring run directory (missing {run_path / name})", where=where, fix=fix)
    candidates = list_checkpoints(run_path)
    if not candidates:
        raise UserInputError(f"no RL checkpoint in {run_path} (missing {checkpoints_root(run_path)}/step-N/ with trainer/, state.json, config.yaml)", where=where, fix=fix)
    report = []
    for ckpt in reversed(candidates):
        problems = checkpoint_problems(ckpt)
        if not problems:
            return ckpt, load_state(ckpt)
        report.append(f"{ckpt.name}: missing {'; '.join(problems)}")
    raise UserInputError("no complete RL checkpoint in " + str(run_path) + ":\n  " + "\n  ".join(report), where=where, fix=fix)


def prune_checkpoints(run_path: Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints; drop leftovers of interrupted writes."""
    root = checkpoints_root(run_path)
    if root.is_dir():
        for leftover in root.glob(".step-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    complete = [c for c in list_checkpoints(run_path) if (c / STATE_FILE).is_file()]
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def _is_rl_row(row: dict[str, Any]) -> bool:
    return any(k.startswith(("rl/", "time/", "chess/", "dpo/")) for k in row) or row.get("table", "").startswith("rl/")


def truncate_logs_after(run_path: Path, step: int) -> int:
    """Drop RL rows logged after ``step`` from metrics.jsonl and samples.jsonl; returns rows dropped."""
    dropped = 0
    for name in ("metrics.jsonl", "samples.jsonl"):
        path = Path(run_path) / name
        if not path.is_file():
            continue
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the kill
                dropped += 1
                continue
            if _is_rl_row(row) and int(row.get("step", 0)) > step:
                dropped += 1
                continue
            kept.append(line)
        # rewritten in place (same inode): a Tracker already appending to this file keeps working
        with open(path, "r+", encoding="utf-8") as f:
            f.write("".join(k + "\n" for k in kept))
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    return dropped


def save_rng_state(path: Path) -> None:
    """python, numpy and torch RNG states in the file format transformers' Trainer uses."""
    import random

    import numpy as np
    import torch

    states = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.random.get_rng_state_all()
    torch.save(states, path)


def restore_rng_state(path: Path) -> None:
    import random

    import numpy as np
    import torch

    states = torch.load(path, weights_only=False)
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.random.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.random.set_rng_state_all(states["cuda"])
