"""Cached forwards of a transformers causal LM: the KV-cache keyword across transformers 5.x, and
forwards through the decoder alone.

transformers renamed ``past_key_values`` to ``cache`` (the old name warns and goes away in 5.40);
sparring's own forwards with a cache (shared-prefix SFT and GRPO, the hf rollout engine, the
server's token loop) go through these two helpers so they run on either side of the rename.

    out = model(input_ids=ids, use_cache=True, **cache_kwarg(cache))
    cache = cache_of(out)

The shared-prefix forwards (SFT and GRPO) also run the decoder alone where the model allows it, so a
prefill projects nothing onto the vocabulary and the scored positions share one projection:

    cache, states = cached_forward(model, cache, last_only=True, input_ids=prefix)
    logits = states_to_logits(model, states)
    sub = cache_rows(cache, rows)      # some rows of a cache, the cache itself left as it is

Exercised by ``pytest tests/sparring/test_kv_cache.py`` and ``pytest tests/rl/test_grpo.py`` (the
shared-prefix forwards against TRL's per-row one, through the decoder and through whole-model calls).
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

LOGIT_SCALES = ("logits_scaling", "logit_scale", "output_multiplier", "lm_head_multiplier")  # config fields some LMs scale logits by


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


def decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    """``(decoder, lm_head)`` of a causal LM (through PEFT and DDP wrappers; LoRA layers sit inside
    both), or None where the LM's forward does more to the hidden states than ``lm_head`` (logit
    soft-capping, scaling).  Calling the decoder alone skips the vocabulary projection of positions
    whose logits nobody reads (a prefill) and lets the positions that are scored share one projection."""
    lm = getattr(model, "module", model)
    lm = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    cfg = getattr(lm, "config", None)
    if getattr(cfg, "final_logit_softcapping", None) or any(getattr(cfg, k, None) not in (None, 1, 1.0) for k in LOGIT_SCALES):
        return None
    decoder = lm.get_decoder() if hasattr(lm, "get_decoder") else None
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    return (decoder, head) if decoder is not None and head is not None else None


def cached_forward(model: Any, cache: Any, *, last_only: bool = False, **inputs: Any) -> tuple[Any, Any]:
    """One forward on top of ``cache``: ``(cache, states)``.  ``states`` are the decoder's hidden
    states where :func:`decoder_and_head` splits the model (no vocabulary projection here: see
    :func:`states_to_logits`), else the logits (of the last position only with ``last_only``)."""
    parts = decoder_and_head(model)
    if parts is not None:
        out = parts[0](use_cache=True, **inputs, **cache_kwarg(cache))
        return cache_of(out), out.last_hidden_state[:, -1:] if last_only else out.last_hidden_state
    out = model(use_cache=True, **({"logits_to_keep": 1} if last_only else {}), **inputs, **cache_kwarg(cache))
    return cache_of(out), out.logits


def states_to_logits(model: Any, states: Any) -> Any:
    """Logits of what :func:`cached_forward` returned."""
    parts = decoder_and_head(model)
    return parts[1](states) if parts is not None else states


def cache_rows(cache: Any, index: Any) -> Any:
    """A cache holding the rows ``index`` of ``cache``, which stays as it is (the layers are copied
    shallowly; selecting rows rebinds their tensors, the autograd graph is kept)."""
    import copy

    sub = copy.copy(cache)
    sub.layers = [copy.copy(layer) for layer in cache.layers]
    sub.batch_select_indices(index)
    return sub
