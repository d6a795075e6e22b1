"""`sparring run` (the whole pipeline) and `sparring report` (re-render a run's report card).

    sparring run configs/demo.yaml [--stages sft,rl,eval,export] [--run-dir runs/<run>] [--force] [--set k=v]
    sparring report runs/<run>

Exercised by ``pytest tests/sparring/test_pipeline.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Path = typer.Argument(..., help="Run config YAML, e.g. configs/demo.yaml."),
        stages: Optional[str] = typer.Option(None, "--stages", help="Comma list of stages to run: data,sft,rl,eval,export,report (default: the config's)."),
        run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Continue an existing run directory: stages whose outputs exist and verify are skipped."),
        force: bool = typer.Option(False, "--force", help="With --run-dir: continue even though the config differs from the one the run was made with."),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a field: --set sft.epochs=1 (repeatable)."),
    ) -> None:
        """Run the pipeline: data → LoRA SFT → GRPO/DPO → eval before/after → verified exports → report."""
        from sparring.config_io import load_config
        from sparring.pipeline import parse_stages, run_pipeline

        cfg = load_config(config, set_ or [])
        run_pipeline(cfg, stages=parse_stages(stages, cfg), run_dir=str(run_dir) if run_dir else None, force=force)

    @app.command("report")
    def report(run_dir: Path = typer.Argument(..., help="A run directory under runs/.")) -> None:
        """Re-render report.md, report.html, plots and e2e_summary.json from a run directory."""
        from sparring.report import write_report

        out = write_report(run_dir)
        typer.echo(f"wrote {out['md']} and {out['html']}")
