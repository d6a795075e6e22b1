"""`sparring demo`: a Gradio app to try a model — jokes with the validator's verdict, chess against
the model with Stockfish's evaluation of every move, and keyword quotes with their score.

    sparring demo runs/<run> [--port 7860]         # also: an HF dir, adapter dir, alias or .gguf

- Jokes: a topic goes through the jokes env's prompt; the answer is judged by the joke validator
  (``sparring.evaluators.joke_validator`` in the env's context: corpus novelty, topic wordplay) and
  every rule's verdict and reason is shown, with the env's reward.
- Chess: you play White on a board drawn by ``chess.svg.board``; enter a move (SAN or UCI).  The
  model answers through the chess env's prompt (FEN, side to move, legal moves).  An illegal or
  unreadable answer is shown; the model gets one retry with the reason (the self-play rule), and if
  that fails too the demo plays a random legal move for it, marked **fallback**.  Each move is
  evaluated by Stockfish (``sparring.evaluators.stockfish_pool``, fixed nodes): its class
  (best/good/inaccuracy/mistake/blunder), the centipawn loss, Stockfish's preferred move and the
  evaluation after it.
- Quotes: a keyword goes through the quotes env; the quote and its score components are shown.

Gradio runs offline: analytics off, no share link, no server-side rendering, system fonts.
Exercised by ``pytest tests/sparring/test_demo.py`` (headless Chromium through Playwright).
"""

from __future__ import annotations

import atexit
import itertools
import os
import random
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

BOARD_SIZE = 360
FALLBACK_NOTE = ("If the model's answer is not a legal move, it is shown; the model gets one retry with the reason, "
                 "then the demo plays a random legal move for it, marked **fallback**.")


class DemoModel:
    """The model behind the demo: transformers for model dirs/runs/aliases, llama.cpp for a .gguf."""

    def __init__(self, model: str, *, max_new_tokens: int = 48, temperature: float = 0.7):
        from sparring.generation import load_generator

        engine = "llamacpp" if str(model).endswith(".gguf") else "hf"
        self.name = str(model)
        self.generator = load_generator(model, engine=engine, threads=None)
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self._seeds = itertools.count(1)

    def reply(self, prompt, max_new_tokens: int | None = None) -> str:
        out = self.generator.generate([prompt], max_new_tokens=max_new_tokens or self.max_new_tokens, temperature=self.temperature, seed=next(self._seeds))
        return out[0].text.strip()


def run_env_options(model: str, env_name: str) -> dict[str, Any]:
    """The env options a run directory was trained with, when it trained on ``env_name``."""
    path = Path(model)
    if (path / "config.yaml").is_file() and (path / "manifest.json").is_file():
        try:
            from sparring.config_io import load_config

            cfg = load_config(path / "config.yaml")
            if cfg.env.name == env_name:
                return dict(cfg.env.options)
        except Exception:  # a run made by another version: the defaults still work
            return {}
    return {}


# ------------------------------------------------------------------------------------ jokes, quotes


def verdict_markdown(score) -> str:
    """The validator's verdict per rule as a Markdown table, with the env's reward."""
    head = f"**{'PASS' if score.passed else 'FAIL'}** — reward {score.total:.3f}\n\n| rule | verdict | why |\n|---|---|---|\n"
    rules = score.details.get("rules", {})
    rows = "".join(f"| {name} | {'✅ pass' if r.get('passed') else '❌ fail'} | {_cell(r.get('reason', ''))} |\n" for name, r in rules.items())
    return head + (rows or f"| (none) | ❌ | {_cell(score.details.get('error', 'no verdict'))} |\n")


def components_markdown(score) -> str:
    head = f"**{'PASS' if score.passed else 'FAIL'}** — score {score.total:.3f}\n\n| component | value |\n|---|---|\n"
    return head + "".join(f"| {k} | {v:.3f} |\n" for k, v in score.components.items())


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------------ chess


class ChessSession:
    """One game: the user plays White, the model Black; every move is evaluated by Stockfish."""

    def __init__(self) -> None:
        import chess

        self.board = chess.Board()
        self.log: list[str] = []
        self.last_model_answer = ""

    def board_html(self) -> str:
        import chess.svg

        last = self.board.peek() if self.board.move_stack else None
        svg = chess.svg.board(self.board, lastmove=last, size=BOARD_SIZE, orientation=True)
        status = f"Game over: {self.board.result()}" if self.board.is_game_over() else ("White (you) to move" if self.board.turn else "Black (model) to move")
        return f'<div class="sparring-board" data-fen="{self.board.fen()}" data-plies="{len(self.board.move_stack)}">{svg}<p>{status}</p></div>'

    def log_markdown(self) -> str:
        return "\n".join(f"- {line}" for line in self.log) if self.log else "_No moves yet. You play White: enter a move such as e4 or e2e4._"


