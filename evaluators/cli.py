"""`sparring eval`, `sparring validate-joke` and `sparring score`: measure models, judge completions.

    sparring eval configs/jokes.yaml --model smollm2-135m --samples 200
    sparring eval configs/jokes.yaml --model runs/<run>/sft/merged --compare smollm2-135m
    sparring eval configs/chess.yaml --model <m> --games 40 --opponent stockfish:skill=0 --opponent random
    sparring validate-joke "Q: Why did the cookie go to the doctor?\\nA: Because it felt crummy!"
    sparring validate-joke --jsonl jokes.jsonl
    sparring score jokes --topic bread --completion "Q: ...?\\nA: ..."

``validate-joke`` exits 0 when the joke passes, 1 when it does not, 2 for bad input; with
``--jsonl`` it prints one JSON verdict per input line (malformed lines get an ``error`` and a
file:line message on stderr) and exits 0 only if every line passed.  In TEXT and --completion a
literal backslash-n is read as a newline.  Heavy imports (torch, transformers) happen inside the
commands.  Exercised by ``pytest tests/evaluators/test_eval_cli.py``.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import typer

from sparring.errors import UserInputError


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(name).rstrip("/").split("/")[-1] or "model")[:40]


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=True, default=str))


def _corpus_for(source: str):
    """The reference corpus for --corpus: none, builtin, or a JSONL file."""
    if source == "none":
        return None
    from sparring.envs.jokes import load_reference_jokes
    from sparring.evaluators.novelty import JokeIndex

    return JokeIndex.from_pairs(load_reference_jokes(source))


def _print_verdict(verdict) -> None:
    for rule, (ok, reason) in verdict.rules.items():
        typer.echo(f"{'PASS' if ok else 'FAIL'}  {rule:<16} {reason}".encode("utf-8", "replace").decode("utf-8"))
    typer.echo(f"{'PASSED' if verdict.passed else 'FAILED'}  pun={verdict.pun:.2f} novelty={verdict.novelty:.2f}")


def validate_jsonl(path: Path, corpus_source: str, wordplay_threshold: float = 0.5) -> int:
    """Print one JSON verdict per line of ``path``; return the exit code."""
    from sparring.evaluators.joke_validator import validate_joke

    if not path.is_file():
        raise UserInputError("file not found", where=str(path), fix="pass an existing JSONL file with a \"text\" field per line")
    corpus = _corpus_for(corpus_source)
    all_passed, rows = True, 0
    with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rows += 1
            error = None
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    error = "no string \"text\" field"
            except json.JSONDecodeError as exc:
                error = f"malformed JSON ({exc.msg})"
            if error:
                typer.echo(f"{path}:{n}: {error}", err=True)
                _print_json({"line": n, "passed": False, "error": error})
                all_passed = False
                continue
            verdict = validate_joke(row["text"], corpus=corpus, topic=row.get("topic"), wordplay_threshold=wordplay_threshold)
            all_passed &= verdict.passed
            _print_json({"line": n, **verdict.to_dict()})
    if rows == 0:
        raise UserInputError("no lines to validate", where=str(path), fix="write one JSON object with a \"text\" field per line")
    return 0 if all_passed else 1


def _make_generate_fn(model: str, engine: str, cfg) -> Any:
    from sparring.generation import load_generator

    generator = load_generator(model, engine=engine, batch_size=cfg.eval.batch_size)
    calls = {"n": 0}

    def generate_fn(prompts):
        calls["n"] += 1  # a distinct, reproducible seed per batch
        return generator.generate(prompts, max_new_tokens=cfg.eval.max_new_tokens, temperature=cfg.eval.temperature, seed=cfg.seed + 1000 * calls["n"])

    return generate_fn


def run_eval(config: Path, model: str, compare_model: Optional[str], samples: Optional[int], games: Optional[int], opponents: list[str], puzzles: Optional[int], out: Optional[Path], overrides: list[str], engine: Optional[str]) -> dict[str, Any]:
    from sparring.config_io import load_config
    from sparring.envs.base import make_env
    from sparring.evaluators import harness

    cfg = load_config(config, overrides)
    n = samples or cfg.eval.samples
    engine = engine or cfg.eval.engine
    out_dir = out or Path(cfg.output_dir) / f"eval-{_slug(model)}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    settings = {"config": str(config), "engine": engine, "max_new_tokens": cfg.eval.max_new_tokens, "temperature": cfg.eval.temperature, "models": [m for m in (model, compare_model) if m]}
    with make_env(cfg.env.name, cfg.env.options) as env:
        gen_a = _make_generate_fn(model, engine, cfg)
        gen_b = _make_generate_fn(compare_model, engine, cfg) if compare_model else None
        if cfg.env.name == "chess":
            return _run_chess_eval(env, cfg, gen_a, gen_b, model, compare_model, n, games, opponents, puzzles, out_dir, settings)
        if gen_b is None:
            return harness.evaluate(env, gen_a, samples=n, seed=cfg.seed, out_dir=out_dir, label=model, batch_size=cfg.eval.batch_size, settings=settings, progress=True)
        return harness.compare(env, gen_a, gen_b, samples=n, seed=cfg.seed, out_dir=out_dir, labels=(model, compare_model), batch_size=cfg.eval.batch_size, settings=settings, progress=True)


def _run_chess_eval(env, cfg, gen_a, gen_b, model, compare_model, n, games, opponents, puzzles, out_dir, settings) -> dict[str, Any]:
    from sparring.evaluators.chess_eval import evaluate_chess
    from sparring.evaluators.harness import write_report
    from sparring.evaluators.report_md import generic_markdown

    kwargs = {
        "positions": n,
        "games": cfg.eval.games if games is None else games,
        "opponents": tuple(opponents) if opponents else tuple(cfg.eval.opponents),
        "puzzles": cfg.eval.puzzles if puzzles is None else puzzles,
        "seed": cfg.seed,
    }
    result: dict[str, Any] = {"env": "chess", "settings": {**settings, **{k: v for k, v in kwargs.items() if k != "seed"}}, "seed": cfg.seed}

    def measured(generate_fn) -> dict[str, Any]:
        """evaluate_chess with texts for the referee and latency/tokens measured on the way."""
        seconds, tokens, calls = [], [], 0

        def texts_only(prompts):
            nonlocal calls
            outs = generate_fn(prompts)
            calls += 1
            seconds.extend(getattr(o, "seconds", 0.0) for o in outs)
            tokens.extend(getattr(o, "completion_tokens", 0) for o in outs)
            return [o if isinstance(o, str) else o.text for o in outs]

        report = evaluate_chess(texts_only, env, **kwargs)
        total_s = sum(seconds)
        report["latency"] = {
            "generations": len(seconds),
            "seconds_per_sample": round(total_s / len(seconds), 4) if seconds else None,
            "tokens_per_second": round(sum(tokens) / total_s, 2) if total_s > 0 else None,
        }
        return report

    if gen_b is None:
        result.update({"label": model, **measured(gen_a)})
        title = f"Eval: chess — {model}"
    else:
        result.update({"compare": True, "labels": [model, compare_model], "models": {model: measured(gen_a), compare_model: measured(gen_b)}})
        title = f"Eval: chess — {model} vs {compare_model}"
    result["files"] = write_report(result, out_dir, "chess", generic_markdown(result, title))
    return result


def _numeric_leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_numeric_leaves(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


def _summary_lines(result: dict[str, Any]) -> list[str]:
    models = result["models"] if result.get("compare") else {result.get("label", "model"): result}
    lines = []
    for label, r in models.items():
        metrics = r.get("metrics") or _numeric_leaves({k: v for k, v in r.items() if k not in ("settings", "config", "latency", "seed")})
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(metrics.items())[:8])
        lat = r.get("latency", {})
        extra = f"  {lat.get('seconds_per_sample')} s/sample, {lat.get('tokens_per_second')} tok/s" if lat else ""
        lines.append(f"{label}: {shown}{extra}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        config: Path = typer.Argument(..., help="Run config YAML (its env and eval sections are used)."),
        model: str = typer.Option(..., "--model", help="Model to evaluate: alias, Hub id, HF dir, adapter dir or .gguf."),
        compare_model: Optional[str] = typer.Option(None, "--compare", help="A second model evaluated on the same prompts, side by side."),
        samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Prompts per model (default: eval.samples)."),
        games: Optional[int] = typer.Option(None, "--games", min=0, help="Chess: games against each opponent."),
        opponent: list[str] = typer.Option([], "--opponent", help="Chess: opponent (random, stockfish:skill=N, stockfish:elo=N); repeatable."),
        puzzles: Optional[int] = typer.Option(None, "--puzzles", min=0, help="Chess: Lichess puzzles to solve."),
        out: Optional[Path] = typer.Option(None, "--out", help="Output directory (eval/<env>.json and .md go under it)."),
        engine: Optional[str] = typer.Option(None, "--engine", help="Generation engine: hf or llamacpp (default: eval.engine)."),
        set_: list[str] = typer.Option([], "--set", help="Config override section.field=value; repeatable."),
    ) -> None:
        """Evaluate a model on the config's env (optionally against a second model) and write eval/<env>.json/.md."""
        result = run_eval(config, model, compare_model, samples, games, opponent, puzzles, out, set_, engine)
        for line in _summary_lines(result):
            typer.echo(line)
        for kind, path in result.get("files", {}).items():
            typer.echo(f"wrote {path}")

    @app.command("validate-joke")
    def validate_joke_cmd(
        text: Optional[str] = typer.Argument(None, help='The joke; a literal "\\n" is read as a newline.'),
        jsonl: Optional[Path] = typer.Option(None, "--jsonl", help='JSONL file with a "text" field per line: one JSON verdict per line.'),
        corpus: str = typer.Option("none", "--corpus", help="Novelty reference: none, builtin (the training corpus) or a JSONL file."),
        topic: Optional[str] = typer.Option(None, "--topic", help="The joke's topic (a pun on it counts as wordplay)."),
        as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
        wordplay_threshold: float = typer.Option(0.5, "--wordplay-threshold", min=0.0, max=1.0, help="Pun evidence needed to pass (0.5: one strong finding or two weak ones; 0.25: any one)."),
    ) -> None:
        """Judge a joke with every rule; exit 0 pass, 1 fail, 2 bad input."""
        if (text is None) == (jsonl is None):
            raise UserInputError("give either TEXT or --jsonl FILE", where="validate-joke", fix='sparring validate-joke "Q: ...?\\nA: ..."  or  --jsonl jokes.jsonl')
        if jsonl is not None:
            raise typer.Exit(validate_jsonl(jsonl, corpus, wordplay_threshold))
        from sparring.evaluators.joke_validator import validate_joke

        verdict = validate_joke(_unescape(text), corpus=_corpus_for(corpus), topic=topic, wordplay_threshold=wordplay_threshold)
        if as_json:
            _print_json(verdict.to_dict())
        else:
            _print_verdict(verdict)
        raise typer.Exit(0 if verdict.passed else 1)

    @app.command("score")
    def score_cmd(
        env_name: str = typer.Argument(..., metavar="ENV", help="Env name: jokes, chess, quotes, qa, timeline."),
        completion: str = typer.Option(..., "--completion", help='The completion to score; a literal "\\n" is a newline.'),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="The prompt text (jokes/quotes: the topic is read from '... about X.')."),
        topic: Optional[str] = typer.Option(None, "--topic", help="Jokes/quotes: the topic or keyword."),
        fen: Optional[str] = typer.Option(None, "--fen", help="Chess: the position (FEN)."),
        question: Optional[str] = typer.Option(None, "--question", help="Q/A: the question."),
        answer: Optional[str] = typer.Option(None, "--answer", help="Q/A: the reference answer; timeline: the reference JSON."),
        option: list[str] = typer.Option([], "--option", help="Env option key=value; repeatable."),
    ) -> None:
        """Score one completion and print the Score (total, components, passed, details) as JSON."""
        from sparring.config_io import parse_override
        from sparring.envs.base import make_env

        options: dict[str, Any] = {}
        for item in option:
            parts, value = parse_override(item)
            options[".".join(parts)] = value
        fields = {k: v for k, v in {"topic": topic, "fen": fen, "question": question, "answer": answer}.items() if v is not None}
        with make_env(env_name, options) as env:
            p = env.make_prompt(text=_unescape(prompt) if prompt else None, **fields)
            score = env.score(p, _unescape(completion))
        _print_json({"env": env_name, "prompt": p.text, **score.to_dict()})
        sys.stdout.flush()
