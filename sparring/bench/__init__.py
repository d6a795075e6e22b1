"""Benchmarks: one module per figure an issue asks for, each runnable as ``python -m sparring.bench.<name>``.

The helpers here are what every benchmark shares: the load average it ran under, and the way it
reports (the JSON, optionally written to a file, then a markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Callable


def load_avg() -> float | None:
    """The 1-minute load average (timings on a shared machine are read in its light)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def emit(result: dict[str, Any], table: str, json_path: Path | None = None) -> dict[str, Any]:
    """Write ``result`` as JSON to ``json_path`` (if given), print it, then the markdown ``table``."""
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if json_path is not None:
        json_path.write_text(text + "\n")
    print(text)
    print()
    print(table)
    return result


def quants_main(doc: str, default_quants: str, run: Callable[[list[str]], dict[str, Any]],
                markdown: Callable[[dict[str, Any]], str], argv: list[str] | None) -> dict[str, Any]:
    """The command line of the export benchmarks: ``--quants a,b`` to time, ``--out FILE`` for the JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quants", default=default_quants, help="quantizations to time (comma-separated)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    result = run([q.strip() for q in args.quants.split(",") if q.strip()])
    return emit(result, markdown(result), args.out)


EMBEDDED_MODEL = "smollm2-135m (SmolLM2-135M-Instruct, dequantized from the embedded Q4_1 GGUF)"


def export_rows(bench_quant: Callable[..., dict[str, Any]], quants: list[str], tmp_prefix: str, **reference_kwargs: Any) -> dict[str, Any]:
    """Time ``bench_quant(model_dir, tmp, quant, reference)`` for each quant on the embedded model,
    against one transformers reference; returns the common header plus ``results`` (one row per quant)."""
    import tempfile
    import time

    from sparring.exporters.gguf_verify import HFReference
    from sparring.models import materialize

    model_dir = materialize("smollm2-135m")
    started = time.perf_counter()
    reference = HFReference.build(model_dir, **reference_kwargs)
    reference_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        rows = [bench_quant(model_dir, Path(tmp), q, reference) for q in quants]
    return {"model": EMBEDDED_MODEL, "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "reference_seconds": round(reference_s, 2), "results": rows}
