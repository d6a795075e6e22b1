"""StepProgress: plain lines with ETA when logging to a file, a live bar on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from sparring.progress import StepProgress, clock


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=200, color_system=None), buf


def test_clock_formats_minutes_and_hours():
    assert clock(0) == "0:00"
    assert clock(95) == "1:35"
    assert clock(3725) == "1:02:05"
    assert clock(-3) == "0:00"


def test_log_lines_carry_counts_eta_and_the_latest_figures():
    console, buf = _console(terminal=False)
    with StepProgress(10, "sft", console, log_every_s=0) as progress:
        progress.update(3, "loss 1.790")
        progress.update(4)  # figures are kept until replaced
    lines = buf.getvalue().strip().splitlines()
    assert lines[0].startswith("sft 3/10 (30%)") and "loss 1.790" in lines[0]
    assert "eta" in lines[0] and "eta ?" not in lines[0]
    assert lines[-1].startswith("sft 4/10 (40%)") and lines[-1].endswith("loss 1.790")


def test_log_lines_are_rate_limited_and_the_last_is_always_written():
    console, buf = _console(terminal=False)
    with StepProgress(100, "rl grpo", console, start=20, log_every_s=3600) as progress:
        for step in range(21, 60):
            progress.update(step, f"reward {step / 100:.2f}")
    lines = buf.getvalue().strip().splitlines()
    assert lines == [lines[-1]] and lines[-1].startswith("rl grpo 59/100 (59%)") and "reward 0.59" in lines[-1]


def test_a_resumed_stage_that_does_nothing_writes_nothing():
    console, buf = _console(terminal=False)
    with StepProgress(5, "sft", console, start=5):
        pass
    assert buf.getvalue() == ""


def test_terminal_gets_the_live_bar():
    console, buf = _console(terminal=True)
    with StepProgress(8, "sft", console) as progress:
        progress.update(8, "loss 0.5")
    out = buf.getvalue()
    assert "8/8" in out and "loss 0.5" in out and "eta" in out


def test_a_log_line_is_never_wrapped_at_the_console_width():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=40, color_system=None)
    with StepProgress(40, "rl grpo", console, log_every_s=0) as progress:
        progress.update(15, "reward 0.538  pass_rate 0.31  10.4s/step")
    first = buf.getvalue().splitlines()[0]
    assert first.startswith("rl grpo 15/40") and first.endswith("10.4s/step")