def evaluate_move(pool, board, move) -> str:
    """Stockfish's view of ``move`` in ``board`` (before it is pushed), as one line."""
    from sparring.evaluators.chess_metrics import centipawn_loss, classify_move

    ms = pool.score_move(board.fen(), move.uci())
    best = board.san(chess_move(ms.best_uci))
    klass = classify_move(ms.cp_best, ms.cp_move, is_best=ms.is_best)
    white_cp = ms.cp_move if board.turn else -ms.cp_move
    loss = centipawn_loss(ms.cp_best, ms.cp_move)
    prefers = "" if ms.is_best else f"; Stockfish prefers {best}"
    return f"{klass}, loses {loss:.0f} cp{prefers}; eval after {white_cp / 100:+.2f} (White)"


def chess_move(uci: str):
    import chess

    return chess.Move.from_uci(uci)


def model_move(model: DemoModel, board, rng: random.Random) -> tuple[Any, str, str]:
    """(move, what the model said, how the move was chosen): one retry with feedback, then fallback."""
    from sparring.envs.chess_positions import chess_messages
    from sparring.envs.chess_selfplay import retry_feedback
    from sparring.evaluators.chess_moves import parse_move
    from sparring.types import Prompt

    answers = []
    feedback = None
    for _attempt in range(2):
        prompt = Prompt(id="demo-chess", messages=chess_messages(board, feedback), meta={"fen": board.fen()})
        text = model.reply(prompt, max_new_tokens=12)
        parsed = parse_move(text, board)
        answers.append(f"{text[:80]!r} → {parsed.status}" + (f" ({parsed.reason})" if parsed.reason and not parsed.legal else ""))
        if parsed.legal:
            return parsed.move, "; ".join(answers), "model" if not feedback else "model (after a retry)"
        feedback = retry_feedback(parsed.reason or parsed.status)
    legal = sorted(board.legal_moves, key=lambda m: m.uci())
    return rng.choice(legal), "; ".join(answers), "fallback: random legal move"


def play_chess(session: ChessSession, text: str, model: DemoModel, pool) -> tuple[str, str]:
    """Apply the user's move, answer with the model's, return (status message, model's raw answer)."""
    from sparring.evaluators.chess_moves import parse_move

    board = session.board
    if board.is_game_over():
        return f"The game is over ({board.result()}): press New game.", session.last_model_answer
    parsed = parse_move(text or "", board)
    if not parsed.legal:
        return f"`{(text or '').strip() or '(empty)'}` is not a legal move for White: {parsed.reason or parsed.status}.", session.last_model_answer
    number = board.fullmove_number
    note = evaluate_move(pool, board, parsed.move)
    board.push(parsed.move)
    session.log.append(f"**{number}. {parsed.san}** (you) — {note}")
    if board.is_game_over():
        return f"Game over: {board.result()}", session.last_model_answer
    rng = random.Random(f"demo:{board.fen()}")
    move, said, how = model_move(model, board, rng)
    san = board.san(move)
    note = evaluate_move(pool, board, move)
    board.push(move)
    session.log.append(f"**{number}... {san}** (model, {how}) — {note}")
    session.last_model_answer = said
    message = f"You played {parsed.san}; the model answered {san}" + (" (**fallback**)" if how.startswith("fallback") else "") + "."
    if board.is_game_over():
        message += f" Game over: {board.result()}"
    return message, said


# ------------------------------------------------------------------------------------ the app


