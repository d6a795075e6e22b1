"""Chess self-play GRPO: the positions the policy faced in actor self-play games become its groups.

    sparring rl configs/chess.yaml --init runs/<sft run>          # env chess + grpo (rl.chess_selfplay)

Every step the rollout actors play games (``RolloutPool.selfplay``) against the step's opponent,
taken in rotation from ``rl.selfplay_opponents``: the policy itself, Stockfish at a skill level or
Elo, a random mover, or ``checkpoint`` — an earlier policy from the opponent pool (the current
policy is added every ``rl.opponent_pool_every`` steps, the pool keeps ``rl.opponent_pool_size``).
Each position the policy faced is a GRPO group: ``num_generations`` candidate moves, each scored by
the actor's Stockfish (win% of the move minus win% of the best move).  TRL's GRPO then learns from
those groups exactly as from text prompts (``rl/grpo.py``: TRL's dataset rows are placeholders;
the positions come from the games).

Logged per step: ``rl/legal_rate``, the reward components, ``chess/games``, ``chess/score`` (wins
+ half draws, this step), and per opponent the running record with an Elo difference estimate and
its 95% interval (``chess/<opponent>/elo_diff``, ``..._low``, ``..._high``); ``chess/elo`` is the
absolute estimate when the opponent's Elo is known (``stockfish:elo=N``).  The opponent pool and
the game record are part of every checkpoint.  Exercised by ``pytest tests/rl/test_chess_selfplay.py``.
"""

from __future__ import annotations

import pickle
import re
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from sparring.rl.grpo import train_with_rollouts
from sparring.rl.session import RLSession, StepClock, actor_reward_share, training_reward
from sparring.seeding import derive_seed


