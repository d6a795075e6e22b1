"""The Q/A plan's served check: configs/qa.yaml, the scoring of answers, which model gets served,
and the whole path — `sparring serve` in its own process, held-out questions over HTTP with an API
key, eval/qa_served.json — on a tiny GGUF (a random model answers nothing right: passed is False)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.config_io import load_config
from sparring.errors import UserInputError
from sparring.qa_recipe import PASS_RATE, held_out_questions, score_answers, served_model, served_qa_eval
from sparring.rundir import RunDir
from sparring.types import Prompt


@pytest.fixture(scope="module")
def qa_cfg(repo_root: Path):
    return load_config(repo_root / "configs" / "qa.yaml")


def test_qa_config_asks_100_held_out_questions_the_sft_data_never_saw(qa_cfg):
    from sparring.envs.qa import split_of
    from sparring.sft.data_build import builtin_rows

    assert qa_cfg.env.name == "qa" and qa_cfg.eval.samples == 100 and qa_cfg.data.count == 100
    assert "gguf" in qa_cfg.export.formats and "q8_0" in qa_cfg.export.gguf_quants
    questions = held_out_questions(qa_cfg, 100)
    assert len({p.text for p in questions}) == 100 and all(split_of(p.text) == "test" for p in questions)
    trained = {r["messages"][-2]["content"] for r in builtin_rows("qa", qa_cfg.env.options, seed=qa_cfg.seed)}
    assert trained.isdisjoint(p.text for p in questions)


def test_metric_kind_answers_are_the_conversions():
    import re

    from sparring.sft.generators.qa import METRIC_UNITS, generate_qa

    factors = {(small, big): f for big, small, f in METRIC_UNITS}
    rows = generate_qa(300, seed=3, kinds=["metric"])
    for row in rows:
        small, x, big = re.fullmatch(r"How many (\w+) are in (\d+) (\w+)\?", row["question"]).groups()
        assert row["kind"] == "metric" and int(row["answer"]) == int(x) * factors[(small, big)]
    assert generate_qa(50, seed=1) == generate_qa(50, seed=1, kinds=["capital", "arithmetic", "unit"])  # not a default kind


def test_held_out_questions_refuse_other_envs_and_small_pools(qa_cfg):
    with pytest.raises(UserInputError, match="env.name: qa"):
        held_out_questions(qa_cfg.model_copy(update={"env": qa_cfg.env.model_copy(update={"name": "jokes"})}), 10)
    small = qa_cfg.model_copy(update={"env": qa_cfg.env.model_copy(update={"options": {**qa_cfg.env.options, "pool_size": 50}})})
    with pytest.raises(UserInputError, match="pool_size"):
        held_out_questions(small, 100)


def test_scores_correct_exact_approximate_rouge_and_bleu(qa_cfg):
    def prompt(q: str, a: str, kind: str) -> Prompt:
        return Prompt(id=q, messages=({"role": "user", "content": q},), meta={"answer": a, "kind": kind})

    prompts = [prompt("What is the capital of France?", "Paris", "capital"), prompt("How many grams are in 2 kilograms?", "2000", "unit"),
               prompt("What is the capital of Peru?", "Lima", "capital"), prompt("How many days are in 3 weeks?", "21", "unit")]
    answers = [{"text": t, "usage": {"completion_tokens": 2}, "seconds": 0.1} for t in ("Paris", "2000.0", "The capital is Lima.", "12")]
    scored = score_answers(qa_cfg, prompts, answers)
    m = scored["metrics"]
    assert [r["correct"] for r in scored["rows"]] == [True, True, False, False]
    assert m["correct_rate"] == 0.5 and m["exact_match"] == 0.25 and m["approximate_match"] == 0.75
    assert m["per_kind"] == {"capital": {"questions": 2, "correct_rate": 0.5}, "unit": {"questions": 2, "correct_rate": 0.5}}
    assert 0.5 < m["rouge_l"] < 1 and 0 < m["bleu"] < 1


def test_served_model_prefers_the_verified_gguf_export(qa_cfg, tmp_path):
    run = RunDir.create(qa_cfg.model_copy(update={"output_dir": str(tmp_path)}), argv=["test"])
    assert served_model(run, qa_cfg) == qa_cfg.model.name
    (run.path / "sft" / "merged").mkdir(parents=True)
    (run.path / "sft" / "merged" / "config.json").write_text("{}")
    assert served_model(run, qa_cfg) == str(run.path / "sft" / "merged")
    gguf = run.path / "exports" / "step-3" / "gguf"
    gguf.mkdir(parents=True)
    (run.path / "exports" / "latest.json").write_text(json.dumps({"step": 3, "formats": {"gguf": "step-3/gguf"}}))
    for name in ("model-f16.gguf", "model-q8_0.gguf"):
        (gguf / name).write_bytes(b"GGUF")
    (gguf / "verify.json").write_text(json.dumps({"passed": False}))
    assert served_model(run, qa_cfg).endswith("sft/merged")  # an unverified export is not served
    (gguf / "verify.json").write_text(json.dumps({"passed": True}))
    assert served_model(run, qa_cfg) == str(gguf / "model-q8_0.gguf")


@pytest.mark.slow
def test_served_qa_eval_over_http_writes_the_report(qa_cfg, tiny_llama, tmp_path):
    from sparring.exporters.gguf_writer import write_gguf

    gguf = tmp_path / "model-q8_0.gguf"
    write_gguf(tiny_llama, gguf, "q8_0")
    cfg = qa_cfg.model_copy(update={"output_dir": str(tmp_path), "eval": qa_cfg.eval.model_copy(update={"max_new_tokens": 4})})
    run = RunDir.create(cfg, argv=["test"])
    summary = served_qa_eval(cfg, run, model=str(gguf), questions=6, threads=1)
    assert summary["questions"] == 6 and summary["backend"] == "llamacpp" and summary["pass_rate_required"] == PASS_RATE
    assert summary["passed"] is False and summary["correct_rate"] == 0.0  # a random model knows nothing
    saved = json.loads((run.path / "eval" / "qa_served.json").read_text())
    assert len(saved["rows"]) == 6 and all(r["completion_tokens"] <= 4 for r in saved["rows"])
    assert {"exact", "normalized", "contains", "rouge_l", "bleu"} <= set(saved["rows"][0])
    assert "FAIL" in (run.path / "eval" / "qa_served.md").read_text()
    assert RunDir.open(run.path).manifest.read()["served_qa"]["questions"] == 6
