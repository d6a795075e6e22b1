"""Reward functions for TRL built from an env: plain callables over completions.

    funcs = reward_funcs_for(env)                          # [jokes_total]
    funcs = reward_funcs_for(env, ["total", "pun", "novelty"])
    funcs[0](prompts=[...], completions=[...], prompt_id=[...])   # -> list[float]

Each callable has TRL's shape ``(prompts, completions, **kwargs) -> list[float]`` and a
``__name__`` TRL logs under.  ``prompts``/``completions`` may be strings or chat message lists.
The env's ``Prompt`` (which holds what the referee needs: topic, FEN, reference) is found, in
order, from a ``prompt_id`` column (ids of ``env.prompts``), a ``meta`` column (the Prompt's meta,
dict or JSON), the prompt text (matched against the env's prompts), or ``env.make_prompt(text)``.
All functions made by one ``reward_funcs_for`` call share one scorer, so a batch is scored once
however many components are logged.  They never raise: an item that cannot be scored gets 0.0.

Named rewards (``@register_reward``) are factories ``scorer -> callable``: ``total`` (the env's
Score.total), ``passed`` (1.0/0.0).  Any other name is read as a component of the env's Score.
Exercised by ``pytest tests/envs/test_rewards.py``.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any, Callable, Sequence

from sparring.envs.base import Env
from sparring.registry import REWARDS, register_reward
from sparring.types import Prompt, Score

log = logging.getLogger(__name__)
RewardFunc = Callable[..., list[float]]
_SPLITS = ("train", "validation", "test")


def completion_text(completion: Any) -> str:
    """The text of a completion given as a string, a message dict or a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        parts = [m.get("content", "") for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "".join(str(p) for p in parts)
    return "" if completion is None else str(completion)


def prompt_text(prompt: Any) -> str:
    """The last user message of a prompt given as a string or a list of messages."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1]) if users else ""
    if isinstance(prompt, Prompt):
        return prompt.text
    return "" if prompt is None else str(prompt)


class EnvScorer:
    """Finds the env Prompt behind each TRL prompt and scores batches once (small LRU of batches)."""

    def __init__(self, env: Env, cache_batches: int = 8):
        self.env = env
        self._by_id: dict[str, Prompt] | None = None
        self._by_text: dict[str, Prompt] = {}
        self._batches: OrderedDict[tuple, list[Score]] = OrderedDict()
        self._cache_batches = cache_batches

    def _index(self) -> dict[str, Prompt]:
        if self._by_id is None:
            self._by_id = {}
            for split in _SPLITS:
                try:
                    for p in self.env.prompts(split, seed=0):
                        self._by_id[p.id] = p
                        self._by_text.setdefault(p.text, p)
                except Exception as exc:  # an env without this split, or data not available
                    log.debug("no %s prompts from %s: %r", split, self.env.name, exc)
        return self._by_id

    def register(self, prompts: Sequence[Prompt]) -> None:
        """Make prompts (e.g. those a rollout just used, with their seeds) findable by id and text."""
        index = self._index()
        for p in prompts:
            index[p.id] = p
            self._by_text[p.text] = p

    def lookup(self, prompt: Any, i: int, kwargs: dict[str, Any]) -> Prompt:
        if isinstance(prompt, Prompt):
            return prompt
        ids = kwargs.get("prompt_id")
        if ids is not None and i < len(ids) and ids[i] is not None and str(ids[i]) in self._index():
            return self._index()[str(ids[i])]
        metas = kwargs.get("meta")
        if metas is not None and i < len(metas) and metas[i]:
            meta = metas[i]
            if isinstance(meta, str):
                meta = json.loads(meta)
            messages = tuple(prompt) if isinstance(prompt, (list, tuple)) else ({"role": "user", "content": prompt_text(prompt)},)
            return Prompt(id=str(meta.get("id", f"meta-{i}")), messages=messages, meta=dict(meta))
        text = prompt_text(prompt)
        self._index()
        if text in self._by_text:
            return self._by_text[text]
        made = self.env.make_prompt(text=text)
        self._by_text[text] = made
        return made

    def scores(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[Score]:
        texts = [completion_text(c) for c in completions]
        prompt_keys = []
        for i, p in enumerate(prompts):
            pid = kwargs.get("prompt_id")
            prompt_keys.append(str(pid[i]) if pid is not None and i < len(pid) else prompt_text(p))
        key = tuple(zip(prompt_keys, texts))
        if key in self._batches:
            self._batches.move_to_end(key)
            return self._batches[key]
        out: list[Score] = []
        for i, (p, text) in enumerate(zip(prompts, texts)):
            try:
                out.append(self.env.score(self.lookup(p, i, kwargs), text))
            except Exception as exc:  # never raise into the trainer
                log.warning("reward: item %d could not be scored: %r", i, exc)
                out.append(Score(0.0, {}, False, {"error": repr(exc)}))
        self._batches[key] = out
        while len(self._batches) > self._cache_batches:
            self._batches.popitem(last=False)
        return out


def _named(fn: RewardFunc, name: str) -> RewardFunc:
    fn.__name__ = fn.__qualname__ = name
    return fn


@register_reward("total")
def total_reward(scorer: EnvScorer) -> RewardFunc:
    def reward(prompts=None, completions=None, **kwargs):
        return [float(s.total) for s in _safe_scores(scorer, prompts, completions, kwargs)]

    return _named(reward, f"{scorer.env.name}_total")


@register_reward("passed")
def passed_reward(scorer: EnvScorer) -> RewardFunc:
    def reward(prompts=None, completions=None, **kwargs):
        return [1.0 if s.passed else 0.0 for s in _safe_scores(scorer, prompts, completions, kwargs)]

    return _named(reward, f"{scorer.env.name}_passed")


def component_reward(scorer: EnvScorer, component: str) -> RewardFunc:
    def reward(prompts=None, completions=None, **kwargs):
        return [float(s.components.get(component, 0.0)) for s in _safe_scores(scorer, prompts, completions, kwargs)]

    return _named(reward, f"{scorer.env.name}_{component}")


def _safe_scores(scorer: EnvScorer, prompts: Any, completions: Any, kwargs: dict[str, Any]) -> list[Score]:
    completions = list(completions or [])
    prompts = list(prompts or [])
    if len(prompts) < len(completions):
        prompts += [""] * (len(completions) - len(prompts))
    try:
        return scorer.scores(prompts, completions, **kwargs)
    except Exception as exc:
        log.warning("reward: batch could not be scored: %r", exc)
        return [Score(0.0) for _ in completions]


def reward_funcs_for(env: Env, names: Sequence[str] = ("total",), scorer: EnvScorer | None = None) -> list[RewardFunc]:
    """Reward callables for ``env``: registered names (total, passed) or Score component names."""
    scorer = scorer or EnvScorer(env)
    funcs: list[RewardFunc] = []
    for name in names:
        if name in REWARDS:
            funcs.append(REWARDS.get(name)(scorer))
        else:
            funcs.append(component_reward(scorer, name))
    return funcs
