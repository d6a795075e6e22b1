"""Write a GGUF file from an HF model directory with the ``gguf`` package (no llama.cpp converter).

Llama-family (SmolLM2, TinyLlama, Llama-3.x) and Qwen2 checkpoints become ``model-<quant>.gguf``:
the hyper-parameters llama.cpp reads, the tokenizer (:mod:`sparring.exporters.gguf_tokenizer`),
tensors renamed with ``gguf.get_tensor_name_map``, Q/K rows permuted to llama.cpp's rope layout
(Llama only; Qwen2 uses NeoX rope and keeps its q/k/v biases), tied embeddings written once
(no ``output.weight``), 1-D tensors in F32.  F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 come from gguf's
numpy quantizer; a tensor whose rows are not a multiple of the type's block falls back to F16 as
llama.cpp does, and the fallback is recorded.  K-quants (q4_k_m, q5_k_m, q6_k...) run llama.cpp's
own ``llama_model_quantize`` on an F32 GGUF (:func:`kquantize`).

    python -c "from sparring.exporters.gguf_writer import write_gguf; write_gguf('DIR', 'm.gguf', 'q8_0')"

Exercised by ``pytest tests/exporters/test_gguf.py``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sparring.errors import SparringError, UserInputError

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
NUMPY_QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1")
# llama_ftype values of llama.h for the K-quant mixes llama.cpp's quantizer builds
K_QUANTS = {"q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18}
GGUF_QUANTS = NUMPY_QUANTS + tuple(K_QUANTS)
_IGNORED_TENSORS = ("rotary_emb.inv_freq",)


def read_config(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise UserInputError(f"{model_dir} has no config.json", where=str(model_dir), fix="export a directory written by save_pretrained")
    return json.loads(path.read_text())


def check_supported(config: dict[str, Any], where: str) -> None:
    """Refuse architectures the writer does not know, naming the supported ones."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        arch = (config.get("architectures") or [model_type])[0]
        raise UserInputError(
            f"architecture {arch} (model_type {model_type!r}) is not supported for GGUF export",
            where=f"{where}/config.json: model_type",
            fix=f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)} (SmolLM2, TinyLlama, Llama-3.x, Qwen2/2.5); use --format hf for others",
        )


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of an HF checkpoint as float32 numpy arrays (safetensors or pytorch_model.bin)."""
    import torch

    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.safetensors"))
    tensors: dict[str, np.ndarray] = {}
    if files:
        from safetensors import safe_open

        for file in files:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key).to(torch.float32).numpy()
        return tensors
    bins = sorted(model_dir.glob("pytorch_model*.bin"))
    if not bins:
        raise UserInputError(f"{model_dir} holds no weights (*.safetensors or pytorch_model*.bin)", where=str(model_dir), fix="point at a complete model directory")
    for file in bins:
        for key, value in torch.load(file, map_location="cpu", weights_only=True).items():
            tensors[key] = value.to(torch.float32).numpy()
    return tensors


def permute_for_rope(weight: np.ndarray, n_head: int) -> np.ndarray:
    """HF Llama q/k rows (half-split rope) -> llama.cpp's interleaved rope layout."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def rope_settings(config: dict[str, Any]) -> dict[str, Any]:
    """rope theta and scaling from transformers 4 (rope_theta/rope_scaling) or 5 (rope_parameters)."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    theta = config.get("rope_theta") or params.get("rope_theta") or 10000.0
    kind = params.get("rope_type") or params.get("type") or "default"
    return {"theta": float(theta), "type": kind, **{k: v for k, v in params.items() if k not in ("rope_theta", "rope_type", "type")}}


def head_dim(config: dict[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def llama3_rope_factors(config: dict[str, Any]) -> np.ndarray:
    """Per-frequency divisors of Llama-3.x rope scaling (llama.cpp's ``rope_freqs.weight``)."""
    rope = rope_settings(config)
    dim = head_dim(config)
    factor = float(rope.get("factor", 8.0))
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / (rope["theta"] ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def _add_hyperparameters(writer: Any, config: dict[str, Any], where: str) -> None:
    import gguf

    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config.get("num_key_value_heads") or config["num_attention_heads"])
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(config["vocab_size"])
    dim = head_dim(config)
    writer.add_rope_dimension_count(dim)
    if dim != config["hidden_size"] // config["num_attention_heads"]:
        writer.add_key_length(dim)
        writer.add_value_length(dim)
    rope = rope_settings(config)
    writer.add_rope_freq_base(rope["theta"])
    if rope["type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope["type"] not in ("default", "llama3"):
        raise UserInputError(
            f"rope scaling {rope['type']!r} is not supported by sparring's GGUF writer",
            where=f"{where}/config.json: rope_parameters",
            fix="supported rope types: default, linear, llama3",
        )


def _target_type(name: str, array: np.ndarray, quant: str, fallbacks: list[dict[str, Any]]):
    """The GGML type of one tensor: 1-D in F32, else ``quant`` unless its rows do not fit the block."""
    import gguf

    if array.ndim == 1:
        return gguf.GGMLQuantizationType.F32
    wanted = gguf.GGMLQuantizationType[quant.upper()]
    block = gguf.GGML_QUANT_SIZES[wanted][0]
    if array.shape[-1] % block:
        fallbacks.append({
            "tensor": name, "wanted": wanted.name, "used": "F16",
            "reason": f"row size {array.shape[-1]} is not a multiple of the {wanted.name} block ({block}); F16 as llama.cpp does",
        })
        return gguf.GGMLQuantizationType.F16
    return wanted


def _encode(array: np.ndarray, qtype: Any) -> np.ndarray:
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def gguf_tensors(model_dir: Path, config: dict[str, Any], weights: dict[str, np.ndarray] | None = None):
    """Yield ``(gguf_name, float32 array)`` in llama.cpp's layout: renamed, permuted, untied once."""
    import gguf

    model_type = config["model_type"]
    arch = gguf.MODEL_ARCH.LLAMA if model_type == "llama" else gguf.MODEL_ARCH.QWEN2
    name_map = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    weights = load_weights(model_dir) if weights is None else weights
    tied = bool(config.get("tie_word_embeddings", False))
    if not tied and "lm_head.weight" not in weights:
        raise SparringError(f"{model_dir}: config.json says tie_word_embeddings=false but the checkpoint has no lm_head.weight")
    n_head = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_head
    for hf_name, array in weights.items():
        if hf_name.endswith(_IGNORED_TENSORS) or (tied and hf_name == "lm_head.weight"):
            continue
        name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise SparringError(f"{model_dir}: tensor {hf_name} has no GGUF name for {model_type}; the checkpoint does not look like a plain {model_type} model")
        if model_type == "llama" and ".self_attn.q_proj." in hf_name:
            array = permute_for_rope(array, n_head)
        elif model_type == "llama" and ".self_attn.k_proj." in hf_name:
            array = permute_for_rope(array, n_kv)
        yield name, array
    if model_type == "llama" and rope_settings(config)["type"] == "llama3":
        yield "rope_freqs.weight", llama3_rope_factors(config)


def write_gguf(model_dir: str | Path, out_path: str | Path, quant: str, *, name: str | None = None) -> dict[str, Any]:
    """Write ``out_path`` (a GGUF of type ``quant`` from NUMPY_QUANTS); return a report dict."""
    import gguf

    from sparring.exporters.gguf_tokenizer import add_tokenizer

    started = time.perf_counter()
    model_dir, out_path = Path(model_dir), Path(out_path)
    if quant not in NUMPY_QUANTS:
        raise UserInputError(f"GGUF type {quant!r} is not written by the numpy quantizer", where="quant", fix=f"use one of {', '.join(NUMPY_QUANTS)}; K-quants go through kquantize()")
    config = read_config(model_dir)
    check_supported(config, str(model_dir))
    writer = gguf.GGUFWriter(str(out_path), config["model_type"])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or config.get("_model_name_or_path") or model_dir.name)
    writer.add_description("exported by sparring")
    writer.add_file_type(int(gguf.LlamaFileType[_file_type_name(quant)]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_hyperparameters(writer, config, str(model_dir))
    tokenizer_info = add_tokenizer(writer, model_dir, config)
    fallbacks: list[dict[str, Any]] = []
    type_counts: dict[str, int] = {}
    for tensor_name, array in gguf_tensors(model_dir, config):
        qtype = _target_type(tensor_name, array, quant, fallbacks)
        data = _encode(array, qtype)
        if data.dtype == np.uint8:
            writer.add_tensor(tensor_name, data, raw_dtype=qtype)
        else:
            writer.add_tensor(tensor_name, data)
        type_counts[qtype.name] = type_counts.get(qtype.name, 0) + 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {
        "quant": quant,
        "tensor_types": type_counts,
        "fallbacks": fallbacks,
        "tokenizer": tokenizer_info,
        "tied_embeddings": bool(config.get("tie_word_embeddings", False)),
        "qk_permuted": config["model_type"] == "llama",
        "write_seconds": round(time.perf_counter() - started, 3),
    }


def _file_type_name(quant: str) -> str:
    return "ALL_F32" if quant == "f32" else f"MOSTLY_{quant.upper()}"


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value types
_STRING, _ARRAY = 8, 9


def tensor_types(path: str | Path) -> dict[str, str]:
    """``{tensor name: GGML type name}`` read from a GGUF header (skips the KV values quickly)."""
    import struct

    import gguf

    with open(path, "rb") as f:
        head = f.read(24)
        magic, _version, n_tensors, n_kv = struct.unpack("<IIQQ", head)
        if magic != gguf.GGUF_MAGIC:
            raise SparringError(f"{path} is not a GGUF file")
        buf = head + f.read()
    pos = 24

    def read_str(p: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<Q", buf, p)
        return buf[p + 8:p + 8 + n].decode("utf-8", errors="replace"), p + 8 + n

    def skip_value(vtype: int, p: int) -> int:
        if vtype == _STRING:
            return p + 8 + struct.unpack_from("<Q", buf, p)[0]
        if vtype == _ARRAY:
            etype, count = struct.unpack_from("<IQ", buf, p)
            p += 12
            if etype in _SCALAR_SIZES:
                return p + count * _SCALAR_SIZES[etype]
            for _ in range(count):
                p = skip_value(etype, p)
            return p
        return p + _SCALAR_SIZES[vtype]

    for _ in range(n_kv):
        _, pos = read_str(pos)
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos = skip_value(vtype, pos + 4)
    types: dict[str, str] = {}
    for _ in range(n_tensors):
        name, pos = read_str(pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + 8 * n_dims
        (ggml_type,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + 8
        types[name] = gguf.GGMLQuantizationType(ggml_type).name
    return types


def kquantize(source_gguf: str | Path, out_path: str | Path, quant: str, *, threads: int = 0) -> dict[str, Any]:
    """Run llama.cpp's quantizer (through llama-cpp-python) from an F32/F16 GGUF to a K-quant mix."""
    import llama_cpp

    if quant not in K_QUANTS:
        raise UserInputError(f"{quant!r} is not a K-quant", where="quant", fix=f"use one of {', '.join(K_QUANTS)}")
    started = time.perf_counter()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = K_QUANTS[quant]
    if not threads:
        from sparring.exporters.gguf_verify import idle_threads

        threads = idle_threads()
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(source_gguf).encode(), str(out_path).encode(), params)
    if rc != 0 or not Path(out_path).is_file():
        raise SparringError(f"llama.cpp's quantizer failed ({rc}) turning {source_gguf} into {quant}")
    types = tensor_types(out_path)
    counts: dict[str, int] = {}
    for t in types.values():
        counts[t] = counts.get(t, 0) + 1
    # llama.cpp falls back (Q4_K -> Q5_0, Q6_K -> Q8_0, ... then F16) for rows not a multiple of 256
    fallbacks = [
        {"tensor": n, "used": t, "reason": "llama.cpp's quantizer chose a non-K type (rows not a multiple of 256, or its mix rules)"}
        for n, t in types.items() if not t.endswith("_K") and t not in ("F32",)
    ]
    return {"quant": quant, "tensor_types": counts, "fallbacks": fallbacks, "quantize_seconds": round(time.perf_counter() - started, 3)}
