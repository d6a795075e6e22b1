"""The RL stage (issue 5): command-line entry points (placeholder until built).

Exercised by ``sparring --help``.
"""

from __future__ import annotations

import typer

from sparring.errors import NotBuiltYet


def register(app: typer.Typer) -> None:
    @app.command("rl", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def rl(ctx: typer.Context) -> None:
        """rl (not built yet)."""
        raise NotBuiltYet("sparring rl is not built yet", fix="see the open issues")
