"""Reward callables for TRL: prompt lookup (prompt_id, meta, text), components, one scoring per
batch, chat-shaped prompts/completions, and no exceptions whatever comes in."""

from __future__ import annotations

import json

import pytest

from sparring.envs.base import make_env
from sparring.envs.rewards import EnvScorer, completion_text, prompt_text, reward_funcs_for
from sparring.registry import REWARDS


@pytest.fixture
def qa():
    return make_env("qa", {"pool_size": 100})


def test_total_and_components_by_prompt_id(qa):
    prompts = list(qa.prompts("test"))[:3]
    total, normalized, rouge = reward_funcs_for(qa, ["total", "normalized", "rouge_l"])
    assert total.__name__ == "qa_total" and normalized.__name__ == "qa_normalized"
    completions = [prompts[0].meta["answer"], "wrong", prompts[2].meta["answer"]]
    kwargs = {"prompt_id": [p.id for p in prompts]}
    texts = [p.text for p in prompts]
    assert total(prompts=texts, completions=completions, **kwargs) == [1.0, 0.0, 1.0]
    assert normalized(prompts=texts, completions=completions, **kwargs) == [1.0, 0.0, 1.0]
    assert rouge(prompts=texts, completions=completions, **kwargs)[0] == 1.0


def test_lookup_by_text_and_by_meta(qa):
    p = next(qa.prompts("train"))
    (total,) = reward_funcs_for(qa)
    assert total([p.text], [p.meta["answer"]]) == [1.0]
    # a prompt the env never made, with its meta column (dict or JSON string)
    meta = {"answer": "Paris"}
    assert total(["What is the capital of France?"], ["Paris"], meta=[meta]) == [1.0]
    assert total(["What is the capital of France?"], ["Paris"], meta=[json.dumps(meta)]) == [1.0]


def test_chat_shaped_prompts_and_completions(qa):
    p = next(qa.prompts("test"))
    (total,) = reward_funcs_for(qa)
    chat_prompt = [dict(m) for m in p.messages]
    chat_completion = [{"role": "assistant", "content": p.meta["answer"]}]
    assert total(prompts=[chat_prompt], completions=[chat_completion]) == [1.0]
    assert completion_text({"content": "x"}) == "x" and completion_text(None) == ""
    assert prompt_text(chat_prompt) == p.text


def test_batch_is_scored_once_for_all_components(tmp_path):
    topics = tmp_path / "t.txt"
    topics.write_text("bread\n")
    env = make_env("jokes", {"topics": str(topics), "test_topics": str(topics), "corpus": "none"})
    scorer = EnvScorer(env)
    funcs = reward_funcs_for(env, ["total", "passed", "pun", "novelty"], scorer=scorer)
    joke = "Q: Why did the bread go to therapy?\nA: It felt kneaded."
    prompt = env.make_prompt(topic="bread").text
    values = [f(prompts=[prompt, prompt], completions=[joke, joke]) for f in funcs]
    # the second identical joke in the batch is a recent repeat; later functions reuse the batch scores
    assert values[1] == [1.0, 0.0]
    assert values[3][1] == 0.0 and values[3][0] > 0.0
    assert values[0][0] > values[0][1]


def test_never_raises(qa):
    (total,) = reward_funcs_for(qa)
    assert total(prompts=None, completions=None) == []
    out = total(prompts=["?"], completions=["\ud800", "x" * 10_000])  # fewer prompts than completions
    assert out == [0.0, 0.0]
    assert total(prompts=["What is 2+2?"], completions=["4"], meta=["{not json"]) == [0.0]


def test_registry_names():
    assert {"total", "passed"} <= set(REWARDS.names())
