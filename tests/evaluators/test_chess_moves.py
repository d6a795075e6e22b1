"""The chess answer parser's rules: tolerant of text around one move, strict about ambiguity, never raises."""

from __future__ import annotations

import chess
import pytest

from sparring.evaluators.chess_moves import STATUSES, parse_move

START = chess.STARTING_FEN
# White: knights on b1 and f1 can both reach d2; a pawn on a7 can promote.
TWO_KNIGHTS = "7k/P7/8/8/8/8/8/1N1K1N2 w - - 0 1"


@pytest.mark.parametrize("text, san", [
    ("Nf3", "Nf3"),
    ("I play Nf3.", "Nf3"),
    ("1. e4", "e4"),
    ("e2e4", "e4"),
    ("E4!!", None),  # uppercase file is not SAN
    ("Ng1-f3", "Nf3"),
    ("g1f3", "Nf3"),
    ("**Nc3**", "Nc3"),
    ("Nf3+", "Nf3"),  # a wrong check sign is ignored
    ("Nf3 Nf3, definitely Nf3", "Nf3"),  # repeats of one move are fine
])
def test_one_move_in_text(text: str, san: str | None) -> None:
    result = parse_move(text, START)
    if san is None:
        assert result.status == "unparseable"
    else:
        assert result.status == "legal" and result.san == san and result.move in chess.Board().legal_moves


def test_explicit_marker_wins_over_other_mentions() -> None:
    result = parse_move("Best move: e2e4 (d4 is also fine)", START)
    assert result.status == "legal" and result.uci == "e2e4" and "marker" in result.reason
    assert parse_move("Answer: Qh5, not e4", START).status == "illegal"  # the marker commits to Qh5


def test_two_legal_moves_are_ambiguous() -> None:
    result = parse_move("e4 or maybe d4", START)
    assert result.status == "ambiguous" and set(result.candidates) == {"e4", "d4"}


def test_underspecified_san_is_ambiguous_and_disambiguated_san_is_legal() -> None:
    assert parse_move("Nd2", TWO_KNIGHTS).status == "ambiguous"
    assert parse_move("Nbd2", TWO_KNIGHTS).uci == "b1d2"
    assert parse_move("f1d2", TWO_KNIGHTS).uci == "f1d2"
    assert parse_move("a8", TWO_KNIGHTS).status == "ambiguous"  # which promotion?
    assert parse_move("a8=Q", TWO_KNIGHTS).uci == "a7a8q"
    assert parse_move("a7a8n", TWO_KNIGHTS).uci == "a7a8n"


def test_castling_spellings() -> None:
    board = chess.Board("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1")
    for text in ("O-O", "0-0", "o-o"):
        assert parse_move(text, board).uci == "e1g1"
    assert parse_move("O-O-O", board).uci == "e1c1"
    assert parse_move("O-O", START).status == "illegal"


def test_illegal_and_a_legal_move_named_counts_the_legal_one() -> None:
    assert parse_move("e5", START).status == "illegal"  # a pawn cannot reach e5 in one move
    result = parse_move("Nf3 heading for e5", START)
    assert result.status == "legal" and result.san == "Nf3"


@pytest.mark.parametrize("bad", [
    "", "   \n\t ", None, "x" * 10_000, "e5 " * 3_500, "\udcff\udcfe\x00 garbage", b"\xff\xfe e4 \x80",
    "Q: What is the best move?\nA: e4\nQ: And then?\nA: d4", "🙂" * 500, "1-0", "[[[[[[", 12345,
])
def test_bad_input_never_raises(bad: object) -> None:
    result = parse_move(bad, START)
    assert result.status in STATUSES


def test_injected_qa_lines_are_ambiguous_not_the_first_answer() -> None:
    assert parse_move("Q: best?\nA: e4\nQ: next?\nA: d4", START).status == "ambiguous"


def test_non_utf8_bytes_are_decoded() -> None:
    assert parse_move(b"\xff\xfe play e4 \x80", START).san == "e4"


def test_invalid_position_is_a_verdict_not_an_exception() -> None:
    assert parse_move("e4", "not a fen").status == "unparseable"
