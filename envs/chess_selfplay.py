"""Chess games between a policy (the model) and an opponent, refereed move by move.

A ``ChessGame`` is one game: the policy sees a prompt (``game.prompt``), answers with text
(``game.submit(text)``) and gets a ``StepResult`` back — the move's dense reward (the chess env's
score: win% of the move minus win% of the best), the next prompt after the opponent's reply, and
``terminated``/``truncated`` with the game result in ``info``.  Like verifiers' kuhn_poker host,
the referee gives one retry with feedback after an illegal, ambiguous or unparseable answer, then
forfeits the game.  At ``max_plies`` the game is truncated and adjudicated from Stockfish's eval.

Opponents (``make_opponent``): ``random`` (seeded), ``stockfish:skill=N`` (0-20),
``stockfish:elo=N`` (1350-2850), ``stockfish`` / ``stockfish:nodes=N`` (full strength), ``self`` or
any callable ``Prompt -> str`` (the model plays both sides, with the same retry-then-forfeit rule).

``play_game(policy_fn, opponent, seed)`` plays one whole game and returns a ``GameRecord``: every
position the policy faced with its reward, the result and the PGN.
Exercised by ``pytest tests/envs/test_chess_env.py``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import chess
import chess.pgn

from sparring.errors import UserInputError
from sparring.envs.chess_positions import chess_messages, prompt_id
from sparring.evaluators.chess_moves import parse_move
from sparring.types import Prompt, StepResult

if TYPE_CHECKING:
    from sparring.envs.chess_env import ChessEnv

Policy = Callable[[Prompt], str]
OPPONENT_FIX = "use random, self, stockfish, stockfish:skill=0..20, stockfish:elo=1350..2850 or stockfish:nodes=N"


class Opponent:
    """Chooses the other side's moves; returns None to forfeit (a policy that failed twice)."""

    name = "opponent"

    def choose(self, board: chess.Board) -> chess.Move | None:
        raise NotImplementedError


class RandomOpponent(Opponent):
    def __init__(self, seed: int = 0):
        self.name = "random"
        self.rng = random.Random(f"random-opponent:{seed}")

    def choose(self, board: chess.Board) -> chess.Move | None:
        return self.rng.choice(sorted(board.legal_moves, key=lambda m: m.uci()))


class StockfishOpponent(Opponent):
    def __init__(self, env: "ChessEnv", spec: str, *, skill: int | None = None, elo: int | None = None,
                 nodes: int | None = None):
        self.name, self.env, self.skill, self.elo, self.nodes = spec, env, skill, elo, nodes

    def choose(self, board: chess.Board) -> chess.Move | None:
        kwargs: dict[str, Any] = {"elo": self.elo}
        if self.nodes:
            kwargs["nodes"] = self.nodes
        return self.env.pool.play(board, self.skill, **kwargs)


class PolicyOpponent(Opponent):
    """The model (or any text policy) on the other side, refereed like the policy."""

    def __init__(self, policy: Policy, name: str = "self"):
        self.name, self.policy = name, policy

    def choose(self, board: chess.Board) -> chess.Move | None:
        feedback = None
        for _ in range(2):
            prompt = Prompt(id=prompt_id(board.fen(), "chess-opp"), messages=chess_messages(board, feedback),
                            meta={"fen": board.fen()})
            parsed = parse_move(self.policy(prompt), board)
            if parsed.legal:
                return parsed.move
            feedback = retry_feedback(parsed.reason)
        return None


def make_opponent(spec: str | Policy | Opponent, env: "ChessEnv", *, seed: int = 0,
                  self_policy: Policy | None = None) -> Opponent:
    """An opponent from a spec string (see the module docstring), a callable or an Opponent."""
    if isinstance(spec, Opponent):
        return spec
    if callable(spec):
        return PolicyOpponent(spec, getattr(spec, "__name__", "policy"))
    text = str(spec).strip().lower()
    if text == "random":
        return RandomOpponent(seed)
    if text == "self":
        if self_policy is None:
            raise UserInputError("opponent 'self' needs the model as a policy", where="opponent",
                                 fix="call env.set_opponent_policy(fn) or pass a callable opponent")
        return PolicyOpponent(self_policy, "self")
    if text == "stockfish":
        return StockfishOpponent(env, text)
    if text.startswith("stockfish:") and "=" in text:
        key, _, value = text.split(":", 1)[1].partition("=")
        try:
            number = int(value)
        except ValueError:
            raise UserInputError(f"opponent {spec!r}: {value!r} is not a number", where="opponent", fix=OPPONENT_FIX) from None
        if key == "skill" and 0 <= number <= 20:
            return StockfishOpponent(env, text, skill=number)
        if key == "elo" and 1350 <= number <= 2850:
            return StockfishOpponent(env, text, elo=number)
        if key == "nodes" and number >= 1:
            return StockfishOpponent(env, text, nodes=number)
    raise UserInputError(f"unknown opponent {spec!r}", where="opponent", fix=OPPONENT_FIX)


