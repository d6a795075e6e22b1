"""The eval harness: same prompts for both models, metrics and latency, the json/md reports
(20 samples, side-by-side table with deltas), strings or Generation objects from generate_fn."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparring.envs.base import make_env
from sparring.evaluators.harness import compare, eval_prompts, evaluate


@dataclass
class Gen:
    text: str
    completion_tokens: int
    seconds: float


@pytest.fixture
def qa():
    return make_env("qa", {"pool_size": 100})


def oracle(prompts):
    return [Gen(p.meta["answer"], 2, 0.5) for p in prompts]


def wrong(prompts):
    return ["no idea" for _ in prompts]


def test_eval_prompts_cycle_with_unique_ids(qa):
    n_test = len(list(qa.prompts("test")))
    prompts = eval_prompts(qa, n_test + 5, seed=0)
    assert len(prompts) == n_test + 5
    assert len({p.id for p in prompts}) == len(prompts)
    assert [p.id for p in eval_prompts(qa, 7, seed=0)] == [p.id for p in prompts[:7]]


def test_evaluate_writes_json_and_md(qa, tmp_path: Path):
    result = evaluate(qa, oracle, samples=25, seed=1, out_dir=tmp_path, label="oracle", batch_size=4)
    assert result["metrics"]["pass_rate"] == 1.0 and result["metrics"]["total_mean"] == 1.0
    assert result["components"]["normalized"] == 1.0
    assert result["latency"]["seconds_per_sample"] == 0.5 and result["latency"]["tokens_per_second"] == 4.0
    saved = json.loads((tmp_path / "eval" / "qa.json").read_text())
    assert saved["samples"] == 25 and len(saved["rows"]) == 25 and saved["label"] == "oracle"
    md = (tmp_path / "eval" / "qa.md").read_text()
    assert "| pass_rate | 1 |" in md
    assert md.count("| yes |") == 20  # 20 sample outputs
    assert not list((tmp_path / "eval").glob("*.tmp"))
    assert "upper bound" not in md  # the Q/A referee checks answers exactly: no caveat


def test_a_jokes_eval_report_says_how_far_its_pass_rate_can_be_trusted(tmp_path: Path):
    with make_env("jokes", {}) as jokes:
        evaluate(jokes, lambda prompts: ["Q: Why did the bread rise?\nA: It was kneaded." for _ in prompts], samples=3, seed=0, out_dir=tmp_path, label="fixed")
    md = (tmp_path / "eval" / "jokes.md").read_text()
    assert "upper bound on real puns" in md and "a precision of 0." in md


def test_plain_strings_are_timed_by_the_harness(qa):
    result = evaluate(qa, wrong, samples=5, seed=0)
    assert result["metrics"]["pass_rate"] == 0.0
    assert result["latency"]["tokens_per_second"] is None and result["latency"]["seconds_per_sample"] >= 0
    assert result["metrics"]["duplicate_rate"] == 0.8 and "files" not in result


def test_compare_side_by_side(qa, tmp_path: Path):
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def gen_a(prompts):
        seen["a"] += [p.id for p in prompts]
        return oracle(prompts)

    def gen_b(prompts):
        seen["b"] += [p.id for p in prompts]
        return wrong(prompts)

    result = compare(qa, gen_a, gen_b, samples=22, seed=0, out_dir=tmp_path, labels=("sft", "base"))
    assert seen["a"] == seen["b"] and len(seen["a"]) == 22
    assert result["delta"]["pass_rate"] == 1.0
    assert result["models"]["sft"]["metrics"]["pass_rate"] == 1.0 and result["models"]["base"]["metrics"]["pass_rate"] == 0.0
    md = (tmp_path / "eval" / "qa.md").read_text()
    assert "| metric | sft | base | delta |" in md and "| pass_rate | 1 | 0 | 1 |" in md
    assert md.count("✓") == 20 and md.count("✗") == 20


def test_jokes_metrics_include_rules_and_diversity(tmp_path: Path):
    topics = tmp_path / "t.txt"
    topics.write_text("bread\nvolcanoes\n")
    env = make_env("jokes", {"topics": str(topics), "test_topics": str(topics), "corpus": "none"})
    joke = "Q: Why did the bread go to therapy?\nA: It felt kneaded."
    result = evaluate(env, lambda ps: [joke] * len(ps), samples=4, seed=0)
    assert result["metrics"]["duplicate_rate"] == 0.75 and result["metrics"]["pass_rate"] == 0.25
    assert result["rules"]["format"] == 1.0 and result["rules"]["novelty"] == 0.25
    assert "corpus_overlap" in result["metrics"] and result["metrics"]["distinct_1"] < 0.5
    # a second evaluation starts from an empty recent window
    assert evaluate(env, lambda ps: [joke] * len(ps), samples=4, seed=0)["metrics"]["pass_rate"] == 0.25


def test_generate_fn_returning_the_wrong_count_fails_loudly(qa):
    with pytest.raises(ValueError, match="outputs"):
        evaluate(qa, lambda ps: [], samples=2, seed=0)


@pytest.mark.slow
def test_harness_on_a_tiny_random_llama(qa, tmp_path: Path, tiny_llama):
    from sparring.generation import load_generator

    gen = load_generator(str(tiny_llama), engine="hf", batch_size=4)
    result = evaluate(qa, lambda ps: gen.generate(ps, max_new_tokens=4, temperature=0.7, seed=0), samples=6, seed=0, out_dir=tmp_path, label="tiny")
    assert result["samples"] == 6 and result["latency"]["tokens_per_second"] > 0
    assert all(0 <= r["tokens"] <= 4 for r in result["rows"])
    assert (tmp_path / "eval" / "qa.json").is_file()
