"""The environment interface every task implements, and the helpers to build one from config.

An env gives prompts and scores completions::

    env = make_env("jokes", {"corpus": "builtin"})
    for prompt in env.prompts("train", seed=0): ...
    score = env.score(prompt, "Q: ...?\\nA: ...")   # Score(total, components, passed, details)

Multi-step envs (chess games) also follow the Gymnasium shape ``reset(seed) -> (obs, info)`` and
``step(action) -> StepResult``.  Each env declares its options as a pydantic model (``Options``),
so a config's ``env.options`` is validated with the same field descriptions and error messages as
the rest of the config.  Exercised by ``pytest tests/envs``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Iterator

from pydantic import BaseModel, ConfigDict, ValidationError

from sparring.errors import UserInputError
from sparring.registry import ENVS
from sparring.types import Prompt, Score, StepResult


class EnvOptions(BaseModel):
    """Base for an env's options; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Env(ABC):
    """A task: prompts in, scored completions out. Referees never raise on model output."""

    Options: ClassVar[type[EnvOptions]] = EnvOptions
    name: ClassVar[str] = "env"

    def __init__(self, options: EnvOptions | None = None):
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def prompts(self, split: str = "train", seed: int = 0) -> Iterator[Prompt]:
        """Yield prompts for ``split`` ("train", "validation" or "test"), deterministic in ``seed``."""

    @abstractmethod
    def score(self, prompt: Prompt, completion: str) -> Score:
        """Score one completion. Must not raise on any string the model can produce."""

    @classmethod
    def referee_note(cls) -> str | None:
        """What a reader of this env's pass rates should know about the referee's own accuracy,
        measured when asked (the report card prints it under the before/after table); None: nothing."""
        return None

    def make_prompt(self, text: str | None = None, **fields: Any) -> Prompt:
        """Build one prompt from user-facing fields (used by `sparring score`); envs override it
        to accept their own fields (chess: ``fen``; qa: ``question``/``answer``; jokes: ``topic``)."""
        if not text:
            raise UserInputError("no prompt text given", where="--prompt", fix="pass --prompt \"...\"")
        return Prompt(id="cli", messages=({"role": "user", "content": text},), meta=dict(fields))

    def score_batch(self, prompts: list[Prompt], completions: list[str]) -> list[Score]:
        """Score many completions; envs with batched referees override this."""
        return [self.score(p, c) for p, c in zip(prompts, completions)]

    def warm_up(self) -> None:
        """Load now what the first ``score`` would load (lexicons, indexes): rollout actors call it
        in their referee thread at start, so no training step pays it.  Default: nothing."""

    def close(self) -> None:
        """Release external resources (engine processes)."""

    # Gymnasium-shaped API for multi-step envs; single-turn envs do not implement it.
    def reset(self, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError(f"env {self.name!r} is single-turn: use prompts()/score()")

    def step(self, action: str) -> StepResult:
        raise NotImplementedError(f"env {self.name!r} is single-turn: use prompts()/score()")

    def __enter__(self) -> "Env":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def env_class(name: str) -> type[Env]:
    return ENVS.get(name, where="env.name")


def env_referee_note(name: str | None) -> str | None:
    """``Env.referee_note`` of the env called ``name``; None for an env sparring does not know."""
    from sparring.errors import UserInputError

    try:
        return env_class(name).referee_note() if name else None
    except UserInputError:
        return None


def parse_env_options(name: str, options: dict[str, Any] | None, where: str = "env.options") -> EnvOptions:
    cls = env_class(name)
    try:
        return cls.Options(**(options or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        valid = ", ".join(cls.Options.model_fields)
        raise UserInputError(
            f"{err['msg']} (value {err.get('input')!r})",
            where=f"{where}.{loc}",
            fix=f"valid options for env {name!r}: {valid}",
        ) from None


def make_env(name: str, options: dict[str, Any] | EnvOptions | None = None) -> Env:
    """Build a registered env by name from a dict (validated) or an Options instance."""
    cls = env_class(name)
    if not isinstance(options, EnvOptions):
        options = parse_env_options(name, options)
    return cls(options)
