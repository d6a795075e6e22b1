"""mlc-chat-config.json for an MLC export: model config, generation defaults, tokenizer, conv template.

WebLLM and mlc_llm read this file to set up the KV cache, the sampler and the prompt format.  The
conversation template is written as a full object (not a name), picked from the model's chat
template: ChatML (SmolLM2, Qwen2), ``tinyllama_v1_0`` (TinyLlama/Zephyr ``<|user|>`` style) or
``llama-3``.  Tokenizer files are copied next to it; ``tokenizer_info`` is read from tokenizer.json
(byte_level for GPT-2 style BPE, byte_fallback for SentencePiece-style).
Exercised by ``pytest tests/exporters/test_mlc.py -k config``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError
from sparring.exporters.mlc_weights import MLCQuant, ModelShape

MLC_CHAT_CONFIG = "mlc-chat-config.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "special_tokens_map.json",
)
DEFAULT_PREFILL_CHUNK = 2048
DEFAULT_MAX_BATCH = 128
GENERATION_DEFAULTS = {"temperature": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalty": 1.0, "top_p": 1.0}
MLC_DEFAULT_SYSTEM = "A conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers."


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})", where=str(path), fix="repair or regenerate the file") from None


def special_token_ids(tokenizer_json: dict[str, Any]) -> dict[str, int]:
    """content -> id of the added (special) tokens of a tokenizer.json."""
    ids = {t["content"]: int(t["id"]) for t in tokenizer_json.get("added_tokens", [])}
    vocab = (tokenizer_json.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):  # SentencePiece-style BPE keeps </s> in the vocab
        for token in ("<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"):
            if token in vocab:
                ids.setdefault(token, int(vocab[token]))
    return ids


def tokenizer_info(tokenizer_json: dict[str, Any]) -> dict[str, Any]:
    """What WebLLM/xgrammar need to post-process the token table."""
    text = json.dumps({"decoder": tokenizer_json.get("decoder"), "pre_tokenizer": tokenizer_json.get("pre_tokenizer")})
    normalizer = json.dumps(tokenizer_json.get("normalizer"))
    byte_level = '"ByteLevel"' in text
    return {
        "token_postproc_method": "byte_level" if byte_level else "byte_fallback",
        "prepend_space_in_encode": (not byte_level) and '"Prepend"' in normalizer,
        "strip_space_in_decode": (not byte_level) and '"Strip"' in text,
    }


def _default_system(chat_template: str, pattern: str) -> str | None:
    match = re.search(pattern, chat_template, flags=re.S)
    return match.group(1) if match else None


def _eos_ids(config: dict[str, Any], generation: dict[str, Any]) -> list[int]:
    raw = generation.get("eos_token_id", config.get("eos_token_id"))
    if raw is None:
        return []
    return [int(x) for x in (raw if isinstance(raw, list) else [raw])]


def conv_template(chat_template: str, tokens: dict[str, int], eos_ids: list[int], *, system_message: str | None = None, where: str = "tokenizer_config.json: chat_template") -> dict[str, Any]:
    """The conversation template object for the model's chat format."""
    common = {
        "system_prefix_token_ids": None,
        "add_role_after_system_message": True,
        "role_templates": {"user": "{user_message}", "assistant": "{assistant_message}", "tool": "{tool_message}"},
        "messages": [],
        "function_string": "",
        "use_function_calling": False,
    }

    def stop_ids(*names: str) -> list[int]:
        ids = [tokens[n] for n in names if n in tokens] + eos_ids
        return list(dict.fromkeys(ids))

    if "<|im_start|>" in chat_template:
        default = _default_system(chat_template, r"<\|im_start\|>system(?:\\n|\n)([^'\"{}<]+?)<\|im_end\|>")
        return {
            "name": "chatml",
            "system_template": "<|im_start|>system\n{system_message}<|im_end|>\n",
            "system_message": system_message if system_message is not None else (default or MLC_DEFAULT_SYSTEM),
            **common,
            "roles": {"user": "<|im_start|>user", "assistant": "<|im_start|>assistant"},
            "seps": ["<|im_end|>\n"],
            "role_content_sep": "\n",
            "role_empty_sep": "\n",
            "stop_str": ["<|im_end|>"],
            "stop_token_ids": stop_ids("<|im_end|>"),
        }
    if "<|start_header_id|>" in chat_template:
        bos = tokens.get("<|begin_of_text|>")
        return {
            "name": "llama-3",
            "system_template": "<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>",
            "system_message": system_message if system_message is not None else "You are a helpful, respectful and honest assistant.",
            **common,
            "system_prefix_token_ids": [bos] if bos is not None else None,
            "roles": {"user": "<|start_header_id|>user", "assistant": "<|start_header_id|>assistant"},
            "seps": ["<|eot_id|>"],
            "role_content_sep": "<|end_header_id|>\n\n",
            "role_empty_sep": "<|end_header_id|>\n\n",
            "stop_str": ["<|end_of_text|>", "<|eot_id|>"],
            "stop_token_ids": stop_ids("<|end_of_text|>", "<|eot_id|>"),
        }
    if "<|user|>" in chat_template and "<|assistant|>" in chat_template:
        return {
            "name": "tinyllama_v1_0",
            "system_template": "<|system|>\n{system_message}</s>",
            "system_message": system_message if system_message is not None else "You are a helpful chatbot.",
            **common,
            "roles": {"user": "<|user|>", "assistant": "<|assistant|>"},
            "seps": ["</s>"],
            "role_content_sep": "\n",
            "role_empty_sep": "\n",
            "stop_str": ["</s>"],
            "stop_token_ids": stop_ids("</s>"),
        }
    raise UserInputError(
        "cannot derive an MLC conversation template: the chat template is neither ChatML (<|im_start|>), Llama-3 (<|start_header_id|>) nor TinyLlama (<|user|>/<|assistant|>)"
        if chat_template
        else "the model has no chat template, so WebLLM would not know how to format a chat",
        where=where,
        fix="export a chat model (SmolLM2-Instruct, TinyLlama-Chat, Llama-3.x-Instruct, Qwen2.5-Instruct) or add a ChatML chat_template to tokenizer_config.json",
    )


