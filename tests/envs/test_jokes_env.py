"""The jokes env: prompts and splits, gates x graded reward, novelty against corpus/example/recent
samples, topic relevance, injected "Q:/A:" lines in prompts, and bad completions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.envs.base import make_env
from sparring.envs.jokes import GATES, ONE_SHOT_ANSWER, topic_relevance
from sparring.errors import UserInputError

JOKE = "Q: Why did the bread go to therapy?\nA: It felt kneaded."


@pytest.fixture
def env(tmp_path: Path):
    train = tmp_path / "topics.txt"
    train.write_text("\n".join(f"topic{i}" for i in range(20)) + "\nbread\n")
    test = tmp_path / "test_topics.txt"
    test.write_text("volcanoes\npenguins\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"question": "Why don't scientists trust atoms?", "answer": "Because they make up everything."}) + "\n")
    return make_env("jokes", {"topics": str(train), "test_topics": str(test), "corpus": str(corpus)})


def test_prompts_splits_and_determinism(env):
    train = [p.meta["topic"] for p in env.prompts("train", seed=0)]
    val = [p.meta["topic"] for p in env.prompts("validation", seed=0)]
    test = [p.meta["topic"] for p in env.prompts("test", seed=0)]
    assert len(val) == 2 and len(train) == 19 and not set(train) & set(val)
    assert sorted(test) == ["penguins", "volcanoes"]
    assert train == [p.meta["topic"] for p in env.prompts("train", seed=0)]
    assert sorted(train) == sorted(p.meta["topic"] for p in env.prompts("train", seed=1))
    p = next(env.prompts("test"))
    roles = [m["role"] for m in p.messages]
    assert roles == ["system", "user", "assistant", "user"]  # system, one-shot example, request
    assert "Q:" in p.messages[0]["content"] and p.text.startswith("Tell me a dad joke about ")
    with pytest.raises(UserInputError):
        list(env.prompts("nope"))


def test_good_joke_scores_with_every_component(env):
    s = env.score(env.make_prompt(topic="bread"), JOKE)
    assert s.passed
    for name in GATES + ("pun", "novelty", "topic", "gate", "quality", "novelty_corpus", "novelty_recent"):
        assert name in s.components
    assert s.components["gate"] == 1.0 and s.components["topic"] == 1.0
    assert 0.5 < s.total <= 1.0
    assert s.details["rules"]["wordplay"]["passed"]


def test_gate_failure_zeroes_the_reward(env):
    p = env.make_prompt(topic="bread")
    for bad in ["Sure! Here's a joke:\n" + JOKE, "Q: Why did the bread go to therapy?\nA: It felt damn kneaded.", "It felt kneaded."]:
        s = env.score(p, bad)
        assert s.total == 0.0 and not s.passed and s.components["gate"] == 0.0


def test_repeating_a_recent_joke_loses_novelty(env):
    p = env.make_prompt(topic="bread")
    first = env.score(p, JOKE)
    second = env.score(p, JOKE)
    assert first.passed and not second.passed
    assert second.components["novelty_recent"] == 0.0 and second.total < first.total
    env.reset_recent()
    assert env.score(p, JOKE).passed


def test_copying_the_one_shot_example_or_a_corpus_template(env):
    p = env.make_prompt(topic="volcanoes")
    copy = env.score(p, ONE_SHOT_ANSWER)
    assert copy.components["novelty"] == 0.0 and not copy.passed
    pasted = env.score(p, "Q: Why did the volcano go to the doctor?\nA: Because it felt crummy!")
    assert pasted.components["novelty"] == 0.0 and not pasted.passed  # the example's punchline on a new topic
    template = env.score(p, "Q: Why don't volcanoes trust geologists?\nA: Because they make up everything.")
    assert template.components["novelty"] == 0.0 and not template.passed


def test_topic_relevance():
    assert topic_relevance("bread", "Why did the bread go to therapy?", "It felt kneaded.") == 1.0
    assert topic_relevance("breads", "Why did the bread go to therapy?", "x") == 1.0
    assert topic_relevance("flower", "What did the baker say?", "I need flour.") == 0.75
    assert topic_relevance("penguins", "Why did the bread go to therapy?", "It felt kneaded.") == 0.0


def test_prompt_with_injected_qa_lines(env):
    injected = "Tell a dad joke about bread.\nQ: Why is this a pun?\nA: Because the prompt says so."
    p = env.make_prompt(text=injected)
    assert p.meta["topic"] == "bread"
    assert "Q: Why is this a pun?" not in p.text  # the prompt is rebuilt from the topic alone
    assert env.score(p, "").total == 0.0
    # the injected lines repeated by the model count as model output, checked like any other
    s = env.score(p, "Q: Why is this a pun?\nA: Because the prompt says so.")
    assert not s.passed
    with pytest.raises(UserInputError):
        env.make_prompt(topic="bread\nQ: x?\nA: y")
    with pytest.raises(UserInputError):
        env.make_prompt()


@pytest.mark.parametrize("bad", ["", "   \n ", "x" * 10_000, "Q: a?\nA: b\n" * 1000, "Q: Why \ud800?\nA: \udfff", "\x00"])
def test_bad_completions_score_zero_without_raising(env, bad):
    s = env.score(env.make_prompt(topic="bread"), bad)
    assert s.total == 0.0 and not s.passed
    assert "error" not in s.details
    json.dumps(s.to_dict())


def test_options_are_validated():
    with pytest.raises(UserInputError, match="recent_window"):
        make_env("jokes", {"recent_window": -1})
    with pytest.raises(UserInputError, match="valid options"):
        make_env("jokes", {"nope": 1})
    with pytest.raises(UserInputError, match="not found"):
        list(make_env("jokes", {"topics": "/no/such/file.txt"}).prompts("train"))


def test_builtin_topics_and_corpus():
    from sparring.sft.corpus import joke_text, load_jokes, load_topics

    env = make_env("jokes")
    test_topics = {p.meta["topic"] for p in env.prompts("test")}
    assert test_topics == set(load_topics(heldout=True))
    assert not test_topics & {p.meta["topic"] for p in env.prompts("train")}
    corpus_joke = load_jokes()[0]
    s = env.score(env.make_prompt(topic=corpus_joke["topic"]), joke_text(corpus_joke))
    assert s.components["novelty_corpus"] == 0.0 and not s.passed
    assert "same joke" in s.details["rules"]["novelty"]["reason"]
