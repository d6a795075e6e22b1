"""Distillation with a real (tiny random) teacher: prompts in any format, answers scored by the env,
rejects written with the referee's reasons; bad prompt lines reported with file:line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sparring.errors import UserInputError
from sparring.sft.generators.distill import distill, read_prompts


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join([
        json.dumps({"topic": "bread"}),
        json.dumps({"prompt": "Tell me a dad joke about soup."}),
        json.dumps({"messages": [{"role": "user", "content": "Tell me a dad joke about tea."}, {"role": "assistant", "content": "old answer"}], "meta": {"topic": "tea"}}),
        '{"prompt": ',
    ]) + "\n")
    return path


def test_prompts_are_asked_the_way_the_env_asks(prompt_file: Path, caplog):
    from sparring.envs.base import make_env

    env = make_env("jokes", {})
    with caplog.at_level(logging.WARNING, logger="sparring.sft.data"):
        prompts = read_prompts(prompt_file, env)
    assert [p.id for p in prompts] == ["line-1", "line-2", "line-3"]
    assert f"{prompt_file}:4" in caplog.text
    bread, soup, tea = prompts
    assert bread.messages[0]["role"] == "system" and bread.meta["topic"] == "bread"
    assert soup.meta["topic"] == "soup" and soup.messages[-1]["content"] == "Tell me a dad joke about soup."
    assert tea.messages == ({"role": "user", "content": "Tell me a dad joke about tea."},)  # chat rows as given, answer dropped
    with pytest.raises(UserInputError) as err:
        read_prompts(prompt_file, env, on_bad_line="fail")
    assert err.value.where == f"{prompt_file}:4"
    without_env = read_prompts(prompt_file)  # env fields mean nothing without an env
    assert len(without_env) == 2


def test_zero_valid_prompts_is_exit_2(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"nothing": 1}\nnot json\n')
    with pytest.raises(UserInputError) as err:
        read_prompts(path)
    assert err.value.exit_code == 2 and "no valid prompts" in str(err.value)


@pytest.mark.slow
def test_teacher_answers_are_filtered_by_the_referee(prompt_file: Path, tmp_path: Path):
    from sparring.generation import load_generator

    teacher = load_generator("tiny-random-llama", batch_size=4)
    out = tmp_path / "distilled.jsonl"
    judged = distill("tiny-random-llama", prompt_file, out, env_name="jokes", max_new_tokens=8, generator=teacher, progress=False)
    assert (judged["prompts"], judged["answers"], judged["kept"], judged["rejected"]) == (3, 3, 0, 3)
    rejects = [json.loads(line) for line in Path(judged["rejects"]).read_text().splitlines()]
    assert all("format" in r["reasons"] or "empty" in r["reasons"] for r in rejects)
    assert out.read_text() == ""
    # without a referee every non-empty answer is kept, as a chat row with its source
    kept = distill("tiny-random-llama", prompt_file, out, max_new_tokens=8, samples_per_prompt=2, generator=teacher, progress=False)
    assert kept["answers"] == 4 and kept["kept"] + kept["rejected"] == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["messages"][-1]["role"] == "assistant" and r["meta"]["teacher"] == "tiny-random-llama" for r in rows)
