"""What the SFT stage leaves behind: the LoRA adapter and the merged model, each written to a temp
directory, verified by loading it back, then renamed into place.

    adapter = save_adapter(peft_model, tokenizer, run.path / "sft" / "adapter", base_name="smollm2-135m")
    merged = save_merged(peft_model, tokenizer, run.path / "sft" / "merged", probe_ids)

The adapter directory holds ``adapter_config.json`` + ``adapter_model.safetensors`` + the tokenizer;
its ``base_model_name_or_path`` is the config's model name, so ``sparring.models.resolve_model``
finds the base anywhere.  The merged directory holds safetensors, the tokenizer with its chat
template, and a generation config whose EOS is the chat template's end-of-turn token.
Verification compares the logits of the reloaded model with the trained one on probe tokens and
generates a few tokens.  Exercised by ``pytest tests/sft/test_trainer.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from sparring.types import Artifact

LOGIT_TOLERANCE = 1e-3


def dir_sha256(path: Path) -> str:
    """One checksum over every file of a directory (relative names and contents, sorted)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_dir_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` then swap ``tmp`` into ``final`` (an older ``final`` is replaced whole)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        write(tmp)
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def probe_logits(model: Any, probe_ids: list[int]):
    import torch

    with torch.inference_mode():
        return model(input_ids=torch.tensor([probe_ids]).to(next(model.parameters()).device)).logits.float().cpu()


def _max_diff(a, b) -> float:
    return float((a - b).abs().max())


def save_adapter(peft_model: Any, tokenizer: Any, final: Path, *, base_name: str, reference_logits=None, probe_ids=None) -> Artifact:
    """Write the adapter (+ tokenizer), check it reloads onto the base with the same logits."""

    def write(tmp: Path) -> None:
        peft_model.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False)  # embeddings are not adapted; "auto" would query the Hub
        tokenizer.save_pretrained(tmp)
        cfg_path = tmp / "adapter_config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["base_model_name_or_path"] = base_name
        cfg_path.write_text(json.dumps(cfg, indent=2))

    write_dir_atomically(final, write)
    verify: dict[str, Any] = {"passed": (final / "adapter_config.json").is_file() and any(final.glob("adapter_model.*"))}
    if reference_logits is not None and probe_ids is not None:
        from sparring.models import load_model

        reloaded, _ = load_model(final)
        diff = _max_diff(probe_logits(reloaded, probe_ids), reference_logits)
        verify.update(max_abs_logit_diff=diff, tolerance=LOGIT_TOLERANCE, passed=verify["passed"] and diff <= LOGIT_TOLERANCE)
        del reloaded
    return Artifact(str(final), "hf-lora-adapter", dir_sha256(final), dir_size(final), verify)


def generation_config_for(model: Any, tokenizer: Any):
    """The base's generation config with EOS/PAD set to the tokenizer's end-of-turn/pad tokens."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    gen = GenerationConfig.from_dict(base.to_dict()) if base is not None else GenerationConfig()
    gen.eos_token_id = tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if tokenizer.bos_token_id is not None:
        gen.bos_token_id = tokenizer.bos_token_id
    return gen


def save_merged(merged_model: Any, tokenizer: Any, final: Path, *, reference_logits=None, probe_ids=None) -> Artifact:
    """Write a merged full model (safetensors + tokenizer + chat template + generation config)
    and verify: it reloads, its logits match the trained model's, and it generates."""
    import torch
    from transformers import AutoModelForCausalLM

    def write(tmp: Path) -> None:
        merged_model.generation_config = generation_config_for(merged_model, tokenizer)
        merged_model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    write_dir_atomically(final, write)
    files_ok = (final / "config.json").is_file() and any(final.glob("*.safetensors")) and (final / "generation_config.json").is_file()
    has_template = (final / "chat_template.jinja").is_file() or "chat_template" in json.loads((final / "tokenizer_config.json").read_text())
    verify: dict[str, Any] = {"files": files_ok, "chat_template": has_template}
    reloaded = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    reloaded.eval()
    ok = files_ok and has_template
    if reference_logits is not None and probe_ids is not None:
        diff = _max_diff(probe_logits(reloaded, probe_ids), reference_logits)
        verify.update(max_abs_logit_diff=diff, tolerance=LOGIT_TOLERANCE)
        ok = ok and diff <= LOGIT_TOLERANCE
        with torch.inference_mode():
            out = reloaded.generate(torch.tensor([probe_ids]), max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        verify["generated_tokens"] = int(out.shape[1] - len(probe_ids))
        ok = ok and verify["generated_tokens"] > 0
    verify["passed"] = ok
    del reloaded
    return Artifact(str(final), "hf-merged", dir_sha256(final), dir_size(final), verify)
