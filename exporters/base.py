"""The exporter framework: the ``Exporter`` interface, atomic verified output dirs, disk checks.

Every exporter writes into a temp dir beside its final dir, verifies what it wrote in the format's
own runtime, writes ``verify.json`` and only then renames the temp dir into place.  A result that
fails verification is moved to ``<exports root>/failed/<name>-<UTC time>/`` with its verify.json
and a ``SparringError`` is raised: it is never presented as good.  ``export_model``
(:mod:`sparring.exporters.export`) is the one entry point the CLI, ``sparring run`` and the RL
periodic-export hook call.

    sparring export runs/<run> --format gguf --quant f16,q8_0

Exercised by ``pytest tests/exporters/test_base.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

from sparring.errors import SparringError, UserInputError
from sparring.registry import register_exporter  # noqa: F401  (re-exported for exporter modules)
from sparring.types import Artifact

VERIFY_FILE = "verify.json"


@dataclass
class ExportOptions:
    """What an exporter needs besides the model dir; filled by ``export_model`` from the CLI/config."""

    quants: list[str] = field(default_factory=list)  # empty: the exporter's defaults
    name: str | None = None  # model name written into metadata (GGUF general.name, Modelfile comment)
    system_prompt: str | None = None  # Ollama SYSTEM; the env's system prompt when exporting a run
    model_card: bool = False  # HF export: write README.md through exporters/model_card.py
    adapter_dir: Path | None = None  # the source's LoRA adapter (Ollama ADAPTER), when it has one
    base_dir: Path | None = None  # the adapter's base model dir
    ollama_adapter: bool = False  # Ollama: FROM the base GGUF + ADAPTER ./adapter.gguf
    run_dir: Path | None = None  # the run being exported (model card, manifest)
    reuse: dict[str, Path] = field(default_factory=dict)  # "gguf:model:q8_0" -> verified file of this export
    prior_artifacts: list[Artifact] = field(default_factory=list)  # exported earlier in the same call (model card)
    threads: int = 0  # 0: llama.cpp's default
    exports_root: Path | None = None  # failed exports go to <exports_root>/failed/ (default: out_dir's parent)
    label: str | None = None  # name of a failed export's folder (default: out_dir's name)
    source: str | None = None  # what the user exported (recorded in verify.json; default: model_dir)

    def quants_or(self, defaults: tuple[str, ...]) -> list[str]:
        return list(self.quants) if self.quants else list(defaults)


class Exporter(ABC):
    """One output format. Subclasses register with ``@register_exporter("<format>")``."""

    format: ClassVar[str] = ""
    quants: ClassVar[tuple[str, ...]] = ()  # valid --quant values ((): the format has none)
    default_quants: ClassVar[tuple[str, ...]] = ()
    model_types: ClassVar[tuple[str, ...] | None] = None  # supported config.json model_type (None: any)

    def check(self, model_dir: Path, options: ExportOptions) -> None:
        """Refuse bad input before anything is written (architecture, quant types)."""
        if self.model_types is not None:
            config = json.loads((Path(model_dir) / "config.json").read_text())
            if config.get("model_type") not in self.model_types:
                arch = (config.get("architectures") or [config.get("model_type")])[0]
                raise UserInputError(
                    f"architecture {arch} (model_type {config.get('model_type')!r}) is not supported by the {self.format} exporter",
                    where=f"{model_dir}/config.json: model_type",
                    fix=f"{self.format} supports model types: {', '.join(self.model_types)}; --format hf exports any architecture",
                )
        bad = [q for q in options.quants if q not in self.quants]
        if bad:
            raise UserInputError(
                f"quant type {', '.join(bad)} is not valid for --format {self.format}",
                where="--quant",
                fix=f"valid {self.format} quant types: {', '.join(self.quants) or '(none: omit --quant)'}",
            )

    def estimate_bytes(self, model_dir: Path, options: ExportOptions) -> int:
        """Bytes the export will write (for the disk check); default: the weights once in fp32."""
        return weights_bytes(model_dir)

    @abstractmethod
    def export(self, model_dir: Path, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        """Write, verify and atomically publish ``out_dir``; return its verified artifacts."""


# ---------------------------------------------------------------------------------------------
# files, sizes and disk


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def path_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weights_bytes(model_dir: Path) -> int:
    files = list(Path(model_dir).glob("*.safetensors")) + list(Path(model_dir).glob("pytorch_model*.bin"))
    return sum(f.stat().st_size for f in files)


def ensure_disk_space(directory: Path, needed: int, *, what: str = "the export") -> None:
    """Refuse before writing when ``directory``'s filesystem has less than ``needed`` bytes (+5%)."""
    probe = Path(directory)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed * 1.05 > free:
        raise UserInputError(
            f"not enough disk for {what}: needs about {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB free",
            where=str(directory),
            fix="free some space or pass --out DIR on a larger disk",
        )


