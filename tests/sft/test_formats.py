"""Row formats: detection, validation (each bad row kind), conversion both ways, templates."""

from __future__ import annotations

import json

import pytest

from sparring.sft.formats import (
    FORMATS,
    ChatExample,
    RowError,
    convert,
    detect_format,
    parse_line,
    parse_row,
    template_jsonl,
    to_prompt_completion,
)

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Tell me a dad joke about bread."}
ANSWER = {"role": "assistant", "content": "Q: Why did the loaf rest?\nA: It was bread-tired."}


def test_detects_each_format():
    assert detect_format({"messages": []}) == "chat"
    assert detect_format({"instruction": "x", "output": "y"}) == "alpaca"
    assert detect_format({"prompt": "x", "completion": "y"}) == "completion"
    with pytest.raises(RowError) as err:
        detect_format({"text": "hello"})
    assert err.value.kind == "unknown_format" and "text" in str(err.value)
    with pytest.raises(RowError) as err:
        detect_format(["not", "an", "object"])
    assert err.value.kind == "not_object"


def test_chat_row_parses_and_keeps_meta():
    ex = parse_row({"messages": [SYSTEM, USER, ANSWER], "meta": {"topic": "bread"}}, line=7)
    assert ex.system == "Be brief." and ex.answer == ANSWER["content"] and ex.line == 7
    assert ex.prompt_messages == [SYSTEM, USER]
    assert ex.meta == {"topic": "bread"} and ex.source_format == "chat"


def test_alpaca_joins_instruction_and_input():
    ex = parse_row({"instruction": "Answer with one word.", "input": "Capital of France?", "output": "Paris", "system": "Be brief."})
    assert [m["role"] for m in ex.messages] == ["system", "user", "assistant"]
    assert ex.messages[1]["content"] == "Answer with one word.\n\nCapital of France?"
    ex = parse_row({"instruction": "Say hi.", "output": "hi"})  # input optional
    assert ex.messages[0] == {"role": "user", "content": "Say hi."}


def test_completion_rows_plain_and_conversational():
    ex = parse_row({"prompt": "2+2?", "completion": "4"})
    assert ex.messages == ({"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"})
    ex = parse_row({"prompt": [SYSTEM, USER], "completion": [ANSWER]})
    assert ex.messages == (SYSTEM, USER, ANSWER)


@pytest.mark.parametrize(
    "row, kind, words",
    [
        ({"messages": [USER]}, "wrong_role", "last message must be the assistant"),
        ({"messages": [USER, {"role": "bot", "content": "x"}]}, "wrong_role", "allowed roles"),
        ({"messages": [USER, SYSTEM, ANSWER]}, "wrong_role", "only the first"),
        ({"messages": [ANSWER, USER]}, "wrong_role", "expected 'user'"),
        ({"messages": [USER, USER, ANSWER]}, "wrong_role", "expected 'assistant'"),
        ({"messages": [SYSTEM]}, "wrong_role", "only a system message"),
        ({"messages": [USER, {"role": "assistant", "content": "   "}]}, "empty_string", "is empty"),
        ({"messages": [USER, {"role": "assistant"}]}, "missing_field", "no 'content'"),
        ({"messages": [{"content": "x"}, ANSWER]}, "missing_field", "no 'role'"),
        ({"messages": [USER, {"role": "assistant", "content": 3}]}, "wrong_type", "must be a string"),
        ({"messages": "hello"}, "wrong_type", "list of messages"),
        ({"messages": []}, "empty_string", "empty list"),
        ({"instruction": "x"}, "missing_field", "'output'"),
        ({"instruction": "", "output": "y"}, "empty_string", "'instruction' is empty"),
        ({"prompt": "x", "completion": ""}, "empty_string", "'completion' is empty"),
        ({"prompt": "x"}, "missing_field", "'completion'"),
        ({"prompt": "x", "completion": "y", "meta": 3}, "wrong_type", "'meta'"),
    ],
)
def test_each_bad_row_names_its_problem(row, kind, words):
    with pytest.raises(RowError) as err:
        parse_row(row)
    assert err.value.kind == kind
    assert words in str(err.value)


def test_malformed_json_line():
    with pytest.raises(RowError) as err:
        parse_line('{"messages": [')
    assert err.value.kind == "malformed_json" and "column" in str(err.value)


def test_prompt_only_rows_when_no_answer_is_needed():
    ex = parse_row({"prompt": "Tell me a joke."}, need_answer=False)
    assert ex.messages == ({"role": "user", "content": "Tell me a joke."},)
    ex = parse_row({"messages": [SYSTEM, USER]}, need_answer=False)
    assert ex.messages[-1] == USER


@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("target", FORMATS)
def test_conversion_round_trips_single_turn(source, target):
    base = ChatExample(messages=(SYSTEM, USER, ANSWER), meta={"topic": "bread"})
    row = base.to_row(source)
    assert detect_format(row) == source
    converted = convert(row, target)
    assert detect_format(converted) == target
    back = parse_row(converted)
    assert back.messages == base.messages and back.meta == base.meta


def test_multi_turn_flattens_into_prompt():
    ex = ChatExample(messages=(USER, ANSWER, {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Q: Why?\nA: Because."}))
    row = ex.to_row("alpaca")
    assert row["instruction"].startswith("User: Tell me") and "Assistant: Q: Why did" in row["instruction"]
    assert row["output"] == "Q: Why?\nA: Because."


def test_prompt_completion_rows_one_per_assistant_turn():
    ex = ChatExample(messages=(SYSTEM, USER, ANSWER, {"role": "user", "content": "Again"}, {"role": "assistant", "content": "No."}))
    rows = to_prompt_completion(ex)
    assert len(rows) == 2
    assert rows[0] == {"prompt": [SYSTEM, USER], "completion": [ANSWER]}
    assert rows[1]["prompt"][-1] == {"role": "user", "content": "Again"} and rows[1]["completion"] == [{"role": "assistant", "content": "No."}]


@pytest.mark.parametrize("fmt", [*FORMATS, "messages", "prompt-completion"])
def test_templates_parse_in_their_own_format(fmt):
    lines = template_jsonl(fmt).splitlines()
    assert len(lines) >= 2
    for line in lines:
        parse_row(json.loads(line))
    with pytest.raises(ValueError):
        template_jsonl("sharegpt")
