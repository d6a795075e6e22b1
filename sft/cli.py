"""`sparring data ...` and `sparring sft`: make, inspect and convert SFT data; run the LoRA SFT stage.

    sparring data generate jokes --provider anthropic --count 10000 --out data/jokes.jsonl   # needs ANTHROPIC_API_KEY
    sparring data generate jokes --provider builtin --out data/jokes.jsonl                    # offline
    sparring data generate chess --positions 5000 --out data/chess_sft.jsonl                  # Stockfish-labelled
    sparring data generate qa --count 100 --seed 42                                           # deterministic
    sparring data generate distill --teacher <model> --prompts prompts.jsonl --env jokes
    sparring data info data/jokes.jsonl [--model smollm2-135m] [--env jokes] [--json]
    sparring data template --format alpaca|chat|completion
    sparring data convert data/jokes.jsonl --to alpaca --out data/jokes_alpaca.jsonl
    sparring sft configs/jokes.yaml [--set sft.lora.r=8] [--resume RUN_DIR] [--run-dir DIR]

Heavy imports happen inside the commands.  Bad input exits 2 (missing key, zero valid rows,
Stockfish missing...).  Exercised by ``pytest tests/sft/test_sft_cli.py``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from sparring.errors import UserInputError

KINDS = ("jokes", "chess", "qa", "timeline", "quotes", "distill")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _report_problems_on_stderr() -> None:
    """Skipped rows (file:line), retries and rejects of the sft modules go to stderr."""
    logger = logging.getLogger("sparring.sft")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _take(rows: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` rows in a seeded sample (all of them when count is 0 or larger)."""
    import random

    if not count or count >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), count))
    return [rows[i] for i in keep]


def generate(kind: str, *, provider: str, count: int, positions: int, seed: int, out: Path | None, teacher: str | None,
             prompts: Path | None, env: str | None, model: str | None, batch_size: int, temperature: float | None,
             base_url: str | None, nodes: int | None, progress: bool = True) -> dict[str, Any]:
    from sparring.sft.data_build import joke_rows, quote_rows, write_jsonl

    if kind not in KINDS:
        raise UserInputError(f"unknown data kind {kind!r}", where="sparring data generate KIND", fix=f"use one of {', '.join(KINDS)}")
    if provider not in ("builtin", "anthropic"):
        raise UserInputError(f"unknown provider {provider!r}", where="--provider", fix="use builtin or anthropic")
    if provider == "anthropic" and kind != "jokes":
        raise UserInputError(f"--provider anthropic generates jokes only, not {kind}", where="--provider", fix="drop --provider for this kind")
    out = out or Path("data") / f"{kind}{'_sft' if kind == 'chess' else ''}.jsonl"
    if kind == "jokes" and provider == "anthropic":
        from sparring.sft.generators.claude import DEFAULT_MODEL, ClaudeSettings, generate_jokes_with_claude

        settings = ClaudeSettings(count=count or 1000, model=model or DEFAULT_MODEL, batch_size=batch_size, temperature=temperature, seed=seed, base_url=base_url)
        return generate_jokes_with_claude(out, settings, progress=progress)
    if kind == "jokes":
        return {"out": str(out), "rows": write_jsonl(out, _take(joke_rows(), count, seed)), "source": "builtin corpus"}
    if kind == "quotes":
        return {"out": str(out), "rows": write_jsonl(out, _take(quote_rows(), count, seed)), "source": "builtin corpus"}
    if kind == "qa":
        from sparring.sft.generators.qa import check_qa, generate_qa, qa_messages

        rows = generate_qa(count or 100, seed=seed)
        report = check_qa(rows)
        n = write_jsonl(out, ({**qa_messages(r), "meta": {"answer": r["answer"], "kind": r["kind"]}} for r in rows))
        return {"out": str(out), "rows": n, "checks": report}
    if kind == "timeline":
        from sparring.sft.generators.timeline import generate_timelines, timeline_messages

        rows = generate_timelines(count or 100, seed=seed)
        n = write_jsonl(out, ({**timeline_messages(r), "meta": {"log": r["log"], "reference": r["timeline"]}} for r in rows))
        return {"out": str(out), "rows": n}
    if kind == "chess":
        from sparring.evaluators.stockfish_pool import DEFAULT_NODES
        from sparring.sft.generators.chess import generate_chess_sft

        return generate_chess_sft(positions or count or 1000, seed=seed, nodes=nodes or DEFAULT_NODES, out_path=out, progress=progress)
    if not teacher or not prompts:
        raise UserInputError("distill needs a teacher model and a prompt file", where="--teacher/--prompts", fix="sparring data generate distill --teacher <model> --prompts prompts.jsonl [--env jokes]")
    from sparring.sft.generators.distill import distill

    return distill(teacher, prompts, out, env_name=env, seed=seed, temperature=0.7 if temperature is None else temperature, progress=progress)