def retry_feedback(reason: str) -> str:
    return f"Your previous answer was not accepted: {reason}. Answer again with one legal move from the list."


@dataclass
class FacedPosition:
    """One answer of the policy: the position, what it said, and what it earned."""

    ply: int
    fen: str
    completion: str
    status: str
    move_san: str | None
    reward: float
    components: dict[str, float]
    retry: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GameRecord:
    """A finished game from the policy's side."""

    seed: int
    model_color: str
    opponent: str
    start_fen: str
    result: str = "*"
    model_score: float = 0.5
    termination: str = ""
    plies: int = 0
    adjudicated: bool = False
    pgn: str = ""
    faced: list[FacedPosition] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["faced"] = [f.to_dict() for f in self.faced]
        return d


class ChessGame:
    """One game in progress; ``prompt`` is what the policy must answer next."""

    def __init__(self, env: "ChessEnv", opponent: Opponent, model_color: chess.Color, start_fen: str,
                 max_plies: int, seed: int):
        self.env, self.opponent, self.model_color, self.max_plies = env, opponent, model_color, max_plies
        self.board = chess.Board(start_fen)
        self.record = GameRecord(seed=seed, model_color="white" if model_color else "black",
                                 opponent=opponent.name, start_fen=start_fen)
        self.retry_used = False
        self.done = False
        self.prompt: Prompt | None = None
        if self.board.turn != model_color:
            self._opponent_move()
        if not self.done:
            self.prompt = self._make_prompt()

    def _make_prompt(self, feedback: str | None = None) -> Prompt:
        fen = self.board.fen()
        ply = len(self.board.move_stack)
        return Prompt(id=f"{prompt_id(fen)}-g{self.record.seed}-p{ply}",
                      messages=chess_messages(self.board, feedback), meta={"fen": fen, "ply": ply})

    def _finish(self, result: str, termination: str, adjudicated: bool = False) -> None:
        self.done, self.prompt = True, None
        model_white = self.model_color == chess.WHITE
        score = {"1-0": 1.0 if model_white else 0.0, "0-1": 0.0 if model_white else 1.0}.get(result, 0.5)
        self.record.result, self.record.model_score = result, score
        self.record.termination, self.record.adjudicated = termination, adjudicated
        self.record.plies = len(self.board.move_stack)
        game = chess.pgn.Game.from_board(self.board)
        game.headers["White"] = "model" if model_white else self.opponent.name
        game.headers["Black"] = self.opponent.name if model_white else "model"
        game.headers["Result"] = result
        game.headers["Termination"] = termination
        self.record.pgn = str(game)

    def _check_end(self) -> bool:
        outcome = self.board.outcome(claim_draw=True)
        if outcome is not None:
            self._finish(outcome.result(), outcome.termination.name.lower())
            return True
        if len(self.board.move_stack) >= self.max_plies:
            self._adjudicate()
            return True
        return False

    def _adjudicate(self) -> None:
        _, cp = self.env.pool.best(self.board.fen())
        white_cp = cp if self.board.turn == chess.WHITE else -cp
        margin = self.env.options.adjudicate_cp
        result = "1-0" if white_cp >= margin else "0-1" if white_cp <= -margin else "1/2-1/2"
        self._finish(result, "max_plies", adjudicated=True)

    def _opponent_move(self) -> None:
        move = self.opponent.choose(self.board)
        if move is None:
            self._finish("1-0" if self.model_color == chess.WHITE else "0-1", "opponent_forfeit")
            return
        self.board.push(move)
        self._check_end()

    def submit(self, completion: str) -> StepResult:
        """Referee the policy's answer, let the opponent reply, and say what happened."""
        if self.done or self.prompt is None:
            raise RuntimeError("the game is over: call reset() first")
        fen = self.board.fen()
        score = self.env.score_fen(fen, completion)
        status = score.details["status"]
        self.record.faced.append(FacedPosition(
            ply=len(self.board.move_stack), fen=fen, completion=str(completion)[:500], status=status,
            move_san=score.details.get("san"), reward=score.total, components=dict(score.components),
            retry=self.retry_used))
        info: dict[str, Any] = {"status": status, "components": dict(score.components), "details": score.details}
        reward = score.total
        if status != "legal":
            if not self.retry_used:
                self.retry_used = True
                self.prompt = self._make_prompt(retry_feedback(score.details.get("reason", status)))
                info["retry"] = True
                return StepResult(self.prompt, reward, False, False, info)
            self._finish("0-1" if self.model_color == chess.WHITE else "1-0", "forfeit")
        else:
            self.retry_used = False
            self.board.push_uci(score.details["uci"])
            if not self._check_end():
                self._opponent_move()
        if self.done:
            reward += self.env.options.result_weight * (2.0 * self.record.model_score - 1.0)
            info.update(result=self.record.result, model_score=self.record.model_score,
                        termination=self.record.termination, pgn=self.record.pgn)
            truncated = self.record.termination == "max_plies"
            return StepResult(None, reward, not truncated, truncated, info)
        self.prompt = self._make_prompt()
        return StepResult(self.prompt, reward, False, False, info)
