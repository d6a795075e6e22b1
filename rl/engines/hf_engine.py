"""The ``hf`` rollout engine: transformers + PEFT, LoRA state loaded from the object store.

The n completions of one prompt decode together as one batch (the prompt is run once and its KV
cache repeated), so the batch a completion is computed in never depends on which other prompts a
worker was given.  Sampling is the shared numpy sampler of ``rl/engines/base.py``.

    engine = make_engine("hf", "/path/to/base", threads=1)
    engine.load_policy(update)      # kind "lora" (set_peft_model_state_dict) or "full"

Exercised by ``pytest tests/rl/test_engines.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from sparring.errors import SparringError, UserInputError
from sparring.kv_cache import cache_kwarg, cache_of
from sparring.registry import register_engine
from sparring.rl.engines.base import Engine, GroupStepper
from sparring.rl.policy_sync import lora_config_key, teacher_forced_logprobs, tensors_checksum, to_numpy


class _HFStepper(GroupStepper):
    def __init__(self, model: Any, prompt: list[int], n: int):
        import torch

        self.model, self.n, self.torch = model, n, torch
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([prompt]), use_cache=True)
        self.cache = cache_of(out)
        if n > 1:
            self.cache.batch_repeat_interleave(n)
        self._first = out.logits[0, -1].float().numpy()

    def first(self) -> np.ndarray:
        return np.broadcast_to(self._first, (self.n, self._first.shape[-1]))

    def advance(self, tokens: list[int], done: list[bool]) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model(input_ids=self.torch.tensor(tokens)[:, None], use_cache=True, **cache_kwarg(self.cache))
        self.cache = cache_of(out)
        return out.logits[:, -1].float().numpy()

    def close(self) -> None:
        self.cache = None


@register_engine("hf")
class HFEngine(Engine):
    """transformers generation with per-completion seeds; LoRA via PEFT."""

    name = "hf"

    def __init__(self, base_model_dir, *, threads: int = 1, options: dict[str, Any] | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        super().__init__(base_model_dir, threads=threads, options=options)
        torch.set_num_threads(self.threads)
        dtype = getattr(torch, self.options.get("dtype", "float32"))
        self.base = AutoModelForCausalLM.from_pretrained(self.base_model_dir, dtype=dtype)
        self.base.eval()
        self.model = self.base
        self._lora_key: dict[str, Any] | None = None

    # -- weight updates -------------------------------------------------------------------------

    def load_policy(self, update: Any) -> str:
        import torch

        if update.kind == "lora":
            self._load_lora(update.payload["tensors"], update.payload["lora_config"])
            from peft import get_peft_model_state_dict

            checksum = tensors_checksum(get_peft_model_state_dict(self.model))
        elif update.kind == "full":
            model = self._bare_model()
            missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in update.payload["tensors"].items()}, strict=False)
            if unexpected or [m for m in missing if "lm_head" not in m]:
                raise SparringError(f"full update v{update.version} does not fit the base model: missing {missing[:3]}, unexpected {unexpected[:3]}")
            checksum = tensors_checksum({k: v for k, v in model.state_dict().items() if k in update.payload["tensors"]})
        else:
            raise UserInputError(f"the hf engine cannot load a {update.kind!r} update", where="rl.rollout.engine", fix="build the update with make_policy_update(..., engine='hf')")
        self.model.eval()
        self.version, self.checksum = update.version, checksum
        return checksum

    def _bare_model(self) -> Any:
        if self._lora_key is not None:
            self.model = self.model.unload()
            self._lora_key = None
        return self.model

    def _load_lora(self, tensors: dict[str, np.ndarray], config: Any) -> None:
        import torch
        from peft import get_peft_model, set_peft_model_state_dict

        key = lora_config_key(config)
        if self._lora_key != key:
            base = self._bare_model()
            import copy

            config = copy.deepcopy(config)
            config.inference_mode = True
            self.model = get_peft_model(base, config)
            self._lora_key = key
        result = set_peft_model_state_dict(self.model, {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()})
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise SparringError(f"LoRA update has tensors the rollout model does not: {unexpected[:3]}")

    # -- generation and probing -----------------------------------------------------------------

    def _start_group(self, prompt: list[int], n: int) -> GroupStepper:
        return _HFStepper(self.model, prompt, n)

    def logprobs(self, token_ids: Sequence[int], start: int) -> list[float]:
        return teacher_forced_logprobs(self.model, token_ids, start)

    def base_logprobs(self, token_ids: Sequence[int], start: int) -> list[float] | None:
        if self._lora_key is None:
            return None
        with self.model.disable_adapter():
            return teacher_forced_logprobs(self.model, token_ids, start)

    def lora_tensors(self) -> dict[str, np.ndarray]:
        """The adapter tensors inside the model now (what a checksum is computed from)."""
        from peft import get_peft_model_state_dict

        return {k: to_numpy(v) for k, v in get_peft_model_state_dict(self.model).items()} if self._lora_key else {}

    def close(self) -> None:
        self.model = self.base = None
