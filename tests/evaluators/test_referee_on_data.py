"""The joke referee measured on data: the base model's stored completions, the hand-judged
trained-model outputs (a ratchet: the non-puns still passing may not rise) and the training corpus."""

from __future__ import annotations

import pytest

from sparring.evaluators.joke_validator import validate_joke
from sparring.evaluators.wordplay import wordplay


def test_base_model_completions_mostly_fail():
    """Stored SmolLM2-135M completions (``evaluators/data/base_model_outputs.jsonl``) are not
    jokes; the referee must keep failing at least 90% of them."""
    import json
    from pathlib import Path

    import sparring.evaluators

    path = Path(sparring.evaluators.__file__).resolve().parent / "data" / "base_model_outputs.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 40
    passed = [r["completion"] for r in rows if validate_joke(r["completion"], topic=r["topic"]).passed]
    assert len(passed) <= 0.10 * len(rows), passed


def test_trained_model_non_puns_do_not_regress():
    """``evaluators/data/model_outputs_labelled.jsonl``: 328 completions of trained models (150 after
    SFT, 50 after SFT + GRPO, 18 + 18 + 14 + 13 + 7 + 14 + 11 after SFT + GRPO against the tightened
    referees of 2026-12-06 and 2026-12-07, and 18 + 15 from `python -m sparring.bench.sft` and
    `bench.rl_jokes` on 2026-12-07) that the referee of their day passed, judged by hand; 306 are no
    pun.  The current referee rejects under half of those non-puns (0.56 still pass -- each new
    batch's passes are, by construction, the holes of the referee it was measured with, and the
    last three batches' 41 non-puns were added with 36 of their holes open: a listed idiom alone, a
    field word used literally, a field word's homophone that the sentence does not mean; on the
    first 236 rows 0.66 passed before respellings had to be heard, setting-only double meanings
    counted half and the question's own phrases stopped counting as second readings, 0.48 after):
    the semantic-field rules cannot tell a literal answer from a pun, and a policy trained against
    them finds new holes.  This ratchet keeps the rules from sliding back, and most of the real
    puns passing."""
    from sparring.evaluators.referee_trust import model_output_check

    result = model_output_check()
    assert result["rows"] == 328 and result["puns"] == 22
    assert result["groups"]["all"]["non_puns_passed"] <= 0.56, result
    assert result["groups"]["all"]["puns_passed"] >= 0.75, result


@pytest.mark.slow
def test_most_training_corpus_jokes_show_wordplay():
    from sparring.sft.corpus import load_jokes

    jokes = load_jokes()
    shown = sum(wordplay(j["question"], j["answer"], j["topic"]).score >= 0.5 for j in jokes)
    # 0.936 measured on 1,086 jokes; 0.903 since coinages, sound-alikes, double meanings and split
    # compounds untied to the subject count half (what still fails is mostly a gap of senses.py's
    # fields -- "hue" for a rainbow, "scents" for a skunk -- not of the rule); 0.885 since a respelling
    # must be heard as its reading, not only seen ("honk-estly", "owl-some" are lost with "pie-ative");
    # 0.861 since a two-sense word of the question's setting needs a tie to its subject ("filling" for a
    # donut at the dentist is kept by the lexicon; "bills" for an accountant's duck is lost with "class" at school)
    assert shown >= 0.85 * len(jokes), shown / len(jokes)
