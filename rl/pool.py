"""``RolloutPool``: the driver-side handle on the rollout actors — dispatch, fault tolerance, verified sync.

This is the narrow interface between the rollout side and the learner (GRPO/DPO)::

    from sparring.rl.pool import RolloutPool, StalePolicyError
    from sparring.rl.policy_sync import make_policy_update, learner_probe
    from sparring.rl.engines.base import SamplingParams

    start_ray(cfg.ray, address=args.ray_address)          # sparring.raycluster (or the pool starts a local one)
    pool = RolloutPool(cfg, base_model_dir)               # cfg: RunConfig; base_model_dir: HF dir of the base weights
    sampling = SamplingParams.from_config(cfg.rl.rollout, cfg.seed)

    # version 0 = the policy before the first update (e.g. base + SFT adapter); sync it first
    update = make_policy_update(peft_model, tokenizer, 0, pool.engine, work_dir)
    pool.sync(0, update, learner_probe(peft_model, tokenizer, pool.probe_ids, pool.probe_start))

    samples = pool.generate(prompts, n=cfg.rl.num_generations, sampling=sampling, step=step)
    #   list[Sample] ordered by (prompt, k); sample_id == f"{step}-{prompt.id}-{k}"; each carries
    #   prompt_ids, completion_ids (ending in EOS when finish == stop), logprobs (rollout policy,
    #   log_softmax(logits/temperature) at the sampled token), reward, components, passed,
    #   policy_version, worker_id, gen_seconds, reward_seconds.
    pool.on_shard_done = lambda worker, done, total: ...   # optional progress observer
    pool.last_stats   # {"wall_seconds", "gen_seconds", "reward_seconds", "completion_tokens",
                      #  "tokens_per_second", "redispatched", "duplicates_dropped", "restarts", "failures", ...}

    if pool.needs_sync(version):                          # max_staleness: sync when the lag exceeds it
        pool.sync(version, make_policy_update(...), learner_probe(...))   # -> list[SyncReport]
    pool.staleness(version)                               # learner version - worker version

    samples, games = pool.selfplay(n_positions, k, opponent, step, sampling)   # chess self-play groups
    pool.add_opponent(version, update)                    # keep a checkpoint for opponent="checkpoint:<version>"
    pool.close()

``sync`` puts the update in the object store once, has every worker load it, then verifies: each
worker's reported version and checksum must equal the learner's, and the worker's logprobs on the
fixed probe tokens must be within ``cfg.rl.probe_tolerance`` (mean absolute gap) of the learner's —
for a LoRA policy, what the adapter adds on each side, with the engine's measured numerics (its base
against the learner's base: q8_0 drifts from fp32) allowed on top (``policy_sync.ProbeCheck``);
otherwise ``StalePolicyError`` names the worker, its version and the gap, and the run stops rather
than train on samples from a stale policy.  ``last_sync_stats["probe_separation"]`` is the gap
between the learner's new and previous probe: when it is below the tolerance (plus the engine's
numerics, ``probe_base_noise``) a worker one version behind would not be visible in the probe —
the version and checksum checks still catch it; the probe catches an update that never took effect.

Prompts go out in shards to whichever worker is free: two per worker, or, for an engine that
batches (llamacpp, ``rl.rollout.batch_rows``), as many as fill one of its batches while every worker
still gets one (``groups_per_call``).  Fault tolerance: a worker that dies mid-batch
is restarted by Ray (``max_restarts``); its shard is retried (by Ray with ``max_task_retries``, or
re-dispatched here); a restarted worker holds the base weights, refuses work for another version
(``PolicyVersionMismatch``) and is re-synced (and verified) before it gets the shard again.
Results are deduplicated by ``sample_id`` and the set must equal exactly what was asked.

Exercised by ``pytest tests/rl/test_pool.py tests/rl/test_weight_sync.py tests/rl/test_fault_tolerance.py``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

from sparring.errors import SparringError, UserInputError
from sparring.registry import ENGINES
from sparring.rl.engines.base import SamplingParams
from sparring.rl.policy_sync import PolicyUpdate, Probe, StalePolicyError, as_probe, compare_probes, probe_gap, probe_token_ids
from sparring.rl.worker import PolicyVersionMismatch, RolloutWorker, SyncReport
from sparring.seeding import derive_seed
from sparring.types import Prompt, Sample

__all__ = ["RolloutPool", "StalePolicyError", "SyncReport"]
MAX_SHARD_ATTEMPTS = 4


class RolloutPool:
    """Rollout actors behind one object; see the module docstring for the interface."""

    def __init__(self, cfg: Any, base_model_dir: str | Path, *, engine: str | None = None, num_workers: int | None = None,
                 work_dir: str | Path | None = None, scheduling_strategy: Any = "SPREAD",
                 startup_timeout_s: float = 600.0, task_timeout_s: float = 1800.0, restart_timeout_s: float = 300.0):
        import ray

        from sparring.raycluster import start_ray

        rollout = cfg.rl.rollout
        self.cfg = cfg
        self.engine = engine or rollout.engine
        ENGINES.get(self.engine, where="rl.rollout.engine").check_available()
        self.base_model_dir = Path(base_model_dir).resolve()
        if not (self.base_model_dir / "config.json").is_file():
            raise UserInputError(f"{self.base_model_dir} is not an HF model directory", where="base_model_dir", fix="pass sparring.models.materialize(cfg.model.name)")
        self.task_timeout_s, self.restart_timeout_s = task_timeout_s, restart_timeout_s
        if not ray.is_initialized():
            start_ray(cfg.ray)
        self.engine_options = self._engine_options(work_dir)
        count = num_workers or rollout.num_workers
        self.worker_ids = [f"rollout-{i}" for i in range(count)]
        actor_options = dict(num_cpus=rollout.num_cpus_per_worker, num_gpus=rollout.num_gpus_per_worker,
                             max_restarts=rollout.max_restarts, max_task_retries=rollout.max_task_retries,
                             scheduling_strategy=scheduling_strategy)
        cfg_dict = cfg.model_dump(mode="json")
        self.workers = [RolloutWorker.options(**actor_options).remote(wid, cfg_dict, str(self.base_model_dir), self.engine, self.engine_options)
                        for wid in self.worker_ids]
        try:
            self.worker_info = ray.get([w.ping.remote() for w in self.workers], timeout=startup_timeout_s)
        except Exception as exc:
            self.close()
            raise SparringError(f"rollout workers failed to start: {str(exc).splitlines()[0]}") from exc
        from transformers import AutoTokenizer

        self.probe_ids, self.probe_start = probe_token_ids(AutoTokenizer.from_pretrained(self.base_model_dir))
        self.version = -1
        self._update_ref: Any = None
        self._update_checksum = ""
        self._learner_probe: Probe | None = None
        self._opponents: dict[int, Any] = {}
        self.last_stats: dict[str, Any] = {}
        # observer called after each shard's result is in: (worker index, shards done, shards total);
        # progress displays use it (and the fault-tolerance test, to kill a worker mid-batch)
        self.on_shard_done: Callable[[int, int, int], None] | None = None
        self.last_sync_stats: dict[str, Any] = {}
        self.restarts = 0

    def _engine_options(self, work_dir: str | Path | None) -> dict[str, Any]:
        rollout = self.cfg.rl.rollout
        options: dict[str, Any] = {"dtype": self.cfg.model.dtype, "n_ctx": self.cfg.model.max_seq_len + rollout.max_new_tokens,
                                   "max_new_tokens": rollout.max_new_tokens, "n_seq_max": min(64, max(self.cfg.rl.num_generations, rollout.batch_rows))}
        if self.engine == "llamacpp":
            from sparring.rl.engines.gguf_policy import cached_base_gguf

            options["base_gguf"] = str(cached_base_gguf(self.base_model_dir, rollout.gguf_quant))
            options["quant"] = rollout.gguf_quant
            options["flash_attn"] = rollout.flash_attn
        return options

    # -- versions --------------------------------------------------------------------------------

    def staleness(self, learner_version: int) -> int:
        return max(0, learner_version - self.version)

    def needs_sync(self, learner_version: int) -> bool:
        """True when the workers lag the learner by more than ``rl.max_staleness`` versions."""
        return self.staleness(learner_version) > self.cfg.rl.max_staleness

    # -- weight sync -----------------------------------------------------------------------------

    def sync(self, version: int, update: PolicyUpdate, learner_probe: Probe | Sequence[float] | Callable[[], Probe]) -> list[SyncReport]:
        """Push ``update`` to every worker and verify it arrived and computes like the learner.

        ``learner_probe`` may be a callable: it is then computed while the workers load the update
        and run their own probe (each worker's probe is queued right behind its load)."""
        import ray

        if update.version != version:
            raise ValueError(f"sync version {version} but the update is version {update.version}")
        started = time.perf_counter()
        previous = self._learner_probe
        self._update_ref = ray.put(update)
        load_refs = [w.load_policy.remote(version, self._update_ref) for w in self.workers]
        probe_refs = [w.probe.remote(self.probe_ids, self.probe_start) for w in self.workers]
        learner_probe = as_probe(learner_probe() if callable(learner_probe) else learner_probe)
        self.version, self._update_checksum, self._learner_probe = version, update.checksum, learner_probe
        reports, probes = [], []
        for i, (load_ref, probe_ref) in enumerate(zip(load_refs, probe_refs)):
            try:
                report, probe = ray.get(load_ref, timeout=self.task_timeout_s), ray.get(probe_ref, timeout=self.task_timeout_s)
            except ray.exceptions.RayActorError:
                self._recover(i)  # restarted, re-loaded and verified inside; ask its report and probe again
                report, probe = ray.get(self.workers[i].report.remote()), ray.get(self.workers[i].probe.remote(self.probe_ids, self.probe_start))
            reports.append(report)
            probes.append(probe)
        load_seconds = time.perf_counter() - started
        reports = self.verify(version, update.checksum, learner_probe, reports, probes=probes)
        self.last_sync_stats = {
            "version": version, "kind": update.kind, "nbytes": update.nbytes,
            "seconds": round(time.perf_counter() - started, 4), "load_seconds": round(load_seconds, 4),
            "max_probe_gap": max(r.probe_gap or 0.0 for r in reports),
            "max_probe_gap_absolute": max(r.probe_gap_absolute or 0.0 for r in reports),
            "probe_base_noise": max((r.probe_base_noise for r in reports if r.probe_base_noise is not None), default=None),
            "probe_separation": probe_gap(learner_probe.policy, previous.policy) if previous is not None else None,
        }
        return reports

    def verify(self, version: int, checksum: str, learner_probe: Probe | Sequence[float], reports: list[SyncReport] | None = None,
               workers: Sequence[int] | None = None, probes: Sequence[Any] | None = None) -> list[SyncReport]:
        """Check version, checksum and the logprob probe of every worker (or of ``workers``);
        ``reports``/``probes``: already fetched from those workers (else asked for here)."""
        import ray

        indices = list(range(len(self.workers))) if workers is None else list(workers)
        if reports is None:
            reports = ray.get([self.workers[i].report.remote() for i in indices])
        if probes is None:
            probes = ray.get([self.workers[i].probe.remote(self.probe_ids, self.probe_start) for i in indices])
        tolerance = self.cfg.rl.probe_tolerance
        problems = []
        for report, probe in zip(reports, probes):
            check = compare_probes(probe, learner_probe)
            report.probe_gap, report.probe_gap_absolute, report.probe_base_noise = check.decisive, check.gap, check.base_noise
            wrong = []
            if report.version != version:
                wrong.append(f"reports policy version {report.version} (learner: {version})")
            if report.checksum != checksum:
                wrong.append(f"loaded checksum {report.checksum[:12] or 'none'} (learner: {checksum[:12]})")
            problem = check.problem(tolerance)
            if problem:
                wrong.append(problem)
            if wrong:
                problems.append((report, wrong))
        if problems:
            first = problems[0][0]
            lines = [f"{r.worker_id} (node {r.node_id[:8]}, pid {r.pid}): " + "; ".join(w) for r, w in problems]
            raise StalePolicyError(
                "rollout worker(s) run a stale policy, stopping instead of training on it:\n  " + "\n  ".join(lines)
                + "\nfix: check the weight update path of the rollout engine, or raise rl.probe_tolerance if the engine's numerics differ (quantized GGUF)",
                worker_id=first.worker_id, version=first.version, gap=first.probe_gap,
            )
        return reports

    def probe_gaps(self, learner_probe: Probe | Sequence[float]) -> dict[str, float]:
        """``{worker_id: decisive probe gap}`` (see ``ProbeCheck``), without raising."""
        import ray

        probes = ray.get([w.probe.remote(self.probe_ids, self.probe_start) for w in self.workers])
        return {wid: compare_probes(p, learner_probe).decisive for wid, p in zip(self.worker_ids, probes)}

    def add_opponent(self, version: int, update: PolicyUpdate) -> None:
        """Keep a policy version for self-play against ``opponent="checkpoint:<version>"``."""
        import ray

        self._opponents[version] = ray.put(update)

    # -- recovery --------------------------------------------------------------------------------

    def _recover(self, i: int) -> None:
        """Wait for Ray to restart worker ``i``, then bring it to the current version, verified."""
        import ray

        try:
            info = ray.get(self.workers[i].ping.remote(), timeout=self.restart_timeout_s)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            raise SparringError(f"rollout worker {self.worker_ids[i]} did not come back after a failure ({type(exc).__name__}); "
                                f"max_restarts={self.cfg.rl.rollout.max_restarts} may be exhausted") from exc
        if info["pid"] != self.worker_info[i]["pid"]:
            self.restarts += 1
            self.worker_info[i] = info
        self._resync(i)

    def _resync(self, i: int) -> None:
        import ray

        if self.version < 0 or self._update_ref is None:
            return
        report = ray.get(self.workers[i].load_policy.remote(self.version, self._update_ref), timeout=self.task_timeout_s)
        self.verify(self.version, self._update_checksum, self._learner_probe, [report], workers=[i])

    # -- dispatch --------------------------------------------------------------------------------

    def _run_shards(self, shards: list[Any], submit: Callable[[Any, Any], Any]) -> tuple[list[Any], dict[str, Any]]:
        """Run every shard on some worker; re-dispatch after failures. Returns results in shard order."""
        import ray

        todo = deque(range(len(shards)))
        attempts = [0] * len(shards)
        idle = deque(range(len(self.workers)))
        inflight: dict[Any, tuple[int, int]] = {}
        results: list[Any] = [None] * len(shards)
        counts: dict[str, Any] = {"redispatched": 0, "restarts_before": self.restarts}
        failures: list[str] = []
        done = 0
        while todo or inflight:
            while todo and idle:
                s, w = todo.popleft(), idle.popleft()
                attempts[s] += 1
                if attempts[s] > MAX_SHARD_ATTEMPTS:
                    raise SparringError(f"shard {s} failed {MAX_SHARD_ATTEMPTS} times; giving up")
                inflight[submit(self.workers[w], shards[s])] = (w, s)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=self.task_timeout_s)
            if not ready:
                raise SparringError(f"no rollout result within {self.task_timeout_s:.0f} s from {sorted(self.worker_ids[w] for w, _ in inflight.values())}")
            w, s = inflight.pop(ready[0])
            try:
                results[s] = ray.get(ready[0])
            except (PolicyVersionMismatch, ray.exceptions.RayActorError) as exc:
                counts["redispatched"] += 1
                failures.append(f"{self.worker_ids[w]}: {type(exc).__name__}")
                todo.appendleft(s)
                self._recover(w)
            else:
                done += 1
                if self.on_shard_done is not None:
                    self.on_shard_done(w, done, len(shards))
            idle.append(w)
        counts["restarts"] = self.restarts - counts.pop("restarts_before")
        counts["failures"] = failures
        return results, counts

    def groups_per_call(self, n: int) -> int:
        """Prompts' groups of ``n`` a worker's engine decodes as one batch (``rl.rollout.batch_rows``)."""
        if self.engine != "llamacpp":
            return 1
        from sparring.rl.engines.llamacpp_engine import groups_per_batch

        return groups_per_batch(self.engine_options["n_seq_max"], n)

    def _shards(self, items: list[Any], per_call: int = 1) -> list[list[Any]]:
        """Two shards per worker (a faster worker takes more), but a shard fills an engine batch of
        ``per_call`` items as long as every worker still gets one."""
        size = max(1, math.ceil(len(items) / (2 * len(self.workers))))
        size = max(size, min(per_call, math.ceil(len(items) / len(self.workers))))
        return [items[i : i + size] for i in range(0, len(items), size)]

    def generate(self, prompts: Sequence[Prompt], n: int, sampling: SamplingParams, step: int) -> list[Sample]:
        """``n`` scored completions for every prompt, ordered by (prompt, k); exactly once each."""
        ids = [p.id for p in prompts]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"prompt ids must be unique within a step (sample ids are step-prompt-k): {dup[:5]}")
        started = time.perf_counter()
        version = self.version
        results, counts = self._run_shards(
            self._shards(list(prompts), self.groups_per_call(n)),
            lambda w, shard: w.generate.remote([p.to_dict() for p in shard], n, sampling, step, version),
        )
        expected = [f"{step}-{pid}-{k}" for pid in ids for k in range(n)]
        samples, dropped = self._account([s for r in results for s in r], expected)
        self.last_stats = self._stats(samples, started, counts, dropped)
        return samples

    def selfplay(self, n_positions: int, k: int, opponent: str, step: int, sampling: SamplingParams,
                 opponent_version: int | None = None) -> tuple[list[Sample], list[dict[str, Any]]]:
        """Chess self-play: ``n_positions`` groups of ``k`` Stockfish-scored candidates, plus game records."""
        opponent_ref = None
        if opponent.startswith("checkpoint"):
            version = opponent_version if opponent_version is not None else int(opponent.partition(":")[2] or -1)
            if version not in self._opponents:
                raise UserInputError(f"no checkpoint version {version} in the opponent pool (have {sorted(self._opponents)})", where="opponent", fix="call pool.add_opponent(version, update) first")
            opponent_ref = self._opponents[version]
        workers = len(self.workers)
        sizes = [n_positions // workers + (1 if j < n_positions % workers else 0) for j in range(workers)]
        shards = [(j, size) for j, size in enumerate(sizes) if size]
        started = time.perf_counter()
        version = self.version

        def submit(worker: Any, shard: tuple[int, int]) -> Any:
            j, size = shard
            game_ids = [derive_seed(sampling.seed, "selfplay-game", step, j, g) for g in range(2 * size + 2)]
            return worker.selfplay_groups.remote(size, k, opponent, step, sampling, game_ids, version, opponent_ref)

        results, counts = self._run_shards(shards, submit)
        samples = [s for r in results for s in r["samples"]]
        expected = [s.sample_id for s in samples]  # positions are discovered by play: check uniqueness and group shape
        samples, dropped = self._account(samples, list(dict.fromkeys(expected)))
        groups = {}
        for s in samples:
            groups.setdefault(s.prompt_id, []).append(s)
        if len(groups) != n_positions or any(len(g) != k for g in groups.values()):
            raise SparringError(f"self-play returned {len(groups)} groups (asked {n_positions}) with sizes {sorted({len(g) for g in groups.values()})} (asked {k})")
        self.last_stats = self._stats(samples, started, counts, dropped)
        games = [g for r in results for g in r["games"]]
        self.last_stats["games"] = len(games)
        return samples, games

    def _account(self, samples: list[Sample], expected: list[str]) -> tuple[list[Sample], int]:
        by_id: dict[str, Sample] = {}
        dropped = 0
        for s in samples:
            if s.sample_id in by_id:
                dropped += 1
                continue
            by_id[s.sample_id] = s
        missing = [i for i in expected if i not in by_id]
        extra = sorted(set(by_id) - set(expected))
        if missing or extra:
            raise SparringError(f"sample accounting failed: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})")
        stale = [s for s in by_id.values() if s.policy_version != self.version]
        if stale:
            raise StalePolicyError(f"{len(stale)} samples from policy version {stale[0].policy_version} (pool: {self.version}), e.g. from {stale[0].worker_id}",
                                   worker_id=stale[0].worker_id, version=stale[0].policy_version)
        return [by_id[i] for i in expected], dropped

    def _stats(self, samples: list[Sample], started: float, counts: dict[str, Any], dropped: int) -> dict[str, Any]:
        wall = time.perf_counter() - started
        tokens = sum(len(s.completion_ids) for s in samples)
        return {
            "wall_seconds": round(wall, 4),
            "gen_seconds": round(sum(s.gen_seconds for s in samples), 4),
            "reward_seconds": round(sum(s.reward_seconds for s in samples), 4),
            "completion_tokens": tokens,
            "tokens_per_second": round(tokens / wall, 2) if wall > 0 else 0.0,
            "samples": len(samples),
            "duplicates_dropped": dropped,
            "workers": len(self.workers),
            **counts,
        }

    def close(self) -> None:
        """Stop the actors (the Ray cluster stays up; ``sparring.raycluster.stop_ray`` ends it)."""
        import ray

        for w in getattr(self, "workers", []):
            try:
                ray.kill(w, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.workers = []

    def __enter__(self) -> "RolloutPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
