"""A PEFT LoRA adapter as a GGUF adapter file (llama.cpp ``--lora``, Ollama ``ADAPTER``), verified.

The file holds ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha`` and, per
adapted weight, ``<gguf tensor name>.lora_a`` (PEFT's A, [r, in]) and ``.lora_b`` (B, [out, r]) in
F32.  llama.cpp scales B·A by alpha / r, so alpha is written as PEFT's scaling × r (this also
covers rsLoRA's alpha / sqrt(r)).  The Llama q/k permutation is applied to B's rows (the output
axis), exactly as to the base weights.  Adapters that also train full modules (``modules_to_save``)
or embeddings cannot be expressed as LoRA deltas and are refused.

Verification loads the base GGUF with the adapter in llama-cpp-python (``lora_path=``): the output
must change against the base alone, and match transformers' merged model under the base type's rule.

Exercised by ``pytest tests/exporters/test_gguf.py -k adapter``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sparring.errors import UserInputError
from sparring.exporters.gguf_writer import check_supported, permute_for_rope, read_config


def _adapter_tensors(adapter_dir: Path) -> dict[str, np.ndarray]:
    import torch
    from safetensors import safe_open

    path = adapter_dir / "adapter_model.safetensors"
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k).to(torch.float32).numpy() for k in f.keys()}
    path = adapter_dir / "adapter_model.bin"
    if path.is_file():
        return {k: v.to(torch.float32).numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    raise UserInputError(f"{adapter_dir} has no adapter_model.safetensors", where=str(adapter_dir), fix="pass a directory written by PeftModel.save_pretrained")


def lora_alpha_for_gguf(adapter_config: dict[str, Any], where: str) -> tuple[float, int]:
    """(alpha, r) such that llama.cpp's alpha / r equals PEFT's scaling."""
    if adapter_config.get("rank_pattern") or adapter_config.get("alpha_pattern"):
        raise UserInputError(
            "the adapter uses per-module ranks or alphas (rank_pattern/alpha_pattern), which one GGUF adapter.lora.alpha cannot express",
            where=f"{where}/adapter_config.json: rank_pattern",
            fix="export merged (without --ollama-adapter)",
        )
    r = int(adapter_config["r"])
    alpha = float(adapter_config.get("lora_alpha", r))
    scaling = alpha / math.sqrt(r) if adapter_config.get("use_rslora") else alpha / r
    return scaling * r, r


def write_lora_gguf(adapter_dir: str | Path, base_dir: str | Path, out_path: str | Path, *, name: str | None = None) -> dict[str, Any]:
    """Write ``out_path`` from a PEFT adapter over the HF base in ``base_dir``; return a report."""
    import gguf

    adapter_dir, base_dir = Path(adapter_dir), Path(base_dir)
    config = read_config(base_dir)
    check_supported(config, str(base_dir))
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if adapter_config.get("peft_type", "LORA") != "LORA":
        raise UserInputError(f"adapter type {adapter_config.get('peft_type')} is not LoRA", where=f"{adapter_dir}/adapter_config.json: peft_type", fix="only LoRA adapters become GGUF adapters")
    alpha, _ = lora_alpha_for_gguf(adapter_config, str(adapter_dir))
    tensors = _adapter_tensors(adapter_dir)
    extra = [k for k in tensors if ".lora_A." not in k and ".lora_B." not in k]
    if extra:
        raise UserInputError(
            f"the adapter also stores full tensors ({extra[0]}...: modules_to_save or embedding LoRA), which a GGUF LoRA adapter cannot carry",
            where=f"{adapter_dir}/adapter_config.json: modules_to_save",
            fix="export merged (without --ollama-adapter)",
        )
    arch = gguf.MODEL_ARCH.LLAMA if config["model_type"] == "llama" else gguf.MODEL_ARCH.QWEN2
    name_map = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    n_head = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_head
    writer = gguf.GGUFWriter(str(out_path), config["model_type"])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name or adapter_dir.name)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    pairs = 0
    for key in sorted(tensors):
        if ".lora_A." not in key:
            continue
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        b_key = key.replace(".lora_A.", ".lora_B.")
        if b_key not in tensors:
            raise UserInputError(f"{adapter_dir}: {key} has no matching lora_B tensor", where=str(adapter_dir), fix="re-save the adapter with PEFT")
        target = name_map.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if target is None:
            raise UserInputError(f"{adapter_dir}: adapted module {module} has no GGUF tensor for {config['model_type']}", where=str(adapter_dir), fix="export merged (without --ollama-adapter)")
        lora_a, lora_b = tensors[key], tensors[b_key]
        if config["model_type"] == "llama" and module.endswith("self_attn.q_proj"):
            lora_b = permute_for_rope(lora_b, n_head)
        elif config["model_type"] == "llama" and module.endswith("self_attn.k_proj"):
            lora_b = permute_for_rope(lora_b, n_kv)
        writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(lora_a, dtype=np.float32))
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(lora_b, dtype=np.float32))
        pairs += 1
    if not pairs:
        raise UserInputError(f"{adapter_dir} holds no LoRA tensors", where=str(adapter_dir), fix="pass a trained LoRA adapter")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"lora_pairs": pairs, "alpha": alpha, "r": int(adapter_config["r"]), "qk_permuted": config["model_type"] == "llama"}


def verify_lora_gguf(base_gguf: Path, adapter_gguf: Path, merged_reference: Any, base_quant: str) -> dict[str, Any]:
    """base + adapter in llama.cpp vs transformers' merged model; and the adapter must matter."""
    from sparring.exporters.gguf_verify import open_gguf, teacher_forced_logits, verify_gguf

    record = verify_gguf(base_gguf, merged_reference, base_quant, lora_path=adapter_gguf)
    if "continuation" not in record:
        return record
    ref = merged_reference
    n_ctx = max(64, max(len(p) for p in ref.prompt_ids) + len(ref.tokens[0]) + 8)
    deltas = []
    for path in (None, adapter_gguf):
        llm = open_gguf(base_gguf, n_ctx=n_ctx, lora_path=path)
        deltas.append(teacher_forced_logits(llm, ref.prompt_ids[0], ref.tokens[0]))
        llm.close()
    change = float(np.max(np.abs(deltas[0] - deltas[1])))
    record["changes_output"] = {"passed": change > 1e-4, "max_abs_logit_change_vs_base": round(change, 6)}
    record["passed"] = bool(record["passed"] and record["changes_output"]["passed"])
    return record
