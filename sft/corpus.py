"""The built-in corpora shipped as package data: dad jokes, keyword -> quote items, topic lists.

The files live in ``sft/corpora/`` (installed as ``sparring.sft/corpora``) and are read with
``importlib.resources``, so they work from a wheel as well as from the source tree.  Where they
come from and under which licence: ``sft/corpora/ATTRIBUTION.md``.

- ``load_jokes()``   -> ``[{"id", "topic", "question", "answer"}, ...]`` (1,086 jokes)
- ``load_quotes()``  -> ``[{"keyword", "quote", "author"}, ...]`` (312 items)
- ``load_topics(heldout=False)`` -> training topics; ``heldout=True`` -> topics absent from the
  joke corpus, kept for evaluation prompts
- ``joke_text(j)``   -> ``"Q: <question>\\nA: <answer>"``
- ``quote_text(q)``  -> ``"Keyword: <keyword>\\nQuote: <quote>\\n- <author>"``

Exercised by ``pytest tests/sft/test_corpus.py``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from sparring.errors import SparringError

_PACKAGE = "sparring.sft"
_JOKE_FIELDS = ("id", "topic", "question", "answer")
_QUOTE_FIELDS = ("keyword", "quote", "author")


def _corpus_text(name: str) -> str:
    resource = resources.files(_PACKAGE).joinpath("corpora", name)
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SparringError(
            f"built-in corpus file corpora/{name} is missing from the sparring.sft package; "
            "reinstall sparring (pip install -e .) so its package data is present"
        ) from exc


@functools.lru_cache(maxsize=None)
def _read_jsonl(name: str, fields: tuple[str, ...]) -> tuple[dict, ...]:
    rows = []
    for line_no, line in enumerate(_corpus_text(name).splitlines(), 1):
        if not line.strip():
            continue
        where = f"corpora/{name}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SparringError(f"{where}: not valid JSON ({exc.msg})") from exc
        missing = [f for f in fields if not isinstance(row.get(f), str) or not row[f].strip()]
        if missing:
            raise SparringError(f"{where}: missing or empty field(s) {', '.join(missing)}")
        rows.append(row)
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def _read_lines(name: str) -> tuple[str, ...]:
    lines = (line.strip() for line in _corpus_text(name).splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def load_jokes() -> list[dict]:
    """Every corpus joke as ``{"id", "topic", "question", "answer"}`` (a fresh copy each call)."""
    return [dict(row) for row in _read_jsonl("jokes.jsonl", _JOKE_FIELDS)]


def load_quotes() -> list[dict]:
    """Every keyword -> quote item as ``{"keyword", "quote", "author"}`` (a fresh copy each call)."""
    return [dict(row) for row in _read_jsonl("quotes.jsonl", _QUOTE_FIELDS)]


def load_topics(heldout: bool = False) -> list[str]:
    """Training topics (those of the joke corpus), or with ``heldout=True`` the evaluation-only
    topics that appear nowhere in the joke corpus."""
    return list(_read_lines("topics_heldout.txt" if heldout else "topics.txt"))


def joke_text(joke: dict) -> str:
    """The canonical rendering of a joke: ``"Q: <question>\\nA: <answer>"``."""
    return f"Q: {joke['question'].strip()}\nA: {joke['answer'].strip()}"


def quote_text(item: dict) -> str:
    """The canonical rendering of a quote item: ``"Keyword: …\\nQuote: …\\n- Author"``."""
    return f"Keyword: {item['keyword'].strip()}\nQuote: {item['quote'].strip()}\n- {item['author'].strip()}"
