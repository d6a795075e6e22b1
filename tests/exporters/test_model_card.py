"""Model card: front matter, run summary, before/after eval table, artifact sizes, size estimates, usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sparring.exporters.model_card import parameter_count, read_eval, size_estimate, write_model_card
from sparring.types import Artifact

TINYLLAMA = {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000, "tie_word_embeddings": False}


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_size_estimate_for_a_tinyllama_class_config():
    params = parameter_count(TINYLLAMA)
    assert 1.09e9 < params < 1.11e9  # TinyLlama-1.1B
    assert size_estimate(TINYLLAMA, "hf-f16") == params * 2
    assert size_estimate(TINYLLAMA, "q0f16") == params * 2
    q4 = size_estimate(TINYLLAMA, "q4f16_1")  # 4 bits + an fp16 scale per 32 weights, norms fp16
    assert 0.55e9 < q4 < 0.65e9 and size_estimate(TINYLLAMA, "q4f32_1") > q4
    q8 = size_estimate(TINYLLAMA, "q8_0")
    assert abs(q8 - params * 8.5 / 8) < params * 0.01
    with pytest.raises(ValueError, match="unknown quant"):
        size_estimate(TINYLLAMA, "q2_xs")


def _make_run(tmp_path: Path) -> Path:
    run = tmp_path / "jokes-20260101T000000Z"
    (run / "eval").mkdir(parents=True)
    config = {
        "name": "jokes", "seed": 7, "stages": ["data", "sft", "rl", "eval", "export"],
        "model": {"name": "smollm2-135m"}, "data": {"source": "someone/dad-jokes"},
        "sft": {"epochs": 2, "learning_rate": 0.0002, "batch_size": 8, "grad_accum": 2, "lora": {"r": 16, "alpha": 32}},
        "env": {"name": "jokes"}, "rl": {"algo": "grpo", "steps": 50, "num_generations": 4, "learning_rate": 5e-5, "beta": 0.0, "rollout": {"engine": "llamacpp", "num_workers": 2}},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "eval" / "summary.json").write_text(json.dumps({"env": "jokes", "before": {"pass_rate": 0.2, "reward_mean": 0.31}, "after": {"pass_rate": 0.65, "reward_mean": 0.72}}))
    (run / "eval" / "broken.json").write_text("{not json")
    return run


def test_card_from_a_run(embedded_model_dir, tmp_path):
    run = _make_run(tmp_path)
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text((embedded_model_dir / "config.json").read_text())
    artifacts = [
        Artifact(str(tmp_path / "gguf" / "model-q8_0.gguf"), "gguf", "ab" * 32, 145_000_000, {"passed": True, "quant": "q8_0"}),
        Artifact(str(tmp_path / "mlc" / "q0f16"), "mlc", "cd" * 32, 270_000_000, {"passed": True, "quant": "q0f16", "webllm": {"model_id": "jokes-q0f16-MLC", "model_lib": "https://example/lib.wasm"}}),
    ]
    path = write_model_card(hf_dir, hf_dir / "README.md", run_dir=run, artifacts=artifacts)
    text = path.read_text()
    front = _front_matter(text)
    assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and front["license"] == "apache-2.0"
    assert front["library_name"] == "transformers" and front["pipeline_tag"] == "text-generation"
    assert {"sparring", "grpo", "jokes", "gguf", "mlc", "webllm"} <= set(front["tags"]) and front["datasets"] == ["someone/dad-jokes"]
    assert "RL: GRPO, 50 steps" in text and "LoRA r=16" in text
    assert "| pass_rate | 0.2 | 0.65 | +0.45 |" in text
    assert "`model-q8_0.gguf` | gguf | q8_0 | 145.0 MB | yes" in text and "`q0f16` | mlc | q0f16 | 270.0 MB | yes" in text
    assert "| q4f16_1 |" in text and "134.5 M parameters" in text
    for usage in ("### transformers", "### llama.cpp", "llama-cli -m model-q8_0.gguf", "### Ollama", "ollama create", "### WebLLM", '"jokes-q0f16-MLC"', "https://example/lib.wasm"):
        assert usage in text, usage


def test_card_without_a_run_and_eval_shapes(tiny_llama_dir, tmp_path):
    text = write_model_card(tiny_llama_dir, tmp_path / "README.md").read_text()
    assert "No run configuration was given" in text and "No evaluation report was found" in text
    assert "license: other" in text
    comparison = {"env": "qa", "compare": True, "models": {"after": {"metrics": {"accuracy": 0.5}}, "before": {"metrics": {"accuracy": 0.25, "flag": True}}}}
    single = {"env": "chess", "label": "model", "metrics": {"legal_rate": 0.9}}
    evals = read_eval(None, [comparison, single, {"unrelated": 1}])
    assert evals == {"qa": {"after": {"accuracy": 0.5}, "before": {"accuracy": 0.25}}, "chess": {"model": {"legal_rate": 0.9}}}
