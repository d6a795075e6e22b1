"""`sparring bench`: run the benchmark modules of ``sparring/bench/`` and write bench.json + bench.md.

    sparring bench                      # every benchmark, full size
    sparring bench serve sft --quick    # some, at smoke size
    sparring bench --list

Each benchmark runs in its own process (so one's memory does not count against the next, and its
peak RSS is its own): a module that defines ``run(quick: bool) -> dict`` is called through
``python -m sparring.bench.suite --one NAME``; any other module runs as ``python -m
sparring.bench.NAME`` (with its ``QUICK_ARGS`` list under ``--quick``; without one it is skipped
in quick mode) and the first JSON object it prints is its result.  A result may carry
``ratios`` (``{"ours_vs_theirs": 1.8}``: comparisons measured in the same run) and ``summary``
(the few figures for the overview table); otherwise its numeric fields are listed.  bench.json and
bench.md also describe the machine: CPU model, cores, RAM, load average (the machine may be
shared), package versions and the git commit.  Exercised by ``pytest tests/sparring/test_bench.py``.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError

NOT_BENCHMARKS = {"suite", "__init__", "__main__"}
MAX_LISTED = 24


def _source(name: str) -> Path:
    import sparring.bench

    return Path(sparring.bench.__path__[0]) / f"{name}.py"


def discover() -> dict[str, str]:
    """Benchmark module names and the first line of their docstrings (files are parsed, not imported)."""
    import sparring.bench

    found = {}
    for info in sorted(pkgutil.iter_modules(sparring.bench.__path__), key=lambda i: i.name):
        if info.name in NOT_BENCHMARKS or info.name.startswith("_") or info.ispkg:
            continue
        doc = ast.get_docstring(ast.parse(_source(info.name).read_text(encoding="utf-8"))) or ""
        found[info.name] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def entry_of(name: str) -> dict[str, Any]:
    """How to run ``name``: ``{"kind": "run"}`` when it defines run(quick), else ``{"kind":
    "module", "quick_args": [...] or None}``."""
    tree = ast.parse(_source(name).read_text(encoding="utf-8"))
    quick_args = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            params = [a.arg for a in node.args.args + node.args.kwonlyargs]
            if params[:1] == ["quick"]:
                return {"kind": "run"}
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "QUICK_ARGS" for t in targets) and node.value is not None:
                quick_args = [str(a) for a in ast.literal_eval(node.value)]
    return {"kind": "module", "quick_args": quick_args}


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object printed in ``text`` (benchmarks print JSON, then a markdown table)."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{" and (i == 0 or text[i - 1] == "\n"):
            try:
                obj, _ = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def run_child(cmd: list[str], log_dir: Path, name: str, timeout_s: float) -> dict[str, Any]:
    """Run ``cmd`` with stdout/stderr in files; return rc, seconds, the child's peak RSS and stdout."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    t0 = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        timer = threading.Timer(timeout_s, lambda: _kill_group(proc.pid))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: its peak RSS
        finally:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    return {
        "rc": proc.returncode, "seconds": round(seconds, 2), "timed_out": seconds >= timeout_s and proc.returncode < 0,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "stdout": out_path.read_text(errors="replace"),
        "stderr_tail": err_path.read_text(errors="replace")[-2000:], "logs": [str(out_path), str(err_path)],
    }


