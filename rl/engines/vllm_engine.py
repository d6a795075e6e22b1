"""The ``vllm`` rollout engine (CUDA only, behind an import guard).

Asking for it on a machine without CUDA (or without the ``vllm`` package) is a ``UserInputError``
raised before any actor starts::

    sparring rl configs/jokes.yaml --set rl.rollout.engine=vllm   # on CPU: "engine vllm needs CUDA"

On a GPU it keeps the base model loaded with ``enable_lora=True`` and serves each LoRA version as a
``LoRARequest`` from a local adapter directory (written from the object-store state).  vLLM samples
itself (seeded per completion with the same ``completion_seed``), so its completions are
reproducible on one vLLM version but not token-identical to the hf/llamacpp engines.

Not exercised on the 2-core CI machines (no CUDA); ``pytest tests/rl/test_engines.py`` checks the guard.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from sparring.errors import SparringError, UserInputError
from sparring.registry import register_engine
from sparring.rl.engines.base import Completion, Engine, GroupStepper, SamplingParams
from sparring.rl.policy_sync import tensors_checksum

NEEDS_CUDA = "engine vllm needs CUDA; use llamacpp or hf"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


@register_engine("vllm")
class VLLMEngine(Engine):
    name = "vllm"

    @classmethod
    def check_available(cls) -> None:
        if not cuda_available():
            raise UserInputError(NEEDS_CUDA, where="rl.rollout.engine", fix="set rl.rollout.engine: llamacpp (fast on CPU) or hf")
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserInputError("engine vllm needs the vllm package", where="rl.rollout.engine", fix="pip install 'sparring[cuda]' on a CUDA machine, or use llamacpp or hf") from None

    def __init__(self, base_model_dir, *, threads: int = 1, options: dict[str, Any] | None = None):
        self.check_available()
        super().__init__(base_model_dir, threads=threads, options=options)
        from vllm import LLM

        self.max_lora_rank = int(self.options.get("max_lora_rank", 64))
        self.llm = LLM(model=str(self.base_model_dir), enable_lora=True, max_lora_rank=self.max_lora_rank,
                       gpu_memory_utilization=float(self.options.get("gpu_memory_utilization", 0.5)), seed=0)
        self.adapter_root = Path(tempfile.mkdtemp(prefix="sparring-vllm-lora-"))
        self.lora_request = None

    def load_policy(self, update: Any) -> str:
        if update.kind != "lora":
            raise UserInputError(f"the vllm engine loads LoRA updates, not {update.kind!r}", where="rl.rollout.engine", fix="train with LoRA, or use the hf engine")
        import numpy as np
        from safetensors.numpy import save_file
        from vllm.lora.request import LoRARequest

        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in update.payload["tensors"].items()}
        out = self.adapter_root / f"v{update.version}"
        tmp = Path(tempfile.mkdtemp(dir=self.adapter_root))
        save_file(tensors, str(tmp / "adapter_model.safetensors"))
        config = update.payload["lora_config"]
        d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        d = {k: (sorted(v) if isinstance(v, (set, frozenset)) else getattr(v, "value", v)) for k, v in d.items()}
        (tmp / "adapter_config.json").write_text(json.dumps(d, default=str))
        os.replace(tmp, out)
        self.lora_request = LoRARequest(f"policy-v{update.version}", update.version + 1, str(out))
        self.version, self.checksum = update.version, tensors_checksum(tensors)
        return self.checksum

    def _start_group(self, prompt: list[int], n: int) -> GroupStepper:  # pragma: no cover - vLLM samples itself
        raise SparringError("the vllm engine samples inside vLLM; call generate()")

    def groups_per_call(self, n: int) -> int:
        return 1 << 20  # vLLM schedules (and prefix-caches) a whole shard itself

    def _generate_groups(self, prompts: list[list[int]], n: int, sampling: SamplingParams, seeds: list[list[int]], prefix_lens: list[int]) -> list[list[Completion]]:
        from vllm import SamplingParams as VSampling
        from vllm.inputs import TokensPrompt

        requests, params = [], []
        for p, row in zip(prompts, seeds):
            for s in row:
                requests.append(TokensPrompt(prompt_token_ids=list(p)))
                params.append(VSampling(n=1, seed=int(s), temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_new_tokens, logprobs=0))
        outputs = self.llm.generate(requests, params, lora_request=self.lora_request, use_tqdm=False)
        flat = []
        for out, s in zip(outputs, [s for row in seeds for s in row]):
            o = out.outputs[0]
            ids = list(o.token_ids)
            logps = [float(step[t].logprob) for step, t in zip(o.logprobs or [], ids)]
            flat.append(Completion(ids, logps, o.text, "stop" if o.finish_reason == "stop" else "length", int(s)))
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    def logprobs(self, token_ids: Sequence[int], start: int) -> list[float]:
        from vllm import SamplingParams as VSampling
        from vllm.inputs import TokensPrompt

        out = self.llm.generate([TokensPrompt(prompt_token_ids=list(token_ids))], VSampling(max_tokens=1, prompt_logprobs=0), lora_request=self.lora_request, use_tqdm=False)[0]
        return [float(step[t].logprob) for step, t in zip(out.prompt_logprobs[start:], token_ids[start:])]
