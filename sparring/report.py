"""The report card of a run: report.md, a self-contained report.html, plots and e2e_summary.json.

    sparring report runs/<run>          # re-render from what the run directory holds

Reads metrics.jsonl, eval/summary.json (written by the eval stage), the manifest (artifacts,
stages, environment) and config.yaml; writes plots/*.png, report.md, report.html (images inlined)
and e2e_summary.json.  Exercised by ``pytest tests/sparring/test_report.py``.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from sparring.envs.base import env_referee_note
from sparring.plots import write_plots
from sparring.rundir import RunDir, atomic_write_text
from sparring.tracking import read_metrics

Section = tuple[str, list[tuple[str, Any]]]  # title, blocks of ("p"|"table"|"img"|"pre", payload)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "—"
    return str(v)


def _eval_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    before, after = summary.get("before") or {}, summary.get("after") or {}
    keys = [k for k in after if isinstance(after.get(k), (int, float))] + [k for k in before if k not in after and isinstance(before.get(k), (int, float))]
    rows = []
    for k in keys:
        b, a = before.get(k), after.get(k)
        delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        ratio = f"{a / b:.2f}×" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b not in (0, 0.0) else "—"
        rows.append([k, _fmt(b), _fmt(a), _fmt(delta), ratio])
    return ["metric", "before (base)", "after (trained)", "Δ", "after/before"], rows


def _final_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    last: dict[str, float] = {}
    for r in rows:
        for k, v in r.items():
            if k not in ("step", "time") and isinstance(v, (int, float)) and not isinstance(v, bool):
                last[k] = v
    return last


def build_sections(run: RunDir) -> tuple[list[Section], dict[str, Any]]:
    manifest = run.manifest.read()
    cfg = run.config()
    rows = read_metrics(run.metrics_path)
    eval_path = run.path / "eval" / "summary.json"
    summary = json.loads(eval_path.read_text()) if eval_path.is_file() else {}
    plots = write_plots(rows, run.path / "plots")
    sections: list[Section] = []

    # the report stage is the one writing this page: it is not a row of its own
    stages = {k: v for k, v in manifest.get("stages", {}).items() if k != "report"}
    stage_rows = [[k, v.get("status", "?"), _fmt(v.get("seconds"))] for k, v in stages.items()]
    timed = [v["seconds"] for v in stages.values() if isinstance(v.get("seconds"), (int, float))]
    if timed:
        stage_rows.append(["total", "", _fmt(round(sum(timed), 2))])
    ended = manifest.get("ended_at") or f"report written {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    sections.append((
        "Run",
        [("table", (["stage", "status", "seconds"], stage_rows)),
         ("p", f"Model `{cfg.model.name}`, env `{cfg.env.name}`, RL `{cfg.rl.algo}`, seed {cfg.seed}. Started {manifest.get('started_at')}, ended {ended}.")],
    ))
    if summary:
        header, trows = _eval_table(summary)
        blocks: list[tuple[str, Any]] = [("table", (header, trows))]
        if summary.get("prompts"):
            blocks.append(("p", f"{summary.get('prompts')} prompts from the env's held-out split, the same for both models."))
        note = env_referee_note(summary.get("env", cfg.env.name))
        if note:
            blocks.append(("p", note))
        sections.append((f"Evaluation before/after — {summary.get('env', cfg.env.name)}", blocks))
        samples = summary.get("samples") or []
        if samples:
            sections.append(("Samples on the same prompts", [("table", (["prompt", "before", "after"], [[s.get("prompt", ""), s.get("before", ""), s.get("after", "")] for s in samples[:20]]))]))
    else:
        sections.append(("Evaluation", [("p", "No eval stage output yet (eval/summary.json missing).")]))
    served = manifest.get("served_qa")
    if served:
        rows_served = [[k, _fmt(v)] for k, v in served.items() if not isinstance(v, (dict, list))]
        sections.append(("Served check (real HTTP server)", [("table", (["field", "value"], rows_served))]))
    if plots:
        sections.append(("Training curves", [("img", p) for p in plots.values()]))
    final = _final_metrics(rows)
    if final:
        sections.append(("Final logged metrics", [("table", (["metric", "value"], [[k, _fmt(v)] for k, v in sorted(final.items())]))]))
    arts = manifest.get("artifacts", [])
    art_rows = [[a.get("format", ""), a.get("path", ""), f"{(a.get('size_bytes') or 0) / 2**20:.1f} MB", (a.get("sha256") or "")[:16], "verified" if a.get("verified") else "NOT verified"] for a in arts]
    failed_dir = run.path / "exports" / "failed"
    failed = sorted(p.name for p in failed_dir.iterdir()) if failed_dir.is_dir() else []
    blocks = [("table", (["format", "path", "size", "sha256", "status"], art_rows))] if art_rows else [("p", "No verified artifacts.")]
    if failed:
        blocks.append(("p", f"Exports that failed verification (kept under exports/failed/, never listed above): {', '.join(failed)}"))
    sections.append(("Artifacts", blocks))
    git = manifest.get("git", {})
    hw = manifest.get("hardware", {})
    sections.append((
        "Manifest",
        [("table", (["field", "value"], [
            ["git", f"{git.get('sha')} ({'dirty' if git.get('dirty') else 'clean'})"],
            ["config sha256", manifest.get("config_sha256", "")],
            ["seed", manifest.get("seed")],
            ["argv", " ".join(manifest.get("argv", []))],
            ["hardware", f"{hw.get('cpu', '?')} × {hw.get('cpu_count')} cores, {hw.get('ram_gb')} GiB, GPUs: {hw.get('gpus') or 'none'}"],
            ["packages", ", ".join(f"{k} {v}" for k, v in (manifest.get("packages") or {}).items() if v)],
        ]))],
    ))
    e2e = {
        "environment": {"env": cfg.env.name, "hardware": hw, "packages": manifest.get("packages")},
        "model_id": cfg.model.name,
        "dataset": (stages.get("data") or {}),
        "final_losses": {k: v for k, v in final.items() if "loss" in k},
        "export_formats": sorted({a.get("format") for a in arts}),
        "inference_metrics": summary.get("after", {}),
        "baseline_metrics": summary.get("before", {}),
        "sample_predictions": (summary.get("samples") or [])[:10],
        "artifact_paths": [a.get("path") for a in arts],
    }
    return sections, e2e


def _md_cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", "<br>")


def render_markdown(title: str, sections: list[Section], base: Path) -> str:
    out = [f"# {title}", ""]
    for name, blocks in sections:
        out += [f"## {name}", ""]
        for kind, payload in blocks:
            if kind == "p":
                out += [payload, ""]
            elif kind == "table":
                header, rows = payload
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "img":
                out += [f"![{Path(payload).stem}]({Path(payload).relative_to(base)})", ""]
    return "\n".join(out)


def render_html(title: str, sections: list[Section]) -> str:
    css = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
           "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;white-space:pre-wrap}"
           "th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{css}</style></head><body><h1>{html.escape(title)}</h1>"]
    for name, blocks in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for kind, payload in blocks:
            if kind == "p":
                parts.append(f"<p>{html.escape(str(payload))}</p>")
            elif kind == "table":
                header, rows = payload
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows]
                parts.append("</table>")
            elif kind == "img":
                data = base64.b64encode(Path(payload).read_bytes()).decode()
                parts.append(f"<img alt='{html.escape(Path(payload).stem)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(run: RunDir | str | Path) -> dict[str, Path]:
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    sections, e2e = build_sections(run)
    title = f"sparring report — {run.path.name}"
    md, page = render_markdown(title, sections, run.path), render_html(title, sections)
    out = {"md": run.path / "report.md", "html": run.path / "report.html", "e2e": run.path / "e2e_summary.json"}
    atomic_write_text(out["md"], md)
    atomic_write_text(out["html"], page)
    atomic_write_text(out["e2e"], json.dumps(e2e, indent=2, default=str))
    return out
