"""SFT on a shared prompt prefix: the tokens every row of a batch starts with are run once.

An env's SFT rows are rendered with one chat template, one system message and (jokes) one fixed
one-shot exchange, so on the jokes data ~120 of a row's ~170 tokens are the same in every row; TRL
runs them once per row.  Here the batch's longest common prefix is run once with its KV cache kept
(with gradients), the cache is repeated for the batch, and only the rest of each row is run on
top.  The loss, its gradients and TRL's logged metrics (entropy, token accuracy, tokens seen) are
the same as TRL's per-row forward (checked in the tests); the compute is a fraction of it.

    trainer = shared_prefix_sft_trainer_class()(model=..., args=..., min_shared_prefix=16)

The batch falls back to TRL's own ``compute_loss`` when sharing cannot be exact or does not pay:
fewer than ``min_shared_prefix`` common tokens, a label inside the common prefix, packed or
padding-free batches, ``return_outputs``, or a model with absolute positions (GPT-2).
Exercised by ``pytest tests/sft/test_shared_prefix.py``; used by ``sft/trainer.py`` when
``sft.share_prompt_prefix`` is on.
"""

from __future__ import annotations

from typing import Any

IGNORE = -100


def common_prefix_length(input_ids, attention_mask) -> int:
    """Leading positions where every row has the same, unpadded token."""
    same = (input_ids == input_ids[:1]).all(dim=0) & attention_mask.bool().all(dim=0)
    differ = (~same).nonzero()
    return int(differ[0]) if differ.numel() else int(input_ids.size(1))


def shared_prefix_token_logps(model: Any, input_ids, attention_mask, prefix_len: int):
    """Log-probabilities over the vocabulary for every position from ``prefix_len - 1`` on (the last
    shared token runs with the rows: its logits predict each row's first token of its own).
    Returns ``logits_logp [B, L - prefix_len, V]`` aligned with ``input_ids[:, prefix_len:]``."""
    import torch
    from transformers import DynamicCache

    from sparring.kv_cache import cache_kwarg, cached_forward

    head_len = prefix_len - 1
    batch = input_ids.size(0)
    cache, _ = cached_forward(model, DynamicCache(), last_only=True, input_ids=input_ids[:1, :head_len])  # no logits: nothing is scored there
    cache.batch_repeat_interleave(batch)
    tail = model(input_ids=input_ids[:, head_len:-1], attention_mask=attention_mask[:, :-1], use_cache=True, **cache_kwarg(cache))
    return torch.log_softmax(tail.logits.float(), dim=-1)


def shared_prefix_sft_trainer_class():
    """TRL's ``SFTTrainer`` with the shared-prefix forward (TRL imported lazily)."""
    import torch
    from trl import SFTTrainer

    from sparring.rl.prefix_share import supports_prefix_sharing

    class SharedPrefixSFTTrainer(SFTTrainer):
        def __init__(self, *args: Any, min_shared_prefix: int = 16, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.min_shared_prefix = min_shared_prefix
            self.shared_prefix_ok = (not self.args.packing and not getattr(self.args, "padding_free", False)
                                     and supports_prefix_sharing(self.accelerator.unwrap_model(self.model)))
            self.shared_prefix_stats = {"batches": 0, "shared": 0, "tokens_saved": 0}

        def _prefix_to_share(self, inputs: dict[str, Any]) -> int:
            ids, mask, labels = inputs.get("input_ids"), inputs.get("attention_mask"), inputs.get("labels")
            if not self.shared_prefix_ok or ids is None or mask is None or labels is None or ids.size(0) < 2:
                return 0
            if set(inputs) - {"input_ids", "attention_mask", "labels", "completion_mask", "use_cache"}:
                return 0  # position ids, images, ...: TRL's path
            n = common_prefix_length(ids, mask)
            if n < self.min_shared_prefix or n >= ids.size(1) or (labels[:, 1:n] != IGNORE).any():
                return 0
            return n

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            n = 0 if return_outputs else self._prefix_to_share(inputs)
            self.shared_prefix_stats["batches"] += 1
            if not n:
                return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
            logp = shared_prefix_token_logps(model, ids, mask, n)
            target = labels[:, n:]
            valid = target != IGNORE
            token_logp = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
            count = valid.sum() if num_items_in_batch is None else num_items_in_batch
            loss = -token_logp.sum() / torch.as_tensor(count).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            self.shared_prefix_stats["shared"] += 1
            self.shared_prefix_stats["tokens_saved"] += (n - 1) * (ids.size(0) - 1)
            self._log_like_trl(logp.detach(), target, valid, mask)
            return loss

        def _log_like_trl(self, logp, target, valid, mask) -> None:
            """The metrics TRL's ``compute_loss`` logs: entropy, token accuracy, tokens seen."""
            mode = "train" if self.model.training else "eval"
            num_valid = valid.sum()
            entropy = (-(logp.exp() * logp).sum(-1) * valid).sum()
            correct = ((logp.argmax(-1) == target) & valid).sum()
            self._metrics[mode]["entropy"].append((entropy / num_valid).item() if num_valid > 0 else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append((correct / num_valid).item() if num_valid > 0 else 0.0)
            if mode == "train":
                self._total_train_tokens += int(mask.sum().item()) // self._tp_size
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return SharedPrefixSFTTrainer
