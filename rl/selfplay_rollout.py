"""Chess self-play inside a rollout actor: games whose every faced position becomes a GRPO group.

``RolloutWorker.selfplay_groups`` calls :func:`play_selfplay_groups`: the worker plays games (its
chess env's ``new_game``, seeded openings and colours) with the policy against ``opponent``:

- ``random``, ``stockfish``, ``stockfish:skill=N``, ``stockfish:elo=N`` — the env's opponents;
- ``self`` — the same policy on the other side (one sampled completion per move);
- ``checkpoint:<version>`` — an earlier policy from the pool's opponent pool, loaded into a second
  engine of the worker.

At every position the policy faces (a retry after an illegal answer is its own position), ``k``
candidate moves are sampled (seeds from (run seed, step, position id, k)) and all are scored by
Stockfish; the group becomes ``k`` Samples with ``prompt_id`` = the position id.  Candidate 0 is the
move played (on-policy).  Once ``n_positions`` groups are collected the running game is finished
with one candidate per move (not scored) so its result counts; game records come back with the
samples: ``{"samples": [...], "games": [GameRecord dicts], "positions": n}``.

Exercised by ``pytest tests/rl/test_worker.py -k selfplay``.
"""

from __future__ import annotations

from typing import Any

from sparring.errors import UserInputError
from sparring.rl.engines.base import SamplingParams, completion_seed
from sparring.types import Prompt, Sample


def _policy_fn(engine: Any, worker: Any, sampling: SamplingParams, step: int, tag: str):
    """A ``Prompt -> text`` policy sampling one completion from ``engine`` (seeded per position)."""

    def policy(prompt: Prompt) -> str:
        ids = worker._render(prompt)
        seed = completion_seed(sampling.seed, step, f"{prompt.id}-{tag}", 0)
        return engine.generate([ids], 1, sampling, [[seed]])[0][0].text

    return policy


def _opponent(worker: Any, opponent: str, sampling: SamplingParams, step: int, opponent_update: Any) -> Any:
    spec = opponent.strip().lower()
    if spec == "self":
        return _policy_fn(worker.engine, worker, sampling, step, "opp")
    if spec.startswith("checkpoint"):
        if opponent_update is None:
            raise UserInputError(f"opponent {opponent!r} needs a policy update from the opponent pool", where="opponent", fix="pool.add_opponent(version, update) before self-play")
        engine = worker._opponents.get(opponent_update.version)
        if engine is None:
            from sparring.rl.engines.base import make_engine

            engine = make_engine(worker.engine.name, worker.engine.base_model_dir, threads=worker.engine.threads, options=worker.engine.options)
            engine.load_policy(opponent_update)
            for old in worker._opponents.values():
                old.close()
            worker._opponents = {opponent_update.version: engine}
        policy = _policy_fn(engine, worker, sampling, step, f"ckpt{opponent_update.version}")
        policy.__name__ = f"checkpoint:{opponent_update.version}"
        return policy
    return opponent


def play_selfplay_groups(worker: Any, n_positions: int, k: int, opponent: str, step: int, sampling: SamplingParams,
                         game_ids: list[int], opponent_update: Any = None, finish_games: bool = True) -> dict[str, Any]:
    env = worker.env
    if not hasattr(env, "new_game"):
        raise UserInputError(f"self-play needs the chess env, this run's env is {worker.cfg.env.name!r}", where="env.name", fix="use env.name: chess, or generate() for single-turn envs")
    opp = _opponent(worker, opponent, sampling, step, opponent_update)
    groups: list[list[Sample]] = []
    games: list[dict[str, Any]] = []
    for game_id in game_ids:
        if len(groups) >= n_positions:
            break
        game = env.new_game(game_id, opp)
        while not game.done:
            prompt = game.prompt
            position = Prompt(prompt.id + ("-retry" if game.retry_used else ""), prompt.messages, prompt.meta)
            if len(groups) < n_positions:
                ids, group, gen_seconds = worker._group(position, k, sampling, step)
                scored = worker._score([position] * k, [c.text for c in group])
                groups.append(worker._samples(position, ids, group, scored, gen_seconds, step))
                move = group[0].text
            elif finish_games:
                move = worker._group(position, 1, sampling, step)[1][0].text
            else:
                break
            game.submit(move)
        if game.done:
            record = game.record.to_dict()
            record["game_id"] = game_id
            record["worker_id"] = worker.worker_id
            games.append(record)
    if len(groups) < n_positions:
        raise UserInputError(f"{len(game_ids)} games gave only {len(groups)} of {n_positions} positions", where="selfplay", fix="pass more game ids")
    return {"samples": [s for g in groups for s in g], "games": games, "positions": len(groups)}
