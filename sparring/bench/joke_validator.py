"""Benchmark: precision and recall of the joke validator on the labelled set, and its speed.

The labelled set (``evaluators/data/joke_labelled.jsonl``) holds good jokes (``kind: good``, label
1) and near-misses (label 0) of named kinds: no_question, meta, profanity, template, not_pun,
too_long, too_short, repeated, empty_answer.  "Positive" means *the validator passes it*:

- precision = good jokes passed / all jokes passed;
- recall    = good jokes passed / all good jokes;
- per-kind rejection rate = near-misses of that kind rejected / near-misses of that kind.

The set is split in two halves by a hash of the text: wordplay lexicon/threshold tuning looked
only at the ``dev`` half's errors; the ``heldout`` half's precision/recall is the honest figure.
Novelty is checked against the built-in training corpus with the labelled good jokes removed from
it (a good joke must not be rejected for being itself); template near-misses are copies of corpus
or labelled jokes, so the labelled good jokes are added back as the template reference for them.
Throughput is single-threaded validations per second with the corpus index built.

Two more figures: the share of the built-in training corpus (``sft/corpora/jokes.jsonl``, real
puns, the wordplay lexicons' development set) whose wordplay evidence reaches the default
threshold, and the share of stored base-model completions (``evaluators/data/base_model_outputs.jsonl``:
48 SmolLM2-135M completions for the jokes env's test prompts, from ``python -m
sparring.bench.eval_jokes``) that pass the whole validator with their topic -- non-jokes that
must keep failing.  And completions of trained models (``model_outputs_labelled.jsonl``: after SFT
and after SFT + GRPO, each passed by the referee of its day and judged by hand; see
``evaluators/data/README.md``): the share of the non-puns that still pass -- where a policy trained
against the referee finds its holes (``evaluators/referee_trust.py``).

    python -m sparring.bench.joke_validator [--data FILE] [--out bench.json] [--show-errors 10]

Prints the JSON and a markdown table.  Timings on a shared machine are noisy: rerun to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sparring.evaluators.joke_validator import joke_entry, validate_joke
from sparring.evaluators.novelty import JokeIndex
from sparring.evaluators.referee_trust import data_path, half_of, load_labelled, model_output_check


def build_indexes(rows: list[dict[str, Any]]) -> tuple[JokeIndex, JokeIndex]:
    """(the corpus without the labelled good jokes, every corpus and labelled good joke)."""
    from sparring.sft.corpus import load_jokes

    good = [e for e in (joke_entry(r["text"]) for r in rows if r["label"] == 1) if e is not None]
    good_norms = {e.norm for e in good}
    corpus, full = JokeIndex(), JokeIndex()
    seen: set[str] = set()
    for entry in [joke_entry(j) for j in load_jokes()] + good:
        if entry is None or entry.norm in seen:
            continue
        seen.add(entry.norm)
        full.add(entry)
        if entry.norm not in good_norms:
            corpus.add(entry)
    return corpus, full


THRESHOLDS = (0.0, 0.25, 0.5, 0.6)


class _RePass:
    """A verdict judged again with another wordplay threshold."""

    def __init__(self, verdict: Any, threshold: float):
        others = all(ok for name, (ok, _) in verdict.rules.items() if name != "wordplay")
        self.passed = others and verdict.pun >= threshold


def confusion(rows: list[dict[str, Any]], verdicts: list[Any]) -> dict[str, Any]:
    tp = sum(1 for r, v in zip(rows, verdicts) if r["label"] and v.passed)
    fp = sum(1 for r, v in zip(rows, verdicts) if not r["label"] and v.passed)
    fn = sum(1 for r, v in zip(rows, verdicts) if r["label"] and not v.passed)
    tn = len(rows) - tp - fp - fn
    return {
        "rows": len(rows),
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def corpus_wordplay_rate() -> tuple[float, int]:
    """(share of the training corpus's jokes whose wordplay reaches the default threshold, jokes)."""
    from sparring.evaluators.joke_validator import WORDPLAY_THRESHOLD
    from sparring.evaluators.wordplay import wordplay
    from sparring.sft.corpus import load_jokes

    jokes = load_jokes()
    shown = sum(wordplay(j["question"], j["answer"], j.get("topic")).score >= WORDPLAY_THRESHOLD for j in jokes)
    return (round(shown / len(jokes), 4) if jokes else 0.0), len(jokes)


def base_model_pass_rate(path: Path | None = None) -> tuple[float, int]:
    """(share of stored base-model completions the validator passes, how many there are)."""
    path = path or data_path("base_model_outputs.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    passed = sum(validate_joke(r["completion"], topic=r.get("topic")).passed for r in rows)
    return (round(passed / len(rows), 4) if rows else 0.0), len(rows)


def run(path: Path, show_errors: int = 10) -> dict[str, Any]:
    rows = load_labelled(path)
    corpus, full = build_indexes(rows)
    verdicts = []
    for r in rows:
        index = full if r.get("kind") == "template" else corpus
        verdicts.append(validate_joke(r["text"], corpus=index, topic=r.get("topic")))
    curve = []
    for threshold in THRESHOLDS:
        gated = [_RePass(v, threshold) for v in verdicts]
        for name in ("dev", "heldout"):
            sub = [(r, g) for r, g in zip(rows, gated) if half_of(r["text"]) == name]
            c = confusion([r for r, _ in sub], [g for _, g in sub])
            curve.append({"threshold": threshold, "half": name, "precision": c["precision"], "recall": c["recall"]})
    halves = {
        name: confusion([r for r in rows if half_of(r["text"]) == name], [v for r, v in zip(rows, verdicts) if half_of(r["text"]) == name])
        for name in ("dev", "heldout")
    }
    tp = sum(1 for r, v in zip(rows, verdicts) if r["label"] == 1 and v.passed)
    fp = sum(1 for r, v in zip(rows, verdicts) if r["label"] == 0 and v.passed)
    fn = sum(1 for r, v in zip(rows, verdicts) if r["label"] == 1 and not v.passed)
    tn = sum(1 for r, v in zip(rows, verdicts) if r["label"] == 0 and not v.passed)
    per_kind: dict[str, dict[str, Any]] = {}
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r, v in zip(rows, verdicts):
        by_kind[r.get("kind", "good" if r["label"] else "bad")].append(v.passed)
    for kind, passes in sorted(by_kind.items()):
        rate = sum(passes) / len(passes) if kind == "good" else sum(not p for p in passes) / len(passes)
        per_kind[kind] = {"n": len(passes), ("pass_rate" if kind == "good" else "rejection_rate"): round(rate, 4)}
    good_failures = Counter(rule for r, v in zip(rows, verdicts) if r["label"] == 1 for rule in v.failed_rules)
    errors = [
        {"half": half_of(r["text"]), "kind": r.get("kind"), "label": r["label"], "text": r["text"], "failed": v.failed_rules, "wordplay": v.rules["wordplay"][1]}
        for r, v in zip(rows, verdicts)
        if v.passed != bool(r["label"]) and half_of(r["text"]) == "dev"
    ][:show_errors]

    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 2.0:
        for r in rows:
            validate_joke(r["text"], corpus=corpus)
            n += 1
    rate = n / (time.perf_counter() - t0)
    base_rate, base_n = base_model_pass_rate()
    corpus_rate, corpus_n = corpus_wordplay_rate()
    model_outputs = model_output_check()
    return {
        "data": str(path),
        "rows": len(rows),
        "good": tp + fn,
        "near_misses": fp + tn,
        "corpus_jokes": len(corpus),
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "accuracy": round((tp + tn) / len(rows), 4) if rows else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "halves": halves,
        "threshold_curve": curve,
        "per_kind": per_kind,
        "good_jokes_failed_by_rule": dict(good_failures.most_common()),
        "corpus_wordplay_pass_rate": corpus_rate,
        "corpus_wordplay_jokes": corpus_n,
        "base_model_pass_rate": base_rate,
        "base_model_completions": base_n,
        "trained_model_outputs": model_outputs,
        "validations_per_second": round(rate, 1),
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "errors": errors,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| labelled rows (good / near-miss) | {result['rows']} ({result['good']} / {result['near_misses']}) |",
        f"| precision | {result['precision']} |",
        f"| recall | {result['recall']} |",
        f"| accuracy | {result['accuracy']} |",
        f"| precision / recall, dev half (n={result['halves']['dev']['rows']}) | {result['halves']['dev']['precision']} / {result['halves']['dev']['recall']} |",
        f"| precision / recall, held-out half (n={result['halves']['heldout']['rows']}) | {result['halves']['heldout']['precision']} / {result['halves']['heldout']['recall']} |",
        f"| training corpus: wordplay pass rate (n={result['corpus_wordplay_jokes']}) | {result['corpus_wordplay_pass_rate']} |",
        f"| base-model completions passed (n={result['base_model_completions']}) | {result['base_model_pass_rate']} |",
        f"| validations / s (1 thread) | {result['validations_per_second']} |",
    ]
    for name, g in result["trained_model_outputs"]["groups"].items():
        if name != "all":
            lines.append(f"| trained-model completions, {name} (n={g['rows']}): non-puns passed / puns passed / precision | {g['non_puns_passed']} / {g['puns_passed']} / {g['precision']} |")
    for point in result["threshold_curve"]:
        lines.append(f"| wordplay threshold {point['threshold']} ({point['half']}): precision / recall | {point['precision']} / {point['recall']} |")
    for kind, info in result["per_kind"].items():
        key = "pass_rate" if kind == "good" else "rejection_rate"
        lines.append(f"| {kind}: {key.replace('_', ' ')} (n={info['n']}) | {info[key]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=data_path("joke_labelled.jsonl"), help="labelled JSONL (text, label, kind)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--show-errors", type=int, default=10, help="misclassified rows to include")
    args = ap.parse_args(argv)
    result = run(args.data, args.show_errors)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    print()
    print(markdown(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
