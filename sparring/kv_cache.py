"""The KV-cache keyword of a transformers forward, across transformers 5.x.

transformers renamed ``past_key_values`` to ``cache`` (the old name warns and goes away in 5.40);
sparring's own forwards with a cache (shared-prefix SFT and GRPO, the hf rollout engine, the
server's token loop) go through these two helpers so they run on either side of the rename.

    out = model(input_ids=ids, use_cache=True, **cache_kwarg(cache))
    cache = cache_of(out)

Exercised by ``pytest tests/sparring/test_kv_cache.py``.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def cache_kwarg_name() -> str:
    """``"cache"`` where the installed transformers takes it, else ``"past_key_values"``."""
    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def cache_kwarg(cache: Any) -> dict[str, Any]:
    """The keyword argument that hands ``cache`` to a causal LM's forward."""
    return {cache_kwarg_name(): cache}


def cache_of(output: Any) -> Any:
    """The KV cache a forward returned (under either name)."""
    for name in ("cache", "past_key_values"):
        value = output.get(name) if hasattr(output, "get") else getattr(output, name, None)
        if value is not None:
            return value
    return None
