"""SFT datasets: load JSONL (any format), report bad rows with file:line, dedupe, split, measure.

    loaded = load_jsonl("data/jokes.jsonl", on_bad_line="skip")     # each bad line logged as file:line
    data = prepare_sft_data("data/jokes.jsonl", tokenizer, max_len=512, val_fraction=0.1, seed=42)
    data.train, data.val, data.report      # ChatExamples and the counts (duplicates, over-length...)
    info = data_info("data/jokes.jsonl", tokenizer)                  # what `sparring data info` prints

Bad rows are never dropped silently: with ``on_bad_line="skip"`` each is logged and counted by
kind, with ``"fail"`` the first one stops the run (exit 2).  A file with zero valid rows exits 2.
Sequences longer than ``max_len`` tokens (with the model's chat template) are counted, reported
and left out of training rather than truncated mid-answer.  Exercised by
``pytest tests/sft/test_dataset.py`` and ``sparring data info FILE``.
"""

from __future__ import annotations

import logging
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sparring.errors import UserInputError
from sparring.seeding import derive_seed
from sparring.sft.formats import ChatExample, RowError, parse_line

log = logging.getLogger("sparring.sft.data")
MAX_LOGGED_PROBLEMS = 20


@dataclass(frozen=True)
class RowProblem:
    path: str
    line: int
    kind: str
    message: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class LoadedData:
    path: Path
    examples: list[ChatExample]
    problems: list[RowProblem]
    lines: int
    blank_lines: int = 0

    @property
    def formats(self) -> dict[str, int]:
        return dict(Counter(e.source_format for e in self.examples))

    @property
    def problem_kinds(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))


def load_jsonl(path: str | Path, *, on_bad_line: str = "skip", need_answer: bool = True, log_problems: bool = True) -> LoadedData:
    """Read every line of ``path``; bad ones are logged (file:line) and skipped, or fatal."""
    if on_bad_line not in ("skip", "fail"):
        raise UserInputError(f"on_bad_line must be 'skip' or 'fail', got {on_bad_line!r}", where="data.on_bad_line", fix="use skip or fail")
    p = Path(path)
    if not p.is_file():
        raise UserInputError("dataset file not found", where=str(p), fix="pass an existing JSONL file (see `sparring data template --format chat`)")
    examples: list[ChatExample] = []
    problems: list[RowProblem] = []
    blank = lines = 0
    with open(p, "rb") as f:
        for lines, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                err: RowError | None = RowError("malformed_json", f"not UTF-8 text (byte {exc.start})")
                text = ""
            else:
                err = None
            if err is None and not text.strip():
                blank += 1
                continue
            if err is None:
                try:
                    examples.append(parse_line(text, line=lines, need_answer=need_answer))
                    continue
                except RowError as exc:
                    err = exc
            problem = RowProblem(str(p), lines, err.kind, str(err))
            if on_bad_line == "fail":
                raise UserInputError(f"{err.kind}: {err}", where=problem.where, fix="fix or delete that line, or set data.on_bad_line: skip to report and skip bad lines")
            problems.append(problem)
            if log_problems and len(problems) <= MAX_LOGGED_PROBLEMS:
                log.warning("skipped %s", problem)
    if log_problems and len(problems) > MAX_LOGGED_PROBLEMS:
        log.warning("%s: %d more bad lines skipped (%d in all: %s)", p, len(problems) - MAX_LOGGED_PROBLEMS, len(problems), dict(Counter(q.kind for q in problems)))
    return LoadedData(p, examples, problems, lines, blank)


def require_rows(loaded: LoadedData) -> None:
    """Exit 2 when nothing usable was read."""
    if loaded.examples:
        return
    first = f"; first problem: {loaded.problems[0]}" if loaded.problems else ""
    raise UserInputError(
        f"no valid rows ({loaded.lines} lines, {len(loaded.problems)} bad, {loaded.blank_lines} blank){first}",
        where=str(loaded.path),
        fix="write rows in one of the formats `sparring data template --format chat|alpaca|completion` prints",
    )


_SPACE = re.compile(r"\s+")


def example_key(example: ChatExample) -> str:
    """Normalized text of a conversation: duplicates differ only in case and spacing."""
    return "\x1e".join(f"{m['role']}\x1f{_SPACE.sub(' ', m['content']).strip().casefold()}" for m in example.messages)


def dedupe(examples: Sequence[ChatExample]) -> tuple[list[ChatExample], int]:
    """Keep the first of each normalized conversation; return (kept, duplicates removed)."""
    seen: set[str] = set()
    kept: list[ChatExample] = []
    for ex in examples:
        key = example_key(ex)
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept, len(examples) - len(kept)


def split_examples(examples: Sequence[ChatExample], val_fraction: float, seed: int) -> tuple[list[ChatExample], list[ChatExample]]:
    """A seeded shuffle, then the first ``val_fraction`` (at least one row when > 0) is validation."""
    order = list(range(len(examples)))
    random.Random(derive_seed(seed, "sft-split")).shuffle(order)
    n_val = 0
    if val_fraction > 0 and len(examples) >= 2:
        n_val = min(len(examples) - 1, max(1, round(len(examples) * val_fraction)))
    val = [examples[i] for i in sorted(order[:n_val])]
    train = [examples[i] for i in sorted(order[n_val:])]
    return train, val