def utc_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


# ---------------------------------------------------------------------------------------------
# atomic, verified output directories


@dataclass
class ExportStage:
    """The temp dir an exporter writes into, and the verification records it fills in.

    ``records`` maps an artifact's path relative to the dir (a file or sub-dir) to its verify
    record (a dict with ``passed``).  ``info`` is copied into verify.json as is.
    """

    path: Path
    final: Path
    format: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.records) and all(r.get("passed") for r in self.records.values())


def _failures(records: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, rec in records.items():
        if rec.get("passed"):
            continue
        why = rec.get("error") or ", ".join(k for k, v in rec.items() if isinstance(v, dict) and v.get("passed") is False) or "failed"
        lines.append(f"{name}: {why}")
    return "; ".join(lines) or "no artifact was verified"


@contextmanager
def atomic_export_dir(final_dir: str | Path, *, format: str, failed_root: str | Path | None = None, failed_name: str | None = None) -> Iterator[ExportStage]:
    """Write into a temp dir next to ``final_dir``; publish it only when every record passed.

    On success ``stage.artifacts`` lists the published artifacts (paths inside ``final_dir``,
    sha256 and size computed before the rename).  On failure the dir moves to
    ``<failed_root>/failed/<failed_name>-<UTC>/`` (failed_root defaults to final_dir's parent) and
    ``SparringError`` is raised.  An exception inside the block does the same when something was
    written (its message is kept in verify.json), else the temp dir is removed.
    """
    final = Path(final_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = ExportStage(Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent)), final, format)
    os.chmod(stage.path, 0o777 & ~_UMASK)  # mkdtemp makes it private; the published dir is not
    try:
        yield stage
    except BaseException as exc:
        if any(stage.path.iterdir()) and not isinstance(exc, (UserInputError, KeyboardInterrupt)):
            stage.records.setdefault("_error", {"passed": False, "error": f"{type(exc).__name__}: {exc}"})
            _move_to_failed(stage, failed_root, failed_name)
        else:
            shutil.rmtree(stage.path, ignore_errors=True)
        raise
    for path in stage.path.rglob("*"):  # some writers create private files; published ones are not
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_UMASK)
    for rel, record in stage.records.items():
        target = stage.path / rel
        if target.exists():
            record["sha256"] = sha256_file(target) if target.is_file() else _dir_digest(target)
            record["size_bytes"] = path_size(target)
    verify = {"format": format, "passed": stage.passed, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **stage.info, "artifacts": stage.records}
    write_json_atomic(stage.path / VERIFY_FILE, verify)
    if not stage.passed:
        where = _move_to_failed(stage, failed_root, failed_name, write=False)
        raise SparringError(f"{format} export failed verification ({_failures(stage.records)}); kept for inspection in {where}")
    if final.exists():
        old = final.parent / f".{final.name}.old-{utc_stamp()}-{os.getpid()}"
        os.replace(final, old)
        os.replace(stage.path, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage.path, final)
    for rel, record in stage.records.items():
        stage.artifacts.append(Artifact(
            path=os.path.normpath(final / rel), format=record.get("format", format), sha256=record.get("sha256", ""),
            size_bytes=int(record.get("size_bytes", 0)), verify=record,
        ))


def _dir_digest(path: Path) -> str:
    """sha256 over the sorted (relative path, file sha256) pairs of a directory."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(f"{p.relative_to(path)}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


def _move_to_failed(stage: ExportStage, failed_root: str | Path | None, failed_name: str | None, *, write: bool = True) -> Path:
    if write:
        verify = {"format": stage.format, "passed": False, **stage.info, "artifacts": stage.records}
        write_json_atomic(stage.path / VERIFY_FILE, verify)
    root = Path(failed_root) if failed_root else stage.final.parent
    target = root / "failed" / f"{failed_name or stage.final.name}-{utc_stamp()}"
    n = 1
    while target.exists():
        target = target.with_name(f"{target.name.split('~')[0]}~{n}")
        n += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage.path, target)
    return target


def export_model(*args: Any, **kwargs: Any) -> list[Artifact]:
    """See :func:`sparring.exporters.export.export_model` (kept here as the framework's entry point)."""
    from sparring.exporters.export import export_model as run_export

    return run_export(*args, **kwargs)


def read_verify(dir_path: str | Path) -> dict[str, Any]:
    path = Path(dir_path) / VERIFY_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
