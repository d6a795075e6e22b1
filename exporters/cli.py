"""``sparring export``: write verified GGUF / Ollama / MLC / HF exports of a run or any model.

    sparring export runs/<run> --format gguf --quant f16,q8_0,q4_k_m
    sparring export runs/<run> --format ollama --system-prompt "You tell jokes."
    sparring export runs/<run> --format hf --model-card --push-to-hub alice/smollm2-jokes
    sparring export smollm2-135m --format gguf --out exports/

Bad input (unknown format or quant, unsupported architecture, a 4-bit source, not enough disk)
exits 2 before anything is written; a failed verification exits 1 and leaves the result under
``<exports>/failed/``.  Exercised by ``pytest tests/exporters/test_export_cli.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        source: str = typer.Argument(..., help="A run directory (exports its newest model: rl/final, then sft/merged, sft/adapter), a checkpoint or LoRA adapter dir, or any model sparring can load (alias, Hub id in the cache, HF dir, .gguf)."),
        formats: str = typer.Option("gguf", "--format", "-f", help="Formats, comma-separated: gguf, ollama, mlc, hf."),
        quant: Optional[str] = typer.Option(None, "--quant", "-q", help="Quant types, comma-separated; each goes to the formats that know it. GGUF/Ollama: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k (default q8_0). MLC: q0f16, q0f32, q4f16_1, q4f32_1."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write each format to OUT/<format>/ (default for a run: <run>/exports/step-N/<format>/)."),
        model_card: bool = typer.Option(False, "--model-card", help="Write a README.md model card beside the HF export."),
        push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the verified exports to this Hub repo (owner/name); needs a network and a token."),
        system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="Ollama SYSTEM text (default: the run env's system prompt)."),
        ollama_adapter: bool = typer.Option(False, "--ollama-adapter", help="For a LoRA source: ship the base GGUF + ADAPTER ./adapter.gguf instead of a merged GGUF."),
        name: Optional[str] = typer.Option(None, "--name", help="Model name written into the metadata (default: the run or model dir name)."),
        step: Optional[int] = typer.Option(None, "--step", help="Override the step number N of exports/step-N/."),
        as_json: bool = typer.Option(False, "--json", help="Print the artifacts as JSON."),
    ) -> None:
        """Export a model and verify every artifact in its own runtime (llama.cpp, TVM, transformers)."""
        from rich.console import Console
        from rich.table import Table

        from sparring.exporters.export import describe, export_model

        artifacts = export_model(
            source, out, formats=formats, quants=quant, step=step, name=name, system_prompt=system_prompt,
            model_card=model_card, push_to_hub=push_to_hub, ollama_adapter=ollama_adapter,
        )
        if as_json:
            typer.echo(json.dumps([a.to_dict() for a in artifacts], indent=2, default=str))
            return
        table = Table(title="verified exports")
        for col in ("path", "format", "quant", "MB", "verified", "top-1", "greedy exact"):
            table.add_column(col)
        for row in describe(artifacts):
            table.add_row(row["path"], row["format"], row["quant"], f"{row['size_mb']:.1f}", "yes" if row["verified"] else "NO",
                          "" if row["top1"] is None else f"{row['top1']:.3f}", "" if row["greedy_exact"] is None else str(row["greedy_exact"]))
        Console().print(table)
