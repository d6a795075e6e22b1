"""Synthetic question/answer pairs: world capitals, arithmetic word problems, unit conversions.

    rows = generate_qa(100, seed=42)              # [{"question", "answer", "kind"}], deterministic
    report = check_qa(rows)                       # the plan's checks: no empty fields, length
                                                  # bounds, uniqueness >= 95%
    qa_messages(rows[0])                          # {"messages": [system, user, assistant]}

Answers are short and exact (a city, an integer) so a referee can check them; questions never
repeat within one call (the generator draws again on a collision and stops with a clear error
when the requested kinds cannot give that many distinct questions).
Exercised by ``sparring data generate qa --count 100 --seed 42`` and
``pytest tests/sft/test_qa_timeline_generators.py``.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from sparring.errors import UserInputError

QA_KINDS = ("capital", "arithmetic", "unit")
SYSTEM_PROMPT = "Answer the question with the answer only: a name or a number, no sentence."
QUESTION_CHARS = (10, 300)
ANSWER_CHARS = (1, 60)

_CAPITAL_TABLE = """France:Paris; Germany:Berlin; Italy:Rome; Spain:Madrid; Portugal:Lisbon; Japan:Tokyo; China:Beijing;
India:New Delhi; Egypt:Cairo; Kenya:Nairobi; Canada:Ottawa; Mexico:Mexico City; Brazil:Brasilia; Argentina:Buenos Aires;
Chile:Santiago; Peru:Lima; Colombia:Bogota; Australia:Canberra; Russia:Moscow; Poland:Warsaw; Austria:Vienna; Greece:Athens;
Sweden:Stockholm; Norway:Oslo; Finland:Helsinki; Denmark:Copenhagen; Ireland:Dublin; Netherlands:Amsterdam; Belgium:Brussels;
Switzerland:Bern; Hungary:Budapest; Czechia:Prague; Romania:Bucharest; Bulgaria:Sofia; Turkey:Ankara; Iran:Tehran; Iraq:Baghdad;
Thailand:Bangkok; Vietnam:Hanoi; Indonesia:Jakarta; Philippines:Manila; South Korea:Seoul; Nigeria:Abuja; Ghana:Accra;
Morocco:Rabat; Ethiopia:Addis Ababa; Cuba:Havana; Iceland:Reykjavik; Ukraine:Kyiv; Croatia:Zagreb; Serbia:Belgrade;
Slovakia:Bratislava; Slovenia:Ljubljana; Estonia:Tallinn; Latvia:Riga; Lithuania:Vilnius; Pakistan:Islamabad;
Bangladesh:Dhaka; Nepal:Kathmandu; Malaysia:Kuala Lumpur; Singapore:Singapore; New Zealand:Wellington; Uruguay:Montevideo;
Venezuela:Caracas; Ecuador:Quito; Bolivia:Sucre; Paraguay:Asuncion; Jamaica:Kingston; Senegal:Dakar; Tanzania:Dodoma;
Uganda:Kampala; Zambia:Lusaka; Algeria:Algiers; Tunisia:Tunis; Jordan:Amman; Lebanon:Beirut; Qatar:Doha; Mongolia:Ulaanbaatar"""
CAPITALS = {k.strip(): v.strip() for k, v in (item.split(":") for item in _CAPITAL_TABLE.replace("\n", " ").split(";"))}

NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Liam", "Maya", "Noah", "Omar", "Pia")
ITEMS = ("apples", "pencils", "marbles", "stickers", "cookies", "books", "coins", "shells", "stamps", "cards", "eggs", "balloons")
UNITS = (  # (big unit, small unit, factor)
    ("kilometers", "meters", 1000),
    ("meters", "centimeters", 100),
    ("kilograms", "grams", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("weeks", "days", 7),
    ("days", "hours", 24),
    ("liters", "milliliters", 1000),
    ("dozens", "items", 12),
)


def _capital(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(sorted(CAPITALS))
    return f"What is the capital of {country}?", CAPITALS[country]


def _arithmetic(rng: random.Random) -> tuple[str, str]:
    name, other = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    form = rng.randrange(4)
    if form == 0:
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        return f"{name} has {a} {item}. {other} gives {name} {b} more. How many {item} does {name} have now?", str(a + b)
    if form == 1:
        a = rng.randint(10, 90)
        b = rng.randint(1, a - 1)
        return f"{name} had {a} {item} and gave {b} of them to {other}. How many {item} does {name} have left?", str(a - b)
    if form == 2:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return f"A box holds {a} {item}. How many {item} are in {b} boxes?", str(a * b)
    a, b = rng.randint(2, 12), rng.randint(2, 9)
    return f"{name} shares {a * b} {item} equally among {b} friends. How many {item} does each friend get?", str(a)


METRIC_UNITS = (  # decimal metric conversions (big unit, small unit, factor): the "metric" kind
    ("kilometers", "meters", 1000),
    ("meters", "centimeters", 100),
    ("meters", "millimeters", 1000),
    ("centimeters", "millimeters", 10),
    ("kilograms", "grams", 1000),
    ("grams", "milligrams", 1000),
    ("liters", "milliliters", 1000),
    ("tonnes", "kilograms", 1000),
)


def _metric(rng: random.Random) -> tuple[str, str]:
    big, small, factor = rng.choice(METRIC_UNITS)
    x = rng.randint(2, 250)
    return f"How many {small} are in {x} {big}?", str(x * factor)


def _unit(rng: random.Random) -> tuple[str, str]:
    big, small, factor = rng.choice(UNITS)
    x = rng.randint(2, 40)
    return f"How many {small} are in {x} {big}?", str(x * factor)


_MAKERS = {"capital": _capital, "arithmetic": _arithmetic, "unit": _unit, "metric": _metric}  # metric: opt-in, not in QA_KINDS


def generate_qa(count: int, seed: int = 0, kinds: Sequence[str] = QA_KINDS) -> list[dict[str, Any]]:
    """``count`` distinct question/answer rows, the same for the same (count, seed, kinds)."""
    if count < 0:
        raise UserInputError(f"count {count} is negative", where="--count", fix="pass a count >= 0")
    unknown = [k for k in kinds if k not in _MAKERS]
    if unknown or not kinds:
        raise UserInputError(f"unknown Q/A kinds {unknown or list(kinds)}", where="data.options.kinds", fix=f"choose from {', '.join(_MAKERS)}")
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    misses = 0
    while len(rows) < count:
        kind = kinds[len(rows) % len(kinds)] if misses == 0 else rng.choice(list(kinds))
        question, answer = _MAKERS[kind](rng)
        if question in seen:
            misses += 1
            if misses > 200 + 20 * count:
                raise UserInputError(
                    f"only {len(rows)} distinct questions could be drawn for kinds {list(kinds)}",
                    where="--count",
                    fix="ask for fewer rows or add the 'arithmetic' kind (its space is large)",
                )
            continue
        misses = 0
        seen.add(question)
        rows.append({"question": question, "answer": answer, "kind": kind})
    return rows


def check_qa(rows: Sequence[dict[str, Any]], min_unique: float = 0.95) -> dict[str, Any]:
    """The plan's checks on Q/A rows: no empty fields, length bounds, uniqueness >= ``min_unique``."""
    problems: list[str] = []
    empty = [i for i, r in enumerate(rows) if not str(r.get("question", "")).strip() or not str(r.get("answer", "")).strip()]
    if empty:
        problems.append(f"{len(empty)} rows with an empty question or answer (first: row {empty[0]})")
    out_of_bounds = [
        i
        for i, r in enumerate(rows)
        if not (QUESTION_CHARS[0] <= len(str(r.get("question", ""))) <= QUESTION_CHARS[1])
        or not (ANSWER_CHARS[0] <= len(str(r.get("answer", ""))) <= ANSWER_CHARS[1])
    ]
    if out_of_bounds:
        problems.append(f"{len(out_of_bounds)} rows outside the length bounds (first: row {out_of_bounds[0]})")
    unique = len({str(r.get("question", "")).strip().lower() for r in rows}) / len(rows) if rows else 1.0
    if unique < min_unique:
        problems.append(f"uniqueness {unique:.1%} < {min_unique:.0%}")
    return {"rows": len(rows), "empty_fields": len(empty), "out_of_bounds": len(out_of_bounds), "unique_ratio": round(unique, 4), "ok": not problems, "problems": problems}


def qa_messages(row: dict[str, Any], system_prompt: str = SYSTEM_PROMPT) -> dict[str, Any]:
    """A chat-format training row: system, user question, assistant answer."""
    messages = [{"role": "user", "content": row["question"]}, {"role": "assistant", "content": row["answer"]}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": messages}
