"""LoRA settings: which modules to adapt for each architecture, and the PEFT ``LoraConfig``.

    targets = target_modules(model, "auto", include_mlp=False)   # llama: q/k/v/o_proj; gpt2: attn.c_attn, attn.c_proj
    peft_config = make_lora_config(model, cfg.sft.lora)
    base = load_frozen_base(base_dir, "float32", bf16=True)      # what the SFT and RL learners train on
    out = adapter_in_dtype(peft_model, "float32", base_dir)      # ... and the adapter rebuilt for the outputs

Llama-style models (Llama, Qwen2, Mistral, SmolLM2...) adapt ``q_proj k_proj v_proj o_proj`` and,
with ``include_mlp``, ``gate_proj up_proj down_proj``.  GPT-2 adapts ``attn.c_attn attn.c_proj``
(+ ``mlp.c_fc mlp.c_proj``); its Conv1D layers store weights transposed (``fan_in_fan_out``).
Explicit names are checked against the model so a typo fails before training.
The frozen base can be held in bfloat16 under a float32 adapter (``sft.bf16`` on CPU,
``rl.learner_bf16``); the adapter and merged outputs are then rebuilt on the ``model.dtype`` base.
Exercised by ``pytest tests/sft/test_lora.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparring.config import LoraConfig as LoraSettings
from sparring.errors import UserInputError

LLAMA_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
LLAMA_MLP = ("gate_proj", "up_proj", "down_proj")
GPT2_ATTENTION = ("attn.c_attn", "attn.c_proj")
GPT2_MLP = ("mlp.c_fc", "mlp.c_proj")
# other common layouts, detected the same way by module names
FALCON_ATTENTION = ("query_key_value", "dense")
FALCON_MLP = ("dense_h_to_4h", "dense_4h_to_h")
CONV1D_TYPES = ("gpt2", "gpt_bigcode")


def _suffix_match(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def module_names(model: Any) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def architecture_family(model: Any) -> str:
    """'llama' (q/k/v/o_proj layout), 'gpt2' (c_attn/c_proj) or 'falcon' (query_key_value), by the
    modules the model actually has."""
    names = module_names(model)
    if any(_suffix_match(n, "q_proj") for n in names) and any(_suffix_match(n, "o_proj") for n in names):
        return "llama"
    if any(_suffix_match(n, "attn.c_attn") for n in names):
        return "gpt2"
    if any(_suffix_match(n, "query_key_value") for n in names):
        return "falcon"
    model_type = getattr(getattr(model, "config", None), "model_type", "?")
    raise UserInputError(
        f"cannot detect LoRA target modules for architecture {model_type!r}",
        where="sft.lora.target_modules",
        fix="list the linear layers to adapt, e.g. --set 'sft.lora.target_modules=[q_proj,v_proj]' "
        "(print the model's module names with `python -c \"...model.named_modules()\"`)",
    )


def auto_target_modules(model: Any, include_mlp: bool = False) -> list[str]:
    family = architecture_family(model)
    if family == "llama":
        names = LLAMA_ATTENTION + (LLAMA_MLP if include_mlp else ())
    elif family == "gpt2":
        names = GPT2_ATTENTION + (GPT2_MLP if include_mlp else ())
    else:
        names = FALCON_ATTENTION + (FALCON_MLP if include_mlp else ())
    present = module_names(model)
    return [t for t in names if any(_suffix_match(n, t) for n in present)]


def target_modules(model: Any, requested: list[str] | str = "auto", include_mlp: bool = False) -> list[str]:
    """The module names LoRA adapts: detected ('auto') or the requested ones, each checked."""
    if requested == "auto":
        return auto_target_modules(model, include_mlp)
    if isinstance(requested, str):
        requested = [requested]
    present = module_names(model)
    missing = [t for t in requested if not any(_suffix_match(n, t) for n in present)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n in present if "." in n})
        raise UserInputError(
            f"no module named {', '.join(repr(m) for m in missing)} in this model",
            where="sft.lora.target_modules",
            fix=f"use 'auto' or names from the model: {', '.join(leaves[:40])}",
        )
    return list(requested)


def make_lora_config(model: Any, settings: LoraSettings):
    """A PEFT ``LoraConfig`` for ``model`` from the config's ``sft.lora`` (or ``rl.lora``) section."""
    from peft import LoraConfig, TaskType

    targets = target_modules(model, settings.target_modules, settings.include_mlp)
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        bias="none",
        task_type=TaskType.CAUSAL_LM,
        fan_in_fan_out=model_type in CONV1D_TYPES,
    )


def load_frozen_base(base_dir: Path, dtype: str, *, bf16: bool):
    """The frozen base a LoRA adapter trains on: in ``dtype`` (a ``torch`` dtype name), or stored in
    bfloat16 with ``bf16``.  PEFT keeps the adapter float32 on a bf16 base and casts the adapter
    branch's input, so nothing needs autocast: no per-step casting of the weights.  Eager attention
    on CPU under bf16 (faster than SDPA's CPU kernels at these lengths: 1.20 vs 1.25-1.35 s on an
    8 x 152-token learner batch).  ``use_cache`` off: training does not decode."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if bf16 else getattr(torch, dtype)}
    if bf16 and not torch.cuda.is_available():
        kwargs["attn_implementation"] = "eager"
    model = AutoModelForCausalLM.from_pretrained(base_dir, **kwargs)
    model.config.use_cache = False
    return model


def adapter_in_dtype(peft_model: Any, dtype: str, base_dir: Path) -> Any:
    """``peft_model``'s ``default`` adapter on the base in ``dtype``: the model itself when that is
    what it holds, else (a bf16 training base) the adapter's tensors copied onto a base loaded in
    ``dtype``, in eval mode, so the saved outputs carry no bf16 rounding of the base."""
    import copy

    import torch
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    if peft_model.get_base_model().get_input_embeddings().weight.dtype == getattr(torch, dtype):
        return peft_model
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))
    model = get_peft_model(base, copy.deepcopy(peft_model.peft_config["default"]))
    set_peft_model_state_dict(model, get_peft_model_state_dict(peft_model, adapter_name="default"))
    return model.eval()  # the injected LoRA layers start in training mode (dropout on)
