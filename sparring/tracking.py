"""Metric tracking: metrics.jsonl always, Weights & Biases when enabled (offline without a key).

    tracker = Tracker(run_dir, cfg)
    tracker.log({"rl/reward": 0.4, "time/generate_s": 1.2}, step=3)
    tracker.log_table("rl/samples", rows, step=3)
    tracker.finish()

Metric names are identical in metrics.jsonl and W&B.  Exercised by
``pytest tests/sparring/test_tracking.py`` (runs W&B offline for real and reads the run back).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from sparring.config import RunConfig
from sparring.rundir import RunDir


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash: skip it
                continue
    return rows


class Tracker:
    def __init__(self, run: RunDir, cfg: RunConfig, *, job: str | None = None):
        self.run, self.cfg = run, cfg
        self.path = run.metrics_path
        self._file = open(self.path, "a", encoding="utf-8")
        self.wandb_run = None
        self._families: set[str] = set()
        wcfg = cfg.tracking.wandb
        if wcfg.enabled:
            self._start_wandb(job)

    def _start_wandb(self, job: str | None) -> None:
        import wandb

        wcfg = self.cfg.tracking.wandb
        mode = wcfg.mode
        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        self.wandb_run = wandb.init(
            project=wcfg.project,
            entity=wcfg.entity,
            name=self.run.path.name,
            job_type=job,
            config=self.cfg.model_dump(mode="json"),
            dir=str(self.run.path),
            mode=mode,
            reinit="finish_previous",
        )
        self.run.manifest.set("wandb", {"mode": mode, "id": self.wandb_run.id, "dir": str(getattr(self.wandb_run, "dir", "")), "sync": f"wandb sync {self.run.path}/wandb/offline-run-*" if mode == "offline" else None})

    def log(self, metrics: dict[str, Any], step: int) -> None:
        row = {"step": step, "time": round(time.time(), 3), **{k: _clean(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.wandb_run is not None:
            values = {k: v for k, v in row.items() if k not in ("step", "time") and v is not None}
            self.wandb_run.log({**values, self._axis(values): step})

    def _axis(self, values: dict[str, Any]) -> str:
        """The W&B step axis of a row: ``<stage>/step`` for the stage of its first metric.  One run
        holds every stage (SFT steps 1..N, then RL steps 1..M), so W&B's own monotonic step cannot
        be the stage's step (RL step 1 after SFT step 86 would be dropped); each metric family is
        plotted against its stage's step instead (``define_metric``)."""
        stage = next((k.split("/", 1)[0] for k in values if "/" in k), "train")
        axis = f"{stage}/step"
        for key in values:
            family = key.split("/", 1)[0] if "/" in key else key
            if family not in self._families:
                self._families.add(family)
                self.wandb_run.define_metric(axis, hidden=True)
                self.wandb_run.define_metric(f"{family}/*" if "/" in key else family, step_metric=axis)
        return axis

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        if not rows:
            return
        samples = self.run.path / "samples.jsonl"
        with open(samples, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"table": name, "step": step, **r}, default=str) + "\n")
        if self.wandb_run is not None:
            import wandb

            cols = list(rows[0])
            self.wandb_run.log({name: wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows]), f"{name.split('/', 1)[0]}/step": step})

    def finish(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def read_wandb_history(run_file: str | os.PathLike[str], *, wait_s: float = 0.0) -> list[dict[str, Any]]:
    """The history rows of an offline W&B run file (``offline-run-*/run-*.wandb``).

    W&B's writer process can still be flushing the file when ``finish()`` has returned (seen about
    once in ten short runs): with ``wait_s`` the file is re-read until it holds history rows or
    ``wait_s`` seconds have passed.

    The file is W&B's record log: a 7-byte header, then 32 KiB blocks of records, each with a
    7-byte header (crc32, length, chunk type) and a protobuf ``Record`` payload split across
    blocks.  Used to check what an offline run recorded without a W&B server.
    """
    import time

    deadline = time.monotonic() + wait_s
    while True:
        rows = _history_rows(run_file)
        if rows or time.monotonic() >= deadline:
            return rows
        time.sleep(0.5)


def _history_rows(run_file: str | os.PathLike[str]) -> list[dict[str, Any]]:
    import struct

    from wandb.proto import wandb_internal_pb2

    data = Path(run_file).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{run_file} is not a W&B run file")
    block, pos, pending, rows = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST: a whole record
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(pending)
            pending = b""
            if rec.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
    return rows
