"""Tiny models for the exporter tests (GGUF, Ollama, HF, MLC).

``tiny_llama_dir`` / ``tiny_qwen2_dir`` are ``sparring.models.make_tiny_model`` (hidden 64, 2 layers,
4 heads, 2 kv heads, intermediate 128, tied embeddings) with the real SmolLM2 tokenizer extracted
from the embedded GGUF.  The Qwen2 one uses the same vocabulary: transformers loads it through
Qwen2Tokenizer, which applies Qwen2's own pre-tokenizer regex, so its GGUF gets ``pre = qwen2``.
``tiny_qwen2_untied_dir`` adds what the Qwen2 path must handle beyond that: an untied ``lm_head``
and non-zero q/k/v biases.  ``tiny_llama_sharp_dir`` scales the tiny Llama's q/k projections by 20: with the default 0.02 init,
attention is almost uniform and a wrong q/k layout would go unnoticed; the corruption tests need
attention that matters.  ``tiny_llama_adapter_dir`` is a PEFT LoRA (random, non-zero B so it
changes the output) over the tiny Llama.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_llama: Path) -> Path:
    """``make_tiny_model("llama")`` (the shared ``tiny_llama`` fixture of tests/conftest.py)."""
    return tiny_llama


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tiny_qwen2: Path) -> Path:
    """``make_tiny_model("qwen2")`` (the shared ``tiny_qwen2`` fixture of tests/conftest.py)."""
    return tiny_qwen2


@pytest.fixture(scope="session")
def tiny_qwen2_untied_dir(tiny_qwen2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-qwen2-untied")
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir, dtype=torch.float32)
    model.config.tie_word_embeddings = False
    untied = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
    untied.load_state_dict(model.state_dict(), strict=False)
    torch.manual_seed(1)
    with torch.no_grad():
        untied.lm_head.weight.copy_(torch.randn_like(untied.lm_head.weight) * 0.05)
        for layer in untied.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.copy_(torch.randn_like(proj.bias) * 0.1)
    untied.generation_config = model.generation_config
    untied.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_qwen2_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_sharp_dir(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-llama-sharp")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(20.0)
            layer.self_attn.k_proj.weight.mul_(20.0)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


def make_lora_adapter(base_dir: Path, out: Path, *, seed: int = 0, targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")) -> Path:
    """A random LoRA (r=4, alpha=8) over ``base_dir`` whose B is not zero, saved with the tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), init_lora_weights=False))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * 0.3)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_adapter_dir(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lora_adapter(tiny_llama_dir, tmp_path_factory.mktemp("tiny-llama-lora"))
