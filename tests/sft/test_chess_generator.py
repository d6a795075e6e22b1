"""The Stockfish-labelled chess SFT generator at toy size (real Stockfish)."""

from __future__ import annotations

import json
from pathlib import Path

import chess
import pytest

from sparring.envs.chess_positions import chess_messages, split_of
from sparring.errors import UserInputError
from sparring.evaluators.chess_metrics import win_percent
from sparring.sft.generators.chess import generate_chess_sft


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def five(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("chess") / "chess_sft.jsonl"
    return out, generate_chess_sft(5, seed=3, out_path=out, progress=False)


def test_rows_are_chat_with_the_best_move_and_every_move_value(five) -> None:
    out, stats = five
    data = rows(out)
    assert len(data) == stats["rows"] == 5 and not out.with_name(out.name + ".partial").exists()
    assert set(stats["sources"]) == {"openings", "random", "engine"}
    for row in data:
        board = chess.Board(row["meta"]["fen"])
        system, user, assistant = row["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert [system, user] == list(chess_messages(board))  # the env's prompt, exactly
        values = row["meta"]["move_values"]
        assert set(values) == {board.san(m) for m in board.legal_moves}
        assert assistant["content"] == row["meta"]["best"] and board.parse_san(assistant["content"]) in board.legal_moves
        assert values[row["meta"]["best"]] == max(values.values())
        assert all(values[s] == round(win_percent(cp), 2) for s, cp in row["meta"]["cp"].items())
        assert split_of(row["meta"]["fen"]) != "test"


def test_same_seed_same_file_and_resume_appends_the_same_rows(five, tmp_path: Path) -> None:
    out, _ = five
    again = tmp_path / "again.jsonl"
    generate_chess_sft(3, seed=3, out_path=again, progress=False)
    stats = generate_chess_sft(5, seed=3, out_path=again, progress=False)
    assert stats["kept_rows"] == 3 and stats["new_rows"] == 2
    assert again.read_bytes() == out.read_bytes()


def test_interrupted_partial_file_is_resumed(five, tmp_path: Path) -> None:
    out, _ = five
    target = tmp_path / "resumed.jsonl"
    lines = out.read_text().splitlines(keepends=True)
    target.with_name(target.name + ".partial").write_text("".join(lines[:2]) + lines[2][:40])  # torn last line
    stats = generate_chess_sft(5, seed=3, out_path=target, progress=False)
    assert stats["kept_rows"] == 2 and target.read_bytes() == out.read_bytes()


def test_bad_arguments_and_missing_stockfish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserInputError):
        generate_chess_sft(0, out_path=tmp_path / "x.jsonl")
    monkeypatch.setenv("SPARRING_STOCKFISH", str(tmp_path / "no-stockfish"))
    with pytest.raises(UserInputError, match="apt-get install -y stockfish"):
        generate_chess_sft(2, out_path=tmp_path / "y.jsonl", progress=False)
    assert not list(tmp_path.iterdir())  # nothing half-written
