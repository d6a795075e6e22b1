"""What the GRPO, DPO and chess self-play loops share: the session (config, run, tracker, pool,
learner model), the prompt book, per-step metrics with their names, and the progress bar.

Metric names are the same in metrics.jsonl and W&B (``Tracker.log``):

- ``rl/reward``, ``rl/reward/<component>``, ``rl/pass_rate`` (text envs) or ``rl/legal_rate``
  (chess), ``rl/kl``, ``rl/entropy``, ``rl/staleness``, ``rl/policy_version``, ``rl/loss``,
  ``rl/grad_norm``, ``rl/lr``, ``rl/is_weight``, ``rl/logprob_gap``, ``rl/samples_per_s``;
- ``time/generate_s``, ``time/reward_s``, ``time/learn_s``, ``time/sync_s``, ``time/step_s``:
  the step's wall time split in four (reward time is the actors' scoring share of the rollout).

Samples go to ``tracker.log_table("rl/samples", ...)``.  Exercised by ``pytest tests/rl``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.progress import StepProgress
from sparring.rundir import RunDir
from sparring.types import Prompt, Sample

# TRL log key -> sparring metric name
TRL_LOG_NAMES = {
    "loss": "rl/loss",
    "grad_norm": "rl/grad_norm",
    "learning_rate": "rl/lr",
    "kl": "rl/kl",
    "entropy": "rl/entropy",
    "clip_ratio/region_mean": "rl/clip_ratio",
    "completions/mean_length": "rl/completion_tokens",
    "frac_reward_zero_std": "rl/zero_std_groups",
    "reward_std": "rl/reward_std",
    # DPO
    "rewards/margins": "rl/dpo_margin",
    "rewards/accuracies": "rl/dpo_accuracy",
    "rewards/chosen": "rl/dpo_reward_chosen",
    "rewards/rejected": "rl/dpo_reward_rejected",
}


def messages_key(messages: Any) -> str:
    """A stable key for a chat (list of {role, content}) as TRL hands it back."""
    return json.dumps([{"role": m["role"], "content": m["content"]} for m in messages], sort_keys=True, ensure_ascii=False)


class PromptBook:
    """The env's prompts, findable again from the chat TRL hands to ``rollout_func``."""

    def __init__(self, prompts: Sequence[Prompt]):
        self.by_key: dict[str, Prompt] = {}
        for p in prompts:  # identical chats are one prompt (their referee input is the same)
            self.by_key.setdefault(messages_key(p.messages), p)
        self.prompts = list(self.by_key.values())
        if not self.prompts:
            raise UserInputError("the env gave no training prompts", where="env.options", fix="check the env's topics/positions options")

    def find(self, messages: Any) -> Prompt:
        key = messages_key(messages)
        if key not in self.by_key:
            raise KeyError(f"rollout_func got a prompt that is not in the training set: {key[:120]}...")
        return self.by_key[key]

    def dataset(self):
        from datasets import Dataset

        return Dataset.from_dict({"prompt": [[dict(m) for m in p.messages] for p in self.prompts], "prompt_id": [p.id for p in self.prompts]})


@dataclass
class RLSession:
    """One RL run in progress."""

    cfg: RunConfig
    run: RunDir
    tracker: Any
    pool: Any
    env: Any
    model: Any
    tokenizer: Any
    base_dir: Path
    init_adapter: Path | None
    resume_from: Path | None = None
    resume_state: Any = None
    ray_info: Any = None
    exporter: Any = None
    console: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stage_dir(self) -> Path:
        return self.run.stage_dir("rl")

    @property
    def pass_metric(self) -> str:
        return "rl/legal_rate" if self.cfg.env.name == "chess" else "rl/pass_rate"


def training_reward(sample: Sample, name: str = "total") -> float:
    """The reward the learner optimizes (``rl.reward``): the referee's total or one component."""
    if name == "total":
        return float(sample.reward)
    if name not in sample.components:
        raise UserInputError(f"the referee gives no component {name!r} (it gives: {', '.join(sorted(sample.components))})",
                             where="rl.reward", fix="use total or one of those component names")
    return float(sample.components[name])


