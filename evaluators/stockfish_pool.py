"""Stockfish over UCI (python-chess), made into a deterministic, cached, self-healing referee.

``StockfishEngine`` owns one Stockfish process (python-chess' ``SimpleEngine.popen`` with its UCI
protocol, lines batched per write: ``CoalescingUciProtocol``) with
Threads=1, a 1 MB hash and a fixed node limit; every search starts with ``ucinewgame`` (a fresh
hash and fresh history tables), so a score depends only on (FEN, move, node limit) — never on what
was searched before — and can be cached under that key.  Scores are centipawns from the mover's
point of view; a mate is ``MATE_CP - plies`` (see ``chess_metrics``).

- ``best(fen)`` → ``(uci, cp)``: one single-PV search.
- ``analyse_moves(fen, moves=None)`` → ``{uci: cp}``: ``moves=None`` runs ONE MultiPV search over
  every legal move (the SFT labels and eval); a list searches each move alone with
  ``root_moves=[move]`` (the reward's per-move mode: deep, and cached per move).
- ``score_move(fen, uci, mode)`` → ``MoveScore`` (the move's cp, the best cp and the best move).
- ``play(board, skill=0 | elo=1500)`` → a move at a Stockfish strength (an opponent).

A search that times out (``timeout_s``, per call) or whose process died (crash, ``kill``) restarts
the process and runs again: the score is recomputed, never dropped; after ``max_attempts`` it is a
``SparringError``.  ``StockfishPool(n)`` holds one engine per worker thread (``with pool.engine()
as eng``) sharing one thread-safe LRU cache.

Exercised by ``pytest tests/evaluators/test_stockfish_pool.py`` and
``python -m sparring.bench.chess_reward``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Iterator

import chess
import chess.engine

from sparring.errors import SparringError, UserInputError
from sparring.evaluators.chess_metrics import MATE_CP, cp_from_score

# 1,000 nodes (depth ~7-8 per search) is the knee of quality against cost: against a 400k-node
# MultiPV search, the per-move reward's mean error on the 0..1 win scale is 0.061 at 500 nodes (23%
# of moves off by > 0.1), 0.037 at 1,000 (2.5%), 0.037 at 1,500, 0.032 at 3,000
# (`python -m sparring.bench.chess_reward --accuracy 40 --nodes 500 --nodes 1000 ...`).  Throughput
# per worker at 1,000 nodes: see that benchmark (it reports the machine's load with every figure).
DEFAULT_NODES = 1_000
DEFAULT_PLAY_NODES = 20_000
DEFAULT_HASH_MB = 1
DEFAULT_TIMEOUT_S = 10.0
STARTUP_TIMEOUT_S = 30.0
STOCKFISH_CANDIDATES = ("/usr/games/stockfish", "/usr/bin/stockfish", "/usr/local/bin/stockfish")
INSTALL_FIX = "apt-get install -y stockfish (or set SPARRING_STOCKFISH=/path/to/stockfish)"
_ENGINE_FAILURES = (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError,
                    asyncio.TimeoutError, OSError, RuntimeError)


class CoalescingUciProtocol(chess.engine.UciProtocol):
    """python-chess' UCI protocol, but the lines of one event-loop turn (``ucinewgame``,
    ``position``, ``go``) leave in one pipe write: one wake-up of Stockfish per search instead of
    three (measured: the separate writes cost more than a 1,000-node search on a busy machine)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []

    def send_line(self, line: str) -> None:
        if not self._pending:
            self.loop.call_soon(self._flush)
        self._pending.append(line)

    def _flush(self) -> None:
        lines, self._pending = self._pending, []
        if self.transport is not None and lines:
            stdin = self.transport.get_pipe_transport(0)
            stdin.write("".join(line + "\n" for line in lines).encode("utf-8"))  # type: ignore[attr-defined]


