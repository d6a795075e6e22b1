"""`sparring serve` (OpenAI-compatible HTTP), `sparring demo` (Gradio) and `sparring bench` (the suite).

    sparring serve runs/<run>/exports/latest/gguf/model-q8_0.gguf --port 8000 [--api-key KEY]
    sparring demo runs/<run> [--port 7860]
    sparring bench [NAME ...] [--quick] [--out DIR]

Heavy imports (torch, transformers, gradio, uvicorn) happen inside the commands so ``sparring
--help`` stays fast.  Exercised by ``pytest tests/sparring/test_serve.py tests/sparring/test_demo.py
tests/sparring/test_bench.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str = typer.Argument(..., help="A .gguf file (llama.cpp), or an HF model dir, run dir, LoRA adapter dir or alias (transformers)."),
        port: int = typer.Option(8000, "--port", help="TCP port."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 for every interface: use --api-key then)."),
        api_key: Optional[str] = typer.Option(None, "--api-key", envvar="SPARRING_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1/* (also $SPARRING_API_KEY)."),
        max_tokens_limit: int = typer.Option(512, "--max-tokens-limit", help="Largest max_tokens a request may ask for."),
        max_request_bytes: int = typer.Option(65536, "--max-request-bytes", help="Largest request body in bytes (413 above)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="Compute threads (default: all cores)."),
        n_ctx: Optional[int] = typer.Option(None, "--n-ctx", help="GGUF only: context window in tokens (default: min(2048, the model's))."),
        parallel: int = typer.Option(4, "--parallel", help="GGUF only: requests decoded together in one batch per step (1: one at a time)."),
    ) -> None:
        """Serve a model over OpenAI-compatible /v1/chat/completions and /v1/completions (streaming too)."""
        from sparring.serve import serve as run_server

        run_server(model, host=host, port=port, api_key=api_key, max_tokens_limit=max_tokens_limit, max_request_bytes=max_request_bytes, threads=threads, n_ctx=n_ctx, parallel=parallel)

    @app.command("demo")
    def demo(
        model: str = typer.Argument(..., help="A run directory, HF model dir, adapter dir, alias or .gguf file."),
        port: int = typer.Option(7860, "--port", help="TCP port of the Gradio app."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
        max_new_tokens: int = typer.Option(48, "--max-new-tokens", help="Completion length cap."),
        temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature (0: greedy)."),
    ) -> None:
        """A Gradio app: a joke tab with the validator's verdict per rule, chess against the model with Stockfish's evaluation, and a quote tab."""
        from sparring.demo_app import launch

        launch(model, host=host, port=port, max_new_tokens=max_new_tokens, temperature=temperature)

    @app.command("bench")
    def bench(
        names: Optional[list[str]] = typer.Argument(None, help="Benchmarks to run (default: all modules in sparring/bench/)."),
        quick: bool = typer.Option(False, "--quick", help="Small sizes: checks that each benchmark runs, not figures to quote."),
        out: Path = typer.Option(Path("bench-results"), "--out", help="Folder for bench.json, bench.md and each benchmark's own output."),
        timeout: int = typer.Option(3600, "--timeout", help="Seconds one benchmark may take before it is stopped and reported as failed."),
        list_only: bool = typer.Option(False, "--list", help="List the benchmarks and exit."),
    ) -> None:
        """Run the benchmark suite and write bench.json + bench.md with the machine's description."""
        from sparring.bench.suite import discover, run_suite

        if list_only:
            for name, doc in discover().items():
                typer.echo(f"{name:18s} {doc}")
            return
        result = run_suite(names or None, quick=quick, out_dir=out, timeout_s=timeout)
        typer.echo(f"wrote {result['files']['json']} and {result['files']['md']}")
        failed = [r["name"] for r in result["benchmarks"] if not r["ok"]]
        if failed:
            raise typer.Exit(1)
