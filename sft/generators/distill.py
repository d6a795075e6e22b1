"""Distillation data: a teacher model answers a prompt file; the env's referee keeps the good answers.

    sparring data generate distill --teacher runs/<run>/sft/merged --prompts prompts.jsonl --env jokes --out data/distilled.jsonl

The teacher is anything ``sparring.generation.load_generator`` loads (an alias, Hub id, model dir,
adapter, run dir).  A prompt line may be a chat row (an assistant turn at the end is dropped), an
alpaca or prompt/completion row without the answer, or env fields such as ``{"topic": "bread"}``;
with ``--env`` a plain prompt is asked the way that env asks it (system prompt, one-shot example).
Each answer is scored by the env (``Score.passed``, and ``total >= min_score`` when given); kept
rows are written as chat rows with the score in ``meta``, rejects to ``<out>.rejects.jsonl`` with
the referee's reasons.  Without ``--env`` every non-empty answer is kept.
Exercised by ``pytest tests/sft/test_distill.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError
from sparring.types import Prompt


SFT_KEYS = ("messages", "instruction", "output", "prompt", "completion")


def _prompt_of_line(text: str, line: int, env: Any) -> Prompt:
    from sparring.sft.formats import RowError, parse_row

    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowError("malformed_json", f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    pid = f"line-{line}"
    if env is not None and isinstance(row, dict) and not any(k in row for k in SFT_KEYS):
        prompt = env.make_prompt(**row)  # env fields, e.g. {"topic": "bread"}
        return Prompt(id=pid, messages=prompt.messages, meta=prompt.meta)
    ex = parse_row(row, line=line, need_answer=False)
    messages = list(ex.messages[:-1] if ex.messages[-1]["role"] == "assistant" else ex.messages)
    if env is not None and ex.source_format != "chat" and len(messages) == 1:
        prompt = env.make_prompt(text=messages[0]["content"], **ex.meta)  # asked the way the env asks
        return Prompt(id=pid, messages=prompt.messages, meta={**prompt.meta, **ex.meta})
    return Prompt(id=pid, messages=tuple(messages), meta=dict(ex.meta))


def read_prompts(path: str | Path, env: Any = None, on_bad_line: str = "skip") -> list[Prompt]:
    """Prompts from a JSONL file (any SFT format with the answer optional, or env fields); bad
    lines are reported with file:line and skipped (or fatal with ``on_bad_line="fail"``)."""
    from sparring.sft.dataset import RowProblem, log
    from sparring.sft.formats import RowError

    p = Path(path)
    if not p.is_file():
        raise UserInputError("prompt file not found", where=str(p), fix="pass a JSONL file with one prompt per line, e.g. {\"prompt\": \"Tell me a dad joke about bread.\"}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserInputError(f"not UTF-8 text (byte {exc.start})", where=str(p), fix="save the file as UTF-8") from None
    prompts: list[Prompt] = []
    problems: list[RowProblem] = []
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            prompts.append(_prompt_of_line(text, n, env))
        except (RowError, UserInputError) as exc:
            problem = RowProblem(str(p), n, getattr(exc, "kind", "bad_prompt"), str(exc).splitlines()[0])
            if on_bad_line == "fail":
                raise UserInputError(f"{problem.kind}: {problem.message}", where=problem.where, fix="fix or delete that line") from None
            problems.append(problem)
            log.warning("skipped %s", problem)
    if not prompts:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise UserInputError(f"no valid prompts ({len(lines)} lines){first}", where=str(p), fix='write one prompt per line: {"prompt": "..."} or {"messages": [...]} (or env fields with --env)')
    return prompts


def distill(
    teacher: str,
    prompts_file: str | Path,
    out: str | Path,
    *,
    env_name: str | None = None,
    env_options: dict[str, Any] | None = None,
    samples_per_prompt: int = 1,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    seed: int = 0,
    min_score: float | None = None,
    batch_size: int = 8,
    generator: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, score, keep; returns the counts.  ``generator`` overrides loading ``teacher``."""
    from tqdm import tqdm

    from sparring.sft.data_build import write_jsonl
    from sparring.sft.generators.claude import side_paths

    env = None
    if env_name:
        from sparring.envs.base import make_env

        env = make_env(env_name, env_options or {})
    prompts = read_prompts(prompts_file, env)
    if generator is None:
        from sparring.generation import load_generator

        generator = load_generator(teacher, engine="hf", batch_size=batch_size)
    kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    bar = tqdm(total=len(prompts) * samples_per_prompt, desc="distilling", unit="answer", disable=not progress)
    try:
        for k in range(samples_per_prompt):
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start : start + batch_size]
                outs = generator.generate(chunk, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 1000 * k + start)
                for prompt, gen in zip(chunk, outs):
                    text = getattr(gen, "text", gen).strip()
                    row, reject = _judge(env, prompt, text, min_score, teacher, k)
                    (kept if row else rejects).append(row or reject)
                bar.update(len(chunk))
    finally:
        bar.close()
        if env is not None:
            env.close()
    rejects_path, _ = side_paths(Path(out))
    write_jsonl(out, kept)
    write_jsonl(rejects_path, rejects)
    total = len(kept) + len(rejects)
    return {"prompts": len(prompts), "answers": total, "kept": len(kept), "rejected": len(rejects), "keep_rate": round(len(kept) / total, 4) if total else 0.0, "out": str(out), "rejects": str(rejects_path), "teacher": teacher, "env": env_name}


def _judge(env: Any, prompt: Prompt, text: str, min_score: float | None, teacher: str, sample: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    base = {"prompt_id": prompt.id, "sample": sample, "text": text}
    if not text:
        return None, {**base, "reasons": {"empty": "the teacher returned an empty answer"}}
    meta: dict[str, Any] = {**prompt.meta, "teacher": teacher, "source": "distill"}
    if env is not None:
        score = env.score(prompt, text)
        meta["score"] = score.total
        reasons: dict[str, Any] = {}
        if not score.passed:
            rules = score.details.get("rules") if isinstance(score.details, dict) else None
            reasons = {k: v["reason"] for k, v in rules.items() if not v["passed"]} if isinstance(rules, dict) else {"passed": "the referee did not pass it"}
            reasons = reasons or {"passed": "the referee did not pass it"}
        if min_score is not None and score.total < min_score:
            reasons["min_score"] = f"score {score.total} < {min_score}"
        if reasons:
            return None, {**base, "score": score.total, "components": score.components, "reasons": reasons}
    return {"messages": [dict(m) for m in prompt.messages] + [{"role": "assistant", "content": text}], "meta": meta}, base