def find_stockfish(explicit: str | None = None) -> str:
    """The Stockfish binary: ``explicit``, then $SPARRING_STOCKFISH, PATH, the Debian locations."""
    for source, candidate in (("stockfish path", explicit), ("$SPARRING_STOCKFISH", os.environ.get("SPARRING_STOCKFISH"))):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise UserInputError(f"Stockfish binary {candidate!r} does not exist or is not executable",
                                 where=source, fix=INSTALL_FIX)
    found = shutil.which("stockfish")
    if found:
        return found
    for candidate in STOCKFISH_CANDIDATES:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise UserInputError("Stockfish binary not found (looked at $SPARRING_STOCKFISH, PATH, "
                         + ", ".join(STOCKFISH_CANDIDATES) + ")", where="stockfish", fix=INSTALL_FIX)


class ScoreCache:
    """A thread-safe LRU map with hit/miss counters (keys: (FEN, move, limit key))."""

    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._data), "hits": self.hits, "misses": self.misses}


@dataclass(frozen=True)
class MoveScore:
    """A move's value against the best move, in centipawns from the mover's point of view
    (``cp_best`` is never below ``cp_move``)."""

    uci: str
    cp_move: int
    cp_best: int
    best_uci: str

    @property
    def is_best(self) -> bool:
        """Stockfish's move, or one it values at least as high (per-move searches can find more)."""
        return self.uci == self.best_uci or self.cp_move >= self.cp_best


