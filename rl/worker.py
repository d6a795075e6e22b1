"""``RolloutWorker``: the Ray actor that samples completions and scores them with the env's referee.

Each actor owns one generation engine (``rl/engines``) and one env (its own Stockfish process for
chess).  The engine decodes several prompts' groups as one batch (``Engine.groups_per_call``; a system
prompt they share once); rewards are computed inside the actor right after each batch is generated, on
a scoring thread, so referee time overlaps the next batch's generation; ``gen_seconds`` and
``reward_seconds`` are measured apart.  The pool (``rl/pool.py``) creates the actors; used alone::

    w = RolloutWorker.options(num_cpus=1).remote("rollout-0", cfg.model_dump(), base_dir, "hf")
    ray.get(w.load_policy.remote(1, update_ref))          # -> SyncReport(worker_id, version, checksum)
    ray.get(w.generate.remote([p.to_dict()], 4, sampling, step=0))   # -> list[Sample]
    ray.get(w.probe.remote(ids, start))                   # Probe(policy logprobs, base logprobs)

Every completion's seed is ``completion_seed(sampling.seed, step, prompt id, k)``, so a re-run of
the same prompts on another (or a restarted) worker returns the same samples.  ``generate`` refuses
to run on another policy version than the pool expects (``PolicyVersionMismatch``): a worker that
Ray restarted after a crash comes back with the base weights and must be re-synced first.

A referee failure (a Stockfish crash) is recovered inside the actor: the engine pool restarts the
process and re-runs the search; if scoring still fails the env is rebuilt and the group re-scored.

Exercised by ``pytest tests/rl/test_worker.py`` and ``tests/rl/test_fault_tolerance.py``.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import ray

from sparring.errors import SparringError
from sparring.rl.engines.base import Completion, SamplingParams, completion_seed
from sparring.types import Prompt, Sample

log = logging.getLogger(__name__)

DEFAULT_MAX_RESTARTS = 3
DEFAULT_MAX_TASK_RETRIES = 1


class PolicyVersionMismatch(SparringError):
    """Raised by a worker asked to generate with another policy version than it holds."""

    def __init__(self, worker_id: str, have: int, want: int):
        self.worker_id, self.have, self.want = worker_id, have, want
        super().__init__(f"{worker_id} holds policy version {have}, the pool expects {want}")

    def __reduce__(self):
        return (PolicyVersionMismatch, (self.worker_id, self.have, self.want))


@dataclass
class SyncReport:
    """What a worker says it loaded; ``probe_gap`` is filled in by the pool's verification."""

    worker_id: str
    version: int
    checksum: str
    load_seconds: float = 0.0
    node_id: str = ""
    pid: int = 0
    probe_gap: float | None = None  # the gap the tolerance applies to (differential when possible)
    probe_gap_absolute: float | None = None
    probe_base_noise: float | None = None


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def head_token_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids of the chat before its last message (the system prompt and examples that prompts
    share); a prompt is split there for the engine when they are a prefix of its own ids."""
    if len(messages) < 2:
        return []
    text = tokenizer.apply_chat_template([dict(m) for m in messages[:-1]], tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@ray.remote(max_restarts=DEFAULT_MAX_RESTARTS, max_task_retries=DEFAULT_MAX_TASK_RETRIES)
class RolloutWorker:
    """One engine + one referee; see the module docstring."""

    def __init__(self, worker_id: str, cfg: dict[str, Any], base_model_dir: str, engine: str, engine_options: dict[str, Any] | None = None):
        _quiet()
        from sparring.config import RunConfig
        from sparring.envs.base import make_env
        from sparring.rl.engines.base import make_engine

        self.worker_id = worker_id
        self.cfg = RunConfig.model_validate(cfg)
        self.started_at = time.time()
        self.engine = make_engine(engine, base_model_dir, threads=self.cfg.rl.rollout.threads_per_worker, options=engine_options)
        self.env = make_env(self.cfg.env.name, self.cfg.env.options)
        self._scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="referee")
        self._scorer.submit(self._warm_up_referee)  # the first scores queue behind it, not a step's wall time
        self._opponents: dict[int, Any] = {}
        self._heads: dict[tuple[tuple[str, str], ...], list[int]] = {}  # chat before the last message -> its token ids
        self.env_rebuilds = 0

    def _warm_up_referee(self) -> None:
        try:
            self.env.warm_up()
        except Exception as exc:  # noqa: BLE001 - a failed warm-up only means the first score loads it
            log.warning("%s: referee warm-up failed (%r); the first score will load it", self.worker_id, exc)

    # -- identity and health ---------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "version": self.engine.version,
            "checksum": self.engine.checksum,
            "engine": self.engine.name,
            "started_at": self.started_at,
            "env_rebuilds": self.env_rebuilds,
        }

    def referee_pids(self) -> list[int]:
        """Process ids of the referee engines (Stockfish) this actor started."""
        import psutil

        return [c.pid for c in psutil.Process().children(recursive=True) if "stockfish" in c.name().lower()]

    # -- weights ---------------------------------------------------------------------------------

    def load_policy(self, version: int, update: Any) -> SyncReport:
        if update.version != version:
            raise SparringError(f"{self.worker_id}: asked to load version {version} but the update is version {update.version}")
        started = time.perf_counter()
        checksum = self.engine.load_policy(update)
        return self.report(time.perf_counter() - started)

    def report(self, load_seconds: float = 0.0) -> SyncReport:
        return SyncReport(self.worker_id, self.engine.version, self.engine.checksum, round(load_seconds, 4),
                          ray.get_runtime_context().get_node_id(), os.getpid())

    def probe(self, token_ids: list[int], start: int) -> Any:
        """A ``Probe``: the policy's logprobs on the probe tokens, and the base's when separable."""
        return self.engine.probe(token_ids, start)

    # -- sampling and scoring --------------------------------------------------------------------

    def _check_version(self, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != self.engine.version:
            raise PolicyVersionMismatch(self.worker_id, self.engine.version, expected_version)

    def _render(self, prompt: Prompt) -> list[int]:
        tok = self.engine.tokenizer
        text = tok.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def _prefix_len(self, prompt: Prompt, ids: list[int]) -> int:
        head = tuple((m["role"], m["content"]) for m in prompt.messages[:-1])
        if head not in self._heads:
            if len(self._heads) >= 64:
                self._heads.clear()
            self._heads[head] = head_token_ids(self.engine.tokenizer, prompt.messages)
        k = len(self._heads[head])
        return k if k and ids[:k] == self._heads[head] else 0

    def _rebuild_env(self) -> None:
        from sparring.envs.base import make_env

        try:
            self.env.close()
        except Exception:  # noqa: BLE001 - the old referee is broken anyway
            pass
        self.env = make_env(self.cfg.env.name, self.cfg.env.options)
        self.env_rebuilds += 1

    def _score(self, prompts: list[Prompt], texts: list[str]) -> tuple[list[Any], float]:
        started = time.perf_counter()
        try:
            scores = self.env.score_batch(prompts, texts)
        except Exception:  # noqa: BLE001 - a crashed referee: rebuild it here and score again
            self._rebuild_env()
            scores = self.env.score_batch(prompts, texts)
        return scores, time.perf_counter() - started

    def _samples(self, prompt: Prompt, prompt_ids: list[int], group: list[Completion], scored: tuple[list[Any], float], gen_seconds: float, step: int) -> list[Sample]:
        scores, reward_seconds = scored
        n = len(group)
        return [
            Sample(
                sample_id=f"{step}-{prompt.id}-{k}", prompt_id=prompt.id, prompt_ids=prompt_ids,
                completion=c.text, completion_ids=c.ids, logprobs=c.logprobs, reward=float(s.total),
                components={k2: float(v) for k2, v in s.components.items()}, passed=bool(s.passed),
                policy_version=self.engine.version, worker_id=self.worker_id,
                gen_seconds=gen_seconds / n, reward_seconds=reward_seconds / n,
            )
            for k, (c, s) in enumerate(zip(group, scores))
        ]

    def _group(self, prompt: Prompt, n: int, sampling: SamplingParams, step: int) -> tuple[list[int], list[Completion], float]:
        ids = self._render(prompt)
        seeds = [completion_seed(sampling.seed, step, prompt.id, k) for k in range(n)]
        started = time.perf_counter()
        group = self.engine.generate([ids], n, sampling, [seeds])[0]
        return ids, group, time.perf_counter() - started

    def generate(self, prompts: list[dict[str, Any]], n: int, sampling: SamplingParams, step: int, expected_version: int | None = None) -> list[Sample]:
        """``n`` scored completions per prompt, in (prompt, k) order.  The engine decodes as many
        groups together as it batches (``Engine.groups_per_call``); the referee scores each batch on
        its thread while the next one is generated."""
        self._check_version(expected_version)
        parsed = [Prompt.from_dict(d) for d in prompts]
        per_call = self.engine.groups_per_call(n)
        pending = []
        for lo in range(0, len(parsed), per_call):
            batch = parsed[lo : lo + per_call]
            ids = [self._render(p) for p in batch]
            seeds = [[completion_seed(sampling.seed, step, p.id, k) for k in range(n)] for p in batch]
            started = time.perf_counter()
            groups = self.engine.generate(ids, n, sampling, seeds, prefix_lens=[self._prefix_len(p, i) for p, i in zip(batch, ids)])
            gen_seconds = (time.perf_counter() - started) / len(batch)
            for p, i, g in zip(batch, ids, groups):
                pending.append((p, i, g, gen_seconds, self._scorer.submit(self._score, [p] * n, [c.text for c in g])))
        out: list[Sample] = []
        for p, i, g, gen_seconds, future in pending:
            out += self._samples(p, i, g, future.result(), gen_seconds, step)
        return out

    # -- chess self-play -------------------------------------------------------------------------

    def selfplay_groups(self, n_positions: int, k: int, opponent: str, step: int, sampling: SamplingParams,
                        game_ids: list[int], expected_version: int | None = None, opponent_update: Any = None) -> dict[str, Any]:
        """Play games; every position the policy faced becomes a group of ``k`` scored candidates.

        See ``sparring.rl.selfplay_rollout`` for the rules; returns ``{"samples", "games"}``.
        """
        from sparring.rl.selfplay_rollout import play_selfplay_groups

        self._check_version(expected_version)
        return play_selfplay_groups(self, n_positions, k, opponent, step, sampling, game_ids, opponent_update)

    def close(self) -> None:
        self._scorer.shutdown(wait=False)
        self.env.close()
        self.engine.close()
