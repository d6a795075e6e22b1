"""MLC export: names, fusion, q4 packing, the real TVM tensor-cache reader, verification, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sparring.errors import SparringError, UserInputError
from sparring.exporters import mlc as mlc_exporter
from sparring.exporters.base import ExportOptions
from sparring.exporters.mlc import MLCExporter
from sparring.exporters.mlc_config import conv_template, special_token_ids, tokenizer_info
from sparring.exporters.mlc_verify import verify_mlc_export
from sparring.exporters.mlc_weights import (
    MLC_QUANTS,
    dequantize_q4,
    fuse_to_mlc,
    model_shape,
    quantize_q4,
    read_hf_state_dict,
    unfuse_to_hf,
    unpack_q4,
)

ALL_QUANTS = list(MLC_QUANTS)


def _config(model_dir: Path) -> dict:
    return json.loads((model_dir / "config.json").read_text())


# ---------------------------------------------------------------------------------------------
# pure functions


def test_q4_packs_lowest_nibble_first_and_stays_within_half_a_step():
    w = np.zeros((1, 32), np.float32)
    w[0, :8] = [-0.7, -0.6, -0.5, 0.0, 0.1, 0.5, 0.6, 0.7]  # group max 0.7 -> scale 0.1
    q_weight, q_scale = quantize_q4(w, "float32")
    assert q_weight.dtype == np.uint32 and q_weight.shape == (1, 4) and q_scale.shape == (1, 1)
    assert np.isclose(q_scale[0, 0], 0.1)
    assert list(unpack_q4(q_weight)[0, :8]) == [0, 1, 2, 7, 8, 12, 13, 14]
    assert q_weight[0, 0] == sum(code << (4 * i) for i, code in enumerate([0, 1, 2, 7, 8, 12, 13, 14]))
    assert q_weight[0, 1] == 0x77777777  # zeros encode as 7
    rng = np.random.default_rng(0)
    big = rng.normal(0, 0.02, (64, 128)).astype(np.float32)
    big[3, :32] = 0.0  # an all-zero group: the 1e-4 floor keeps the scale finite
    qw, qs = quantize_q4(big, "float16")
    err = np.abs(dequantize_q4(qw, qs) - big).reshape(64, 4, 32)
    assert np.all(err <= qs.astype(np.float32)[:, :, None] / 2 * (1 + 1e-4))
    assert np.isclose(float(qs[3, 0]), 1e-4 / 7, rtol=1e-3)


def test_fusion_names_and_round_trip(tiny_llama_dir, tiny_qwen2_untied_dir):
    llama = model_shape(_config(tiny_llama_dir))
    fused = fuse_to_mlc(read_hf_state_dict(tiny_llama_dir), llama)
    assert "model.layers.1.self_attn.qkv_proj.weight" in fused and "model.layers.0.mlp.gate_up_proj.weight" in fused
    assert fused["model.layers.0.self_attn.qkv_proj.weight"].shape == (64 + 2 * 32, 64)  # 4 q heads + 2x2 kv heads of 16
    assert fused["model.layers.0.mlp.gate_up_proj.weight"].shape == (256, 64)
    assert "lm_head.weight" not in fused  # tied embeddings
    qwen = model_shape(_config(tiny_qwen2_untied_dir))
    state = read_hf_state_dict(tiny_qwen2_untied_dir)
    fused_q = fuse_to_mlc(state, qwen)
    assert "model.layers.0.self_attn.c_attn.bias" in fused_q and "lm_head.weight" in fused_q
    assert not any("qkv_proj" in n for n in fused_q)
    np.testing.assert_array_equal(fused_q["model.layers.0.self_attn.c_attn.weight"][:64], state["model.layers.0.self_attn.q_proj.weight"])
    np.testing.assert_array_equal(fused_q["model.layers.0.self_attn.c_attn.bias"][96:], state["model.layers.0.self_attn.v_proj.bias"])
    back = unfuse_to_hf(fused_q, qwen)
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value)


def test_conv_templates_and_tokenizer_info(tiny_llama_dir):
    tok = json.loads((tiny_llama_dir / "tokenizer.json").read_text())
    ids = special_token_ids(tok)
    chatml = conv_template("{{ '<|im_start|>system\nBe brief.<|im_end|>\n' }}<|im_start|>", ids, [2])
    assert chatml["name"] == "chatml" and chatml["system_message"] == "Be brief." and chatml["stop_token_ids"] == [ids["<|im_end|>"]]
    assert chatml["seps"] == ["<|im_end|>\n"] and chatml["roles"]["assistant"] == "<|im_start|>assistant"
    llama3 = conv_template("<|start_header_id|>{{ role }}<|end_header_id|>", {"<|begin_of_text|>": 128000, "<|eot_id|>": 128009, "<|end_of_text|>": 128001}, [128009])
    assert llama3["name"] == "llama-3" and llama3["system_prefix_token_ids"] == [128000] and llama3["stop_token_ids"] == [128001, 128009]
    tiny = conv_template("<|user|>\n{{ m }}</s>\n<|assistant|>", {"</s>": 2}, [2], system_message="Env prompt")
    assert tiny["name"] == "tinyllama_v1_0" and tiny["system_message"] == "Env prompt" and tiny["stop_str"] == ["</s>"]
    with pytest.raises(UserInputError, match="conversation template"):
        conv_template("{{ messages }}", ids, [2])
    assert tokenizer_info(tok)["token_postproc_method"] == "byte_level"
    assert tokenizer_info({"decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Strip"}]}, "normalizer": {"type": "Prepend"}}) == {
        "token_postproc_method": "byte_fallback", "prepend_space_in_encode": True, "strip_space_in_decode": True}


# ---------------------------------------------------------------------------------------------
# full exports through the registered exporter, read back by TVM


@pytest.fixture(scope="module")
def llama_export(tiny_llama_sharp_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlc-llama") / "mlc"
    MLCExporter().export(tiny_llama_sharp_dir, out, ExportOptions(quants=ALL_QUANTS, name="tiny-llama", system_prompt="You tell jokes."))
    return out


@pytest.fixture(scope="module")
def qwen2_export(tiny_qwen2_untied_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlc-qwen2") / "mlc"
    MLCExporter().export(tiny_qwen2_untied_dir, out, ExportOptions(quants=ALL_QUANTS, name="tiny-qwen2"))
    return out


@pytest.mark.parametrize("which", ["llama_export", "qwen2_export"])
def test_every_quant_written_and_verified(which, request):
    import tvm
    from tvm.contrib import tvmjs

    out: Path = request.getfixturevalue(which)
    top = json.loads((out / "verify.json").read_text())
    assert top["passed"] and set(top["artifacts"]) == set(ALL_QUANTS)
    for quant in ALL_QUANTS:
        bundle = out / quant
        verify = json.loads((bundle / "verify.json").read_text())
        assert verify["passed"], verify["problems"]
        assert (bundle / "tensor-cache.json").read_bytes() == (bundle / "ndarray-cache.json").read_bytes()
        params, metadata = tvmjs.load_tensor_cache(str(bundle), tvm.cpu())
        assert metadata["ParamSize"] == len(params)
        embed = "model.embed_tokens.q_weight" if quant.startswith("q4") else "model.embed_tokens.weight"
        assert embed in params
        float_dtype = "float16" if "f16" in quant else "float32"
        assert str(params["model.norm.weight"].numpy().dtype) == float_dtype
        if quant.startswith("q4"):
            assert params["model.embed_tokens.q_weight"].numpy().dtype == np.uint32
            assert params["model.embed_tokens.q_weight"].numpy().shape == (49152, 8)
            assert str(params["model.embed_tokens.q_scale"].numpy().dtype) == float_dtype
        assert all(p.stat().st_size <= 32 * 2**20 for p in bundle.glob("params_shard_*.bin"))
        chat = json.loads((bundle / "mlc-chat-config.json").read_text())
        assert chat["quantization"] == quant and chat["version"] == "0.1.0" and chat["conv_template"]["name"] == "chatml"
        for field in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "head_dim", "rms_norm_eps", "vocab_size", "position_embedding_base", "context_window_size", "prefill_chunk_size", "tensor_parallel_shards", "max_batch_size"):
            assert field in chat["model_config"], field
        assert chat["tokenizer_info"]["token_postproc_method"] == "byte_level" and "tokenizer.json" in chat["tokenizer_files"]
        assert (bundle / "index.html").is_file() and (bundle / "webllm-app-config.json").is_file()
        weights = verify["checks"]["weights"]["classes"]
        assert all(c["max_error_over_bound"] <= 1.0 for c in weights.values())
        forward = verify["checks"]["forward"]
        assert forward["next_token_agreement"] == 1.0
        if quant == "q0f32":  # bit-identical weights: identical logits, nothing to call a tie
            assert forward["max_abs_logit_diff"] == 0.0 and not forward["ties"] and weights["embedding"]["max_abs_error"] == 0.0
        if quant in ("q0f16", "q0f32"):
            assert forward["greedy_match_min"] == 16


def test_names_match_the_architecture(llama_export, qwen2_export):
    llama = json.loads((llama_export / "q4f16_1" / "tensor-cache.json").read_text())
    names = {r["name"] for shard in llama["records"] for r in shard["records"]}
    assert "model.layers.0.self_attn.qkv_proj.q_weight" in names and "model.layers.1.mlp.gate_up_proj.q_scale" in names
    assert not any(n.startswith("lm_head") for n in names)
    assert all(r["format"] == "raw" for shard in llama["records"] for r in shard["records"])
    qwen = json.loads((qwen2_export / "q4f32_1" / "tensor-cache.json").read_text())
    names = {r["name"] for shard in qwen["records"] for r in shard["records"]}
    assert {"model.layers.0.self_attn.c_attn.q_weight", "model.layers.0.self_attn.c_attn.bias", "lm_head.q_weight", "lm_head.q_scale"} <= names
    chat = json.loads((llama_export / "q0f16" / "mlc-chat-config.json").read_text())
    assert chat["conv_template"]["system_message"] == "You tell jokes."
    assert chat["model_type"] == "llama" and chat["eos_token_id"] == 2 and chat["model_task"] == "chat"


def test_corrupted_shard_fails_verification(llama_export, tiny_llama_sharp_dir, tmp_path):
    bundle = tmp_path / "q4f16_1"
    shutil.copytree(llama_export / "q4f16_1", bundle)
    shard = sorted(bundle.glob("params_shard_*.bin"))[0]
    data = bytearray(shard.read_bytes())
    data[100:4100] = bytes(4000)  # zero 4 KB in the middle of the first tensors
    shard.write_bytes(bytes(data))
    verify = verify_mlc_export(bundle, tiny_llama_sharp_dir, "q4f16_1", forward=False)
    assert not verify["passed"]
    assert not verify["checks"]["shards"]["passed"] and "md5" in verify["checks"]["shards"]["problems"][0]
    assert not verify["checks"]["weights"]["passed"]  # the numbers are wrong too, not only the checksum
    # with the md5 "repaired" the weight check alone still catches it
    cache = json.loads((bundle / "tensor-cache.json").read_text())
    from sparring.exporters.mlc_verify import _md5

    cache["records"][0]["md5sum"] = _md5(shard)
    for name in ("tensor-cache.json", "ndarray-cache.json"):
        (bundle / name).write_text(json.dumps(cache))
    again = verify_mlc_export(bundle, tiny_llama_sharp_dir, "q4f16_1", forward=False)
    assert again["checks"]["shards"]["passed"] and not again["checks"]["weights"]["passed"] and not again["passed"]


def test_failed_export_is_kept_under_failed_and_never_published(tiny_llama_dir, tmp_path, monkeypatch):
    real_writer = mlc_exporter.write_tensor_cache

    def corrupting_writer(params, out_dir, **kwargs):
        metadata = real_writer(params, out_dir, **kwargs)
        shard = sorted(Path(out_dir).glob("params_shard_*.bin"))[0]
        data = bytearray(shard.read_bytes())
        data[-64:] = b"\xff" * 64
        shard.write_bytes(bytes(data))
        return metadata

    monkeypatch.setattr(mlc_exporter, "write_tensor_cache", corrupting_writer)
    out = tmp_path / "exports" / "mlc"
    with pytest.raises(SparringError, match="failed verification"):
        MLCExporter().export(tiny_llama_dir, out, ExportOptions(quants=["q0f32"]))
    assert not out.exists()
    failed = list((tmp_path / "exports" / "failed").iterdir())
    assert len(failed) == 1
    verify = json.loads((failed[0] / "verify.json").read_text())
    assert verify["passed"] is False and verify["artifacts"]["q0f32"]["passed"] is False


def test_bad_input_is_refused_before_writing(tiny_gpt2, tiny_llama_dir, tmp_path):
    exporter = MLCExporter()
    with pytest.raises(UserInputError, match="llama, qwen2"):
        exporter.check(tiny_gpt2, ExportOptions(quants=["q0f16"]))
    with pytest.raises(UserInputError, match="q4f16_1"):
        exporter.check(tiny_llama_dir, ExportOptions(quants=["q3f16_0"]))
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64}))
    with pytest.raises(UserInputError, match="multiple of 32") as info:
        exporter.check(odd, ExportOptions(quants=["q4f16_1"]))
    assert "q0f16" in str(info.value)
    with pytest.raises(UserInputError, match="tokenizer"):
        exporter.check(odd, ExportOptions(quants=["q0f16"]))


@pytest.mark.slow
def test_embedded_smollm2_q0f16_export_verifies(embedded_model_dir, tmp_path):
    out = tmp_path / "mlc"
    artifacts = MLCExporter().export(embedded_model_dir, out, ExportOptions(quants=["q0f16"], name="SmolLM2-135M-Instruct"))
    assert len(artifacts) == 1 and artifacts[0].verified
    verify = json.loads((out / "q0f16" / "verify.json").read_text())
    forward = verify["checks"]["forward"]
    assert forward["next_token_agreement"] == 1.0 and forward["greedy_match_min"] == 16 and not forward["ties"]
    assert verify["webllm"]["prebuilt"] and "SmolLM2-135M-Instruct-q0f16" in verify["webllm"]["model_lib"]
    app = json.loads((out / "q0f16" / "webllm-app-config.json").read_text())
    assert app["model_list"][0]["model"].endswith("/resolve/main/")
