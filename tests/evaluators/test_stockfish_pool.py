"""The Stockfish engine pool with the real binary: determinism, cache, restart after a kill, timeouts."""

from __future__ import annotations

import os
import signal
import threading
import time

import chess
import pytest

from sparring.errors import SparringError, UserInputError
from sparring.evaluators.stockfish_pool import ScoreCache, StockfishEngine, StockfishPool, find_stockfish

ITALIAN = "r1bqk1nr/pppp1ppp/2n5/2b1p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4"
MATE_IN_ONE = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"  # Ra8#
FENS = [
    chess.STARTING_FEN,
    ITALIAN,
    "r2q1rk1/ppp2ppp/2np1n2/2b1p1B1/2B1P1b1/2NP1N2/PPP2PPP/R2Q1RK1 w - - 6 8",
    "8/8/4k3/8/2P5/4K3/8/8 w - - 0 1",
]


@pytest.fixture(scope="module")
def engine():
    with StockfishEngine(nodes=1000) as eng:
        yield eng


def test_binary_is_found() -> None:
    assert os.access(find_stockfish(), os.X_OK)


def test_missing_binary_is_a_user_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARRING_STOCKFISH", "/nonexistent/stockfish")
    with pytest.raises(UserInputError) as err:
        StockfishEngine()
    assert "apt-get install -y stockfish" in str(err.value) and err.value.exit_code == 2


def test_best_finds_mate_and_scores_from_the_movers_view(engine: StockfishEngine) -> None:
    uci, cp = engine.best(MATE_IN_ONE)
    assert uci == "a1a8" and cp > 1000
    board = chess.Board(MATE_IN_ONE)
    board.push_uci("h2h3")  # a quiet move instead: now Black is to move and losing
    assert engine.best(board.fen())[1] < 0


def test_scores_do_not_depend_on_search_order() -> None:
    with StockfishEngine(nodes=1000) as a, StockfishEngine(nodes=1000) as b:
        forward = [a.best(f) for f in FENS] + [a.move_value(ITALIAN, "d2d3")]
        backward = [b.move_value(ITALIAN, "d2d3")] + [b.best(f) for f in reversed(FENS)]
    assert forward == list(reversed(backward[1:])) + [backward[0]]


def test_cache_hits_skip_the_engine(engine: StockfishEngine) -> None:
    engine.cache = ScoreCache()
    first = engine.score_move(ITALIAN, "a2a3")
    searches, hits = engine.searches, engine.cache.hits
    again = engine.score_move(ITALIAN, "a2a3")
    assert again == first and engine.searches == searches and engine.cache.hits == hits + 2  # best + move


def test_batched_searches_equal_searches_alone_and_skip_the_best_move() -> None:
    moves = ["d2d3", "b1c3", "a2a3"]
    with StockfishEngine(nodes=1000) as batched, StockfishEngine(nodes=1000) as alone:
        together = batched.move_values(ITALIAN, moves)
        assert batched.searches == 3
        assert together == {u: alone.move_value(ITALIAN, u) for u in reversed(moves)}
        best_uci, _ = alone.best(ITALIAN)
        fresh = StockfishEngine(nodes=1000)
        try:
            assert fresh.score_move(ITALIAN, best_uci).is_best and fresh.searches == 1  # no second search
            assert fresh.score_move(ITALIAN, "a2a3").cp_move == together["a2a3"] and fresh.searches == 2
        finally:
            fresh.close()


def test_cache_is_lru_bounded() -> None:
    cache = ScoreCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2


def test_analyse_moves_covers_every_legal_move(engine: StockfishEngine) -> None:
    values = engine.analyse_moves(ITALIAN)
    assert set(values) == {m.uci() for m in chess.Board(ITALIAN).legal_moves}
    chosen = engine.analyse_moves(ITALIAN, ["d2d3", "b1c3"])
    assert set(chosen) == {"d2d3", "b1c3"} and chosen["d2d3"] == engine.move_value(ITALIAN, "d2d3")
    ms = engine.score_move(ITALIAN, "a2a3", "multipv")
    assert ms.cp_best == max(values.values()) and ms.cp_move == values["a2a3"]


def test_score_move_best_is_never_below_the_move(engine: StockfishEngine) -> None:
    for uci in ("a2a3", "c2c3", "e1g1"):
        ms = engine.score_move(ITALIAN, uci)
        assert ms.cp_best >= ms.cp_move
    assert engine.score_move(MATE_IN_ONE, "a1a8").is_best


def test_restart_after_kill_mid_search_recomputes_the_same_score() -> None:
    nodes = 300_000
    with StockfishEngine(nodes=nodes) as reference:
        expected = reference.best(ITALIAN)
    with StockfishEngine(nodes=nodes) as eng:
        victim = eng.pid
        result: dict[str, object] = {}
        worker = threading.Thread(target=lambda: result.setdefault("best", eng.best(ITALIAN)))
        worker.start()
        time.sleep(0.1)  # the search is running now
        os.kill(victim, signal.SIGKILL)
        worker.join(timeout=30)
        assert result["best"] == expected
        assert eng.restarts >= 1 and eng.pid != victim


def test_killed_while_idle_restarts_on_next_call() -> None:
    with StockfishEngine(nodes=1000) as eng:
        before = eng.best(ITALIAN)
        eng.cache = ScoreCache()
        os.kill(eng.pid, signal.SIGKILL)
        time.sleep(0.05)
        assert eng.best(ITALIAN) == before and eng.restarts == 1


def test_timeouts_restart_then_fail_clearly_and_the_engine_recovers() -> None:
    with StockfishEngine(nodes=50_000_000, timeout_s=0.3, max_attempts=2) as eng:
        start = time.monotonic()
        with pytest.raises(SparringError, match="failed 2 times"):
            eng.best(ITALIAN)
        assert time.monotonic() - start < 5 and eng.restarts == 2
        eng.nodes = 1000
        assert eng.best(ITALIAN)[0]


def test_play_at_low_skill_and_elo_returns_legal_moves(engine: StockfishEngine) -> None:
    board = chess.Board(ITALIAN)
    assert engine.play(board, skill=0, nodes=5000) in board.legal_moves
    assert engine.play(board, None, elo=1400, nodes=5000) in board.legal_moves
    # the skill option was per call: analysis is back at full strength
    assert engine.best(MATE_IN_ONE)[0] == "a1a8"


def test_pool_checks_out_distinct_engines_to_threads() -> None:
    with StockfishPool(2, nodes=800) as pool:
        used: list[int] = []
        lock = threading.Lock()

        def work(fen: str) -> None:
            with pool.engine() as eng:
                with lock:
                    used.append(id(eng))
                eng.best(fen)

        threads = [threading.Thread(target=work, args=(f,)) for f in FENS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(used) == len(FENS) and len(set(used)) <= 2
        assert pool.cache.stats()["entries"] == len(FENS)
        assert pool.best(FENS[1]) == pool.engines[0].best(FENS[1])
