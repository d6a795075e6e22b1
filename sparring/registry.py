"""Registries by name for envs, rewards, engines and exporters.

A config names a component (``env.name: chess``); adding one is one file plus one decorator::

    @register_env("chess")
    class ChessEnv(Env): ...

Modules that hold registered components are imported lazily the first time a registry is read,
so importing ``sparring`` stays fast.  Exercised by ``pytest tests/sparring/test_registry.py``.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable, Generic, TypeVar

from sparring.errors import UserInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map with helpful errors and lazy discovery of built-in modules."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...] = ()):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._builtin_modules = builtin_modules
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # a dependency of the module is missing: a real error
                    raise

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._items)

    def get(self, name: str, *, where: str | None = None) -> T:
        self._load_builtins()
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserInputError(
                f"unknown {self.kind} {name!r}",
                where=where,
                fix=f"{hint}valid {self.kind}s: {', '.join(sorted(self._items))}",
            )
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._items


ENVS: Registry = Registry(
    "env",
    (
        "sparring.envs.jokes",
        "sparring.envs.chess_env",
        "sparring.envs.quotes",
        "sparring.envs.qa",
        "sparring.envs.timeline",
    ),
)
REWARDS: Registry = Registry("reward", ("sparring.envs.rewards",))
ENGINES: Registry = Registry(
    "engine", ("sparring.rl.engines.hf_engine", "sparring.rl.engines.llamacpp_engine", "sparring.rl.engines.vllm_engine")
)
EXPORTERS: Registry = Registry(
    "exporter",
    ("sparring.exporters.hf", "sparring.exporters.gguf", "sparring.exporters.mlc", "sparring.exporters.ollama"),
)

register_env = ENVS.register
register_reward = REWARDS.register
register_engine = ENGINES.register
register_exporter = EXPORTERS.register