def print_info(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{info['path']}", show_header=False)
    table.add_column("what")
    table.add_column("value")

    def row(name: str, value: Any) -> None:
        table.add_row(name, value if isinstance(value, str) else json.dumps(value, default=str))

    row("lines", f"{info['lines']} ({info['blank_lines']} blank)")
    row("valid rows", str(info["valid_rows"]))
    row("bad rows", f"{info['bad_rows']} {info['problems'] or ''}".strip())
    row("formats", info["formats"])
    row("duplicates", f"{info['duplicates']} (unique rows: {info['unique_rows']})")
    row("assistant turns per row", info["turns"])
    row("rows with a system prompt", str(info["with_system_prompt"]))
    row("answer characters", info["answer_chars"])
    if "tokens" in info:
        row("tokens (chat template)", info["tokens"])
        row("over max length", f"{info['over_length']['count']} > {info['over_length']['max_seq_len']} tokens")
    if "validator" in info:
        v = info["validator"]
        row("validator pass rate", f"{v['pass_rate']:.1%} of {v['checked']} ({v['validator']})" if v["pass_rate"] is not None else "n/a")
        if v.get("failed_rules"):
            row("failed rules", v["failed_rules"])
    s = info["split"]
    row("split (seed %d)" % s["seed"], f"train {s['train']} / val {s['val']}")
    Console().print(table)
    for p in info["first_problems"]:
        typer.echo(p, err=True)


def run_sft_command(config: Path | None, overrides: list[str], resume: str | None, run_dir: Path | None) -> dict[str, Any]:
    """Create (or reuse) the run directory, build the data, train, and return the stage result."""
    from sparring.config_io import dump_config, load_config
    from sparring.rundir import RunDir
    from sparring.sft.trainer import run_sft
    from sparring.tracking import Tracker

    if resume:
        run = RunDir.open(resume)
        cfg = run.config()
        if config is not None and dump_config(load_config(config, overrides)) != dump_config(cfg):
            raise UserInputError(f"{config} (with --set) differs from the config of the run being resumed", where=f"--resume {resume}", fix="resume with the run's own config: drop CONFIG and --set, or start a new run")
        mode: bool | str = True
    else:
        if config is None:
            raise UserInputError("no config given", where="CONFIG", fix="sparring sft configs/jokes.yaml (or --resume RUN_DIR)")
        cfg = load_config(config, overrides)
        if run_dir is not None and (run_dir / "manifest.json").is_file():
            run = RunDir.open(run_dir)
            if dump_config(run.config()) != dump_config(cfg):
                raise UserInputError(f"{run_dir} holds a run with a different config", where=f"--run-dir {run_dir}", fix="pass a new --run-dir, or --resume it with its own config")
            mode = "auto"
        else:
            run = RunDir.create(cfg, argv=["sparring", *sys.argv[1:]], path=run_dir)
            mode = False
    tracker = Tracker(run, cfg, job="sft")
    try:
        with run.stage("sft"):
            result = run_sft(cfg, run, tracker, resume=mode)
    finally:
        tracker.finish()
    run.finish()
    return {"run_dir": str(run.path), **result}


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Make, inspect and convert SFT datasets.", no_args_is_help=True, callback=_report_problems_on_stderr)
    app.add_typer(data_app, name="data")

    @data_app.command("generate")
    def data_generate(
        kind: str = typer.Argument(..., help=f"What to generate: {', '.join(KINDS)}."),
        provider: str = typer.Option("builtin", help="jokes: builtin (the shipped corpus) or anthropic (Claude; needs ANTHROPIC_API_KEY)."),
        count: int = typer.Option(0, help="Rows to produce (0: all / the kind's default)."),
        positions: int = typer.Option(0, help="chess: positions to label with Stockfish."),
        seed: int = typer.Option(42, help="Seed: the same seed gives the same data."),
        out: Optional[Path] = typer.Option(None, help="Output JSONL (default data/<kind>.jsonl)."),
        teacher: Optional[str] = typer.Option(None, help="distill: the teacher model (alias, Hub id, dir, run dir)."),
        prompts: Optional[Path] = typer.Option(None, help="distill: JSONL prompt file."),
        env: Optional[str] = typer.Option(None, help="distill: env whose referee filters the answers."),
        model: Optional[str] = typer.Option(None, help="anthropic: the Claude model id."),
        batch_size: int = typer.Option(20, help="anthropic: jokes asked per request."),
        temperature: Optional[float] = typer.Option(None, help="Sampling temperature (distill: default 0.7; anthropic: sent only when given)."),
        base_url: Optional[str] = typer.Option(None, help="anthropic: API base URL (default $ANTHROPIC_BASE_URL or the real API)."),
        nodes: Optional[int] = typer.Option(None, help="chess: Stockfish node limit per search."),
    ) -> None:
        """Generate SFT data; prints a JSON summary (rows, and for anthropic: calls, tokens, accepted/rejected)."""
        _echo_json(generate(kind, provider=provider, count=count, positions=positions, seed=seed, out=out, teacher=teacher, prompts=prompts,
                            env=env, model=model, batch_size=batch_size, temperature=temperature, base_url=base_url, nodes=nodes))

    @data_app.command("info")
    def data_info_cmd(
        path: Path = typer.Argument(..., help="A JSONL dataset (chat, alpaca or prompt/completion rows)."),
        model: Optional[str] = typer.Option(None, help="Measure token lengths with this model's tokenizer and chat template."),
        env: Optional[str] = typer.Option(None, help="Score every answer with this env's referee (default: the joke validator when rows look like jokes)."),
        max_len: int = typer.Option(512, help="Count sequences longer than this many tokens."),
        seed: int = typer.Option(42, help="Seed of the 90/10 split shown."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Counts, formats, bad lines, duplicates, token lengths, validator pass rate and the split."""
        from sparring.sft.dataset import data_info

        tokenizer = None
        if model:
            from sparring.models import load_tokenizer

            tokenizer = load_tokenizer(model)
        info = data_info(path, tokenizer, env=env, seed=seed, max_len=max_len)
        _echo_json(info) if as_json else print_info(info)

    @data_app.command("template")
    def data_template(fmt: str = typer.Option("chat", "--format", help="chat, alpaca or completion.")) -> None:
        """Print example rows of a dataset format."""
        from sparring.sft.formats import template_jsonl

        try:
            typer.echo(template_jsonl(fmt), nl=False)
        except ValueError as exc:
            raise UserInputError(str(exc), where="--format", fix="use chat, alpaca or completion") from None

    @data_app.command("convert")
    def data_convert(
        path: Path = typer.Argument(..., help="Input JSONL in any format."),
        to: str = typer.Option(..., "--to", help="chat, alpaca or completion."),
        out: Path = typer.Option(..., help="Output JSONL."),
        on_bad_line: str = typer.Option("skip", help="skip (report each with file:line) or fail."),
    ) -> None:
        """Convert a dataset between formats (bad lines reported with file:line)."""
        from sparring.sft.data_build import write_jsonl
        from sparring.sft.dataset import load_jsonl, require_rows
        from sparring.sft.formats import canonical_format

        try:
            fmt = canonical_format(to)
        except ValueError as exc:
            raise UserInputError(str(exc), where="--to", fix="use chat, alpaca or completion") from None
        loaded = load_jsonl(path, on_bad_line=on_bad_line)
        require_rows(loaded)
        n = write_jsonl(out, (ex.to_row(fmt) for ex in loaded.examples))
        _echo_json({"out": str(out), "rows": n, "format": fmt, "skipped": len(loaded.problems)})

    @app.command("sft")
    def sft(
        config: Optional[Path] = typer.Argument(None, help="Run config YAML (not needed with --resume)."),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a field: --set sft.lora.r=8 (repeatable)."),
        resume: Optional[str] = typer.Option(None, help="Resume a run directory from its latest SFT checkpoint."),
        run_dir: Optional[Path] = typer.Option(None, help="Write into this run directory (created, or reused when its config matches)."),
    ) -> None:
        """LoRA SFT: build the data, train with TRL's SFTTrainer, write the adapter and the merged model."""
        _report_problems_on_stderr()
        result = run_sft_command(config, set_ or [], resume, run_dir)
        typer.echo(f"adapter: {result['adapter']}")
        typer.echo(f"merged:  {result['merged']}")
        _echo_json(result)
