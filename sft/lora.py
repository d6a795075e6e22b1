"""LoRA settings: which modules to adapt for each architecture, and the PEFT ``LoraConfig``.

    targets = target_modules(model, "auto", include_mlp=False)   # llama: q/k/v/o_proj; gpt2: attn.c_attn, attn.c_proj
    peft_config = make_lora_config(model, cfg.sft.lora)

Llama-style models (Llama, Qwen2, Mistral, SmolLM2...) adapt ``q_proj k_proj v_proj o_proj`` and,
with ``include_mlp``, ``gate_proj up_proj down_proj``.  GPT-2 adapts ``attn.c_attn attn.c_proj``
(+ ``mlp.c_fc mlp.c_proj``); its Conv1D layers store weights transposed (``fan_in_fan_out``).
Explicit names are checked against the model so a typo fails before training.
Exercised by ``pytest tests/sft/test_lora.py``.
"""

from __future__ import annotations

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
