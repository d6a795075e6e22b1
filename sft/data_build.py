"""The SFT data of a run: the env's built-in data, or the user's JSONL file.

    path = build_sft_dataset(cfg, run)       # <run>/data/<env>_sft.jsonl, or cfg.data.source as given
    rows = builtin_rows("jokes", {}, seed=0) # chat rows: the env's own prompt + the reference answer

Built-in data per env, each prompt written exactly as the env asks it at evaluation (same system
prompt, one-shot example, user template), so SFT teaches the format the referee checks:
jokes from the shipped corpus ("Tell me a dad joke about <topic>." -> "Q: ...\\nA: ..."),
keyword -> quote items from the quote corpus, synthetic Q/A and JSON timelines from the env's
generator pool (test-split items left out), chess positions labelled by Stockfish.  Every row
keeps the referee's context in ``meta`` (topic, keyword, reference answer) so
``sparring data info FILE --env NAME`` can score it.  Exercised by ``pytest tests/sft/test_sft_cli.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.rundir import RunDir

BUILTIN_ENVS = ("jokes", "quotes", "qa", "timeline", "chess")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename); returns the row count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _chat_row(prompt_messages: Iterable[dict[str, str]], answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [dict(m) for m in prompt_messages] + [{"role": "assistant", "content": answer}], "meta": meta}


def joke_rows(env_options: dict[str, Any] | None = None, *, validated: bool = True) -> list[dict[str, Any]]:
    """Corpus jokes as chat rows, asked the way the jokes env asks.  With ``validated`` only the
    jokes the joke validator passes are kept (the model learns what the referee accepts); the
    corpus is not its own novelty reference here."""
    from sparring.envs.base import make_env
    from sparring.evaluators.joke_validator import validate_joke
    from sparring.sft.corpus import joke_text, load_jokes

    env = make_env("jokes", env_options or {})
    rows = []
    for joke in load_jokes():
        text = joke_text(joke)
        if validated and not validate_joke(text, topic=joke["topic"]).passed:
            continue
        prompt = env.make_prompt(topic=joke["topic"])
        rows.append(_chat_row(prompt.messages, text, {"env": "jokes", "topic": joke["topic"], "source": "builtin"}))
    return rows


def quote_rows(env_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Corpus quotes whose keyword is not in the env's test split."""
    from sparring.envs.base import make_env
    from sparring.sft.corpus import load_quotes, quote_text

    env = make_env("quotes", env_options or {})
    rows = []
    for item in load_quotes():
        keyword = str(item["keyword"]).strip()
        if env._split_of(keyword) == "test":
            continue
        prompt = env.make_prompt(keyword=keyword)
        rows.append(_chat_row(prompt.messages, quote_text(item), {**prompt.meta, "source": "builtin"}))
    return rows


def env_pool_rows(env_name: str, env_options: dict[str, Any] | None, seed: int) -> list[dict[str, Any]]:
    """Q/A and timeline: the env's train + validation prompts with their reference answers."""
    from sparring.envs.base import make_env

    env = make_env(env_name, env_options or {})
    rows = []
    for split in ("train", "validation"):
        for prompt in env.prompts(split, seed=seed):
            if env_name == "qa":
                answer = str(prompt.meta["answer"])
            else:
                from sparring.sft.generators.timeline import timeline_json

                answer = timeline_json(prompt.meta["reference"])
            rows.append(_chat_row(prompt.messages, answer, {**prompt.meta, "source": "builtin"}))
    return rows


def builtin_rows(env_name: str, env_options: dict[str, Any] | None = None, *, seed: int = 0) -> list[dict[str, Any]]:
    if env_name == "jokes":
        return joke_rows(env_options)
    if env_name == "quotes":
        return quote_rows(env_options)
    if env_name in ("qa", "timeline"):
        return env_pool_rows(env_name, env_options, seed)
    raise UserInputError(f"no built-in SFT data for env {env_name!r}", where="data.source: builtin", fix=f"built-in data exists for {', '.join(BUILTIN_ENVS)}; otherwise set data.source to a JSONL file")


def build_sft_dataset(cfg: RunConfig, run: RunDir) -> Path:
    """The JSONL file this run trains on (built once per run directory, then reused)."""
    if cfg.data.source != "builtin":
        path = Path(cfg.data.source).expanduser()
        if not path.is_file():
            raise UserInputError("dataset file not found", where=f"data.source={cfg.data.source}", fix="pass an existing JSONL file, or data.source: builtin for the env's own data")
        run.manifest.record_stage("data", source=str(path.resolve()), size_bytes=path.stat().st_size)
        return path
    env_name = cfg.env.name
    out = run.stage_dir("data") / f"{env_name}_sft.jsonl"
    if out.is_file():
        return out
    if env_name == "chess":
        from sparring.evaluators.stockfish_pool import DEFAULT_NODES
        from sparring.sft.generators.chess import generate_chess_sft

        opts = cfg.data.options
        generate_chess_sft(positions=int(opts.get("positions", cfg.data.count or 2000)), seed=cfg.seed, nodes=int(opts.get("nodes", DEFAULT_NODES)), out_path=out)
    else:
        n = write_jsonl(out, builtin_rows(env_name, cfg.env.options, seed=cfg.seed))
        if n == 0:
            raise UserInputError(f"the built-in data of env {env_name!r} is empty", where="data.source: builtin", fix="set data.source to a JSONL file")
    run.manifest.record_stage("data", source="builtin", env=env_name, path=str(out), size_bytes=out.stat().st_size)
    return out
