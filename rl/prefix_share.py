"""A leaner GRPO learner step: the prompt of a group is run once, not once per completion.

In GRPO every prompt has ``num_generations`` completions, and on a chat prompt with a system
message and a one-shot example the prompt is most of each sequence (jokes: ~140 prompt tokens,
<= 48 completion tokens).  TRL runs the full prompt + completion for every row.  Here each distinct
prompt is run once with the KV cache kept (with gradients), the cache is repeated for its
completions, and only the completion tokens are run on top — the same per-token log-probabilities
and entropies (checked against TRL's own computation in the tests) for a fraction of the compute,
forward and backward.

    logps, entropies = shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep, temperature)

Rows are grouped by their (left-padded) prompt part, so TRL's shuffling of the batch does not
matter.  Rotary position embeddings only see relative positions, so dropping the left padding does
not change the result; models with absolute positions (GPT-2) are not routed here.  Used by
``rl/grpo.py`` when ``rl.share_prompt_prefix`` is on.  Exercised by ``pytest tests/rl/test_grpo.py``.
"""

from __future__ import annotations

from typing import Any

from sparring.kv_cache import cache_kwarg, cache_of

ROTARY_MODEL_TYPES = ("llama", "qwen2", "mistral", "qwen3", "gemma", "gemma2", "phi3", "olmo", "olmo2", "granite", "smollm3")


def supports_prefix_sharing(model: Any) -> bool:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "model_type", None) in ROTARY_MODEL_TYPES


def _groups(prompt_ids, prompt_mask) -> list[tuple[list[int], Any]]:
    """Row indices sharing one prompt (the prompt's token ids without padding)."""
    import torch

    order: dict[tuple[int, ...], list[int]] = {}
    for row in range(prompt_ids.size(0)):
        key = tuple(prompt_ids[row][prompt_mask[row].bool()].tolist())
        order.setdefault(key, []).append(row)
    return [(rows, torch.tensor(key, dtype=torch.long, device=prompt_ids.device)) for key, rows in order.items()]


def shared_prefix_logps(model: Any, input_ids, attention_mask, logits_to_keep: int, temperature: float = 1.0, compute_entropy: bool = True,
                        entropy_grad: bool = False):
    """Per-token log-probabilities (and entropies) of the last ``logits_to_keep`` tokens of each row,
    computing each distinct prompt once.  Returns ``(logps [B, C], entropies [B, C] or None)``.
    The entropies carry no gradient unless ``entropy_grad`` (an entropy bonus in the loss)."""
    import torch
    from transformers import DynamicCache

    prompt_len = input_ids.size(1) - logits_to_keep
    prompt_ids, prompt_mask = input_ids[:, :prompt_len], attention_mask[:, :prompt_len]
    completion_ids, completion_mask = input_ids[:, prompt_len:], attention_mask[:, prompt_len:]
    batch = input_ids.size(0)
    logps = input_ids.new_zeros((batch, logits_to_keep), dtype=torch.float32)
    entropies = logps.clone() if compute_entropy else None
    pieces_logp, pieces_ent, pieces_rows = [], [], []
    for rows, prefix in _groups(prompt_ids, prompt_mask):
        n = len(rows)
        cache = DynamicCache()
        head = model(input_ids=prefix[None], use_cache=True, logits_to_keep=1, **cache_kwarg(cache))
        cache = cache_of(head)
        cache.batch_repeat_interleave(n)
        comp = completion_ids[rows]
        mask = torch.cat([torch.ones((n, prefix.numel()), dtype=attention_mask.dtype, device=input_ids.device), completion_mask[rows]], dim=1)
        # the completion minus its last token: the last token's logits predict nothing we score
        tail = model(input_ids=comp[:, :-1], attention_mask=mask[:, :-1], use_cache=True, **cache_kwarg(cache)) if logits_to_keep > 1 else None
        first = head.logits[:, -1:, :].expand(n, 1, head.logits.size(-1))
        logits = first if tail is None else torch.cat([first, tail.logits], dim=1)
        logits = logits.float() / temperature
        log_probs = torch.log_softmax(logits, dim=-1)
        pieces_logp.append(log_probs.gather(-1, comp.unsqueeze(-1)).squeeze(-1))
        if compute_entropy:  # logged and used for masking; in the loss only with an entropy bonus
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                pieces_ent.append(-(log_probs.exp() * log_probs).sum(-1))
        pieces_rows.extend(rows)
    index = torch.tensor(pieces_rows, device=input_ids.device)
    logps = torch.empty_like(logps).index_copy(0, index, torch.cat(pieces_logp, dim=0))
    if compute_entropy:
        entropies = torch.empty_like(entropies).index_copy(0, index, torch.cat(pieces_ent, dim=0))
    return logps, entropies
