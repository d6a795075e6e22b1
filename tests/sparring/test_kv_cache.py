"""The cache keyword helpers: a forward with the cache they pass continues the sequence exactly,
and no deprecation warning is raised on the way."""

from __future__ import annotations

import warnings

import pytest
import torch

from sparring.kv_cache import cache_kwarg, cache_of


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gpt2", "tiny_qwen2"])
def test_cached_continuation_matches_full_forward(arch, request):
    from transformers import AutoModelForCausalLM, DynamicCache

    model = AutoModelForCausalLM.from_pretrained(request.getfixturevalue(arch), dtype=torch.float32).eval()
    ids = torch.randint(3, model.config.vocab_size, (2, 12))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        full = model(input_ids=ids).logits
        head = model(input_ids=ids[:, :8], use_cache=True, **cache_kwarg(DynamicCache()))
        cache = cache_of(head)
        assert cache is not None and cache.get_seq_length() == 8
        tail = model(input_ids=ids[:, 8:], use_cache=True, **cache_kwarg(cache)).logits
    assert torch.allclose(torch.cat([head.logits, tail], dim=1), full, atol=1e-4)
