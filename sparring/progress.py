"""Progress for long stages: a rich bar with ETA on a terminal, a plain line every so often in a log.

    with StepProgress(total=230, description="sft", console=console) as progress:
        for step in range(1, 231):
            ...
            progress.update(step, "loss 1.79  eval 1.82  740 tok/s")

On a terminal it is a live bar (description, bar, done/total, ETA, elapsed, the latest figures).
Redirected to a file (``nohup sparring run ... > log``), a live bar would be noise, so it writes one
line per ``log_every_s`` seconds and a last one at the end::

    sft 35/230 (15%)  elapsed 0:50  eta 4:38  loss 1.79  eval 1.82  740 tok/s

Used by the SFT and RL stages; exercised by ``pytest tests/sparring/test_progress.py``.
"""

from __future__ import annotations

import time
from typing import Any


def clock(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class StepProgress:
    """Progress over ``total`` steps, resumable (``start`` steps already done)."""

    def __init__(self, total: int, description: str, console: Any = None, start: int = 0, log_every_s: float = 30.0):
        from rich.console import Console

        self.total, self.description, self.start = max(1, int(total)), description, int(start)
        self.console = console or Console(stderr=True)
        self.live = bool(self.console.is_terminal)
        self.log_every_s = log_every_s
        self.done, self.info = self.start, ""
        self.started = self.last_line = time.perf_counter()
        self.bar: Any = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=self.console, transient=False,
            )
            self.task = self.bar.add_task(description, total=self.total, completed=self.start, info="")

    def __enter__(self) -> "StepProgress":
        self.started = self.last_line = time.perf_counter()
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.done > self.start:
            self._print_line()

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate of the steps done in this process (None before the first)."""
        ran = self.done - self.start
        if ran <= 0:
            return None
        return (time.perf_counter() - self.started) / ran * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta_seconds()
        parts = [f"{self.description} {self.done}/{self.total} ({100 * self.done // self.total}%)",
                 f"elapsed {clock(time.perf_counter() - self.started)}", f"eta {clock(eta) if eta is not None else '?'}"]
        if self.info:
            parts.append(self.info)
        return "  ".join(parts)

    def update(self, done: int, info: str | None = None) -> None:
        """``done`` steps finished; ``info``: the latest figures (kept until replaced)."""
        self.done = min(int(done), self.total)
        if info is not None:
            self.info = info
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, info=self.info)
        elif time.perf_counter() - self.last_line >= self.log_every_s and self.done < self.total:
            self.last_line = time.perf_counter()
            self._print_line()

    def _print_line(self) -> None:
        self.console.print(self.line(), highlight=False, soft_wrap=True)  # one line, however long
