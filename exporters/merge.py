"""Merge a LoRA adapter into its base in full precision (fp32) and save a plain HF directory.

    python -c "from sparring.exporters.merge import merge_adapter; merge_adapter('runs/x/sft/adapter', 'merged/')"

The base is loaded in float32, the adapter attached with PEFT and folded in with
``merge_and_unload``; the result is saved as safetensors with the tokenizer (the adapter's own when
it has one: it carries the chat template it was trained with), the chat template and the
generation config.  A 4-bit (bitsandbytes/GPTQ/AWQ) base is refused: merging into quantized
weights loses the adapter's precision.  An adapter whose tensors do not fit the base (another
architecture or size) is refused before loading, naming the first tensor that does not fit.

Exercised by ``pytest tests/exporters/test_hf.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparring.errors import SparringError, UserInputError

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def quantization_bits(config: dict[str, Any]) -> int | None:
    """The weight bits of a quantized checkpoint's config.json (None when not quantized)."""
    qc = config.get("quantization_config")
    if not qc:
        return None
    if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
        return 4
    if qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
        return 8
    bits = qc.get("bits") or qc.get("w_bit")
    return int(bits) if bits else 4 if qc.get("quant_method") in ("awq", "gptq") else 8


def refuse_quantized_base(base_dir: Path) -> None:
    config = json.loads((base_dir / "config.json").read_text())
    bits = quantization_bits(config)
    if bits is not None:
        method = config["quantization_config"].get("quant_method", "quantized")
        raise UserInputError(
            f"the base {base_dir} is a {bits}-bit {method} checkpoint; sparring never merges a LoRA into quantized weights",
            where=f"{base_dir}/config.json: quantization_config",
            fix="merge into the full-precision base the adapter was trained from (its Hub id or directory): "
            "set base_model_name_or_path in adapter_config.json or pass base_dir",
        )


def _shapes(model_dir: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shapes[key] = tuple(f.get_slice(key).get_shape())
    return shapes


def check_adapter_matches(adapter_dir: Path, base_dir: Path) -> None:
    """Refuse an adapter whose LoRA tensors do not fit the base's modules (name and shape)."""
    adapter = _shapes(adapter_dir)
    base = _shapes(base_dir)
    if not adapter or not base:
        return  # .bin checkpoints: PEFT's own loading errors are translated in merge_adapter
    base_name = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    for key, shape in adapter.items():
        for part, axis in ((".lora_A.", 1), (".lora_B.", 0)):
            if part not in key:
                continue
            module = key.split(part)[0].removeprefix("base_model.model.")
            target = base.get(f"{module}.weight")
            fits = target is not None and len(target) == 2 and target[axis] == shape[axis]
            if not fits:
                found = f"shape {list(target)}" if target is not None else "no such module"
                raise UserInputError(
                    f"the adapter does not match the base {base_dir}: {key} has shape {list(shape)} but the base has {found} for {module}.weight",
                    where=f"{adapter_dir}/adapter_config.json: base_model_name_or_path ({base_name})",
                    fix="export the adapter with the base model it was trained on",
                )


def _load_tokenizer(adapter_dir: Path, base_dir: Path):
    from transformers import AutoTokenizer

    own = all((adapter_dir / f).is_file() for f in _TOKENIZER_FILES[1:]) and any((adapter_dir / f).is_file() for f in _TOKENIZER_FILES[:1])
    return AutoTokenizer.from_pretrained(adapter_dir if own else base_dir)


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base_dir: str | Path | None = None) -> Path:
    """Merge ``adapter_dir`` into its base (fp32) and save an HF directory at ``out_dir``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, GenerationConfig

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise UserInputError(f"{adapter_dir} is not a LoRA adapter (no adapter_config.json)", where=str(adapter_dir), fix="pass a directory written by PeftModel.save_pretrained")
    if base_dir is None:
        from sparring.models import resolve_model

        base_name = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base_name:
            raise UserInputError(f"{adapter_dir}/adapter_config.json names no base model", where=f"{adapter_dir}/adapter_config.json", fix="set base_model_name_or_path")
        base_dir = resolve_model(base_name, where=f"{adapter_dir}/adapter_config.json: base_model_name_or_path").path
    base_dir = Path(base_dir)
    refuse_quantized_base(base_dir)
    check_adapter_matches(adapter_dir, base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    try:
        model = PeftModel.from_pretrained(base, adapter_dir)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise UserInputError(
            f"the adapter {adapter_dir} does not load onto the base {base_dir}: {str(exc).splitlines()[0]}",
            where=f"{adapter_dir}/adapter_config.json: base_model_name_or_path",
            fix="export the adapter with the base model it was trained on",
        ) from None
    merged = model.merge_and_unload()
    merged.config.dtype = torch.float32
    if (base_dir / "generation_config.json").is_file():
        merged.generation_config = GenerationConfig.from_pretrained(base_dir)
    tokenizer = _load_tokenizer(adapter_dir, base_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    if not any(out_dir.glob("*.safetensors")):
        raise SparringError(f"merging {adapter_dir} wrote no safetensors into {out_dir}")
    (out_dir / "sparring-merge.json").write_text(json.dumps({"base": str(base_dir), "adapter": str(adapter_dir), "dtype": "float32"}, indent=2))
    return out_dir
