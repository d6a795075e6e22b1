"""Exporters (issue 6): command-line entry points (placeholder until built).

Exercised by ``sparring --help``.
"""

from __future__ import annotations

import typer

from sparring.errors import NotBuiltYet


def register(app: typer.Typer) -> None:
    @app.command("export", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def export(ctx: typer.Context) -> None:
        """export (not built yet)."""
        raise NotBuiltYet("sparring export is not built yet", fix="see the open issues")
