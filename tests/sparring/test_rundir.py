"""Run directory layout and manifest contents; atomic writes; only verified artifacts listed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.rundir import RunDir
from sparring.types import Artifact


def test_create_writes_config_and_manifest(runs_dir: Path):
    cfg = RunConfig(name="unit", seed=7, output_dir=str(runs_dir))
    run = RunDir.create(cfg, argv=["sparring", "run", "x.yaml"])
    assert run.path.parent == runs_dir and run.path.name.startswith("unit-")
    text = (run.path / "config.yaml").read_text()
    m = json.loads((run.path / "manifest.json").read_text())
    assert m["config_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert m["seed"] == 7 and m["argv"] == ["sparring", "run", "x.yaml"]
    assert len(m["git"]["sha"] or "") in (0, 40) and "dirty" in m["git"]
    assert m["packages"]["torch"] and m["hardware"]["cpu_count"] >= 1 and "ram_gb" in m["hardware"]
    assert m["started_at"] and m["ended_at"] is None
    assert RunDir.open(run.path).config() == cfg
    run.finish()
    assert json.loads((run.path / "manifest.json").read_text())["ended_at"]


def test_two_runs_in_the_same_second_do_not_collide(runs_dir: Path):
    cfg = RunConfig(name="same", output_dir=str(runs_dir))
    a, b = RunDir.create(cfg, argv=[]), RunDir.create(cfg, argv=[])
    assert a.path != b.path


def test_artifacts_must_be_verified(runs_dir: Path):
    run = RunDir.create(RunConfig(name="a", output_dir=str(runs_dir)), argv=[])
    bad = Artifact("x.gguf", "gguf", "0" * 64, 1, {"passed": False})
    with pytest.raises(ValueError, match="unverified"):
        run.manifest.add_artifact(bad)
    good = Artifact("x.gguf", "gguf", "1" * 64, 1, {"passed": True})
    run.manifest.add_artifact(good)
    run.manifest.add_artifact(good)  # re-adding the same path replaces, never duplicates
    assert [a["sha256"] for a in run.manifest.artifacts] == ["1" * 64]
    assert not list(run.path.glob(".manifest.json.*")), "temp files must be renamed away"


def test_stage_records_failure_and_timing(runs_dir: Path):
    run = RunDir.create(RunConfig(name="s", output_dir=str(runs_dir)), argv=[])
    with run.stage("sft"):
        pass
    with pytest.raises(RuntimeError):
        with run.stage("rl"):
            raise RuntimeError("boom")
    stages = run.manifest.read()["stages"]
    assert stages["sft"]["status"] == "done" and stages["sft"]["seconds"] >= 0
    assert stages["rl"]["status"] == "failed" and "boom" in stages["rl"]["error"]


def test_open_rejects_non_run_dirs(tmp_path: Path):
    with pytest.raises(UserInputError, match="not a sparring run directory"):
        RunDir.open(tmp_path)


def _add_many(path: str, start: int) -> None:
    run = RunDir.open(path)
    for i in range(start, start + 15):
        run.manifest.add_artifact(Artifact(f"a{i}", "gguf", f"{i:064d}", i, {"passed": True}))


def test_concurrent_processes_lose_no_manifest_update(runs_dir: Path):
    import multiprocessing as mp

    run = RunDir.create(RunConfig(name="race", output_dir=str(runs_dir)), argv=[])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(str(run.path), k * 100)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(a["path"] for a in run.manifest.artifacts) == sorted(f"a{k * 100 + i}" for k in range(3) for i in range(15))
