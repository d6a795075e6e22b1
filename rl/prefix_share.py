"""A leaner GRPO learner step: the prompt of a group is run once, not once per completion.

In GRPO every prompt has ``num_generations`` completions, and on a chat prompt with a system
message and a one-shot example the prompt is most of each sequence (jokes: ~120 prompt tokens,
~100 of them the same in every prompt, <= 48 completion tokens).  TRL runs the full prompt +
completion for every row.  Here the batch runs in three forwards that keep their KV cache (with
gradients): the prefix every prompt of the batch shares, once; each distinct prompt's remainder,
once per prompt, on top of it; every completion on top of its prompt.  The per-token
log-probabilities and entropies are TRL's (checked against its per-row computation in the tests)
for a fraction of the compute, forward and backward, in 3 model calls instead of one per row.
The first two call the decoder alone (no vocabulary projection: their positions are not scored, but
for each prompt's last one), and the scored positions share one projection at the end
(``sparring/kv_cache.py::decoder_and_head``; measured on SmolLM2-135M, 2 cores, a GRPO batch of 8 x 152 tokens:
forward + backward + step 2.0 -> 1.66 s in float32, 1.38 -> 1.17 s with a bf16 base, the full-vocabulary
projection of the prompts' last positions having cost a broadcast copy of the LM head per call).
The completions run in up to two forwards of rows of similar lengths (:func:`length_buckets`), so
the positions past each row's last token, masked in the loss, are mostly not computed (16 rows of
<= 48 tokens, mean 29: 2.27 -> 2.10 s per bf16 step).

    logps, entropies = shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep, temperature)

Rows are grouped by their (left-padded) prompt part, so TRL's shuffling of the batch does not
matter.  Remainders of different lengths are left-padded in the middle of the sequence, masked,
and every token gets its true position (``position_ids``), so rotary attention sees exactly the
unpadded sequence; models with absolute positions (GPT-2) are not routed here.  Used by
``rl/grpo.py`` when ``rl.share_prompt_prefix`` is on.  Exercised by ``pytest tests/rl/test_grpo.py``.
"""

from __future__ import annotations

from typing import Any

from sparring.kv_cache import cache_rows, cached_forward, states_to_logits

MIN_BUCKET_SAVING = 0.2  # split the completions in two forwards when that skips >= 20% of their positions
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


def common_length(prompts: list[Any]) -> int:
    """Tokens every prompt starts with, leaving each at least one of its own (its last token's
    logits predict the first completion token)."""
    shortest = min(int(p.numel()) for p in prompts)
    n = 0
    while n < shortest - 1 and all(int(p[n]) == int(prompts[0][n]) for p in prompts[1:]):
        n += 1
    return n


def length_buckets(lengths: list[int], min_saving: float | None = None) -> list[tuple[list[int], int]]:
    """Rows (indices into ``lengths``) whose completions run together, and the positions each bucket
    scores (its longest row, at least 1): all rows at the longest length, or the rows sorted by
    length and cut in two where that saves at least ``min_saving`` of those positions (a second
    forward costs its own per-call work, so small savings are not taken)."""
    min_saving = MIN_BUCKET_SAVING if min_saving is None else min_saving
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    width = lambda i: max(1, lengths[i])  # noqa: E731
    whole = len(order) * width(order[-1])
    cost, cut = min(((k * width(order[k - 1]) + (len(order) - k) * width(order[-1]), k) for k in range(1, len(order))), default=(whole, 0))
    if whole - cost < min_saving * whole:
        return [(order, width(order[-1]))]
    return [(order[:cut], width(order[cut - 1])), (order[cut:], width(order[-1]))]