def build_demo(model: str | DemoModel, *, max_new_tokens: int = 48, temperature: float = 0.7, stockfish_nodes: int | None = None):
    import gradio as gr

    from sparring.envs.base import make_env
    from sparring.evaluators.stockfish_pool import DEFAULT_NODES, StockfishPool

    demo_model = model if isinstance(model, DemoModel) else DemoModel(model, max_new_tokens=max_new_tokens, temperature=temperature)
    jokes = make_env("jokes", run_env_options(demo_model.name, "jokes"))
    quotes = make_env("quotes", run_env_options(demo_model.name, "quotes"))
    pools: list[StockfishPool] = []

    def pool() -> StockfishPool:
        if not pools:
            pools.append(StockfishPool(1, nodes=stockfish_nodes or DEFAULT_NODES))
            atexit.register(pools[0].close)
        return pools[0]

    def ask_and_judge(env, field: str, judge, max_new_tokens: int | None = None):
        """A tab's handler: ask the env's question about the input, judge the answer."""

        def handle(value: str):
            try:
                prompt = env.make_prompt(**{field: value})
            except Exception as exc:  # a blank or overlong topic/keyword
                return "", f"**Cannot ask:** {exc}"
            text = demo_model.reply(prompt, max_new_tokens=max_new_tokens)
            return text, judge(env.score(prompt, text))

        return handle

    def chess_turn(text: str, session: ChessSession | None):
        session = session or ChessSession()
        message, said = play_chess(session, text, demo_model, pool())
        return session.board_html(), session.log_markdown(), message, said, "", session

    def new_game():
        session = ChessSession()
        return session.board_html(), session.log_markdown(), "New game: you play White.", "", "", session

    with gr.Blocks(title=f"sparring demo — {demo_model.name}", analytics_enabled=False) as demo:
        gr.Markdown(f"## sparring demo\nModel: `{demo_model.name}`")
        with gr.Tab("Jokes"):
            text_tab("joke", "Topic", "bread", "Tell a joke", "The model's joke", ask_and_judge(jokes, "topic", verdict_markdown))
        with gr.Tab("Chess"):
            start = ChessSession()
            state = gr.State(None)
            with gr.Row():
                board_view = gr.HTML(start.board_html(), elem_id="chess-board")
                with gr.Column():
                    move_in = gr.Textbox(label="Your move (White), e.g. e4 or e2e4", elem_id="chess-move")
                    with gr.Row():
                        play_button = gr.Button("Play move", variant="primary", elem_id="chess-play")
                        reset_button = gr.Button("New game", elem_id="chess-new")
                    chess_msg = gr.Markdown(elem_id="chess-message")
                    model_said = gr.Textbox(label="The model's raw answer(s)", elem_id="chess-model-answer", lines=2)
                    gr.Markdown(FALLBACK_NOTE)
            chess_log = gr.Markdown(start.log_markdown(), elem_id="chess-log")
            outputs = [board_view, chess_log, chess_msg, model_said, move_in, state]
            play_button.click(chess_turn, inputs=[move_in, state], outputs=outputs)
            move_in.submit(chess_turn, inputs=[move_in, state], outputs=outputs)
            reset_button.click(new_game, inputs=None, outputs=outputs)
        with gr.Tab("Quotes"):
            text_tab("quote", "Keyword", "courage", "Write a quote", "The model's quote", ask_and_judge(quotes, "keyword", components_markdown, max(64, demo_model.max_new_tokens)))
    demo.sparring_close = lambda: [p.close() for p in pools]  # type: ignore[attr-defined]
    return demo


def text_tab(prefix: str, label: str, value: str, button: str, output: str, handler) -> None:
    """Input box, button, the model's answer and the verdict (ids ``<prefix>-input/-generate/-output/-verdict``)."""
    import gradio as gr

    box = gr.Textbox(label=label, value=value, elem_id=f"{prefix}-input")
    go = gr.Button(button, variant="primary", elem_id=f"{prefix}-generate")
    answer = gr.Textbox(label=output, lines=3, elem_id=f"{prefix}-output")
    verdict = gr.Markdown(elem_id=f"{prefix}-verdict")
    go.click(handler, inputs=box, outputs=[answer, verdict])


def offline_theme():
    """The default theme with system fonts (the stock one fetches Google Fonts)."""
    import gradio as gr

    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(model: str, *, host: str = "127.0.0.1", port: int = 7860, max_new_tokens: int = 48, temperature: float = 0.7, block: bool = True):
    """Build and serve the app (blocking unless ``block=False``); a taken port exits 2."""
    from sparring.serve import bind_socket

    bind_socket(host, port).close()  # fail fast, before loading the model
    demo = build_demo(model, max_new_tokens=max_new_tokens, temperature=temperature)
    demo.queue(default_concurrency_limit=1)  # one generation at a time
    print(f"sparring demo: {model} at http://{host}:{port}", flush=True)
    demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, prevent_thread_lock=not block, quiet=True, theme=offline_theme(), footer_links=[])
    return demo
