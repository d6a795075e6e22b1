"""Read one chess move out of a model's completion, strictly: legal, illegal, unparseable or ambiguous.

The rules, in order (they are the referee's contract; tests pin each one):

1. Empty, whitespace-only or non-text input → ``unparseable``.  Bytes are decoded as UTF-8 with
   replacement; lone surrogates and control characters are just characters.  Only the first
   ``MAX_SCAN_CHARS`` characters are read.
2. Move-like tokens are found anywhere in the text, delimited by anything but a letter or a digit:
   SAN (``Nf3``, ``exd5``, ``e8=Q+``, ``O-O``/``0-0``), long algebraic (``Ng1-f3``, ``e2-e4``) and
   UCI (``e2e4``, ``e7e8q``).  Check/mate signs and ``!``/``?`` annotations are ignored, ``:`` is
   read as ``x``.  Move numbers (``1.``, ``12...``) are just text.  SAN piece letters are
   case-sensitive (``b4`` is a pawn, ``Bb4`` a bishop); UCI squares are lowercase.
3. An explicit answer marker wins: the first ``move:`` or ``answer:`` (any case, e.g. "Best
   move: e2e4", "Final answer: Nf3") decides by the first move-like token within
   ``MARKER_WINDOW`` characters after it — legal, illegal or ambiguous as that token is.
4. Without a marker: if the tokens name exactly one distinct legal move (repeats are fine) it is
   ``legal``; two or more distinct legal moves → ``ambiguous``; a token that fits several legal
   moves (``Nd2`` when both knights can go) → ``ambiguous``; tokens that name no legal move →
   ``illegal``; no move-like token at all → ``unparseable``.

``parse_move`` never raises on any text.  Exercised by ``pytest tests/evaluators/test_chess_moves.py`` and by every chess score (``sparring score chess --fen ... --completion "Nf3"``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import chess

MAX_SCAN_CHARS = 20_000
MARKER_WINDOW = 40
STATUSES = ("legal", "illegal", "unparseable", "ambiguous")

_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9])("
    r"[O0o]-[O0o](?:-[O0o])?"  # castling
    r"|[KQRBN]?[a-h]?[1-8]?[x:]?-?[a-h][1-8](?:=?[QRBNqrbn])?"  # SAN, long algebraic, UCI
    r")[+#]*[!?]*(?![A-Za-z0-9])"
)
_MARKER_RE = re.compile(r"(?i)\b(?:move|answer)\s*[:：]")
_UCI_RE = re.compile(r"([a-h][1-8])[-x]?([a-h][1-8])=?([qrbnQRBN]?)")
_SAN_RE = re.compile(r"([KQRBN]?)([a-h]?)([1-8]?)x?-?([a-h][1-8])(?:=?([QRBNqrbn]))?")


@dataclass(frozen=True)
class ParsedMove:
    """The verdict on one completion: ``status`` is one of ``STATUSES``.

    ``uci``/``san`` are set when the move is legal; ``token`` is the text that decided;
    ``candidates`` lists the legal moves (SAN) an ambiguous answer could mean.
    """

    status: str
    uci: str | None = None
    san: str | None = None
    token: str | None = None
    reason: str = ""
    candidates: tuple[str, ...] = ()

    @property
    def legal(self) -> bool:
        return self.status == "legal"

    @property
    def move(self) -> chess.Move | None:
        return chess.Move.from_uci(self.uci) if self.uci else None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "uci": self.uci, "san": self.san, "token": self.token,
                "reason": self.reason, "candidates": list(self.candidates)}


@dataclass(frozen=True)
class _Legal:
    """One legal move, pre-split for token matching."""

    uci: str
    piece: str  # "" for a pawn, else K Q R B N
    from_sq: str
    to_sq: str
    promotion: str  # "" or q r b n
    castle: str  # "" or "O-O" / "O-O-O"


class MoveTable:
    """The legal moves of one position, ready for matching tokens against (built once per FEN)."""

    def __init__(self, board: chess.Board):
        self.board = board.copy(stack=False)
        self.moves: list[_Legal] = []
        for m in board.legal_moves:
            piece = board.piece_at(m.from_square)
            symbol = "" if piece is None or piece.piece_type == chess.PAWN else piece.symbol().upper()
            castle = ""
            if board.is_kingside_castling(m):
                castle = "O-O"
            elif board.is_queenside_castling(m):
                castle = "O-O-O"
            self.moves.append(_Legal(
                uci=m.uci(), piece=symbol, from_sq=chess.square_name(m.from_square),
                to_sq=chess.square_name(m.to_square),
                promotion=chess.piece_symbol(m.promotion) if m.promotion else "", castle=castle,
            ))
        self.by_uci = {m.uci: m for m in self.moves}
        self._san: dict[str, str] = {}

    def san(self, uci: str) -> str:
        """SAN of a legal move (cached: the table is shared by every answer to this position)."""
        if uci not in self._san:
            self._san[uci] = self.board.san(chess.Move.from_uci(uci))
        return self._san[uci]

    def match(self, token: str) -> list[str]:
        """The legal moves (UCI) a normalized token can mean: [] none, [x] one, more: ambiguous."""
        if token.upper().replace("0", "O") in ("O-O", "O-O-O"):
            kind = token.upper().replace("0", "O")
            return [m.uci for m in self.moves if m.castle == kind]
        uci = _UCI_RE.fullmatch(token)
        if uci:
            src, dst, promo = uci.group(1), uci.group(2), uci.group(3).lower()
            hits = [m.uci for m in self.moves if m.from_sq == src and m.to_sq == dst
                    and (m.promotion == promo or not promo)]
            if hits:
                return hits
        san = _SAN_RE.fullmatch(token)
        if not san:
            return []
        piece, file_, rank, dst, promo = san.groups()
        promo = (promo or "").lower()
        return [
            m.uci for m in self.moves
            if m.piece == piece and m.to_sq == dst and not m.castle
            and (not file_ or m.from_sq[0] == file_) and (not rank or m.from_sq[1] == rank)
            and (not promo or m.promotion == promo)
        ]


@functools.lru_cache(maxsize=8192)
def move_table(fen: str) -> MoveTable:
    """The (cached) ``MoveTable`` of a FEN."""
    return MoveTable(chess.Board(fen))


def _as_text(completion: Any) -> str:
    if completion is None:
        return ""
    if isinstance(completion, (bytes, bytearray)):
        return bytes(completion).decode("utf-8", errors="replace")
    if not isinstance(completion, str):
        return str(completion)
    return completion


def _normalize(raw: str) -> str:
    return raw.rstrip("+#!?").replace(":", "x")


def _verdict(table: MoveTable, token: str, hits: list[str], why: str) -> ParsedMove:
    if len(hits) == 1:
        return ParsedMove("legal", uci=hits[0], san=table.san(hits[0]), token=token, reason=why)
    if hits:
        sans = tuple(sorted(table.san(h) for h in hits))
        return ParsedMove("ambiguous", token=token, candidates=sans,
                          reason=f"{token!r} fits several legal moves: {', '.join(sans)}")
    return ParsedMove("illegal", token=token, reason=f"{token!r} is not a legal move in this position")


def parse_move(completion: Any, board: chess.Board | str) -> ParsedMove:
    """Parse ``completion`` against ``board`` (a Board or a FEN) by the module's rules; never raises."""
    try:
        fen = board if isinstance(board, str) else board.fen()
        table = move_table(fen)
    except ValueError as exc:  # an invalid FEN is the caller's bug, but a referee still answers
        return ParsedMove("unparseable", reason=f"invalid position: {exc}")
    text = _as_text(completion)[:MAX_SCAN_CHARS]
    if not text.strip():
        return ParsedMove("unparseable", reason="empty completion")

    marker = _MARKER_RE.search(text)
    if marker:
        first = _TOKEN_RE.search(text, marker.end())
        if first and first.start() - marker.end() <= MARKER_WINDOW:
            token = _normalize(first.group(1))
            return _verdict(table, first.group(1), table.match(token), "explicit answer marker")

    distinct: dict[str, str] = {}  # uci -> first token naming it
    first_illegal: str | None = None
    for found in _TOKEN_RE.finditer(text):
        raw = found.group(1)
        hits = table.match(_normalize(raw))
        if len(hits) > 1:
            return _verdict(table, raw, hits, "")
        if not hits:
            first_illegal = first_illegal or raw
            continue
        distinct.setdefault(hits[0], raw)
        if len(distinct) > 1:
            sans = tuple(table.san(u) for u in distinct)
            return ParsedMove("ambiguous", token=raw, candidates=sans,
                              reason=f"the completion names {len(sans)} different legal moves: {', '.join(sans)}")
    if distinct:
        uci, raw = next(iter(distinct.items()))
        return _verdict(table, raw, [uci], "the only legal move named")
    if first_illegal is not None:
        return ParsedMove("illegal", token=first_illegal,
                          reason=f"{first_illegal!r} is not a legal move in this position")
    return ParsedMove("unparseable", reason="no move found in the completion")
