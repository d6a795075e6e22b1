"""MLC weights: HF tensors -> MLC parameter names, fused tensors, q0/q4 quantization, tensor cache.

The MLC runtime (WebLLM, mlc_llm) binds parameters by name, so this module reproduces what
``mlc_llm convert_weight`` writes for Llama-family and Qwen2 models (see ../shared/FORMATS.md):

* ``model.layers.N.self_attn.qkv_proj.weight`` = q, k, v stacked on the output axis (Qwen2:
  ``self_attn.c_attn.weight`` + ``.bias``), ``mlp.gate_up_proj.weight`` = gate then up, no q/k
  permutation; ``lm_head.weight`` only when the embeddings are untied.
* q0f16 / q0f32: every tensor cast.  q4f16_1 / q4f32_1: group size 32 along the input axis, each
  2-D weight W[out, in] becomes ``.q_weight`` uint32 [out, in/8] (eight 4-bit values per word, lowest
  nibble first) and ``.q_scale`` [out, in/32] with scale = max|group| / 7 (max floored at 1e-4),
  q = clip(round(w / scale + 7), 0, 14); dequantize (q - 7) * scale.  Norms and biases stay float.

Everything is numpy-vectorized.  ``write_tensor_cache`` writes through TVM's own writer
(``tvm.contrib.tvmjs.dump_tensor_cache``) and copies ``tensor-cache.json`` to
``ndarray-cache.json`` for runtimes older than the 2025 rename.
Exercised by ``pytest tests/exporters/test_mlc.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sparring.errors import UserInputError

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
GROUP_SIZE = 32
NIBBLES_PER_WORD = 8
Q4_MAX_INT = 7
SCALE_FLOOR = 1e-4
SHARD_CAP_MB = 32
TENSOR_CACHE_JSON = "tensor-cache.json"
LEGACY_CACHE_JSON = "ndarray-cache.json"


@dataclass(frozen=True)
class MLCQuant:
    """One MLC quantization: ``weight_bits`` 0 means plain casting to ``float_dtype``."""

    name: str
    weight_bits: int
    float_dtype: str
    group_size: int = GROUP_SIZE

    @property
    def quantized(self) -> bool:
        return self.weight_bits > 0


MLC_QUANTS: dict[str, MLCQuant] = {
    q.name: q
    for q in (
        MLCQuant("q0f16", 0, "float16"),
        MLCQuant("q0f32", 0, "float32"),
        MLCQuant("q4f16_1", 4, "float16"),
        MLCQuant("q4f32_1", 4, "float32"),
    )
}


def get_quant(name: str, *, where: str = "--quant") -> MLCQuant:
    if name not in MLC_QUANTS:
        raise UserInputError(f"unknown MLC quantization {name!r}", where=where, fix=f"use one of {', '.join(MLC_QUANTS)}")
    return MLC_QUANTS[name]


# ---------------------------------------------------------------------------------------------
# the model's shape, read from config.json


@dataclass(frozen=True)
class ModelShape:
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tied: bool

    @property
    def q_rows(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_rows(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def qkv_name(self) -> str:
        return "c_attn" if self.model_type == "qwen2" else "qkv_proj"


def model_shape(config: dict[str, Any], *, where: str = "config.json") -> ModelShape:
    """The dimensions the MLC layout needs; refuses an architecture MLC export does not cover."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UserInputError(
            f"MLC export does not support architecture {model_type!r} ({(config.get('architectures') or ['?'])[0]})",
            where=f"{where}: model_type",
            fix=f"supported architectures: {', '.join(SUPPORTED_MODEL_TYPES)} (SmolLM2, TinyLlama, Llama-3.x, Qwen2/2.5); use --format gguf or hf for others",
        )
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    return ModelShape(
        model_type=model_type,
        hidden_size=hidden,
        intermediate_size=int(config["intermediate_size"]),
        num_layers=int(config["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or hidden // heads),
        vocab_size=int(config["vocab_size"]),
        tied=bool(config.get("tie_word_embeddings", False)),
    )


# ---------------------------------------------------------------------------------------------
# reading HF weights


def read_hf_state_dict(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of an HF directory's safetensors (one file or an index) as float32 numpy."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise UserInputError(f"{model_dir} has no *.safetensors weights", where=str(model_dir), fix="export from a directory written by save_pretrained(safe_serialization=True)")
    state: dict[str, np.ndarray] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:  # pt: bf16 checkpoints convert cleanly
            for key in handle.keys():
                state[key] = handle.get_tensor(key).float().numpy()
    return state


def _take(state: dict[str, np.ndarray], key: str, model_dir: str) -> np.ndarray:
    if key not in state:
        raise UserInputError(f"weight {key} is missing", where=model_dir, fix="export from a complete checkpoint of the model")
    return state[key]


def fuse_to_mlc(state: dict[str, np.ndarray], shape: ModelShape, *, where: str = "model") -> dict[str, np.ndarray]:
    """HF names -> MLC names with fused qkv and gate_up, float32, in MLC's parameter order."""
    out: dict[str, np.ndarray] = {"model.embed_tokens.weight": _take(state, "model.embed_tokens.weight", where)}
    for i in range(shape.num_layers):
        hf = f"model.layers.{i}."
        attn = f"{hf}self_attn.{shape.qkv_name}."
        out[attn + "weight"] = np.concatenate([_take(state, f"{hf}self_attn.{p}_proj.weight", where) for p in "qkv"], axis=0)
        if shape.model_type == "qwen2":
            out[attn + "bias"] = np.concatenate([_take(state, f"{hf}self_attn.{p}_proj.bias", where) for p in "qkv"], axis=0)
        out[f"{hf}self_attn.o_proj.weight"] = _take(state, f"{hf}self_attn.o_proj.weight", where)
        out[f"{hf}mlp.gate_up_proj.weight"] = np.concatenate(
            [_take(state, f"{hf}mlp.gate_proj.weight", where), _take(state, f"{hf}mlp.up_proj.weight", where)], axis=0
        )
        out[f"{hf}mlp.down_proj.weight"] = _take(state, f"{hf}mlp.down_proj.weight", where)
        out[f"{hf}input_layernorm.weight"] = _take(state, f"{hf}input_layernorm.weight", where)
        out[f"{hf}post_attention_layernorm.weight"] = _take(state, f"{hf}post_attention_layernorm.weight", where)
    out["model.norm.weight"] = _take(state, "model.norm.weight", where)
    if not shape.tied:
        out["lm_head.weight"] = _take(state, "lm_head.weight", where)
    return out


def unfuse_to_hf(fused: dict[str, np.ndarray], shape: ModelShape) -> dict[str, np.ndarray]:
    """The inverse of ``fuse_to_mlc``: MLC (dequantized) tensors -> an HF state dict."""
    out: dict[str, np.ndarray] = {"model.embed_tokens.weight": fused["model.embed_tokens.weight"]}
    splits = [shape.q_rows, shape.q_rows + shape.kv_rows]
    for i in range(shape.num_layers):
        hf = f"model.layers.{i}."
        attn = f"{hf}self_attn.{shape.qkv_name}."
        for p, part in zip("qkv", np.split(fused[attn + "weight"], splits, axis=0)):
            out[f"{hf}self_attn.{p}_proj.weight"] = part
        if shape.model_type == "qwen2":
            for p, part in zip("qkv", np.split(fused[attn + "bias"], splits, axis=0)):
                out[f"{hf}self_attn.{p}_proj.bias"] = part
        out[f"{hf}self_attn.o_proj.weight"] = fused[f"{hf}self_attn.o_proj.weight"]
        gate, up = np.split(fused[f"{hf}mlp.gate_up_proj.weight"], 2, axis=0)
        out[f"{hf}mlp.gate_proj.weight"], out[f"{hf}mlp.up_proj.weight"] = gate, up
        for name in ("mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"):
            out[hf + name] = fused[hf + name]
    out["model.norm.weight"] = fused["model.norm.weight"]
    out["lm_head.weight"] = fused["model.embed_tokens.weight"] if shape.tied else fused["lm_head.weight"]
    return out


def fused_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    """The shape of every fused tensor, from the config alone (no weights read)."""
    h, inter = shape.hidden_size, shape.intermediate_size
    out: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (shape.vocab_size, h)}
    for i in range(shape.num_layers):
        hf = f"model.layers.{i}."
        out[f"{hf}self_attn.{shape.qkv_name}.weight"] = (shape.q_rows + 2 * shape.kv_rows, h)
        if shape.model_type == "qwen2":
            out[f"{hf}self_attn.{shape.qkv_name}.bias"] = (shape.q_rows + 2 * shape.kv_rows,)
        out[f"{hf}self_attn.o_proj.weight"] = (h, shape.q_rows)
        out[f"{hf}mlp.gate_up_proj.weight"] = (2 * inter, h)
        out[f"{hf}mlp.down_proj.weight"] = (h, inter)
        out[f"{hf}input_layernorm.weight"] = (h,)
        out[f"{hf}post_attention_layernorm.weight"] = (h,)
    out["model.norm.weight"] = (h,)
    if not shape.tied:
        out["lm_head.weight"] = (shape.vocab_size, h)
    return out


def bundle_bytes(shape: ModelShape, quant: MLCQuant) -> int:
    """Bytes of the tensor cache for ``shape`` in ``quant`` (exact: the shards hold nothing else)."""
    return sum(int(np.prod(shp)) * np.dtype(dtype).itemsize for shp, dtype in expected_records(fused_shapes(shape), quant).values())


# ---------------------------------------------------------------------------------------------
# q4 group quantization


def is_quantized_tensor(name: str, array_ndim: int) -> bool:
    """Which fused tensors q4 quantizes: every 2-D weight (linears, embeddings, lm_head)."""
    return name.endswith(".weight") and array_ndim == 2


def quantize_q4(weight: np.ndarray, scale_dtype: str, group_size: int = GROUP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """W[out, in] float -> (q_weight uint32 [out, in/8], q_scale scale_dtype [out, in/group])."""
    rows, cols = weight.shape
    if cols % group_size:
        raise ValueError(f"input axis {cols} is not a multiple of the group size {group_size}")
    groups = weight.astype(np.float32).reshape(rows, cols // group_size, group_size)
    max_abs = np.maximum(np.abs(groups).max(axis=2), SCALE_FLOOR)
    scale = (max_abs / Q4_MAX_INT).astype(scale_dtype)  # stored scale; quantize against it
    q = np.rint(groups / scale.astype(np.float32)[:, :, None] + Q4_MAX_INT)
    q = np.clip(q, 0, 2 * Q4_MAX_INT).astype(np.uint32).reshape(rows, cols // NIBBLES_PER_WORD, NIBBLES_PER_WORD)
    shifts = (np.arange(NIBBLES_PER_WORD, dtype=np.uint32) * 4)[None, None, :]
    packed = np.bitwise_or.reduce(q << shifts, axis=2).astype(np.uint32)
    return packed, scale


def unpack_q4(q_weight: np.ndarray) -> np.ndarray:
    """uint32 [out, in/8] -> the 4-bit codes [out, in] (lowest nibble first)."""
    shifts = (np.arange(NIBBLES_PER_WORD, dtype=np.uint32) * 4)[None, None, :]
    codes = (q_weight[:, :, None] >> shifts) & np.uint32(0xF)
    return codes.reshape(q_weight.shape[0], -1)


def dequantize_q4(q_weight: np.ndarray, q_scale: np.ndarray, group_size: int = GROUP_SIZE) -> np.ndarray:
    """(q - 7) * scale in float32, shaped [out, in]."""
    codes = unpack_q4(q_weight).astype(np.float32)
    rows, cols = codes.shape
    scale = q_scale.astype(np.float32)[:, :, None]
    return ((codes.reshape(rows, cols // group_size, group_size) - Q4_MAX_INT) * scale).reshape(rows, cols)


def check_q4_divisible(shapes: dict[str, tuple[int, ...]], quant: MLCQuant, *, where: str) -> None:
    """Every quantized tensor's input axis must split into groups of 32."""
    if not quant.quantized:
        return
    bad = [f"{name} {list(shp)}" for name, shp in shapes.items() if is_quantized_tensor(name, len(shp)) and shp[1] % quant.group_size]
    if bad:
        raise UserInputError(
            f"{quant.name} groups {quant.group_size} values along the input axis, but these tensors' input size is not a multiple of {quant.group_size}: {', '.join(bad[:4])}",
            where=where,
            fix="export with --quant q0f16 or q0f32 (no grouping) for this model",
        )


def mlc_params(fused: dict[str, np.ndarray], quant: MLCQuant) -> Iterator[tuple[str, np.ndarray]]:
    """The final (name, array) pairs of the MLC tensor cache, in order, one tensor at a time."""
    for name, array in fused.items():
        if quant.quantized and is_quantized_tensor(name, array.ndim):
            q_weight, q_scale = quantize_q4(array, quant.float_dtype, quant.group_size)
            stem = name[: -len(".weight")]
            yield f"{stem}.q_weight", q_weight
            yield f"{stem}.q_scale", q_scale
        else:
            yield name, array.astype(quant.float_dtype)


def expected_records(fused_shapes: dict[str, tuple[int, ...]], quant: MLCQuant) -> dict[str, tuple[list[int], str]]:
    """name -> (shape, dtype) every correct export of this model and quant must contain."""
    expected: dict[str, tuple[list[int], str]] = {}
    for name, shp in fused_shapes.items():
        if quant.quantized and is_quantized_tensor(name, len(shp)):
            stem = name[: -len(".weight")]
            rows, cols = shp
            expected[f"{stem}.q_weight"] = ([rows, cols // NIBBLES_PER_WORD], "uint32")
            expected[f"{stem}.q_scale"] = ([rows, cols // quant.group_size], quant.float_dtype)
        else:
            expected[name] = (list(shp), quant.float_dtype)
    return expected


# ---------------------------------------------------------------------------------------------
# writing


def write_tensor_cache(params: Iterator[tuple[str, np.ndarray]], out_dir: Path, *, quant: MLCQuant, original_params: int) -> dict[str, Any]:
    """Dump with TVM's writer ("raw": f32 stays exact, f16 is already f16); returns the metadata."""
    from tvm.contrib import tvmjs

    totals = {"tensors": 0, "bytes": 0}

    def counted() -> Iterator[tuple[str, np.ndarray]]:
        for name, array in params:
            totals["tensors"] += 1
            totals["bytes"] += array.nbytes
            yield name, np.ascontiguousarray(array)

    def metadata() -> dict[str, Any]:
        return {
            "ParamSize": totals["tensors"],
            "ParamBytes": totals["bytes"],
            "BitsPerParam": round(totals["bytes"] * 8 / max(original_params, 1), 4),
        }

    with contextlib.redirect_stdout(io.StringIO()):  # TVM prints progress lines
        tvmjs.dump_tensor_cache(counted(), str(out_dir), encode_format="raw", meta_data=metadata, shard_cap_mb=SHARD_CAP_MB, show_progress=False)
    shutil.copyfile(out_dir / TENSOR_CACHE_JSON, out_dir / LEGACY_CACHE_JSON)
    return json.loads((out_dir / TENSOR_CACHE_JSON).read_text())["metadata"]
