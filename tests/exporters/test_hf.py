"""Merging LoRA in fp32 and the HF export: verified reload, refusals for 4-bit and mismatched bases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sparring.errors import UserInputError
from sparring.exporters.base import ExportOptions, read_verify
from sparring.exporters.hf import HFExporter
from sparring.exporters.merge import merge_adapter


def test_merge_is_fp32_and_keeps_tokenizer_template_generation_config(tiny_llama_dir: Path, tiny_llama_adapter_dir: Path, tmp_path: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = merge_adapter(tiny_llama_adapter_dir, tmp_path / "merged")
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (out / name).is_file(), name
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert merged.dtype == torch.float32
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32), tiny_llama_adapter_dir).merge_and_unload()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(merged.state_dict()[q], reference.state_dict()[q])
    assert not torch.allclose(merged.state_dict()[q], base.state_dict()[q])
    assert AutoTokenizer.from_pretrained(out).chat_template


def test_merge_refuses_a_4bit_base(tiny_llama_dir: Path, tiny_llama_adapter_dir: Path, tmp_path: Path):
    base = tmp_path / "base4bit"
    shutil.copytree(tiny_llama_dir, base)
    cfg = json.loads((base / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserInputError, match="4-bit bitsandbytes.*never merges") as err:
        merge_adapter(tiny_llama_adapter_dir, tmp_path / "m", base_dir=base)
    assert "quantization_config" in str(err.value)
    assert not (tmp_path / "m").exists()


def test_merge_refuses_an_adapter_for_another_base(tiny_llama_adapter_dir: Path, tiny_llama_dir: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    cfg = LlamaConfig.from_pretrained(tiny_llama_dir)
    cfg.hidden_size, cfg.head_dim = 32, 8
    other = tmp_path / "other"
    AutoModelForCausalLM.from_config(cfg).save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(other)
    with pytest.raises(UserInputError, match="does not match the base") as err:
        merge_adapter(tiny_llama_adapter_dir, tmp_path / "m", base_dir=other)
    assert ".lora_" in str(err.value) and "base_model_name_or_path" in str(err.value)


def test_hf_export_reloads_identically(tiny_qwen2_dir: Path, tmp_path: Path):
    [artifact] = HFExporter().export(tiny_qwen2_dir, tmp_path / "hf", ExportOptions())
    assert artifact.path == str(tmp_path / "hf") and artifact.verified
    rec = read_verify(tmp_path / "hf")["artifacts"]["."]
    assert rec["tensors"]["passed"] and rec["tensors"]["count"] > 10
    assert rec["greedy"]["passed"] and rec["greedy"]["prompts"] == 5
    assert (tmp_path / "hf" / "model.safetensors").is_file() and (tmp_path / "hf" / "tokenizer.json").is_file()


def test_hf_export_with_model_card(tiny_llama_dir: Path, tmp_path: Path):
    [artifact] = HFExporter().export(tiny_llama_dir, tmp_path / "hf", ExportOptions(model_card=True))
    card = artifact.verify["model_card"]
    try:
        import sparring.exporters.model_card  # noqa: F401
    except ImportError:
        assert card["written"] is False and "skipped" in card["note"]
    else:
        assert card["written"] is True and (tmp_path / "hf" / "README.md").is_file()
