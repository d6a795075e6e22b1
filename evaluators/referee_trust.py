"""How far the joke referee can be trusted: its verdicts on hand-judged jokes and completions.

    rows = load_labelled(data_path("joke_labelled.jsonl"))     # text + label rows, file:line on a bad one
    half_of(text)                                               # the fixed dev / heldout split by a hash
    model_output_check()["groups"]["all"]["precision"]          # on trained models' hand-judged passes

``model_output_check`` runs the current validator on ``evaluators/data/model_outputs_labelled.jsonl``:
completions of trained models that the referee of their day passed, each then judged by a person.
What a trained policy learns to produce is where a rule-based referee gets fooled, so the share of
those non-puns that still pass is the figure to keep low.  ``python -m sparring.bench.joke_validator``
reports it with the rest; the jokes env prints it on every report (``JokesEnv.referee_note``).
Exercised by ``pytest tests/evaluators/test_referee_on_data.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError
from sparring.evaluators.joke_validator import validate_joke


def data_path(name: str) -> Path:
    """A file of ``evaluators/data`` (shipped with the package)."""
    return Path(__file__).resolve().parent / "data" / name


def load_labelled(path: Path) -> list[dict[str, Any]]:
    """The rows of a labelled JSONL file; each needs ``text`` and ``label``."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "text" not in row or "label" not in row:
            raise UserInputError("a labelled row needs 'text' and 'label'", where=f"{path}:{n}", fix="add both fields to the row")
        rows.append(row)
    return rows


def half_of(text: str) -> str:
    """A fixed split of a labelled set: 'dev' rows may guide tuning, 'heldout' rows must not."""
    return "dev" if int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "heldout"


def model_output_check(path: Path | None = None) -> dict[str, Any]:
    """The validator on the hand-judged completions of trained models, overall (``all``), per hash
    half and per ``source``: rows, the share of non-puns and of puns it passes, its precision."""
    rows = load_labelled(path or data_path("model_outputs_labelled.jsonl"))
    verdicts = [(bool(r["label"]), validate_joke(r["text"], topic=r.get("topic")).passed) for r in rows]
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for r, v in zip(rows, verdicts):
        for name in ("all", half_of(r["text"]), r.get("source", "")):
            groups[name].append(v)
    out: dict[str, Any] = {"rows": len(rows), "puns": sum(label for label, _ in verdicts), "groups": {}}
    for name, sub in groups.items():
        bad = [p for label, p in sub if not label]
        good = [p for label, p in sub if label]
        out["groups"][name] = {
            "rows": len(sub),
            "non_puns_passed": round(sum(bad) / len(bad), 4) if bad else None,
            "puns_passed": round(sum(good) / len(good), 4) if good else None,
            "precision": round(sum(good) / (sum(good) + sum(bad)), 4) if sum(good) + sum(bad) else None,
        }
    return out