def opponent_slug(opponent: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", opponent.lower()).strip("_")


def known_elo(opponent: str) -> float | None:
    m = re.fullmatch(r"stockfish:elo=(\d+)", opponent)
    return float(m.group(1)) if m else None


class OpponentPool:
    """Earlier policies to play against, saved as pickled ``PolicyUpdate`` files in the run."""

    def __init__(self, session: RLSession):
        self.session = session
        self.dir = session.stage_dir / "opponents"
        self.entries: list[dict[str, Any]] = []

    def add(self, version: int, model: Any) -> None:
        from sparring.rl.policy_sync import make_policy_update

        cfg = self.session.cfg
        update = make_policy_update(model, self.session.tokenizer, version, cfg.rl.rollout.engine, self.session.stage_dir / ".sync", quant=cfg.rl.rollout.gguf_quant)
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"v-{version:06d}.pkl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(update))
        tmp.replace(path)
        self.session.pool.add_opponent(version, update)
        self.entries = [e for e in self.entries if e["version"] != version] + [{"version": version, "file": f"opponents/{path.name}"}]
        self.entries = self.entries[-cfg.rl.opponent_pool_size :]
        self._publish()

    def restore(self, entries: list[dict[str, Any]], checkpoint: Path) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for e in entries:
            data = (checkpoint / e["file"]).read_bytes()
            local = self.session.stage_dir / e["file"]
            if not local.is_file():  # later checkpoints copy the pool from the run's own folder
                local.with_suffix(".tmp").write_bytes(data)
                local.with_suffix(".tmp").replace(local)
            self.session.pool.add_opponent(int(e["version"]), pickle.loads(data))
        self.entries = [dict(e) for e in entries]
        self._publish()

    def _publish(self) -> None:
        self.session.extra["opponent_pool"] = list(self.entries)
        self.session.extra["checkpoint_files"] = {e["file"]: self.session.stage_dir / e["file"] for e in self.entries}

    def pick(self, step: int) -> int | None:
        if not self.entries:
            return None
        return int(self.entries[derive_seed(self.session.cfg.seed, "opponent", step) % len(self.entries)]["version"])


class GameLedger:
    """Results per opponent, for the per-step Elo estimates."""

    def __init__(self, record: dict[str, Any] | None = None):
        self.record: dict[str, dict[str, int]] = {k: dict(v) for k, v in (record or {}).items()}

    def add(self, games: list[dict[str, Any]]) -> dict[str, float]:
        from sparring.evaluators.chess_metrics import elo_estimate

        out: dict[str, float] = {"chess/games": float(len(games))}
        if games:
            out["chess/score"] = sum(float(g.get("model_score", 0.5)) for g in games) / len(games)
            out["chess/plies"] = sum(int(g.get("plies", 0)) for g in games) / len(games)
        for g in games:
            rec = self.record.setdefault(str(g.get("opponent", "?")), {"wins": 0, "draws": 0, "losses": 0})
            score = float(g.get("model_score", 0.5))
            rec["wins" if score == 1.0 else "losses" if score == 0.0 else "draws"] += 1
        for opponent, rec in sorted(self.record.items()):
            est = elo_estimate(rec["wins"], rec["draws"], rec["losses"])
            slug = opponent_slug(opponent)
            out[f"chess/{slug}/games"] = float(est["games"])
            out[f"chess/{slug}/score"] = est["score"]
            for key in ("elo", "elo_low", "elo_high"):
                if est[key] is not None:
                    out[f"chess/{slug}/{key.replace('elo', 'elo_diff')}"] = est[key]
            anchor = known_elo(opponent)
            if anchor is not None and est["elo"] is not None:
                out["chess/elo"] = anchor + est["elo"]
        return {k: v for k, v in out.items() if v is not None}


def _opponent_for(session: RLSession, step: int, pool: OpponentPool) -> tuple[str, int | None]:
    names = session.cfg.rl.selfplay_opponents or ["self"]
    name = names[(step - 1) % len(names)]
    if name.startswith("checkpoint"):
        version = pool.pick(step)
        return (f"checkpoint:{version}", version) if version is not None else ("self", None)
    return name, None


def make_selfplay_rollout_func(session: RLSession, clock: StepClock, state: dict[str, Any], pool: OpponentPool, ledger: GameLedger) -> Callable:
    from sparring.rl.engines.base import SamplingParams

    cfg = session.cfg
    sampling = SamplingParams.from_config(cfg.rl.rollout, cfg.seed)
    g = cfg.rl.num_generations

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, list]:
        n_positions = len(prompts) // g
        step = int(trainer.state.global_step) + 1
        opponent, version = _opponent_for(session, step, pool)
        started = time.perf_counter()
        samples, games = session.pool.selfplay(n_positions, g, opponent, step, sampling, opponent_version=version)
        wall = time.perf_counter() - started
        groups: OrderedDict[str, list] = OrderedDict()
        for s in samples:
            groups.setdefault(s.prompt_id, []).append(s)
        samples = [s for grp in groups.values() for s in grp]
        clock.add_rollout(wall, actor_reward_share(samples, len(session.pool.worker_ids), wall))
        state["samples"] = samples
        state["samples_per_s"] = len(samples) / wall if wall > 0 else 0.0
        state["extra_metrics"] = {**ledger.add(games), "chess/opponent_is_checkpoint": float(version is not None)}
        session.extra["games"] = ledger.record
        return {
            "prompt_ids": [list(s.prompt_ids) for s in samples],
            "completion_ids": [list(s.completion_ids) for s in samples],
            "logprobs": [list(s.logprobs) for s in samples],
            "env_reward": [training_reward(s, cfg.rl.reward) for s in samples],
            "env_passed": [bool(s.passed) for s in samples],
        }

    return rollout_func


def run_chess_selfplay(session: RLSession) -> dict[str, Any]:
    from datasets import Dataset

    cfg = session.cfg
    pool = OpponentPool(session)
    ledger = GameLedger(session.resume_state.games if session.resume_state is not None else None)
    if session.resume_state is not None and session.resume_state.opponent_pool:
        pool.restore(session.resume_state.opponent_pool, session.resume_from)
    session.extra["games"] = ledger.record
    every = cfg.rl.opponent_pool_every

    def after_step(step: int, model: Any) -> None:
        if every and step % every == 0:
            pool.add(step, model)

    session.extra["after_step"] = after_step
    slots = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"self-play position slot {i}"}] for i in range(cfg.rl.prompts_per_step)]})

    def factory(clock: StepClock, state: dict[str, Any]) -> Callable:
        return make_selfplay_rollout_func(session, clock, state, pool, ledger)

    result = train_with_rollouts(session, slots, factory, algo="chess-selfplay", book=None)
    result["games"] = ledger.record
    result["opponent_pool"] = [e["version"] for e in pool.entries]
    return result
