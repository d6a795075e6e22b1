"""`sparring demo` end to end in headless Chromium (Debian's /usr/bin/chromium through Playwright):
load the page, generate a joke and see the validator's verdict per rule, play e2e4 and see the
board, the move log and Stockfish's evaluation change, then keep a screenshot in test-artifacts/.
Every request the page makes to anything but the app is aborted: the demo must work offline."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_board_session_and_fallback_without_a_browser(tiny_llama):
    """The chess turn logic on its own: the tiny random model cannot name a move, so its answers
    are shown and the fallback plays a legal move; Stockfish evaluates both moves."""
    from sparring.demo_app import ChessSession, DemoModel, play_chess
    from sparring.evaluators.stockfish_pool import StockfishPool

    session = ChessSession()
    model = DemoModel(str(tiny_llama), max_new_tokens=8)
    with StockfishPool(1, nodes=2000) as pool:
        message, _ = play_chess(session, "e9", model, pool)
        assert "not a legal move" in message and not session.board.move_stack
        message, said = play_chess(session, "e2e4", model, pool)
    assert len(session.board.move_stack) == 2 and session.board.move_stack[0].uci() == "e2e4"
    assert "(you)" in session.log[0] and "eval after" in session.log[0]
    assert "(model, " in session.log[1] and "eval after" in session.log[1]
    assert said.count("→") in (1, 2)  # each attempt's raw answer is shown
    assert 'data-plies="2"' in session.board_html()


@pytest.mark.slow
def test_demo_in_headless_chromium(tiny_llama, free_port):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    from sparring.demo_app import launch

    demo = launch(str(tiny_llama), port=free_port, max_new_tokens=16, block=False)
    url = f"http://127.0.0.1:{free_port}/"
    ARTIFACTS.mkdir(exist_ok=True)
    blocked: list[str] = []

    def only_local(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            return route.continue_()
        blocked.append(route.request.url)
        return route.abort()

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.route("**/*", only_local)
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)

            page.locator("#joke-generate").click()
            verdict = page.locator("#joke-verdict")
            expect(verdict).to_contain_text("reward", timeout=60_000)
            for rule in ("format", "length", "clean", "no_meta"):
                expect(verdict).to_contain_text(rule)
            assert page.locator("#joke-output textarea").input_value() is not None

            page.get_by_role("tab", name="Chess").click()
            board = page.locator("#chess-board .sparring-board")
            expect(board).to_have_attribute("data-plies", "0", timeout=30_000)
            start_fen = board.get_attribute("data-fen")
            page.locator("#chess-move textarea").fill("e2e4")
            page.locator("#chess-play").click()
            expect(board).to_have_attribute("data-plies", "2", timeout=60_000)
            assert board.get_attribute("data-fen") != start_fen
            assert "4P3" in board.get_attribute("data-fen")  # the pawn stands on e4
            log = page.locator("#chess-log")
            expect(log).to_contain_text("e4 (you)")
            expect(log).to_contain_text("eval after")
            expect(page.locator("#chess-message")).to_contain_text("the model answered")
            assert page.locator("#chess-board svg").count() == 1
            page.screenshot(path=str(ARTIFACTS / "demo-chess.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
        getattr(demo, "sparring_close", lambda: None)()
    assert not [u for u in blocked if "gradio" in u and "api" in u], blocked  # no analytics calls


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
