"""Evaluation and referees (issue 4): command-line entry points (placeholder until built).

Exercised by ``sparring --help``.
"""

from __future__ import annotations

import typer

from sparring.errors import NotBuiltYet


def register(app: typer.Typer) -> None:
    @app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def eval(ctx: typer.Context) -> None:
        """eval (not built yet)."""
        raise NotBuiltYet("sparring eval is not built yet", fix="see the open issues")

    @app.command("validate-joke", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def validate_joke(ctx: typer.Context) -> None:
        """validate-joke (not built yet)."""
        raise NotBuiltYet("sparring validate-joke is not built yet", fix="see the open issues")

    @app.command("score", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def score(ctx: typer.Context) -> None:
        """score (not built yet)."""
        raise NotBuiltYet("sparring score is not built yet", fix="see the open issues")