def shared_prefix_logps(model: Any, input_ids, attention_mask, logits_to_keep: int, temperature: float = 1.0, compute_entropy: bool = True,
                        entropy_grad: bool = False):
    """Per-token log-probabilities (and entropies) of the last ``logits_to_keep`` tokens of each row,
    computing the batch's common prefix once and each distinct prompt once.  Returns
    ``(logps [B, C], entropies [B, C] or None)``.  The entropies carry no gradient unless
    ``entropy_grad`` (an entropy bonus in the loss)."""
    import torch
    from transformers import DynamicCache

    device, C = input_ids.device, logits_to_keep
    prompt_len = input_ids.size(1) - C
    groups = _groups(input_ids[:, :prompt_len], attention_mask[:, :prompt_len])
    prompts = [prompt for _, prompt in groups]
    common, G = common_length(prompts), len(groups)
    cache = DynamicCache()
    if common:  # 1. the prefix all prompts share
        cache, _ = cached_forward(model, cache, last_only=True, input_ids=prompts[0][None, :common])
        cache.batch_repeat_interleave(G)
    # 2. each prompt's remainder, left-padded to the longest, every token at its true position
    width = max(int(p.numel()) for p in prompts) - common
    rest_ids = torch.zeros((G, width), dtype=torch.long, device=device)
    rest_mask = torch.zeros((G, width), dtype=attention_mask.dtype, device=device)
    rest_pos = torch.full((G, width), common, dtype=torch.long, device=device)
    for g, prompt in enumerate(prompts):
        k = int(prompt.numel()) - common
        rest_ids[g, width - k :], rest_mask[g, width - k :] = prompt[common:], 1
        rest_pos[g, width - k :] = torch.arange(common, common + k, device=device)
    prompt_mask = torch.cat([torch.ones((G, common), dtype=attention_mask.dtype, device=device), rest_mask], dim=1)
    cache, last = cached_forward(model, cache, last_only=True, input_ids=rest_ids, attention_mask=prompt_mask, position_ids=rest_pos)
    # 3. every completion on top of its prompt, in up to two buckets of similar lengths (positions
    #    past a row's last real token are masked in the loss: they are not computed, and read 0)
    rows = [r for group_rows, _ in groups for r in group_rows]
    group_of = torch.repeat_interleave(torch.arange(G, device=device), torch.tensor([len(r) for r, _ in groups], device=device))
    comp, comp_mask = input_ids[rows, prompt_len:], attention_mask[rows, prompt_len:]
    ends = torch.tensor([int(p.numel()) for p in prompts], device=device)
    real = comp_mask.bool()
    lengths = torch.where(real.any(1), C - real.flip(1).int().argmax(1), 0).tolist()  # up to the last real token
    logps = torch.zeros((input_ids.size(0), C), dtype=torch.float32, device=device)
    entropies = torch.zeros_like(logps) if compute_entropy else None
    for bucket, width in length_buckets(lengths):
        at = torch.tensor(bucket, device=device)
        g = group_of[at]
        states = last[g]
        if width > 1:
            sub = cache_rows(cache, g)
            mask = torch.cat([prompt_mask[g], comp_mask[at, : width - 1]], dim=1)
            positions = ends[g][:, None] + torch.arange(width - 1, device=device)[None, :]
            _, tail = cached_forward(model, sub, input_ids=comp[at, : width - 1], attention_mask=mask, position_ids=positions)
            states = torch.cat([states, tail], dim=1)
        logits = states_to_logits(model, states).float()  # one vocabulary projection for the bucket's scored positions
        log_probs = torch.log_softmax(logits if temperature == 1.0 else logits / temperature, dim=-1)  # no [rows, W, vocab] copy at T = 1
        index = torch.tensor([rows[i] for i in bucket], device=device)
        pad = (0, C - width)
        logps = logps.index_copy(0, index, torch.nn.functional.pad(log_probs.gather(-1, comp[at, :width].unsqueeze(-1)).squeeze(-1), pad))
        if entropies is not None:  # logged and used for masking; in the loss only with an entropy bonus
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                ent = -(log_probs.exp() * log_probs).sum(-1)
            entropies = entropies.index_copy(0, index, torch.nn.functional.pad(ent, pad))
    return logps, entropies
