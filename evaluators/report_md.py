"""Markdown for eval results: one model's table and samples, or two models side by side.

Used by ``evaluators/harness.py`` (``eval/<env>.md``) and by ``sparring eval`` for chess results.
Exercised by ``pytest tests/evaluators/test_harness.py``.
"""

from __future__ import annotations

from typing import Any


def _cell(text: Any, limit: int = 160) -> str:
    s = str(text if text is not None else "")
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def _metric_rows(result: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    rows += list(result.get("metrics", {}).items())
    rows += [(f"component: {k}", v) for k, v in result.get("components", {}).items()]
    rows += [(f"rule pass: {k}", v) for k, v in result.get("rules", {}).items()]
    rows += [(f"latency: {k}", v) for k, v in result.get("latency", {}).items()]
    return rows


def _caveat(result: dict[str, Any]) -> list[str]:
    """The env's note on its own referee, as a paragraph (``Env.referee_note``), or nothing."""
    from sparring.envs.base import env_referee_note

    note = env_referee_note(result.get("env"))
    return ["", note] if note else []


def result_markdown(result: dict[str, Any], n_samples: int = 20) -> str:
    lines = [
        f"# Eval: {result.get('env')} — {result.get('label')}",
        "",
        f"{result.get('samples')} samples, split `{result.get('split')}`, seed {result.get('seed')}.",
        *_caveat(result),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {_cell(k)} | {_fmt(v)} |" for k, v in _metric_rows(result)]
    rows = result.get("rows", [])[:n_samples]
    if rows:
        lines += ["", f"## {len(rows)} sample outputs", "", "| prompt | completion | total | passed | failed rules |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {_cell(r['prompt'], 80)} | {_cell(r['completion'])} | {_fmt(r['total'])} | {'yes' if r['passed'] else 'no'} | {_cell(', '.join(r.get('failed_rules', [])))} |")
    return "\n".join(lines) + "\n"


def comparison_markdown(result: dict[str, Any], n_samples: int = 20) -> str:
    a_label, b_label = result["labels"]
    a, b = result["models"][a_label], result["models"][b_label]
    lines = [
        f"# Eval: {result.get('env')} — {a_label} vs {b_label}",
        "",
        f"{result.get('samples')} identical prompts, split `{result.get('split')}`, seed {result.get('seed')}; delta = {a_label} − {b_label}.",
        *_caveat(result),
        "",
        f"| metric | {_cell(a_label)} | {_cell(b_label)} | delta |",
        "|---|---|---|---|",
    ]
    b_rows = dict(_metric_rows(b))
    for k, v in _metric_rows(a):
        other = b_rows.get(k)
        delta = round(v - other, 4) if isinstance(v, (int, float)) and isinstance(other, (int, float)) else None
        lines.append(f"| {_cell(k)} | {_fmt(v)} | {_fmt(other)} | {_fmt(delta)} |")
    pairs = list(zip(a.get("rows", []), b.get("rows", [])))[:n_samples]
    if pairs:
        lines += ["", f"## {len(pairs)} prompts, both models", "", f"| prompt | {_cell(a_label)} | {_cell(b_label)} |", "|---|---|---|"]
        for ra, rb in pairs:
            mark_a = f"{'✓' if ra['passed'] else '✗'} {_fmt(ra['total'])}"
            mark_b = f"{'✓' if rb['passed'] else '✗'} {_fmt(rb['total'])}"
            lines.append(f"| {_cell(ra['prompt'], 80)} | {mark_a}: {_cell(ra['completion'])} | {mark_b}: {_cell(rb['completion'])} |")
    return "\n".join(lines) + "\n"


def generic_markdown(result: dict[str, Any], title: str) -> str:
    """A flat metric table for results from other evaluators (chess)."""
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float, str, bool)) or value is None:
            lines.append(f"| {_cell(prefix)} | {_fmt(value)} |")

    walk("", {k: v for k, v in result.items() if k not in ("rows", "samples_rows", "games_pgn")})
    return "\n".join(lines) + "\n"
