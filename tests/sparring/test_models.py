"""Model resolution: the embedded alias, tiny models, directories, adapters, GGUF, bad paths."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sparring.errors import UserInputError
from sparring.models import check_not_quantized, load_model, make_tiny_model, model_info, resolve_model


def test_embedded_alias_resolves_to_cached_safetensors(embedded_model_dir: Path):
    t0 = time.perf_counter()
    resolved = resolve_model("smollm2-135m")
    model, tok = load_model("smollm2-135m")
    elapsed = time.perf_counter() - t0
    assert resolved.path == embedded_model_dir
    assert (embedded_model_dir / "model.safetensors").is_file()
    assert tok.chat_template and "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert model.config.num_hidden_layers == 30 and model.config.tie_word_embeddings
    assert elapsed < 20, f"a cached load took {elapsed:.1f}s"


def test_tiny_models_are_seeded_and_load(tmp_path: Path):
    a = make_tiny_model("llama", seed=3, out_dir=tmp_path / "a")
    b = make_tiny_model("llama", seed=3, out_dir=tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    model, tok = load_model(str(a))
    assert model.config.num_hidden_layers == 2 and len(tok) == model.config.vocab_size
    assert resolve_model("tiny-random-gpt2").kind == "tiny"


def test_local_dir_adapter_and_run_dir(tiny_llama: Path, tmp_path: Path):
    from peft import LoraConfig, get_peft_model

    assert resolve_model(str(tiny_llama)).kind == "hf_dir"
    model, tok = load_model(str(tiny_llama))
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tiny_llama)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    r = resolve_model(str(adapter))
    assert r.kind == "adapter" and r.base_path == tiny_llama and r.adapter_path == adapter
    run = tmp_path / "run"
    (run / "sft").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / "config.yaml").write_text("name: r\n")
    with pytest.raises(UserInputError, match="no trained model"):
        resolve_model(str(run))
    (run / "sft" / "adapter").symlink_to(adapter, target_is_directory=True)
    assert resolve_model(str(run)).kind == "run"


@pytest.mark.parametrize(
    "name, message",
    [
        ("/no/such/dir", "does not exist"),
        ("weights.gguf", "does not exist"),
        ("not-a-model", "unknown model"),
        ("", "empty model name"),
        ("SomeOrg/NotCached-1B", "not in the local Hugging Face cache"),
    ],
)
def test_bad_model_names(name: str, message: str):
    with pytest.raises(UserInputError, match=message):
        resolve_model(name)


def test_directory_that_is_not_a_model(tmp_path: Path):
    with pytest.raises(UserInputError, match="not a model directory"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserInputError, match="no weights"):
        resolve_model(str(tmp_path))


def test_quantized_checkpoint_is_refused(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "gptq"}}))
    with pytest.raises(UserInputError, match="gptq-quantized") as exc:
        check_not_quantized(tmp_path)
    assert "full-precision" in str(exc.value)


def test_model_info_reports_architecture(tiny_qwen2: Path):
    info = model_info(str(tiny_qwen2))
    assert info["model_type"] == "qwen2" and info["layers"] == 2 and info["weights_bytes"] > 0
