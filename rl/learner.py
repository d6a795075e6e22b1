"""The learner's policy: where RL starts (``--init``), the trainable LoRA model, and its outputs.

    init = resolve_init(cfg, run, "runs/<sft run>")        # the SFT adapter dir, or None (fresh LoRA)
    model, tokenizer, base_dir = load_policy_model(cfg, init)
    save_rl_outputs(model, tokenizer, run, cfg)          # <run>/rl/final (adapter) + <run>/rl/merged

``--init`` takes an SFT run directory (its ``rl/final`` or ``sft/adapter``) or a LoRA adapter
directory.  The adapter must sit on the same base as ``model.name``: a different base is refused
before any training (exit 2).  RL keeps training that same adapter (so the final adapter is one
LoRA over the base, and the reference policy for the KL term is the SFT policy).  Without an init,
the run's own ``sft/adapter`` is used; with none, a fresh LoRA only when ``rl.allow_base_init``.
Exercised by ``pytest tests/rl/test_rl_cli.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sparring.config import RunConfig
from sparring.errors import UserInputError
from sparring.rundir import RunDir

INIT_FIX = "pass --init with an SFT run directory (runs/<sft run>) or a LoRA adapter directory trained on model.name"


def _weights_fingerprint(model_dir: Path) -> str:
    """config.json + the first MiB of every weights file: tells two bases apart cheaply."""
    h = hashlib.sha256()
    cfg = json.loads((model_dir / "config.json").read_text())
    for k in ("architectures", "model_type", "hidden_size", "n_embd", "num_hidden_layers", "n_layer", "vocab_size", "num_attention_heads"):
        h.update(repr(cfg.get(k)).encode())
    for f in sorted(model_dir.glob("*.safetensors")):
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
    return h.hexdigest()


def _adapter_in(path: Path) -> Path | None:
    if (path / "adapter_config.json").is_file():
        return path
    if (path / "manifest.json").is_file() and (path / "config.yaml").is_file():
        for rel in ("rl/final", "sft/adapter"):
            if (path / rel / "adapter_config.json").is_file():
                return path / rel
    return None


def resolve_init(cfg: RunConfig, run: RunDir | None, init: str | None) -> Path | None:
    """The LoRA adapter RL starts from (checked against the base), or None for a fresh LoRA."""
    from sparring.models import resolve_model

    where = "--init" if init else "rl.init"
    init = init or cfg.rl.init
    if init:
        path = Path(init).expanduser()
        if not path.exists():
            raise UserInputError(f"{path} does not exist", where=where, fix=INIT_FIX)
        adapter = _adapter_in(path)
        if adapter is None:
            raise UserInputError(f"{path} holds no LoRA adapter (no adapter_config.json, rl/final or sft/adapter)", where=where, fix=INIT_FIX)
    else:
        own = run.path / "sft" / "adapter" if run is not None else None
        if own is not None and (own / "adapter_config.json").is_file():
            adapter = own
        elif cfg.rl.allow_base_init:
            return None
        else:
            raise UserInputError(
                "no SFT adapter to start RL from (this run has no sft/adapter and no --init was given)",
                where="--init",
                fix=INIT_FIX + "; or --set rl.allow_base_init=true for a smoke run from the base model",
            )
    base = resolve_model(cfg.model.name)
    adapter_base_name = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    try:
        adapter_base = resolve_model(adapter, where=f"{adapter}/adapter_config.json").base_path
    except UserInputError as exc:
        raise UserInputError(f"the adapter's base {adapter_base_name!r} cannot be resolved: {exc}", where=where, fix=INIT_FIX) from None
    same = adapter_base is not None and (adapter_base.resolve() == base.path.resolve() or _weights_fingerprint(adapter_base) == _weights_fingerprint(base.path))
    if not same:
        raise UserInputError(
            f"the adapter {adapter} was trained on {adapter_base_name!r} ({adapter_base}), but model.name is {cfg.model.name!r} ({base.path})",
            where=where,
            fix=f"use an adapter trained on {cfg.model.name!r}, or set model.name to {adapter_base_name!r}",
        )
    return adapter.resolve()


def base_model_dir(cfg: RunConfig) -> Path:
    from sparring.models import check_not_quantized, materialize

    base = materialize(cfg.model.name)
    check_not_quantized(base, where="model.name")
    return base


def learner_uses_bf16(cfg: RunConfig) -> bool:
    """``rl.learner_bf16`` resolved: explicit True/False, or None = where the hardware has it."""
    import torch

    from sparring.sft.base_model import use_bf16

    return use_bf16(cfg.rl.learner_bf16, torch.cuda.is_available())


def load_learner_base(cfg: RunConfig, base_dir: Path):
    """The frozen base the learner trains LoRA on: in ``model.dtype``, or in bfloat16 with
    ``rl.learner_bf16`` (``sft/lora.py::load_frozen_base``).  ``python -m sparring.bench.grpo_step``
    (16 completions of <= 48 tokens on the jokes prompts, 2 AMX cores): the shared-prefix step
    2.97 s in float32, 2.26 s this way."""
    from sparring.sft.lora import load_frozen_base

    return load_frozen_base(base_dir, cfg.model.dtype, bf16=learner_uses_bf16(cfg))


def load_policy_model(cfg: RunConfig, init_adapter: Path | None, *, seed: int | None = None):
    """``(peft_model, tokenizer, base_dir)``: the base with the init adapter (trainable) or a fresh
    LoRA from ``rl.lora`` (seeded, so a resumed run rebuilds the same starting point)."""
    import torch
    from peft import PeftModel, get_peft_model

    from sparring.models import load_tokenizer
    from sparring.sft.lora import make_lora_config

    base_dir = base_model_dir(cfg)
    model = load_learner_base(cfg, base_dir)
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
    else:
        torch.manual_seed(cfg.seed if seed is None else seed)
        model = get_peft_model(model, make_lora_config(model, cfg.rl.lora))
    tokenizer = load_tokenizer(cfg.model.name)
    tokenizer.padding_side = "left"
    return model, tokenizer, base_dir


def portable_base_name(cfg: RunConfig, base_dir: Path) -> str:
    p = Path(cfg.model.name).expanduser()
    return str(Path(base_dir).resolve()) if p.exists() else cfg.model.name


def save_rl_outputs(peft_model: Any, tokenizer: Any, run: RunDir, cfg: RunConfig, base_dir: Path) -> dict[str, str]:
    """Write and verify ``<run>/rl/final`` (adapter) and ``<run>/rl/merged``; list both in the manifest."""
    import copy

    from sparring.sft.artifacts import probe_logits, save_adapter, save_merged
    from sparring.sft.lora import adapter_in_dtype

    stage = run.stage_dir("rl")
    probe = tokenizer("Q: Why did the policy spar?\nA:", add_special_tokens=False)["input_ids"][:32]
    peft_model.eval()
    only_default = adapter_in_dtype(peft_model, cfg.model.dtype, base_dir)  # no bf16 learner rounding in the outputs
    if "ref" in getattr(only_default, "peft_config", {}):  # TRL's frozen reference copy: not part of the output
        only_default = copy.deepcopy(only_default)
        only_default.delete_adapter("ref")
    only_default.set_adapter("default")
    reference = probe_logits(only_default, probe)
    adapter = save_adapter(only_default, tokenizer, stage / "final", base_name=portable_base_name(cfg, base_dir), reference_logits=reference, probe_ids=probe)
    merged_model = copy.deepcopy(only_default).merge_and_unload()
    merged = save_merged(merged_model, tokenizer, stage / "merged", reference_logits=reference, probe_ids=probe)
    for art in (adapter, merged):
        if not art.verified:
            from sparring.errors import SparringError

            raise SparringError(f"RL output {art.path} failed verification: {art.verify}")
        run.manifest.add_artifact(art)
    return {"adapter": adapter.path, "merged": merged.path}
