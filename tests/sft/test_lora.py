"""LoRA target modules per architecture and the PEFT config built from `sft.lora`."""

from __future__ import annotations

import pytest

from sparring.config import LoraConfig as LoraSettings
from sparring.errors import UserInputError
from sparring.sft.lora import architecture_family, make_lora_config, target_modules


@pytest.fixture(scope="module")
def models(tiny_llama, tiny_gpt2, tiny_qwen2):
    from transformers import AutoModelForCausalLM

    return {arch: AutoModelForCausalLM.from_pretrained(path) for arch, path in (("llama", tiny_llama), ("gpt2", tiny_gpt2), ("qwen2", tiny_qwen2))}


def test_llama_and_qwen2_attention_then_mlp(models):
    for arch in ("llama", "qwen2"):
        assert architecture_family(models[arch]) == "llama"
        assert target_modules(models[arch]) == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert target_modules(models[arch], include_mlp=True) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_gpt2_attention_without_the_mlp_projection(models):
    assert architecture_family(models["gpt2"]) == "gpt2"
    assert target_modules(models["gpt2"]) == ["attn.c_attn", "attn.c_proj"]
    assert target_modules(models["gpt2"], include_mlp=True) == ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


def test_explicit_targets_are_checked(models):
    assert target_modules(models["llama"], ["q_proj", "v_proj"]) == ["q_proj", "v_proj"]
    with pytest.raises(UserInputError) as err:
        target_modules(models["llama"], ["q_prj"])
    assert err.value.where == "sft.lora.target_modules" and "q_proj" in str(err.value)


def test_unknown_architecture_asks_for_explicit_targets():
    import torch

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mixer = torch.nn.Linear(4, 4)

    with pytest.raises(UserInputError) as err:
        target_modules(Odd())
    assert "sft.lora.target_modules" in str(err.value)


@pytest.mark.parametrize("arch, fan_in_fan_out", [("llama", False), ("gpt2", True)])
def test_peft_config_from_settings_applies(models, arch, fan_in_fan_out):
    import copy

    from peft import get_peft_model

    settings = LoraSettings(r=4, alpha=8, dropout=0.0, include_mlp=True)
    cfg = make_lora_config(models[arch], settings)
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.fan_in_fan_out) == (4, 8, 0.0, fan_in_fan_out)
    peft_model = get_peft_model(copy.deepcopy(models[arch]), cfg)
    adapted = {n.rsplit(".lora_A", 1)[0].split("layers.")[-1].split("h.")[-1] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    expected = 2 * len(cfg.target_modules)  # two layers
    assert len(adapted) == expected
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in peft_model.parameters()) // 10
