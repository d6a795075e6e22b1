"""The model the SFT stage trains: the frozen base in its training precision, or 4-bit for QLoRA.

    model, tokenizer, base_dir = load_base(cfg)   # sft.bf16 on CPU: the base stored in bf16 under a float32 adapter
    use_bf16(cfg.sft.bf16, cuda=False)            # None resolves to the hardware: AVX-512 BF16 / AMX, or a bf16 GPU

On CPU, ``sft.bf16`` holds the frozen base in bfloat16 (``sft/lora.py::load_frozen_base``; the run's
outputs are rebuilt on the ``model.dtype`` base); on a GPU it is TRL's bf16 autocast.  QLoRA needs
CUDA and bitsandbytes and is refused early with the LoRA alternative; its adapter is merged into the
full-precision base.  ``rl.learner_bf16`` resolves through the same ``use_bf16``.
Exercised by ``pytest tests/sft/test_trainer.py -k "bf16 or qlora"`` and ``tests/rl/test_learner.py``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sparring.config import RunConfig
from sparring.errors import UserInputError


def check_qlora(cfg: RunConfig) -> None:
    """QLoRA needs CUDA and bitsandbytes; refuse early with the LoRA alternative."""
    if not cfg.sft.qlora:
        return
    import torch

    if not torch.cuda.is_available():
        raise UserInputError(
            "QLoRA (4-bit bitsandbytes) needs an NVIDIA GPU with CUDA, and none is available",
            where="sft.qlora: true",
            fix="set `sft.qlora: false` (or --set sft.qlora=false): plain LoRA on the full-precision model trains on CPU",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserInputError("QLoRA needs the bitsandbytes package", where="sft.qlora: true", fix="pip install 'sparring[cuda]' (bitsandbytes), or set sft.qlora: false") from None


def load_base(cfg: RunConfig):
    """(model, tokenizer, base_dir) for training: the frozen base (``bf16_base``), or 4-bit for QLoRA."""
    import torch
    from sparring.models import check_not_quantized, load_tokenizer, resolve_model

    resolved = resolve_model(cfg.model.name)
    if resolved.adapter_path is not None:
        from sparring.models import materialize

        base_dir = materialize(cfg.model.name)  # continue from a merged adapter
    else:
        base_dir = resolved.path
    check_not_quantized(base_dir, where="model.name")
    if not cfg.sft.qlora:
        from sparring.sft.lora import load_frozen_base

        return load_frozen_base(base_dir, cfg.model.dtype, bf16=bf16_base(cfg)), load_tokenizer(cfg.model.name), base_dir
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, cfg.model.dtype), quantization_config=quantization, device_map={"": 0})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.config.use_cache = False
    return model, load_tokenizer(cfg.model.name), base_dir


def bf16_base(cfg: RunConfig) -> bool:
    """``sft.bf16`` on CPU (not QLoRA): the frozen base is held in bfloat16 under the float32 adapter
    rather than autocast over float32 weights -- no per-step weight casts: the jokes recipe's step
    ~1.7 s vs ~2.0-2.3 s with autocast (``python -m sparring.bench.sft_step``, 2 AMX cores).  On a GPU
    ``sft.bf16`` stays bf16 autocast (TRL's ``bf16``), the usual mixed-precision recipe."""
    import torch

    return not torch.cuda.is_available() and not cfg.sft.qlora and use_bf16(cfg.sft.bf16, False)


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Does this CPU do bfloat16 matmuls natively (AVX-512 BF16 or AMX)?  Linux /proc/cpuinfo flags."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(setting: bool | None, cuda: bool) -> bool:
    """``sft.bf16``: explicit True/False, or None = where the hardware has it."""
    import torch

    if setting is not None:
        return setting
    return bool(torch.cuda.is_bf16_supported()) if cuda else cpu_has_bf16()


def merge_full_precision(cfg: RunConfig, adapter_dir: Path):
    """QLoRA: merge the adapter into the full-precision base (not the 4-bit one)."""
    from sparring.models import load_model

    model, _ = load_model(adapter_dir, merge_adapter=True)
    return model