def token_length(tokenizer: Any, example: ChatExample) -> int:
    """Tokens of the whole conversation under the model's chat template."""
    ids = tokenizer.apply_chat_template(list(example.messages), tokenize=True, return_dict=True)["input_ids"]
    return len(ids)


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {}
    s = sorted(lengths)
    return {
        "min": s[0],
        "mean": round(statistics.fmean(s), 1),
        "p50": s[len(s) // 2],
        "p95": s[min(len(s) - 1, int(0.95 * len(s)))],
        "max": s[-1],
        "total": sum(s),
    }


@dataclass
class PreparedData:
    train: list[ChatExample]
    val: list[ChatExample]
    report: dict[str, Any] = field(default_factory=dict)


def prepare_sft_data(
    path: str | Path,
    tokenizer: Any,
    *,
    max_len: int,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_bad_line: str = "skip",
    count: int = 0,
) -> PreparedData:
    """Load, dedupe, drop over-length sequences (counted), keep ``count`` rows, split 90/10."""
    loaded = load_jsonl(path, on_bad_line=on_bad_line)
    require_rows(loaded)
    examples, duplicates = dedupe(loaded.examples)
    lengths = [token_length(tokenizer, ex) for ex in examples]
    fitting = [ex for ex, n in zip(examples, lengths) if n <= max_len]
    over = len(examples) - len(fitting)
    if over:
        longest = max(lengths)
        log.warning("%s: %d of %d sequences exceed model.max_seq_len=%d tokens (longest %d); left out of training", path, over, len(examples), max_len, longest)
    if not fitting:
        raise UserInputError(
            f"every sequence is longer than model.max_seq_len={max_len} tokens (shortest {min(lengths)})",
            where=str(path),
            fix=f"raise model.max_seq_len (e.g. --set model.max_seq_len={max(64, min(lengths) * 2)}) or shorten the rows",
        )
    if count and len(fitting) > count:
        order = list(range(len(fitting)))
        random.Random(derive_seed(seed, "sft-count")).shuffle(order)
        fitting = [fitting[i] for i in sorted(order[:count])]
    train, val = split_examples(fitting, val_fraction, seed)
    kept_lengths = [n for n in lengths if n <= max_len]
    report = {
        "path": str(path),
        "lines": loaded.lines,
        "valid_rows": len(loaded.examples),
        "bad_rows": len(loaded.problems),
        "problems": loaded.problem_kinds,
        "formats": loaded.formats,
        "duplicates": duplicates,
        "over_length": over,
        "max_seq_len": max_len,
        "used_rows": len(fitting),
        "train_rows": len(train),
        "val_rows": len(val),
        "tokens": length_stats(kept_lengths),
    }
    return PreparedData(train, val, report)


def joke_pass_rate(examples: Sequence[ChatExample]) -> dict[str, Any]:
    """The joke validator's verdict on every answer (corpus novelty not applied: a dataset is
    checked against itself through the duplicate count instead)."""
    from sparring.evaluators.joke_validator import validate_joke

    failed: Counter[str] = Counter()
    passed = 0
    for ex in examples:
        verdict = validate_joke(ex.answer, topic=ex.meta.get("topic"))
        passed += verdict.passed
        failed.update(verdict.failed_rules)
    n = len(examples)
    return {"validator": "jokes", "checked": n, "passed": passed, "pass_rate": round(passed / n, 4) if n else None, "failed_rules": dict(failed)}


def env_pass_rate(examples: Sequence[ChatExample], env_name: str) -> dict[str, Any]:
    """The env's referee on every answer, with each row's ``meta`` as the prompt's meta."""
    from sparring.envs.base import make_env
    from sparring.types import Prompt

    env = make_env(env_name, {})
    passed = 0
    try:
        for i, ex in enumerate(examples):
            prompt = Prompt(id=f"row-{ex.line or i}", messages=tuple(ex.prompt_messages), meta=dict(ex.meta))
            passed += bool(env.score(prompt, ex.answer).passed)
    finally:
        env.close()
    n = len(examples)
    return {"validator": f"env:{env_name}", "checked": n, "passed": passed, "pass_rate": round(passed / n, 4) if n else None}


def looks_like_jokes(examples: Sequence[ChatExample]) -> bool:
    sample = examples[:20]
    hits = sum(1 for ex in sample if ex.answer.lstrip().lower().startswith("q:") or "\na:" in ex.answer.lower())
    return bool(sample) and hits * 2 >= len(sample)


def data_info(
    path: str | Path,
    tokenizer: Any = None,
    *,
    env: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 42,
    max_len: int = 512,
) -> dict[str, Any]:
    """Counts, formats, problems, duplicates, token lengths, validator pass rate and the split."""
    loaded = load_jsonl(path, on_bad_line="skip", log_problems=False)
    require_rows(loaded)
    unique, duplicates = dedupe(loaded.examples)
    train, val = split_examples(unique, val_fraction, seed)
    info: dict[str, Any] = {
        "path": str(path),
        "lines": loaded.lines,
        "blank_lines": loaded.blank_lines,
        "valid_rows": len(loaded.examples),
        "bad_rows": len(loaded.problems),
        "problems": loaded.problem_kinds,
        "first_problems": [str(p) for p in loaded.problems[:10]],
        "formats": loaded.formats,
        "duplicates": duplicates,
        "unique_rows": len(unique),
        "turns": dict(Counter(sum(1 for m in ex.messages if m["role"] == "assistant") for ex in unique)),
        "with_system_prompt": sum(1 for ex in unique if ex.system),
        "answer_chars": length_stats([len(ex.answer) for ex in unique]),
        "split": {"seed": seed, "val_fraction": val_fraction, "train": len(train), "val": len(val)},
    }
    if tokenizer is not None:
        lengths = [token_length(tokenizer, ex) for ex in unique]
        info["tokens"] = length_stats(lengths)
        info["over_length"] = {"max_seq_len": max_len, "count": sum(1 for n in lengths if n > max_len)}
    if env:
        info["validator"] = env_pass_rate(unique, env) if env != "jokes" else joke_pass_rate(unique)
    elif looks_like_jokes(unique):
        info["validator"] = joke_pass_rate(unique)
    return info
