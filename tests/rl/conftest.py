"""Fixtures for the RL tests: one local Ray per test module (num_cpus=2), tiny RL configs, LoRA policies.

Starting Ray costs ~5 s and each rollout actor a few more (torch + the model), so a module shares
one cluster (``ray_cluster``) and, where it can, one pool.  A pool must be closed before the next
one is made in the same module: two actors with one CPU each fill the 2-CPU cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def make_rl_config(engine: str = "hf", env: str = "jokes", num_workers: int = 2, env_options: dict[str, Any] | None = None, **rl: Any):
    """A RunConfig for tiny-random-llama rollouts: 2 completions of 8 tokens per prompt."""
    from sparring.config import RunConfig

    rollout = {"engine": engine, "num_workers": num_workers, "num_cpus_per_worker": 1, "threads_per_worker": 1,
               "max_new_tokens": 8, "temperature": 1.0} | rl.pop("rollout", {})
    return RunConfig.model_validate({
        "name": "rl-test",
        "seed": 7,
        "model": {"name": "tiny-random-llama", "max_seq_len": 256},
        "env": {"name": env, "options": env_options or {}},
        "rl": {"num_generations": 2, "batch_size": 4, "rollout": rollout} | rl,
        "ray": {"num_cpus": 2, "dashboard": False},
    })


def lora_policy(base_dir: Path, seed: int, std: float = 0.3):
    """A PEFT LoRA model over ``base_dir`` whose B matrices are random (so it changes the output)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    peft_model.eval()
    return peft_model


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray for this module (2 CPUs, no dashboard), shut down afterwards."""
    import ray

    from sparring.config import RayConfig
    from sparring.raycluster import start_ray, stop_ray

    if ray.is_initialized():
        ray.shutdown()
    info = start_ray(RayConfig(num_cpus=2, dashboard=False))
    yield info
    stop_ray()


@pytest.fixture(scope="module")
def tiny_base() -> Path:
    from sparring.models import make_tiny_model

    return make_tiny_model("llama")


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_base: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)
