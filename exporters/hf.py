"""The HF exporter: a merged safetensors directory (+ tokenizer, chat template, generation config).

    sparring export runs/<run> --format hf --model-card

The source (already merged when it was a LoRA adapter, see :mod:`sparring.exporters.merge`) is
saved with ``save_pretrained``; verification reloads the saved directory, checks every tensor is
bit-identical to the in-memory model and that both produce the same greedy tokens on the fixed
prompts.  ``--model-card`` writes README.md through ``sparring.exporters.model_card`` (skipped with a
note in verify.json when that module is not available).

Exercised by ``pytest tests/exporters/test_hf.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparring.exporters.base import ExportOptions, Exporter, atomic_export_dir
from sparring.registry import register_exporter
from sparring.types import Artifact

HF_VERIFY_TOKENS = 16


def verify_hf_dir(saved_dir: Path, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Reload ``saved_dir``: identical tensors and identical greedy tokens to ``model``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sparring.exporters.gguf_verify import VERIFY_PROMPTS, greedy_torch, idle_threads, torch_threads

    reloaded = AutoModelForCausalLM.from_pretrained(saved_dir, dtype=model.dtype)
    reloaded.eval()
    ours, theirs = model.state_dict(), reloaded.state_dict()
    differing = [k for k, v in ours.items() if k not in theirs or not torch.equal(v, theirs[k])]
    tok_reloaded = AutoTokenizer.from_pretrained(saved_dir)
    mismatched = []
    with torch.no_grad(), torch_threads(idle_threads()):
        for i, prompt in enumerate(VERIFY_PROMPTS):
            ids = tokenizer(prompt).input_ids
            if tok_reloaded(prompt).input_ids != ids:
                mismatched.append({"prompt": i, "reason": "tokenizer differs"})
                continue
            a, _ = greedy_torch(model, ids, HF_VERIFY_TOKENS)
            b, _ = greedy_torch(reloaded, ids, HF_VERIFY_TOKENS)
            if a != b:
                mismatched.append({"prompt": i, "in_memory": a, "reloaded": b})
    return {
        "format": "hf",
        "runtime": f"transformers {__import__('transformers').__version__}",
        "tensors": {"passed": not differing, "count": len(ours), "differing": differing[:10]},
        "greedy": {"passed": not mismatched, "prompts": len(VERIFY_PROMPTS), "tokens_per_prompt": HF_VERIFY_TOKENS, "mismatches": mismatched},
        "chat_template": bool(getattr(tok_reloaded, "chat_template", None)),
        "passed": not differing and not mismatched,
    }


def write_card(model_dir: Path, out_path: Path, options: ExportOptions) -> dict[str, Any]:
    try:
        from sparring.exporters.model_card import write_model_card
    except ImportError as exc:
        return {"written": False, "note": f"model card skipped: sparring.exporters.model_card is not available ({exc})"}
    write_model_card(model_dir, out_path, run_dir=options.run_dir, artifacts=list(options.prior_artifacts))
    return {"written": out_path.is_file(), "path": out_path.name}


@register_exporter("hf")
class HFExporter(Exporter):
    """A plain transformers directory any architecture can use."""

    format = "hf"

    def export(self, model_dir: Path, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        self.check(model_dir, options)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
        if model.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            model = model.float()
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        with atomic_export_dir(out_dir, format=self.format, failed_root=options.exports_root, failed_name=options.label) as stage:
            stage.info["source"] = options.source or str(model_dir)
            model.save_pretrained(stage.path, safe_serialization=True)
            tokenizer.save_pretrained(stage.path)
            record = verify_hf_dir(stage.path, model, tokenizer)
            if options.model_card:
                record["model_card"] = write_card(model_dir, stage.path / "README.md", options)
            stage.records["."] = record
        return stage.artifacts
