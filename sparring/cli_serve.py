"""Serving, the Gradio demo and the benchmark suite: command-line entry points (placeholder until built).

Exercised by ``sparring --help``.
"""

from __future__ import annotations

import typer

from sparring.errors import NotBuiltYet


def register(app: typer.Typer) -> None:
    @app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def serve(ctx: typer.Context) -> None:
        """serve (not built yet)."""
        raise NotBuiltYet("sparring serve is not built yet", fix="see the open issues")

    @app.command("demo", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def demo(ctx: typer.Context) -> None:
        """demo (not built yet)."""
        raise NotBuiltYet("sparring demo is not built yet", fix="see the open issues")

    @app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def bench(ctx: typer.Context) -> None:
        """bench (not built yet)."""
        raise NotBuiltYet("sparring bench is not built yet", fix="see the open issues")
