"""Ollama: chat templates become TEMPLATE/stop/SYSTEM that render like the HF template; Modelfiles
parse back; the exporter ships a verified GGUF + Modelfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.exporters.ollama import parse_modelfile, render_modelfile, verify_modelfile
from sparring.exporters.ollama_template import KNOWN_FORMATS, compare_with_hf, derive_chat, render_go_template

LLAMA3_TEMPLATE = (
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
ZEPHYR_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
ALPACA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}### Instruction:\n{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'assistant' %}### Response:\n{{ m['content'] }}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### Response:\n{% endif %}"
)


@pytest.fixture
def tokenizer(tiny_llama_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def test_go_template_subset():
    tpl = "{{ if .System }}S={{ .System }};{{ else }}no system;{{ end }}{{- .Prompt -}}  |{{ .Response }}"
    assert render_go_template(tpl, {"System": "x", "Prompt": "p", "Response": "r"}) == "S=x;p|r"
    assert render_go_template(tpl, {"Prompt": "p"}) == "no system;p|"
    with pytest.raises(ValueError, match="unsupported"):
        render_go_template("{{ range .Messages }}{{ end }}", {})


def test_smollm2_chatml_keeps_its_default_system_prompt(tokenizer):
    chat = derive_chat(tokenizer, None)
    assert chat.kind == "chatml" and chat.template == KNOWN_FORMATS["chatml"]["template"]
    assert chat.system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert "<|im_end|>" in chat.stops
    assert compare_with_hf(tokenizer, chat.template, chat.system, None)["passed"]
    custom = derive_chat(tokenizer, "You only tell jokes.")
    assert custom.system == "You only tell jokes."
    assert compare_with_hf(tokenizer, custom.template, custom.system, "You only tell jokes.")["passed"]


@pytest.mark.parametrize("kind,template", [("llama3", LLAMA3_TEMPLATE), ("zephyr", ZEPHYR_TEMPLATE)])
def test_llama3_and_zephyr_templates_are_recognized(tokenizer, kind: str, template: str):
    tokenizer.chat_template = template
    chat = derive_chat(tokenizer, "Be brief.")
    assert chat.kind == kind and chat.system == "Be brief."
    result = compare_with_hf(tokenizer, chat.template, chat.system, "Be brief.")
    assert result["passed"], result


def test_unknown_template_is_derived_and_missing_template_falls_back(tokenizer):
    tokenizer.chat_template = ALPACA_TEMPLATE
    chat = derive_chat(tokenizer, None)
    assert chat.kind == "derived" and chat.notes
    assert compare_with_hf(tokenizer, chat.template, None, None)["passed"]
    tokenizer.chat_template = None
    plain = derive_chat(tokenizer, "sys")
    assert plain.kind == "plain" and "no chat template" in plain.notes[0]


def test_modelfile_round_trip_and_broken_from(tokenizer, tmp_path: Path):
    chat = derive_chat(tokenizer, 'Answer in "quotes".\nTwo lines.')
    text = render_modelfile("model-q8_0.gguf", chat, {"temperature": 0.7, "num_ctx": 1024}, title="demo")
    parsed = parse_modelfile(text)
    assert parsed["from"] == "./model-q8_0.gguf" and parsed["adapter"] is None
    assert parsed["template"] == chat.template and parsed["system"] == chat.system
    assert ("stop", "<|im_end|>") in parsed["parameters"] and ("temperature", "0.7") in parsed["parameters"]
    path = tmp_path / "Modelfile"
    path.write_text(text)
    (tmp_path / "model-q8_0.gguf").write_bytes(b"gguf")
    good = verify_modelfile(path, {"model-q8_0.gguf": {"passed": True}}, tokenizer, chat, 'Answer in "quotes".\nTwo lines.')
    assert good["passed"], good
    bad = verify_modelfile(path, {"model-q8_0.gguf": {"passed": False}}, tokenizer, chat, None)
    assert bad["passed"] is False and bad["from"]["passed"] is False


def test_ollama_export_writes_verified_gguf_and_modelfile(tiny_qwen2_dir: Path, tmp_path: Path):
    from sparring.exporters.export import export_model

    arts = export_model(tiny_qwen2_dir, tmp_path / "out", formats="ollama", quants="q8_0", system_prompt="You tell jokes.")
    names = {Path(a.path).name: a for a in arts}
    assert set(names) == {"model-q8_0.gguf", "Modelfile"} and all(a.verified for a in arts)
    text = (tmp_path / "out" / "ollama" / "Modelfile").read_text()
    assert text.splitlines()[1] == "FROM ./model-q8_0.gguf"
    assert 'SYSTEM """You tell jokes."""' in text and 'PARAMETER stop "<|im_end|>"' in text
    rec = names["Modelfile"].verify
    assert rec["template_render"]["generation_prompt_equal"] and rec["template_render"]["full_turn_equal"]
    assert rec["stops"]["single_token"]["<|im_end|>"] is True
