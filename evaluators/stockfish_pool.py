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
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import chess
import chess.engine

from sparring.errors import SparringError, UserInputError
from sparring.evaluators.chess_metrics import MATE_CP, cp_from_score
from sparring.evaluators.stockfish_uci import INSTALL_FIX, CoalescingUciProtocol, ScoreCache, find_stockfish

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
_ENGINE_FAILURES = (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError,
                    asyncio.TimeoutError, OSError, RuntimeError)


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

    def _run(self, make_coro: Any, what: str, searches: int = 1) -> Any:
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
                    return future.result(timeout=self.timeout_s * searches)
                except _ENGINE_FAILURES as exc:
                    last = exc
                    self._kill()
                    self.restarts += 1
            raise SparringError(f"Stockfish failed {self.max_attempts} times on {what}: {last!r} "
                                f"(timeout {self.timeout_s}s per search, {self.nodes} nodes)")

    # -- searches ----------------------------------------------------------------------------
    def _search(self, fen: str, *, multipv: int | None = None, root_moves: list[chess.Move] | None = None,
                info: chess.engine.Info = chess.engine.INFO_SCORE) -> tuple[chess.Move | None, list[dict]]:
        """One search; returns (best move, MultiPV info lines)."""
        return self._searches(fen, [root_moves], multipv=multipv, info=info)[0]

    def _searches(self, fen: str, plans: list[list[chess.Move] | None], *, multipv: int | None = None,
                  info: chess.engine.Info = chess.engine.INFO_SCORE,
                  skip_best: bool = False) -> list[tuple[chess.Move | None, list[dict]] | None]:
        """Several searches of one position in one trip to the engine's thread (each with its own
        ``ucinewgame``, so each result is what it would be alone).  ``plans``: None for a full
        search, a move list for ``root_moves``.  With ``skip_best``, a one-move plan whose move the
        first (full) search chose is skipped (None in its place)."""
        board = chess.Board(fen)
        limit = chess.engine.Limit(nodes=self.nodes)

        async def search_all(protocol: Any) -> list[tuple[chess.Move | None, list[dict]] | None]:
            results: list[tuple[chess.Move | None, list[dict]] | None] = []
            for root_moves in plans:
                if skip_best and results and root_moves and results[0] and results[0][0] == root_moves[0]:
                    results.append(None)
                    continue
                # A fresh hash and history before every search, without python-chess' extra isready
                # round trip (Stockfish handles ucinewgame synchronously before the next command).
                protocol.send_line("ucinewgame")
                analysis = await protocol.analysis(board, limit, multipv=multipv, game=self._search_game, info=info,
                                                   root_moves=root_moves)
                with analysis:
                    best = await analysis.wait()
                results.append((best.move, analysis.multipv))
                self.searches += 1
            return results

        return self._run(search_all, f"FEN {fen!r}", searches=len(plans))

    def _limit_key(self, mode: str) -> str:
        return f"{mode}@nodes={self.nodes}"

    @staticmethod
    def _cp(fen: str, found: tuple[chess.Move | None, list[dict]], what: str) -> int:
        lines = found[1]
        if not lines or "score" not in lines[0]:
            raise SparringError(f"Stockfish returned no score for {what} in FEN {fen!r} (no legal moves?)")
        return cp_from_score(lines[0]["score"].relative)

    def _best_key(self, fen: str) -> tuple[str, str, str]:
        return (fen, "*best", self._limit_key("best"))

    def _move_key(self, fen: str, uci: str) -> tuple[str, str, str]:
        return (fen, uci, self._limit_key("move"))

    def best(self, fen: str) -> tuple[str, int]:
        """The best move (UCI) and its cp from the mover's view, from one single-PV search."""
        hit = self.cache.get(self._best_key(fen))
        if hit is not None:
            return hit
        found = self._search(fen)
        if found[0] is None:
            raise SparringError(f"Stockfish returned no move for FEN {fen!r} (no legal moves?)")
        result = (found[0].uci(), self._cp(fen, found, "the best move"))
        self.cache.put(self._best_key(fen), result)
        return result

    def move_value(self, fen: str, uci: str) -> int:
        """cp of one move from the mover's view: a search restricted to it (``root_moves``)."""
        return self.move_values(fen, [uci])[uci]

    def move_values(self, fen: str, moves: Iterable[str]) -> dict[str, int]:
        """cp of each move searched alone (``root_moves=[move]``); the uncached ones in one trip."""
        wanted = list(dict.fromkeys(moves))
        values = {u: self.cache.get(self._move_key(fen, u)) for u in wanted}
        missing = [u for u in wanted if values[u] is None]
        if missing:
            found = self._searches(fen, [[chess.Move.from_uci(u)] for u in missing])
            for uci, result in zip(missing, found):
                assert result is not None
                values[uci] = self._cp(fen, result, uci)
                self.cache.put(self._move_key(fen, uci), values[uci])
        return values  # type: ignore[return-value]

    def analyse_moves(self, fen: str, moves: Iterable[str] | None = None) -> dict[str, int]:
        """``{uci: cp}`` for ``moves`` (each searched alone) or, with None, for every legal move
        from one MultiPV search (moves that search did not reach are searched alone)."""
        if moves is not None:
            return self.move_values(fen, moves)
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
        unreached = [u for u in legal if u not in values]
        if unreached:
            values.update(self.move_values(fen, unreached))
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
        best = self.cache.get(self._best_key(fen))
        if best is None:
            # the best-move search and the move's search in one trip (the second is skipped when
            # the move is the best move or already cached)
            cached_move = self.cache.get(self._move_key(fen, uci))
            plans = [None] if cached_move is not None else [None, [chess.Move.from_uci(uci)]]
            found = self._searches(fen, plans, skip_best=True)
            if found[0] is None or found[0][0] is None:
                raise SparringError(f"Stockfish returned no move for FEN {fen!r} (no legal moves?)")
            best = (found[0][0].uci(), self._cp(fen, found[0], "the best move"))
            self.cache.put(self._best_key(fen), best)
            if len(found) > 1 and found[1] is not None:
                self.cache.put(self._move_key(fen, uci), self._cp(fen, found[1], uci))
        best_uci, cp_best = best
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


__all__ = ["DEFAULT_NODES", "INSTALL_FIX", "MATE_CP", "CoalescingUciProtocol", "MoveScore", "ScoreCache", "StockfishEngine",
           "StockfishPool", "find_stockfish"]
