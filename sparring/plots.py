"""Training plots for the report card, drawn with matplotlib from metrics.jsonl.

    paths = write_plots(read_metrics("runs/<run>/metrics.jsonl"), Path("runs/<run>/plots"))

One PNG per family that has data: reward and its components per step, losses, pass/legal rate,
KL and entropy, and the RL step-time split.  Exercised by ``pytest tests/sparring/test_report.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

PLOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # file stem: (title, metric-name prefixes)
    "reward": ("Reward and its components per step", ("rl/reward",)),
    "loss": ("Loss", ("sft/loss", "sft/eval_loss", "rl/loss", "rl/dpo_loss")),
    "pass_rate": ("Pass / legal-move rate", ("rl/pass_rate", "rl/legal_rate", "eval/pass_rate")),
    "kl": ("KL and entropy", ("rl/kl", "rl/entropy")),
}
TIME_PREFIX = "time/"


def _series(rows: Iterable[dict[str, Any]], prefixes: tuple[str, ...]) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        step = row.get("step")
        if step is None:
            continue
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and any(key == p or key.startswith(p + "/") for p in prefixes):
                xs, ys = out.setdefault(key, ([], []))
                xs.append(step)
                ys.append(float(value))
    return out


def write_plots(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for stem, (title, prefixes) in PLOTS.items():
        series = _series(rows, prefixes)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
        for name, (xs, ys) in sorted(series.items()):
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.4, label=name)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out_dir / f"{stem}.png"
        fig.savefig(path)
        plt.close(fig)
        written[stem] = path
    times = _series(rows, tuple(sorted({k for r in rows for k in r if k.startswith(TIME_PREFIX)})))
    if times:
        steps = sorted({s for xs, _ in times.values() for s in xs})
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
        bottom = [0.0] * len(steps)
        for name, (xs, ys) in sorted(times.items()):
            by_step = dict(zip(xs, ys))
            vals = [by_step.get(s, 0.0) for s in steps]
            ax.bar(steps, vals, bottom=bottom, label=name.removeprefix(TIME_PREFIX))
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_title("RL step time split (seconds)")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "step_time.png"
        fig.savefig(path)
        plt.close(fig)
        written["step_time"] = path
    return written
