"""`sparring run`: chain the stages — data → sft → rl → eval → export → report — in one run directory.

    sparring run configs/demo.yaml
    sparring run configs/chess.yaml --stages sft,rl,eval,export
    sparring run configs/demo.yaml --run-dir runs/demo-20261121T120000Z   # resume: done stages are skipped

A stage whose outputs exist and verify is skipped on re-run; a failure names the stage and leaves
earlier outputs intact; a run directory made from a different config is refused unless ``--force``.
Exercised by ``pytest tests/sparring/test_pipeline.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from rich.console import Console

from sparring.config import STAGES, RunConfig
from sparring.config_io import dump_config
from sparring.errors import SparringError, UserInputError
from sparring.rundir import RunDir, sha256_bytes
from sparring.seeding import seed_everything
from sparring.tracking import Tracker

console = Console(stderr=True)


# --------------------------------------------------------------------------------------------
# what "done" means for each stage (outputs exist and verify)


def _sft_done(run: RunDir) -> bool:
    return (run.path / "sft" / "adapter" / "adapter_config.json").is_file() and (run.path / "sft" / "merged" / "config.json").is_file()


def _rl_done(run: RunDir) -> bool:
    final = run.path / "rl" / "final"
    return (final / "adapter_config.json").is_file() or (final / "config.json").is_file()


def _eval_done(run: RunDir) -> bool:
    return (run.path / "eval" / "summary.json").is_file()


def _export_done(run: RunDir) -> bool:
    arts = run.manifest.artifacts
    return bool(arts) and all(a.get("verified") for a in arts)


def _data_done(run: RunDir) -> bool:
    rec = run.manifest.read().get("stages", {}).get("data", {})
    path = rec.get("path") or rec.get("source")
    return bool(path) and Path(path).is_file()


def _report_done(run: RunDir) -> bool:
    return (run.path / "report.md").is_file() and (run.path / "report.html").is_file()


DONE: dict[str, Callable[[RunDir], bool]] = {
    "data": _data_done, "sft": _sft_done, "rl": _rl_done, "eval": _eval_done, "export": _export_done, "report": _report_done,
}


def trained_model(run: RunDir, cfg: RunConfig) -> str:
    """The newest model the run has produced, else the base model."""
    for rel in ("rl/final", "sft/adapter"):
        p = run.path / rel
        if (p / "adapter_config.json").is_file() or (p / "config.json").is_file():
            return str(p)
    return cfg.model.name


def rl_init(run: RunDir, cfg: RunConfig, stages: list[str]) -> str | None:
    if cfg.rl.init:
        return cfg.rl.init
    if "sft" in stages or _sft_done(run):
        return str(run.path / "sft" / "adapter")
    if cfg.rl.allow_base_init:
        return None
    raise UserInputError(
        "the rl stage needs an SFT init, but this run has no SFT stage and rl.init is not set",
        where="stages / rl.init",
        fix="add sft to --stages, set rl.init to an SFT run or adapter dir, or set rl.allow_base_init: true",
    )


# --------------------------------------------------------------------------------------------
# stage bodies


def stage_data(cfg: RunConfig, run: RunDir, tracker: Tracker, stages: list[str]) -> None:
    from sparring.sft.data_build import build_sft_dataset

    path = build_sft_dataset(cfg, run)
    run.manifest.record_stage("data", path=str(path))


def stage_sft(cfg: RunConfig, run: RunDir, tracker: Tracker, stages: list[str]) -> None:
    from sparring.sft.trainer import run_sft

    resume = (run.path / "sft" / "checkpoints").is_dir()
    result = run_sft(cfg, run, tracker, resume=resume)
    run.manifest.record_stage("sft", result=_jsonable(result))


def stage_rl(cfg: RunConfig, run: RunDir, tracker: Tracker, stages: list[str]) -> None:
    from sparring.rl.stage import run_rl

    resume = str(run.path) if (run.path / "rl" / "checkpoints").is_dir() else None
    result = run_rl(cfg, run, tracker, init=rl_init(run, cfg, stages), resume=resume)
    run.manifest.record_stage("rl", result=_jsonable(result))


def stage_eval(cfg: RunConfig, run: RunDir, tracker: Tracker, stages: list[str]) -> None:
    from sparring.evaluators.run_eval import evaluate_run

    summary = evaluate_run(cfg, run, model=trained_model(run, cfg), base=cfg.model.name if cfg.eval.compare_base else None)
    tracker.log({f"eval/{k}": v for k, v in summary.get("after", {}).items() if isinstance(v, (int, float))}, step=0)


def stage_export(cfg: RunConfig, run: RunDir, tracker: Tracker, stages: list[str]) -> None:
    from sparring.envs.base import make_env
    from sparring.exporters.base import export_model

    env = make_env(cfg.env.name, cfg.env.options)
    system_prompt = getattr(env.options, "system_prompt", None) or None
    env.close()
    export_model(
        trained_model(run, cfg),
        formats=list(cfg.export.formats),
        gguf_quants=list(cfg.export.gguf_quants),
        mlc_quants=list(cfg.export.mlc_quants),
        run_dir=run.path,
        model_card=cfg.export.model_card,
        system_prompt=system_prompt,
    )
    if cfg.env.name == "qa":  # the Q/A plan: the exported model answers held-out questions over HTTP
        from sparring.qa_recipe import served_qa_eval

        served = served_qa_eval(cfg, run)
        tracker.log({f"served/{k}": v for k, v in served.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}, step=0)


def stage_report(cfg: RunConfig, run: RunDir, tracker: Tracker, stages: list[str]) -> None:
    from sparring.report import write_report

    write_report(run)


STAGE_FUNCS: dict[str, Callable[[RunConfig, RunDir, Tracker, list[str]], None]] = {
    "data": stage_data, "sft": stage_sft, "rl": stage_rl, "eval": stage_eval, "export": stage_export, "report": stage_report,
}


def _jsonable(obj: object) -> object:
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        return json.loads(json.dumps(obj, default=str))


# --------------------------------------------------------------------------------------------


def parse_stages(text: str | None, cfg: RunConfig) -> list[str]:
    if not text:
        return list(cfg.stages)
    asked = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in asked if s not in STAGES]
    if bad:
        raise UserInputError(f"unknown stage(s) {', '.join(bad)}", where="--stages", fix=f"choose from {','.join(STAGES)}")
    return [s for s in STAGES if s in asked]  # always in pipeline order


def open_or_create(cfg: RunConfig, run_dir: str | None, force: bool) -> RunDir:
    if run_dir is None:
        return RunDir.create(cfg, argv=sys.argv)
    run = RunDir.open(run_dir)
    old = (run.path / "config.yaml").read_text()
    new = dump_config(cfg)
    if sha256_bytes(old.encode()) != sha256_bytes(new.encode()):
        if not force:
            raise UserInputError(
                "this run directory was made from a different config",
                where=str(run.path / "config.yaml"),
                fix="re-run with the same config and --set values, start a new run (drop --run-dir), or pass --force to continue with the new config",
            )
        (run.path / "config.yaml").write_text(new)
        run.manifest.set("config_sha256", sha256_bytes(new.encode()))
    return run


def run_pipeline(cfg: RunConfig, *, stages: list[str] | None = None, run_dir: str | None = None, force: bool = False) -> RunDir:
    stages = stages or list(cfg.stages)
    if "rl" in stages and "sft" not in stages and cfg.rl.init is None and not cfg.rl.allow_base_init and not (run_dir and _sft_done(RunDir(Path(run_dir)))):
        rl_init(RunDir(Path(".")), cfg, stages)  # raises the clear message before anything is written
    from sparring.models import check_not_quantized, resolve_model

    base = resolve_model(cfg.model.name, where="model.name")  # a bad model fails before runs/ is touched
    check_not_quantized(base.path, where="model.name")
    seed_everything(cfg.seed)
    run = open_or_create(cfg, run_dir, force)
    console.print(f"[bold]run directory[/]: {run.path}")
    with Tracker(run, cfg, job="run") as tracker:
        for name in stages:
            if DONE[name](run) and run.manifest.read().get("stages", {}).get(name, {}).get("status") == "done":
                console.print(f"[dim]stage {name}: outputs exist and verify — skipped[/]")
                continue
            console.rule(f"stage {name}")
            try:
                with run.stage(name):
                    STAGE_FUNCS[name](cfg, run, tracker, stages)
            except UserInputError:
                raise
            except SparringError as exc:
                raise SparringError(f"stage {name} failed: {exc} (earlier outputs in {run.path} are intact; re-run with --run-dir {run.path} to resume)") from exc
            except Exception as exc:
                raise SparringError(f"stage {name} failed: {type(exc).__name__}: {exc} (earlier outputs in {run.path} are intact; re-run with --run-dir {run.path} to resume)") from exc
    run.finish()
    console.print(f"[green]done[/]: {run.path}" + (f" — report: {run.path / 'report.html'}" if (run.path / "report.html").is_file() else ""))
    return run
