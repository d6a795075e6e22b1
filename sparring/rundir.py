"""The run directory and its manifest: one run writes one folder that says exactly what ran.

    run = RunDir.create(cfg, argv=sys.argv)      # runs/<name>-<UTC timestamp>/config.yaml + manifest.json
    run.manifest.add_artifact(artifact)          # only verified artifacts are listed
    run = RunDir.open("runs/demo-20261121T235959Z")

manifest.json holds the git SHA and dirty flag, the config's sha256, the seed, argv, package
versions, hardware, stage timings and every artifact with its sha256.  Every write is atomic (temp
file + rename).  Exercised by ``pytest tests/sparring/test_rundir.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.types import Artifact

PACKAGES = ("sparring", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "ray", "llama_cpp_python", "gguf", "apache-tvm", "chess", "wandb", "anthropic", "numpy", "pydantic")
REPO_ROOT = Path(__file__).resolve().parent.parent


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        import torch

        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except ImportError:
        info["gpus"] = []
    return info


class Manifest:
    """manifest.json, rewritten atomically on every change.

    Each read-modify-write holds a thread lock and an ``fcntl`` lock on ``manifest.json.lock``, so
    the learner, the stage code and a background export task (another process) never lose an update.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _update(self, fn) -> dict[str, Any]:
        # the thread lock serializes this process; the file lock serializes processes (the RL
        # export hook's Ray task records its artifacts while the driver records the stage)
        import fcntl

        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.parent / ".manifest.lock", "a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                data = self.read()
                fn(data)
                atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
                return data

    def set(self, key: str, value: Any) -> None:
        self._update(lambda d: d.__setitem__(key, value))

    def add_artifact(self, artifact: Artifact) -> None:
        if not artifact.verified:
            raise ValueError(f"refusing to list unverified artifact {artifact.path} in the manifest")

        def add(d: dict[str, Any]) -> None:
            arts = [a for a in d.get("artifacts", []) if a.get("path") != artifact.path]
            arts.append(artifact.to_dict())
            d["artifacts"] = arts

        self._update(add)

    def record_stage(self, stage: str, **fields: Any) -> None:
        def rec(d: dict[str, Any]) -> None:
            d.setdefault("stages", {}).setdefault(stage, {}).update(fields)

        self._update(rec)

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return self.read().get("artifacts", [])


class RunDir:
    """A run directory: config.yaml, manifest.json, metrics.jsonl and one folder per stage."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest = Manifest(self.path / "manifest.json")

    @classmethod
    def create(cls, cfg: RunConfig, argv: list[str] | None = None, *, path: Path | None = None) -> "RunDir":
        from sparring.config_io import dump_config

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = Path(path) if path else Path(cfg.output_dir) / f"{cfg.name}-{stamp}"
        n = 1
        while path is None and target.exists():
            target = Path(cfg.output_dir) / f"{cfg.name}-{stamp}-{n}"
            n += 1
        target.mkdir(parents=True, exist_ok=path is not None)
        run = cls(target)
        text = dump_config(cfg)
        atomic_write_text(target / "config.yaml", text)
        run.manifest._update(lambda d: d.update({
            "name": cfg.name,
            "run_dir": str(target),
            "git": git_state(),
            "config_sha256": sha256_bytes(text.encode()),
            "seed": cfg.seed,
            "argv": list(argv if argv is not None else sys.argv),
            "packages": package_versions(),
            "hardware": hardware(),
            "started_at": utc_now(),
            "ended_at": None,
            "stages": d.get("stages", {}),
            "artifacts": d.get("artifacts", []),
        }))
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "RunDir":
        p = Path(path)
        missing = [f for f in ("config.yaml", "manifest.json") if not (p / f).is_file()]
        if missing:
            raise UserInputError(f"{p} is not a sparring run directory (missing {', '.join(missing)})", where=str(p), fix="pass a folder under runs/ created by `sparring run`, `sparring sft` or `sparring rl`")
        return cls(p)

    def config(self) -> RunConfig:
        from sparring.config_io import load_config

        return load_config(self.path / "config.yaml")

    def stage_dir(self, stage: str) -> Path:
        d = self.path / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and record its status in the manifest (a failure names the stage)."""
        import time

        t0 = time.time()
        self.manifest.record_stage(name, status="running", started_at=utc_now())
        try:
            yield
        except BaseException as exc:
            self.manifest.record_stage(name, status="failed", error=f"{type(exc).__name__}: {exc}", seconds=round(time.time() - t0, 2))
            raise
        self.manifest.record_stage(name, status="done", ended_at=utc_now(), seconds=round(time.time() - t0, 2))

    def finish(self) -> None:
        self.manifest.set("ended_at", utc_now())
