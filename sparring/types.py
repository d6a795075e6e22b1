"""Small value types shared by envs, rollout workers, evaluators and exporters.

``Prompt`` and ``Score`` are the env interface (``Env.prompts`` / ``Env.score``); ``StepResult``
is the Gymnasium-shaped result of a multi-step env; ``Sample`` is what a rollout worker returns;
``Artifact`` is what an exporter returns.  Exercised by ``pytest tests/sparring/test_types.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One task instance.

    ``messages`` is the chat the model sees (system + user); ``text`` is the plain user request;
    ``meta`` carries what the referee needs (a FEN, a reference answer, a keyword...).
    """

    id: str
    messages: tuple[dict[str, str], ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "messages": [dict(m) for m in self.messages], "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Prompt":
        return cls(id=d["id"], messages=tuple(d["messages"]), meta=dict(d.get("meta", {})))


@dataclass
class Score:
    """A referee's verdict: ``total`` (the reward) plus named components, every one logged.

    ``passed`` is the env's pass/fail notion (joke valid, move legal, answer correct);
    ``details`` holds human-readable reasons (why a rule failed).
    """

    total: float
    components: dict[str, float] = field(default_factory=dict)
    passed: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.total):
            raise ValueError(f"Score.total must be finite, got {self.total}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepResult:
    """Gymnasium-shaped result of ``env.step(action)``."""

    observation: Any
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    """One generated completion with everything the learner and the logs need."""

    sample_id: str
    prompt_id: str
    prompt_ids: list[int]
    completion: str
    completion_ids: list[int]
    logprobs: list[float]
    reward: float
    components: dict[str, float]
    passed: bool
    policy_version: int
    worker_id: str
    gen_seconds: float = 0.0
    reward_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Artifact:
    """An exported file or directory, its format, its checksum and its verification record."""

    path: str
    format: str
    sha256: str
    size_bytes: int
    verify: dict[str, Any]

    @property
    def verified(self) -> bool:
        return bool(self.verify.get("passed"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verified"] = self.verified
        return d