def sample_metrics(samples: Sequence[Sample], pass_metric: str, learner_version: int, reward: str = "total") -> dict[str, float]:
    """Reward, per-component means, pass/legal rate and staleness of one batch of samples."""
    if not samples:
        return {}
    n = len(samples)
    out: dict[str, float] = {"rl/reward": sum(training_reward(s, reward) for s in samples) / n}
    if reward != "total":
        out["rl/reward/total"] = sum(s.reward for s in samples) / n
    comps: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        for k, v in s.components.items():
            if isinstance(v, (int, float)):
                comps[k].append(float(v))
    for k, vals in sorted(comps.items()):
        out[f"rl/reward/{k}"] = sum(vals) / len(vals)
    if pass_metric == "rl/legal_rate" and "legal" in comps:
        out[pass_metric] = out["rl/reward/legal"]
    else:
        out[pass_metric] = sum(1.0 for s in samples if s.passed) / n
    out["rl/staleness"] = float(max(learner_version - min(s.policy_version for s in samples), 0))
    out["rl/policy_version"] = float(max(s.policy_version for s in samples))
    out["rl/num_samples"] = float(n)
    return out


def sample_rows(samples: Sequence[Sample], prompts: dict[str, Prompt], limit: int) -> list[dict[str, Any]]:
    rows = []
    for s in samples[:limit]:
        p = prompts.get(s.prompt_id)
        rows.append({
            "sample_id": s.sample_id,
            "prompt": p.text if p is not None else s.prompt_id,
            "completion": s.completion,
            "reward": round(s.reward, 4),
            "passed": s.passed,
            "policy_version": s.policy_version,
            "worker": s.worker_id,
        })
    return rows


def actor_reward_share(samples: Sequence[Sample], num_workers: int, wall: float) -> float:
    """The part of a rollout's wall time the actors spent scoring (their summed reward seconds
    spread over the workers, at most the wall time)."""
    total = sum(s.reward_seconds for s in samples)
    return min(total / max(num_workers, 1), wall)


class StepClock:
    """Wall-time split of one optimizer step: generate, reward, learn (the rest), sync."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.perf_counter()
        self.generate = self.reward = self.sync = 0.0

    def add_rollout(self, wall: float, reward_share: float) -> None:
        self.reward += reward_share
        self.generate += max(wall - reward_share, 0.0)

    def add_sync(self, seconds: float) -> None:
        self.sync += seconds

    def split(self) -> dict[str, float]:
        total = time.perf_counter() - self.started
        learn = max(total - self.generate - self.reward - self.sync, 0.0)
        return {"time/generate_s": self.generate, "time/reward_s": self.reward, "time/learn_s": learn, "time/sync_s": self.sync, "time/step_s": total}


class RLProgress(StepProgress):
    """``StepProgress`` over RL steps (or DPO rounds), showing the latest reward, pass rate and step time."""

    def update(self, step: int, metrics: dict[str, Any] | None = None, pass_metric: str = "rl/pass_rate") -> None:  # type: ignore[override]
        metrics = metrics or {}
        parts = []
        if metrics.get("rl/reward") is not None:
            parts.append(f"reward {metrics['rl/reward']:.3f}")
        if metrics.get(pass_metric) is not None:
            parts.append(f"{pass_metric.split('/')[-1]} {metrics[pass_metric]:.2f}")
        if metrics.get("time/step_s") is not None:
            parts.append(f"{metrics['time/step_s']:.1f}s/step")
        super().update(step, "  ".join(parts))


def sync_policy(session: RLSession, model: Any, version: int) -> float:
    """Push the learner's current policy to every worker as ``version`` and verify it (probe);
    returns the seconds it took.  A worker that fails the check stops the run (StalePolicyError)."""
    from sparring.rl.policy_sync import learner_probe, make_policy_update

    started = time.perf_counter()
    cfg = session.cfg
    probe_ids, probe_start = session.pool.probe_ids, session.pool.probe_start
    update = make_policy_update(model, session.tokenizer, version, cfg.rl.rollout.engine, session.stage_dir / ".sync", quant=cfg.rl.rollout.gguf_quant)

    def probe() -> Any:  # computed while the workers load the update and run their probe
        return learner_probe(model, session.tokenizer, probe_ids, probe_start, base_cache=session.extra.setdefault("probe_base_cache", {}))

    reports = session.pool.sync(version, update, probe)
    session.extra["last_sync"] = reports
    return time.perf_counter() - started
