"""GGUF files for the llamacpp rollout engine, written with sparring's exporters (atomically).

- ``cached_base_gguf(base_dir, quant)``: the base model as a GGUF, built once per (weights, type)
  under ``~/.cache/sparring/rollout-gguf`` and shared by every actor on the machine.
- ``write_adapter_gguf(peft_model, out)``: the learner's LoRA state as a GGUF adapter (hot-swapped by
  the engine with ``llama_adapter_lora_init`` / ``llama_set_adapters_lora``).
- ``write_model_gguf(model_dir, out, quant)``: a whole (merged) model, for policies without LoRA.

Exercised by ``pytest tests/rl/test_engines.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _atomic(out: Path, write: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write_model_gguf(model_dir: str | Path, out: str | Path, quant: str) -> Path:
    from sparring.exporters.gguf_writer import write_gguf

    return _atomic(Path(out), lambda tmp: write_gguf(model_dir, tmp, quant))


def weights_fingerprint(model_dir: Path) -> str:
    """A cheap identity of a model directory's weights (names, sizes, mtimes)."""
    h = hashlib.sha256(str(model_dir.resolve()).encode())
    for p in sorted(model_dir.glob("*.safetensors")) + [model_dir / "config.json"]:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_base_gguf(base_dir: str | Path, quant: str) -> Path:
    base_dir = Path(base_dir)
    root = Path(os.environ.get("SPARRING_CACHE", Path.home() / ".cache" / "sparring")) / "rollout-gguf"
    out = root / f"{base_dir.name}-{weights_fingerprint(base_dir)}.{quant}.gguf"
    if not out.is_file():
        write_model_gguf(base_dir, out, quant)
    return out


def write_adapter_gguf(peft_model: Any, out: str | Path) -> Path:
    """The active LoRA adapter of ``peft_model`` as a GGUF adapter file."""
    from sparring.exporters.gguf_adapter import write_lora_gguf

    out = Path(out)
    scratch = Path(tempfile.mkdtemp(prefix="adapter-", dir=out.parent))
    try:
        peft_model.save_pretrained(scratch / "adapter", selected_adapters=[peft_model.active_adapter], save_embedding_layers=False)
        adapter_dir = scratch / "adapter"
        if peft_model.active_adapter != "default":  # save_pretrained nests non-default adapters
            adapter_dir = adapter_dir / peft_model.active_adapter
        peft_model.get_base_model().config.save_pretrained(scratch / "base")
        return _atomic(out, lambda tmp: write_lora_gguf(adapter_dir, scratch / "base", tmp))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