def read_chat_template(model_dir: Path) -> str:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    template = _load_json(model_dir / "tokenizer_config.json").get("chat_template") or ""
    if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
        template = next((t.get("template", "") for t in template if t.get("name") == "default"), "")
    return template


def rope_theta(config: dict[str, Any]) -> float:
    params = config.get("rope_parameters") or {}
    return float(config.get("rope_theta") or params.get("rope_theta") or 10000.0)


def rope_scaling(config: dict[str, Any]) -> dict[str, Any] | None:
    scaling = config.get("rope_scaling") or config.get("rope_parameters") or None
    if not scaling or scaling.get("rope_type", scaling.get("type", "default")) == "default":
        return None
    return {k: v for k, v in scaling.items() if k != "rope_theta"}


def model_config_section(config: dict[str, Any], shape: ModelShape, context: int, prefill: int) -> dict[str, Any]:
    section: dict[str, Any] = {
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_attention_heads": shape.num_heads,
        "num_hidden_layers": shape.num_layers,
        "num_key_value_heads": shape.num_kv_heads,
        "head_dim": shape.head_dim,
        "rms_norm_eps": float(config.get("rms_norm_eps", 1e-6)),
        "vocab_size": shape.vocab_size,
        "tie_word_embeddings": shape.tied,
        "position_embedding_base": rope_theta(config),
        "rope_scaling": rope_scaling(config),
        "context_window_size": context,
        "prefill_chunk_size": prefill,
        "tensor_parallel_shards": 1,
        "pipeline_parallel_stages": 1,
        "max_batch_size": DEFAULT_MAX_BATCH,
    }
    if shape.model_type == "qwen2":
        section.update(hidden_act=config.get("hidden_act", "silu"), rope_theta=rope_theta(config), dtype="float32")
    return section


def build_chat_config(model_dir: Path, shape: ModelShape, quant: MLCQuant, *, system_message: str | None = None, sampling: dict[str, float] | None = None, context_window: int | None = None) -> dict[str, Any]:
    """The full mlc-chat-config.json content for ``model_dir`` exported as ``quant``."""
    config = _load_json(model_dir / "config.json")
    generation = _load_json(model_dir / "generation_config.json")
    tok_json = _load_json(model_dir / "tokenizer.json")
    context = int(context_window or config.get("max_position_embeddings") or 2048)
    prefill = min(context, DEFAULT_PREFILL_CHUNK)
    eos_ids = _eos_ids(config, generation)
    gen = {k: float(generation.get(k, v)) for k, v in GENERATION_DEFAULTS.items()}
    gen.update({k: float(v) for k, v in (sampling or {}).items() if k in GENERATION_DEFAULTS})
    pad = generation.get("pad_token_id", config.get("pad_token_id"))
    bos = generation.get("bos_token_id", config.get("bos_token_id"))
    return {
        "version": "0.1.0",
        "model_type": shape.model_type,
        "quantization": quant.name,
        "model_config": model_config_section(config, shape, context, prefill),
        "vocab_size": shape.vocab_size,
        "context_window_size": context,
        "sliding_window_size": -1,
        "prefill_chunk_size": prefill,
        "attention_sink_size": -1,
        "tensor_parallel_shards": 1,
        "pipeline_parallel_stages": 1,
        **gen,
        "tokenizer_files": [name for name in TOKENIZER_FILES if (model_dir / name).is_file()],
        "tokenizer_info": tokenizer_info(tok_json),
        "conv_template": conv_template(read_chat_template(model_dir), special_token_ids(tok_json), eos_ids, system_message=system_message),
        "pad_token_id": int(pad) if pad is not None else 0,
        "bos_token_id": int(bos) if bos is not None else None,
        "eos_token_id": eos_ids[0] if len(eos_ids) == 1 else eos_ids,
        "model_task": "chat",
    }


def require_tokenizer(model_dir: Path) -> None:
    if not ((model_dir / "tokenizer.json").is_file() or (model_dir / "tokenizer.model").is_file()):
        raise UserInputError(
            f"{model_dir} has neither tokenizer.json nor tokenizer.model; WebLLM needs one of them",
            where=str(model_dir),
            fix="save the tokenizer next to the model (tokenizer.save_pretrained(dir))",
        )


def copy_tokenizer_files(model_dir: Path, out_dir: Path) -> list[str]:
    """Copy what WebLLM loads (tokenizer.json or tokenizer.model) plus the HF side files."""
    require_tokenizer(model_dir)
    copied = []
    for name in TOKENIZER_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
            copied.append(name)
    return copied


def write_chat_config(chat_config: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / MLC_CHAT_CONFIG
    path.write_text(json.dumps(chat_config, indent=2) + "\n")
    return path
