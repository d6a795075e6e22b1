"""Core commands: `sparring config show|validate`, `sparring models list|info|pull`, `sparring doctor`.

    sparring config show configs/jokes.yaml --set sft.epochs=1 --explain
    sparring config validate configs/*.yaml
    sparring models info smollm2-135m
    sparring doctor

Exercised by ``pytest tests/sparring/test_cli.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()

SetOpt = typer.Option(None, "--set", help="Override a field: --set sft.epochs=1 (repeatable).")


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Show, explain and validate run configs.", no_args_is_help=True)
    models_app = typer.Typer(help="List, inspect and download base models.", no_args_is_help=True)
    app.add_typer(config_app, name="config")
    app.add_typer(models_app, name="models")

    @config_app.command("show")
    def config_show(
        path: Path = typer.Argument(..., help="A run config YAML."),
        set_: Optional[list[str]] = SetOpt,
        explain: bool = typer.Option(False, "--explain", help="Print every field's description."),
    ) -> None:
        """Print the resolved config (defaults filled in, overrides applied)."""
        from sparring.config_io import dump_config, explain_config, load_config

        cfg = load_config(path, set_ or [])
        typer.echo(explain_config(cfg) if explain else dump_config(cfg))

    @config_app.command("validate")
    def config_validate(paths: list[Path] = typer.Argument(..., help="Config files to check.")) -> None:
        """Validate configs; exit 2 at the first invalid one."""
        from sparring.config_io import load_config

        for p in paths:
            load_config(p)
            console.print(f"[green]ok[/] {p}")

    @models_app.command("list")
    def models_list() -> None:
        """Aliases sparring knows, and models already in the local caches."""
        from sparring.models import list_models

        for row in list_models():
            console.print(f"{row['name']:<28} {row['kind']:<10} {row['where']}")

    @models_app.command("info")
    def models_info(name: str = typer.Argument("smollm2-135m", help="Alias, Hub id, directory or .gguf file.")) -> None:
        """Resolve a model and print what it is: architecture, sizes, files, chat template."""
        from sparring.models import model_info

        typer.echo(json.dumps(model_info(name), indent=2))

    @models_app.command("pull")
    def models_pull(
        hub_id: str = typer.Argument(..., help="Hugging Face Hub id, e.g. HuggingFaceTB/SmolLM2-360M-Instruct."),
        revision: Optional[str] = typer.Option(None, help="Branch, tag or commit."),
    ) -> None:
        """Download a Hub model into the Hugging Face cache (HF_HOME respected)."""
        from sparring.models import pull_model

        path = pull_model(hub_id, revision)
        console.print(f"[green]downloaded[/] {hub_id} -> {path}")

    @app.command("doctor")
    def doctor() -> None:
        """Check every part sparring needs and print versions, paths and the fix for what is missing."""
        from sparring.doctor import run_doctor

        raise typer.Exit(run_doctor(console))
