"""The periodic export hook: every ``export.every_steps`` RL steps, the current policy is exported
(GGUF, MLC, ... as ``export.formats`` says) by a Ray task while training goes on.

    sparring rl configs/jokes.yaml --set export.every_steps=10

At step N the learner writes a small adapter snapshot ``<run>/rl/snapshots/step-N`` (atomic) and
submits ``export_snapshot`` as a Ray task writing ``<run>/exports/step-N/``; it does not wait.  At
every later step the finished tasks are collected: verified artifacts are listed in the manifest
and every result (ok, or the error) is recorded under ``manifest["rl_exports"]``.  At the end of
the stage the hook waits for what is still running.  Exercised by ``pytest tests/rl/test_grpo.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sparring.config import RunConfig
from sparring.rundir import RunDir


def export_snapshot(snapshot: str, out_dir: str, formats: list[str], gguf_quants: list[str], mlc_quants: list[str], run_dir: str, step: int) -> dict[str, Any]:
    """Export one adapter snapshot (runs inside a Ray task); never raises, reports instead."""
    started = time.time()
    try:
        from sparring.exporters.base import export_model

        artifacts = export_model(snapshot, out_dir, formats=formats, gguf_quants=gguf_quants, mlc_quants=mlc_quants, run_dir=run_dir, step=step)
        return {"status": "ok", "artifacts": [a.to_dict() for a in artifacts], "seconds": round(time.time() - started, 2)}
    except Exception as exc:  # the failure is recorded in the manifest, training goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": round(time.time() - started, 2)}


class ExportHook:
    """Snapshots the policy every N steps and exports it in a background Ray task."""

    def __init__(self, cfg: RunConfig, run: RunDir, base_name: str, *, num_cpus: float = 0.0):
        self.cfg, self.run, self.base_name = cfg, run, base_name
        self.every = cfg.export.every_steps
        self.num_cpus = num_cpus
        self.pending: dict[int, Any] = {}
        self.results: list[dict[str, Any]] = []
        self._remote = None

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def _task(self):
        if self._remote is None:
            import ray

            self._remote = ray.remote(num_cpus=self.num_cpus, max_retries=0)(export_snapshot)
        return self._remote

    def snapshot(self, step: int, model: Any, tokenizer: Any) -> Path:
        from sparring.sft.artifacts import write_dir_atomically

        def write(tmp: Path) -> None:
            model.save_pretrained(tmp, safe_serialization=True, selected_adapters=["default"], save_embedding_layers=False)
            tokenizer.save_pretrained(tmp)
            cfg_path = tmp / "adapter_config.json"
            data = json.loads(cfg_path.read_text())
            data["base_model_name_or_path"] = self.base_name
            cfg_path.write_text(json.dumps(data, indent=2))

        return write_dir_atomically(self.run.path / "rl" / "snapshots" / f"step-{step:06d}", write)

    def maybe_export(self, step: int, model: Any, tokenizer: Any) -> None:
        """Called after every optimizer step: collect finished exports, start a new one when due."""
        self.collect()
        if not self.enabled or step % self.every or step in self.pending:
            return
        started = time.perf_counter()
        snap = self.snapshot(step, model, tokenizer)
        out = self.run.path / "exports" / f"step-{step:06d}"
        e = self.cfg.export
        self.pending[step] = self._task().remote(str(snap), str(out), list(e.formats), list(e.gguf_quants), list(e.mlc_quants), str(self.run.path), step)
        # the learner waited only for the snapshot; the export itself runs in the Ray task
        self._record({"step": step, "status": "running", "snapshot": str(snap), "out_dir": str(out),
                      "learner_blocked_seconds": round(time.perf_counter() - started, 3)})

    def collect(self, timeout: float = 0.0) -> None:
        if not self.pending:
            return
        import ray

        refs = list(self.pending.values())
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for step, ref in list(self.pending.items()):
            if ref in done:
                del self.pending[step]
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the task itself died (worker crash)
                    result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                self._finish(step, result)

    def _finish(self, step: int, result: dict[str, Any]) -> None:
        from sparring.types import Artifact

        for art in result.get("artifacts", []):
            artifact = Artifact(art["path"], art["format"], art["sha256"], art["size_bytes"], art["verify"])
            if artifact.verified:
                self.run.manifest.add_artifact(artifact)
        previous = next((r for r in self.results if r["step"] == step), {})
        self._record({**previous, "step": step, **{k: v for k, v in result.items() if k != "artifacts"}, "artifacts": [a["path"] for a in result.get("artifacts", [])]})

    def _record(self, entry: dict[str, Any]) -> None:
        self.results = [r for r in self.results if r["step"] != entry["step"]] + [entry]
        self.run.manifest.set("rl_exports", sorted(self.results, key=lambda r: r["step"]))

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait for the exports still running (at the end of the stage)."""
        deadline = None if timeout is None else time.time() + timeout
        while self.pending and (deadline is None or time.time() < deadline):
            self.collect(timeout=1.0)
        return self.results
