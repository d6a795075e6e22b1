"""Loading JSONL with file:line problems, skip vs fail, dedupe, seeded split, over-length rows,
and the `data info` statistics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sparring.errors import UserInputError
from sparring.sft.dataset import data_info, dedupe, load_jsonl, prepare_sft_data, require_rows, split_examples
from sparring.sft.formats import ChatExample

GOOD_JOKE = "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy!"


def chat(user: str, reply: str, **meta) -> dict:
    row = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}
    if meta:
        row["meta"] = meta
    return row


def write_lines(path: Path, lines: list) -> Path:
    with open(path, "wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n")
    return path


@pytest.fixture(scope="module")
def tokenizer():
    from sparring.models import load_tokenizer

    return load_tokenizer("tiny-random-llama")


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "messy.jsonl", [
        chat("one", "first answer"),                                        # 1 ok
        '{"messages": [',                                                   # 2 malformed JSON
        {"instruction": "say hi"},                                          # 3 missing output
        chat("three", "  "),                                                # 4 empty string
        {"messages": [{"role": "human", "content": "x"}, {"role": "assistant", "content": "y"}]},  # 5 wrong role
        "",                                                                 # 6 blank
        b"\xff\xfe not utf-8\n",                                            # 7 bad bytes
        {"prompt": "four", "completion": "fourth answer"},                  # 8 ok
        {"text": "no known keys"},                                          # 9 unknown format
    ])


def test_skip_reports_every_bad_line_with_file_and_line(messy: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="sparring.sft.data"):
        loaded = load_jsonl(messy, on_bad_line="skip")
    assert [e.line for e in loaded.examples] == [1, 8]
    assert {p.line: p.kind for p in loaded.problems} == {2: "malformed_json", 3: "missing_field", 4: "empty_string", 5: "wrong_role", 7: "malformed_json", 9: "unknown_format"}
    assert loaded.blank_lines == 1 and loaded.lines == 9
    for line in (2, 3, 4, 5, 7, 9):
        assert f"{messy}:{line}:" in caplog.text
    assert loaded.formats == {"chat": 1, "completion": 1}


def test_fail_stops_at_the_first_bad_line(messy: Path):
    with pytest.raises(UserInputError) as err:
        load_jsonl(messy, on_bad_line="fail")
    assert err.value.exit_code == 2 and err.value.where == f"{messy}:2"
    assert "on_bad_line" in str(err.value)


def test_zero_valid_rows_is_exit_2(tmp_path: Path):
    path = write_lines(tmp_path / "bad.jsonl", ['{"oops"', {"prompt": "x", "completion": ""}])
    loaded = load_jsonl(path)
    with pytest.raises(UserInputError) as err:
        require_rows(loaded)
    assert err.value.exit_code == 2 and "no valid rows" in str(err.value) and f"{path}:1" in str(err.value)
    with pytest.raises(UserInputError):
        load_jsonl(tmp_path / "missing.jsonl")


def test_dedupe_ignores_case_and_spacing():
    a = ChatExample(messages=({"role": "user", "content": "Hi  there"}, {"role": "assistant", "content": "Hello"}))
    b = ChatExample(messages=({"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello "}))
    c = ChatExample(messages=({"role": "user", "content": "hi there"}, {"role": "assistant", "content": "bye"}))
    kept, removed = dedupe([a, b, c])
    assert kept == [a, c] and removed == 1


def test_split_is_seeded_disjoint_and_90_10():
    examples = [ChatExample(messages=({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"})) for i in range(50)]
    train, val = split_examples(examples, 0.1, seed=3)
    assert len(val) == 5 and len(train) == 45
    assert set(map(id, train)).isdisjoint(map(id, val)) and len(set(map(id, train + val))) == 50
    assert split_examples(examples, 0.1, seed=3) == (train, val)
    assert split_examples(examples, 0.1, seed=4)[1] != val
    assert split_examples(examples[:1], 0.1, seed=0) == (examples[:1], [])
    assert split_examples(examples, 0.0, seed=0) == (examples, [])


def test_over_length_rows_are_counted_and_left_out(tmp_path: Path, tokenizer, caplog):
    rows = [chat(f"short {i}", "ok") for i in range(8)] + [chat("long " + "word " * 300, "ok"), chat("long too " + "word " * 300, "ok")]
    rows.append(rows[0])  # a duplicate
    path = write_lines(tmp_path / "d.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="sparring.sft.data"):
        data = prepare_sft_data(path, tokenizer, max_len=64, val_fraction=0.25, seed=0)
    r = data.report
    assert r["over_length"] == 2 and r["duplicates"] == 1 and r["used_rows"] == 8
    assert (r["train_rows"], r["val_rows"]) == (6, 2) and len(data.train) == 6
    assert "exceed model.max_seq_len=64" in caplog.text
    assert r["tokens"]["max"] <= 64
    with pytest.raises(UserInputError) as err:
        prepare_sft_data(path, tokenizer, max_len=16)
    assert "model.max_seq_len" in str(err.value)


def test_count_keeps_a_seeded_subset(tmp_path: Path, tokenizer):
    path = write_lines(tmp_path / "d.jsonl", [chat(f"q{i}", f"a{i}") for i in range(20)])
    a = prepare_sft_data(path, tokenizer, max_len=128, count=10, seed=1)
    b = prepare_sft_data(path, tokenizer, max_len=128, count=10, seed=1)
    assert len(a.train) + len(a.val) == 10 and a.train == b.train


def test_data_info_counts_duplicates_tokens_and_joke_pass_rate(tmp_path: Path, tokenizer):
    path = write_lines(tmp_path / "jokes.jsonl", [
        chat("Tell me a dad joke about cookies.", GOOD_JOKE, topic="cookies"),
        chat("Tell me a dad joke about cookies.", GOOD_JOKE, topic="cookies"),
        chat("Tell me a dad joke about dogs.", "Q: Why did the dog bark?\nA: Why did the dog bark?", topic="dogs"),
        chat("Tell me a dad joke about cats.", "Sure! Here's a joke: cats are nice.", topic="cats"),
        '{"broken"',
    ])
    info = data_info(path, tokenizer, seed=1, max_len=20)
    assert info["valid_rows"] == 4 and info["bad_rows"] == 1 and info["duplicates"] == 1 and info["unique_rows"] == 3
    assert info["first_problems"][0].startswith(f"{path}:5:")
    assert info["tokens"]["min"] > 0 and info["over_length"]["count"] >= 1
    v = info["validator"]
    assert v["validator"] == "jokes" and v["checked"] == 3 and v["passed"] == 1
    assert v["failed_rules"].get("format") == 1 and v["failed_rules"].get("answer_not_copy") == 2
    assert info["split"]["train"] + info["split"]["val"] == 3


def test_data_info_scores_with_an_env(tmp_path: Path):
    path = write_lines(tmp_path / "qa.jsonl", [
        chat("What is the capital of France?", "Paris", answer="Paris"),
        chat("What is the capital of Peru?", "Quito", answer="Lima"),
    ])
    info = data_info(path, env="qa")
    assert info["validator"] == {"validator": "env:qa", "checked": 2, "passed": 1, "pass_rate": 0.5}
    assert "tokens" not in info