class StockfishEngine:
    """One Stockfish process: deterministic fixed-node searches, a cache, restart on failure."""

    def __init__(self, path: str | None = None, *, nodes: int = DEFAULT_NODES, hash_mb: int = DEFAULT_HASH_MB,
                 timeout_s: float = DEFAULT_TIMEOUT_S, cache: ScoreCache | None = None, max_attempts: int = 3):
        if nodes < 1:
            raise UserInputError(f"node limit must be >= 1, got {nodes}", where="nodes", fix="use e.g. 1500")
        self.path = find_stockfish(path)
        self.nodes = nodes
        self.hash_mb = hash_mb
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.cache = cache if cache is not None else ScoreCache()
        self.restarts = 0
        self.searches = 0
        self._lock = threading.RLock()
        self._engine: chess.engine.SimpleEngine | None = None
        self._search_game = object()  # one python-chess "game" for all searches: we send ucinewgame
        self._start()

    # -- process lifecycle -------------------------------------------------------------------
    def _start(self) -> None:
        try:
            self._engine = chess.engine.SimpleEngine.popen(CoalescingUciProtocol, self.path,
                                                           timeout=max(self.timeout_s, STARTUP_TIMEOUT_S))
            self._engine.configure({"Threads": 1, "Hash": self.hash_mb, "Skill Level": 20,
                                    "UCI_LimitStrength": False})
        except (chess.engine.EngineError, OSError, TimeoutError, asyncio.TimeoutError) as exc:
            self._engine = None
            raise UserInputError(f"Stockfish at {self.path!r} did not start: {exc!r}", where="stockfish",
                                 fix=INSTALL_FIX) from None

    @property
    def pid(self) -> int | None:
        """The process id of the running Stockfish (for tests and diagnostics)."""
        return self._engine.transport.get_pid() if self._engine is not None else None

    def _kill(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        with contextlib.suppress(Exception):
            engine.close()

    def restart(self) -> None:
        """Kill the process (if any) and start a fresh one."""
        with self._lock:
            self._kill()
            self.restarts += 1
            self._start()

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                with contextlib.suppress(Exception):
                    engine.quit()
                with contextlib.suppress(Exception):
                    engine.close()

    def __enter__(self) -> "StockfishEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, make_coro: Any, what: str) -> Any:
        """Run ``make_coro(protocol)`` on the engine's loop with the per-call timeout; on a timeout
        or a dead process restart and run it again (up to ``max_attempts``).

        A timeout kills the process rather than cancelling the command: python-chess cannot
        finish a cancelled analysis whose engine then dies (its loop thread would never end).
        """
        last: BaseException | None = None
        with self._lock:
            for _attempt in range(self.max_attempts):
                if self._engine is None:
                    self._start()
                engine = self._engine
                assert engine is not None
                protocol = engine.protocol

                async def call() -> Any:
                    return await make_coro(protocol)

                coro = call()
                try:
                    future = asyncio.run_coroutine_threadsafe(coro, protocol.loop)
                except RuntimeError as exc:  # the engine's event loop ended with its process
                    coro.close()
                    last = exc
                    self._kill()
                    self.restarts += 1
                    continue
                try:
                    return future.result(timeout=self.timeout_s)
                except _ENGINE_FAILURES as exc:
                    last = exc
                    self._kill()
                    self.restarts += 1
            raise SparringError(f"Stockfish failed {self.max_attempts} times on {what}: {last!r} "
                                f"(timeout {self.timeout_s}s per search, {self.nodes} nodes)")

    # -- searches ----------------------------------------------------------------------------
    def _search(self, fen: str, *, multipv: int | None = None, root_moves: list[chess.Move] | None = None,
                info: chess.engine.Info = chess.engine.INFO_SCORE) -> tuple[chess.Move | None, list[dict]]:
        board = chess.Board(fen)
        limit = chess.engine.Limit(nodes=self.nodes)

        async def search(protocol: Any) -> tuple[chess.Move | None, list[dict]]:
            # A fresh hash and history before every search, without python-chess' extra isready
            # round trip (Stockfish handles ucinewgame synchronously before the next command).
            protocol.send_line("ucinewgame")
            analysis = await protocol.analysis(board, limit, multipv=multipv, game=self._search_game, info=info,
                                               root_moves=root_moves)
            with analysis:
                best = await analysis.wait()
            return best.move, analysis.multipv

        self.searches += 1
        return self._run(search, f"FEN {fen!r}")

    def _limit_key(self, mode: str) -> str:
        return f"{mode}@nodes={self.nodes}"

    def best(self, fen: str) -> tuple[str, int]:
        """The best move (UCI) and its cp from the mover's view, from one single-PV search."""
        key = (fen, "*best", self._limit_key("best"))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        move, lines = self._search(fen)
        if move is None or "score" not in lines[0]:
            raise SparringError(f"Stockfish returned no move for FEN {fen!r} (no legal moves?)")
        result = (move.uci(), cp_from_score(lines[0]["score"].relative))
        self.cache.put(key, result)
        return result

    def move_value(self, fen: str, uci: str) -> int:
        """cp of one move from the mover's view: a search restricted to it (``root_moves``)."""
        key = (fen, uci, self._limit_key("move"))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        _, lines = self._search(fen, root_moves=[chess.Move.from_uci(uci)])
        if "score" not in lines[0]:
            raise SparringError(f"Stockfish returned no score for {uci} in FEN {fen!r}")
        cp = cp_from_score(lines[0]["score"].relative)
        self.cache.put(key, cp)
        return cp

    def analyse_moves(self, fen: str, moves: Iterable[str] | None = None) -> dict[str, int]:
        """``{uci: cp}`` for ``moves`` (each searched alone) or, with None, for every legal move
        from one MultiPV search (moves that search did not reach are searched alone)."""
        if moves is not None:
            return {uci: self.move_value(fen, uci) for uci in moves}
        key = (fen, "*all", self._limit_key("multipv"))
        hit = self.cache.get(key)
        if hit is not None:
            return dict(hit)
        legal = [m.uci() for m in chess.Board(fen).legal_moves]
        if not legal:
            return {}
        _, lines = self._search(fen, multipv=len(legal), info=chess.engine.INFO_SCORE | chess.engine.INFO_PV)
        values: dict[str, int] = {}
        for line in lines:
            if line.get("pv") and "score" in line:
                values.setdefault(line["pv"][0].uci(), cp_from_score(line["score"].relative))
        for uci in legal:
            if uci not in values:
                values[uci] = self.move_value(fen, uci)
        self.cache.put(key, values)
        return dict(values)

    def score_move(self, fen: str, uci: str, mode: str = "per_move") -> MoveScore:
        """A legal move's cp and the best cp: ``per_move`` (best search + a search of the move)
        or ``multipv`` (one search over all moves)."""
        if mode == "multipv":
            values = self.analyse_moves(fen)
            best_uci = max(values, key=lambda u: values[u])
            return MoveScore(uci, values[uci], values[best_uci], best_uci)
        if mode != "per_move":
            raise UserInputError(f"unknown scoring mode {mode!r}", where="scoring", fix="use per_move or multipv")
        best_uci, cp_best = self.best(fen)
        cp_move = cp_best if uci == best_uci else self.move_value(fen, uci)
        return MoveScore(uci, cp_move, max(cp_best, cp_move), best_uci)

    def play(self, board: chess.Board, skill: int | None = 0, *, elo: int | None = None,
             nodes: int = DEFAULT_PLAY_NODES) -> chess.Move:
        """A move at a Stockfish strength: ``skill`` 0-20 (Skill Level) or ``elo`` 1350-2850
        (UCI_Elo).  Not deterministic at low strength: Stockfish draws its own random numbers."""
        options: dict[str, Any] = {}
        if elo is not None:
            options = {"UCI_LimitStrength": True, "UCI_Elo": int(elo)}
        elif skill is not None:
            options = {"Skill Level": int(skill)}
        position = board.copy()
        limit = chess.engine.Limit(nodes=nodes)

        async def play(protocol: Any) -> chess.Move | None:
            result = await protocol.play(position, limit, game=object(), options=options)
            return result.move

        self.searches += 1
        move = self._run(play, f"play in FEN {board.fen()!r}")
        if move is None:
            raise SparringError(f"Stockfish returned no move for FEN {board.fen()!r}")
        return move


class StockfishPool:
    """``size`` engines, one per worker thread, sharing one LRU cache; check one out with
    ``with pool.engine() as eng: ...``."""

    def __init__(self, size: int = 1, *, path: str | None = None, nodes: int = DEFAULT_NODES,
                 hash_mb: int = DEFAULT_HASH_MB, timeout_s: float = DEFAULT_TIMEOUT_S, cache_entries: int = 200_000):
        if size < 1:
            raise UserInputError(f"pool size must be >= 1, got {size}", where="engines", fix="use 1 per worker")
        self.cache = ScoreCache(cache_entries)
        self.nodes = nodes
        self.engines = [StockfishEngine(path, nodes=nodes, hash_mb=hash_mb, timeout_s=timeout_s, cache=self.cache)
                        for _ in range(size)]
        self._free: queue.Queue[StockfishEngine] = queue.Queue()
        for eng in self.engines:
            self._free.put(eng)

    @contextlib.contextmanager
    def engine(self, timeout_s: float | None = None) -> Iterator[StockfishEngine]:
        """Check out a free engine (blocks until one is free)."""
        try:
            eng = self._free.get(timeout=timeout_s)
        except queue.Empty:
            raise SparringError(f"no free Stockfish engine within {timeout_s}s (pool of {len(self.engines)})") from None
        try:
            yield eng
        finally:
            self._free.put(eng)

    def score_move(self, fen: str, uci: str, mode: str = "per_move") -> MoveScore:
        with self.engine() as eng:
            return eng.score_move(fen, uci, mode)

    def analyse_moves(self, fen: str, moves: Iterable[str] | None = None) -> dict[str, int]:
        with self.engine() as eng:
            return eng.analyse_moves(fen, moves)

    def best(self, fen: str) -> tuple[str, int]:
        with self.engine() as eng:
            return eng.best(fen)

    def play(self, board: chess.Board, skill: int | None = 0, *, elo: int | None = None,
             nodes: int = DEFAULT_PLAY_NODES) -> chess.Move:
        with self.engine() as eng:
            return eng.play(board, skill, elo=elo, nodes=nodes)

    def close(self) -> None:
        for eng in self.engines:
            eng.close()

    def __enter__(self) -> "StockfishPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_NODES", "MATE_CP", "MoveScore", "ScoreCache", "StockfishEngine", "StockfishPool", "find_stockfish"]
