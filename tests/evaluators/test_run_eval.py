"""The eval stage on the llamacpp engine: each model becomes a GGUF, evaluated through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.config_io import load_config
from sparring.evaluators.run_eval import eval_gguf, evaluate_run
from sparring.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]


def _stage_outputs(run: RunDir, tiny_llama: Path) -> Path:
    """A run's ``sft/adapter`` + ``sft/merged`` as the SFT stage leaves them (random LoRA B)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sparring.models import load_tokenizer

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    tokenizer = load_tokenizer(str(tiny_llama))
    adapter = run.path / "sft" / "adapter"
    model.save_pretrained(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tiny_llama)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    tokenizer.save_pretrained(adapter)
    model.merge_and_unload().save_pretrained(run.path / "sft" / "merged")
    tokenizer.save_pretrained(run.path / "sft" / "merged")
    return adapter


@pytest.mark.slow
def test_llamacpp_eval_converts_each_model_and_scores_both(tmp_path: Path, tiny_llama: Path, monkeypatch):
    monkeypatch.setenv("SPARRING_CACHE", str(tmp_path / "cache"))
    cfg = load_config(REPO / "configs" / "tiny-jokes.yaml", [
        f"output_dir={tmp_path}", "eval.engine=llamacpp", "eval.gguf_quant=f32", "eval.samples=4", "eval.max_new_tokens=6",
    ])
    run = RunDir.create(cfg, argv=["test"])
    adapter = _stage_outputs(run, tiny_llama)

    summary = evaluate_run(cfg, run, model=str(adapter), base=str(tiny_llama))

    # the trained model: converted from the stage's merged dir (no second merged copy) into the run
    assert (run.path / "eval" / "gguf" / "sft.f32.gguf").is_file()
    assert not (run.path / "sft" / "adapter-merged").exists()
    # the base: once, into the shared cache
    assert len(list((tmp_path / "cache" / "rollout-gguf").glob("*.f32.gguf"))) == 1
    assert summary["prompts"] == 4
    for side in ("before", "after"):
        assert "pass_rate" in summary[side] and summary[side]["latency/tokens_per_second"] > 0
    # a random LoRA changes what the model writes: the two columns are not one model twice
    assert [s["after"] for s in summary["samples"]] != [s["before"] for s in summary["samples"]]


def test_a_gguf_is_evaluated_as_is(tmp_path: Path):
    cfg = load_config(REPO / "configs" / "tiny-jokes.yaml", [f"output_dir={tmp_path}"])
    run = RunDir.create(cfg, argv=["test"])
    gguf = tmp_path / "model.q8_0.gguf"
    assert eval_gguf(str(gguf), cfg, run) == gguf