def _kill_group(pid: int) -> None:
    """Stop a timed-out benchmark and whatever it started (a server, Stockfish, Ray workers)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_one(name: str, *, quick: bool, out_dir: Path, timeout_s: float) -> dict[str, Any]:
    entry = entry_of(name)
    if entry["kind"] == "run":
        result_file = out_dir / "results" / f"{name}.json"
        result_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "sparring.bench.suite", "--one", name, "--result", str(result_file)] + (["--quick"] if quick else [])
        how = f"run(quick={quick})"
    else:
        if quick and entry["quick_args"] is None:
            return {"name": name, "ok": True, "skipped": "no quick mode (define run(quick) or QUICK_ARGS)", "entry": "python -m"}
        result_file = None
        args = entry["quick_args"] if quick else []
        cmd = [sys.executable, "-m", f"sparring.bench.{name}", *args]
        how = " ".join(["python -m", f"sparring.bench.{name}", *args])
    print(f"[bench] {name}: {how}", flush=True)
    child = run_child(cmd, out_dir / "logs", name, timeout_s)
    result = None
    if result_file is not None and result_file.is_file():
        result = json.loads(result_file.read_text())
    elif result_file is None:
        result = first_json_object(child["stdout"])
    ok = child["rc"] == 0 and result is not None
    error = None
    if not ok:
        error = "timed out" if child["timed_out"] else f"exit code {child['rc']}" if child["rc"] else "no JSON result printed"
        error += ": " + (child["stderr_tail"].strip().splitlines() or [""])[-1]
    print(f"[bench] {name}: {'ok' if ok else 'FAILED'} in {child['seconds']} s, peak RSS {child['peak_rss_mb']} MB", flush=True)
    return {"name": name, "ok": ok, "entry": how, "seconds": child["seconds"], "peak_rss_mb": child["peak_rss_mb"], "error": error, "logs": child["logs"], "result": result}


def machine() -> dict[str, Any]:
    from sparring.rundir import git_state, hardware, package_versions

    info = hardware()
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_available_gb"] = round(psutil.virtual_memory().available / 2**30, 1)
    except ImportError:
        pass
    info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    versions = package_versions()
    try:
        import importlib.metadata as md

        versions["fastapi"] = md.version("fastapi")
        versions["uvicorn"] = md.version("uvicorn")
    except Exception:
        pass
    return {"hardware": info, "packages": versions, "git": git_state()}


def _numeric_leaves(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if isinstance(obj, bool) or depth > 3:
        return out
    if isinstance(obj, (int, float)):
        return [(prefix, obj)]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _numeric_leaves(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown(suite: dict[str, Any]) -> str:
    hw, pk = suite["machine"]["hardware"], suite["machine"]["packages"]
    lines = [
        "# sparring bench", "",
        f"- when: {suite['started_at']} ({'quick' if suite['quick'] else 'full'} mode), {suite['seconds']} s in all",
        f"- CPU: {hw.get('cpu', '?')}, {hw.get('cpu_count')} logical / {hw.get('physical_cores', '?')} physical cores; RAM {hw.get('ram_gb', '?')} GB; GPUs: {', '.join(hw.get('gpus') or []) or 'none'}",
        f"- load average at start: {suite['loadavg_start']} (a shared machine makes timings noisy), at end: {suite['loadavg_end']}",
        f"- {hw.get('platform', '')}, Python {hw.get('python', '')}; git {str((suite['machine']['git'] or {}).get('sha'))[:12]}{' (dirty)' if (suite['machine']['git'] or {}).get('dirty') else ''}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v),
        "", "| benchmark | status | seconds | peak RSS (MB) | key figures |", "|---|---|---|---|---|",
    ]
    for b in suite["benchmarks"]:
        status = "skipped: " + b["skipped"] if b.get("skipped") else "ok" if b["ok"] else "FAILED"
        res = b.get("result") or {}
        figures = res.get("summary") or res.get("ratios") or {}
        key = ", ".join(f"{k} {_fmt(v)}" for k, v in list(figures.items())[:6])
        lines.append(f"| {b['name']} | {status} | {b.get('seconds', '')} | {b.get('peak_rss_mb', '')} | {key} |")
    for b in suite["benchmarks"]:
        res = b.get("result")
        if b.get("skipped"):
            continue
        lines += ["", f"## {b['name']}", "", f"`{b['entry']}`" + (f" — **failed**: {b['error']}" if not b["ok"] else "")]
        if not res:
            continue
        if res.get("ratios"):
            lines += ["", "Ratios (measured in the same run):", "", "| comparison | ratio |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in res["ratios"].items()]
        if res.get("markdown"):
            lines += ["", res["markdown"].rstrip()]
        else:
            leaves = _numeric_leaves({k: v for k, v in res.items() if k not in ("ratios", "markdown")})
            lines += ["", "| figure | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in leaves[:MAX_LISTED]]
            if len(leaves) > MAX_LISTED:
                lines.append(f"| … {len(leaves) - MAX_LISTED} more in bench.json | |")
    return "\n".join(lines) + "\n"


def run_suite(names: list[str] | None = None, *, quick: bool = False, out_dir: str | os.PathLike[str] = "bench-results", timeout_s: float = 3600) -> dict[str, Any]:
    """Run the benchmarks (all when ``names`` is None); write ``out_dir``/bench.json and bench.md."""
    from sparring.rundir import atomic_write_text, utc_now

    available = discover()
    chosen = list(names) if names else list(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise UserInputError(f"unknown benchmark(s) {', '.join(unknown)}", where="NAME", fix=f"choose from {', '.join(available)} (sparring bench --list)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0, started, load0 = time.perf_counter(), utc_now(), [round(x, 2) for x in os.getloadavg()]
    suite: dict[str, Any] = {"started_at": started, "quick": quick, "loadavg_start": load0, "machine": machine(), "benchmarks": []}
    for name in chosen:
        suite["benchmarks"].append(run_one(name, quick=quick, out_dir=out, timeout_s=timeout_s))
    suite.update(seconds=round(time.perf_counter() - t0, 1), loadavg_end=[round(x, 2) for x in os.getloadavg()])
    json_path, md_path = out / "bench.json", out / "bench.md"
    atomic_write_text(json_path, json.dumps(suite, indent=2, default=str) + "\n")
    atomic_write_text(md_path, render_markdown(suite))
    suite["files"] = {"json": str(json_path), "md": str(md_path)}
    return suite


def _run_in_process(name: str, quick: bool, result_path: Path) -> None:
    """The child side of a run(quick) benchmark: call it and write its JSON result."""
    import importlib

    from sparring.rundir import atomic_write_text

    module = importlib.import_module(f"sparring.bench.{name}")
    result = module.run(quick=quick)
    result.setdefault("peak_rss_mb_self", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    atomic_write_text(result_path, json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Run one benchmark's run(quick) and write its JSON (used by `sparring bench`).")
    ap.add_argument("--one", required=True)
    ap.add_argument("--result", type=Path, required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    _run_in_process(a.one, a.quick, a.result)
