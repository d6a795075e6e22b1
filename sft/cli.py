"""Data generation and the LoRA SFT stage (issue 3): command-line entry points (placeholder until built).

Exercised by ``sparring --help``.
"""

from __future__ import annotations

import typer

from sparring.errors import NotBuiltYet


def register(app: typer.Typer) -> None:
    @app.command("data", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def data(ctx: typer.Context) -> None:
        """data (not built yet)."""
        raise NotBuiltYet("sparring data is not built yet", fix="see the open issues")

    @app.command("sft", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def sft(ctx: typer.Context) -> None:
        """sft (not built yet)."""
        raise NotBuiltYet("sparring sft is not built yet", fix="see the open issues")
