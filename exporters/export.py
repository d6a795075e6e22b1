"""``export_model``: the one function the CLI, ``sparring run`` and the RL periodic-export hook call.

    from sparring.exporters.export import export_model
    export_model("runs/jokes-20250101T000000Z", formats=["gguf", "ollama"], quants=["q8_0"])

It resolves the source (:mod:`sparring.exporters.source`), checks every format, quant and the
architecture before anything is written, checks the disk, merges a LoRA adapter once in fp32
(:mod:`sparring.exporters.merge`), runs the exporters (gguf, ollama, mlc, then hf so the model card
can list the others), adds each verified artifact to the run's manifest and updates
``<run>/exports/latest.json``.  Output: ``--out DIR`` puts each format in ``DIR/<format>/``;
without it a run's exports go to ``<run>/exports/step-N/<format>/``.  ``latest.json`` (a pointer
file, not a symlink, so it survives copies and non-POSIX filesystems) names the newest step and
its format dirs.

Exercised by ``pytest tests/exporters/test_export_cli.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from sparring.errors import SparringError, UserInputError
from sparring.exporters.base import ExportOptions, Exporter, ensure_disk_space, utc_stamp, weights_bytes, write_json_atomic
from sparring.exporters.source import ExportSource, resolve_export_source
from sparring.registry import EXPORTERS
from sparring.types import Artifact

FORMAT_ORDER = ("gguf", "ollama", "mlc", "hf")


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (lower-cased, de-duplicated, ordered)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip().lower()
            if part and part not in out:
                out.append(part)
    return out


def assign_quants(exporters: dict[str, Exporter], quants: list[str]) -> dict[str, list[str]]:
    """Give each format the requested quants it understands; a quant no format takes is an error."""
    per_format: dict[str, list[str]] = {name: [] for name in exporters}
    for quant in quants:
        takers = [name for name, ex in exporters.items() if quant in getattr(ex, "quants", ())]
        if not takers:
            valid = "; ".join(f"{name}: {', '.join(getattr(ex, 'quants', ())) or '(no quant types)'}" for name, ex in exporters.items())
            raise UserInputError(f"unknown quant type {quant!r} for --format {','.join(exporters)}", where="--quant", fix=f"valid quant types: {valid}")
        for name in takers:
            per_format[name].append(quant)
    return per_format


@contextmanager
def full_weights(source: ExportSource, scratch_parent: Path) -> Iterator[Path]:
    """The source's full-weight HF dir: merged into a scratch dir (removed after) for an adapter."""
    if not source.is_adapter:
        yield source.model_dir
        return
    from sparring.exporters.merge import merge_adapter

    scratch_parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".merge-", dir=scratch_parent))
    try:
        yield merge_adapter(source.adapter_dir, scratch / "merged", base_dir=source.base_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _add_to_manifest(run_dir: Path, artifacts: list[Artifact]) -> None:
    try:
        from sparring.rundir import RunDir
    except ImportError as exc:  # pragma: no cover - the core always ships it
        raise SparringError(f"cannot record exports in the run manifest: sparring.rundir is unavailable ({exc})") from None
    manifest = RunDir.open(run_dir).manifest
    for artifact in artifacts:
        if artifact.verified:
            manifest.add_artifact(artifact)


def _update_latest(exports_root: Path, step: int, dirs: dict[str, Path], artifacts: list[Artifact]) -> None:
    pointer = exports_root / "latest.json"
    import json

    previous = json.loads(pointer.read_text()) if pointer.is_file() else {}
    formats = previous.get("formats", {}) if previous.get("step") == step else {}
    root = exports_root.resolve()
    formats.update({name: str(d.resolve().relative_to(root)) for name, d in dirs.items()})
    write_json_atomic(pointer, {
        "step": step, "updated": utc_stamp(), "formats": formats,
        "artifacts": [str(Path(a.path).resolve().relative_to(root)) for a in artifacts],
    })


def export_model(
    source: str | Path,
    out: str | Path | None = None,
    *,
    formats: str | Iterable[str] = ("gguf",),
    quants: str | Iterable[str] | None = None,
    gguf_quants: Iterable[str] | None = None,
    mlc_quants: Iterable[str] | None = None,
    run_dir: str | Path | None = None,
    step: int | None = None,
    name: str | None = None,
    system_prompt: str | None = None,
    model_card: bool = False,
    push_to_hub: str | None = None,
    ollama_adapter: bool = False,
    threads: int = 0,
) -> list[Artifact]:
    """Export ``source`` to every format in ``formats``; return the verified artifacts.

    ``out``: each format goes to ``out/<format>/`` (default for a run: ``<run>/exports/step-N/``).
    ``quants`` are routed to the formats that know them; ``gguf_quants`` (gguf, ollama) and
    ``mlc_quants`` (mlc) set a format's list directly, as the run config's ``export`` section does.
    ``run_dir`` names the run when ``source`` is a snapshot outside it.
    """
    if isinstance(out, (list, tuple)):
        raise TypeError("export_model(source, out=None, *, formats=..., quants=...): pass formats by keyword")
    names = split_list(formats) or ["gguf"]
    exporters: dict[str, Exporter] = {}
    for fmt in sorted(names, key=lambda n: FORMAT_ORDER.index(n) if n in FORMAT_ORDER else len(FORMAT_ORDER)):
        exporters[fmt] = EXPORTERS.get(fmt, where="--format")()
    per_format = assign_quants(exporters, split_list(quants))
    for fmt, explicit in (("gguf", gguf_quants), ("ollama", gguf_quants), ("mlc", mlc_quants)):
        if fmt in per_format and explicit is not None and not per_format[fmt]:
            per_format[fmt] = split_list(explicit)
    src = resolve_export_source(source, run_dir=run_dir, step=step)
    for fmt, exporter in exporters.items():
        exporter.check(src.model_dir, ExportOptions(quants=per_format[fmt]))  # before anything is written
    if ollama_adapter and not src.is_adapter:
        raise UserInputError(f"{src.source} is not a LoRA adapter, so there is no adapter to ship", where="--ollama-adapter", fix="drop --ollama-adapter (the merged model is exported) or pass an adapter dir")
    run_exports = src.run_dir / "exports" if src.run_dir is not None else None
    if out is not None:
        dirs = {fmt: Path(out) / fmt for fmt in exporters}
        inside_run = run_exports is not None and Path(out).resolve().is_relative_to(run_exports.resolve())
        exports_root = run_exports if inside_run else Path(out)
    elif run_exports is not None:
        exports_root = run_exports
        dirs = {fmt: exports_root / f"step-{src.step}" / fmt for fmt in exporters}
    else:
        raise UserInputError(f"{src.source} is not a run directory, so there is no default output folder", where="--out", fix="pass --out DIR")
    needed = sum(ex.estimate_bytes(src.model_dir, ExportOptions(quants=per_format[fmt])) for fmt, ex in exporters.items())
    ensure_disk_space(exports_root, needed + (weights_bytes(src.model_dir) if src.is_adapter else 0))
    artifacts: list[Artifact] = []
    reuse: dict[str, Path] = {}
    with full_weights(src, exports_root) as model_dir:
        for fmt, exporter in exporters.items():
            options = ExportOptions(
                quants=per_format[fmt], name=name or src.label, system_prompt=system_prompt if system_prompt is not None else src.system_prompt,
                model_card=model_card, adapter_dir=src.adapter_dir, base_dir=src.base_dir, ollama_adapter=ollama_adapter and fmt == "ollama",
                run_dir=src.run_dir, reuse=reuse, prior_artifacts=list(artifacts), threads=threads,
                exports_root=exports_root, label=f"step-{src.step}-{fmt}" if exports_root == run_exports else fmt,
                source=src.source + (f" (LoRA over {src.base_dir}, merged in fp32)" if src.is_adapter else ""),
            )
            produced = exporter.export(model_dir, dirs[fmt], options)
            for artifact in produced:
                if artifact.format == "gguf" and artifact.verified and artifact.verify.get("quant"):
                    reuse.setdefault(f"gguf:model:{artifact.verify['quant']}", Path(artifact.path))
            if src.run_dir is not None:
                _add_to_manifest(src.run_dir, produced)
            artifacts += produced
    if exports_root == run_exports:
        _update_latest(exports_root, src.step, dirs, artifacts)
    if push_to_hub:
        from sparring.exporters.hub import push_exports

        push_exports(push_to_hub, dirs)
    return artifacts


def describe(artifacts: list[Artifact]) -> list[dict[str, Any]]:
    """Rows for the CLI's table: path, format, quant, size, verification figures."""
    rows = []
    for a in artifacts:
        cont = a.verify.get("continuation", {})
        rows.append({
            "path": a.path, "format": a.format, "quant": a.verify.get("quant", ""), "size_mb": round(a.size_bytes / 1e6, 2),
            "verified": a.verified, "top1": cont.get("top1_agreement"), "greedy_exact": cont.get("greedy_exact_prompts"),
        })
    return rows
