"""GGUF export on tiny random Llama and Qwen2 models, verified by the real llama-cpp-python.

Every type is written and verified; the metadata llama.cpp needs is read back; a file with a wrong
q/k permutation or flipped bytes fails verification and lands in failed/; row sizes that do not fit
a block fall back to F16 and say so; the LoRA adapter GGUF changes the output and matches the merged
model.  The slow test exports the embedded SmolLM2-135M to Q8_0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparring.errors import SparringError, UserInputError
from sparring.exporters.base import ExportOptions, atomic_export_dir, read_verify
from sparring.exporters.gguf import GGUFExporter
from sparring.exporters.gguf_writer import permute_for_rope, write_gguf

NUMPY_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]
K_TYPES = ["q4_k_m", "q5_k_m", "q6_k"]
LLAMA_KEYS = (
    "general.architecture", "general.name", "general.type", "general.file_type", "general.quantization_version",
    "{a}.block_count", "{a}.context_length", "{a}.embedding_length", "{a}.feed_forward_length",
    "{a}.attention.head_count", "{a}.attention.head_count_kv", "{a}.attention.layer_norm_rms_epsilon",
    "{a}.rope.freq_base", "{a}.rope.dimension_count", "{a}.vocab_size",
    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template",
)


def read_gguf(path: Path):
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith(("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"))}
    return reader, fields


@pytest.fixture(scope="module")
def llama_export(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("llama-gguf") / "gguf"
    GGUFExporter().export(tiny_llama_dir, out, ExportOptions(quants=NUMPY_TYPES + K_TYPES))
    return out


@pytest.fixture(scope="module")
def qwen2_export(tiny_qwen2_untied_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qwen2-gguf") / "gguf"
    GGUFExporter().export(tiny_qwen2_untied_dir, out, ExportOptions(quants=NUMPY_TYPES + K_TYPES))
    return out


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_every_type_is_written_and_verified_in_llama_cpp(arch: str, request: pytest.FixtureRequest):
    out = request.getfixturevalue(f"{arch}_export")
    verify = read_verify(out)
    assert verify["passed"] is True
    for quant in NUMPY_TYPES + K_TYPES:
        rec = verify["artifacts"][f"model-{quant}.gguf"]
        assert rec["passed"], (quant, rec)
        assert rec["load"]["n_vocab"] == 49152
        assert rec["tokenization"]["passed"] and rec["tokenization"]["texts"] >= 9
        cont = rec["continuation"]
        assert cont["prompts"] == 5 and cont["tokens_per_prompt"] == 32
        if quant in ("f32", "f16"):
            # exact greedy match, except documented near-ties of the flat tiny-model logits
            assert not cont["greedy_divergences"]
            assert cont["greedy_exact_prompts"] + len(cont["greedy_ties"]) == 5
            assert cont["logit_correlation_mean"] > 0.999
        if quant == "q8_0":
            assert cont["top1_agreement_tie_aware"] >= 0.95
        assert len(rec["sha256"]) == 64 and rec["size_bytes"] == (out / f"model-{quant}.gguf").stat().st_size
    sizes = {q: verify["artifacts"][f"model-{q}.gguf"]["size_bytes"] for q in ("f32", "f16", "q8_0", "q4_0")}
    assert sizes["f32"] > sizes["f16"] > sizes["q8_0"] > sizes["q4_0"]


def test_llama_metadata_tied_embeddings_and_tensor_types(llama_export: Path):
    reader, fields = read_gguf(llama_export / "model-q8_0.gguf")
    for key in LLAMA_KEYS:
        assert key.format(a="llama") in reader.fields, key
    assert fields["general.architecture"] == "llama" and fields["general.type"] == "model"
    assert fields["general.file_type"] == 7 and fields["general.quantization_version"] == 2
    assert fields["llama.rope.dimension_count"] == 16 and fields["llama.attention.head_count_kv"] == 2
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "smollm"
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert "output.weight" not in types  # tied: llama.cpp reuses token_embd
    assert types["token_embd.weight"] == "Q8_0" and types["blk.0.attn_q.weight"] == "Q8_0"
    assert types["blk.0.attn_norm.weight"] == "F32" and types["output_norm.weight"] == "F32"
    write = read_verify(llama_export)["artifacts"]["model-q8_0.gguf"]["write"]
    assert write["tokenizer"]["pre"] == {"name": "smollm", "method": "check-hash", "hash": write["tokenizer"]["pre"]["hash"]}
    kq = read_verify(llama_export)["artifacts"]["model-q4_k_m.gguf"]["write"]
    assert kq["fallbacks"], "hidden 64 is not a multiple of 256: llama.cpp falls back and the record says so"


def test_qwen2_untied_output_and_biases(qwen2_export: Path):
    reader, fields = read_gguf(qwen2_export / "model-f16.gguf")
    for key in LLAMA_KEYS:
        assert key.format(a="qwen2") in reader.fields, key
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["output.weight"] == "F16"
    assert types["blk.0.attn_q.bias"] == "F32" and types["blk.1.attn_v.bias"] == "F32"
    assert fields["tokenizer.ggml.pre"] == "qwen2"


def test_permutation_matches_hf_rotary_layout():
    # rows (head, half, i) of HF's half-split rope become (head, i, half) in llama.cpp's layout
    w = np.arange(2 * 8 * 3, dtype=np.float32).reshape(16, 3)
    p = permute_for_rope(w, n_head=2)
    assert np.array_equal(p[0], w[0]) and np.array_equal(p[1], w[4]) and np.array_equal(p[2], w[1])
    assert np.array_equal(p[8], w[8]) and np.array_equal(p[9], w[12])


def _inverse_permute_in_place(path: Path, names: dict[str, int]) -> None:
    from gguf import GGUFReader

    reader = GGUFReader(str(path), "r+")
    for t in reader.tensors:
        if t.name in names:
            n_head = names[t.name]
            rows = t.data.shape[0]
            original = t.data.reshape(n_head, rows // n_head // 2, 2, -1).swapaxes(1, 2).reshape(t.data.shape).copy()
            t.data[...] = original
    reader.data.flush()


def _flip_bytes_in_place(path: Path, tensor: str) -> None:
    from gguf import GGUFReader

    reader = GGUFReader(str(path), "r+")
    t = next(t for t in reader.tensors if t.name == tensor)
    raw = t.data.view(np.uint8)
    raw[..., 3::4] ^= 0x7F  # the exponent byte of every float32
    reader.data.flush()


@pytest.mark.parametrize("corruption", ["qk_permutation", "flipped_bytes"])
def test_corrupted_gguf_fails_verification_and_lands_in_failed(corruption: str, tiny_llama_sharp_dir: Path, tmp_path: Path):
    from sparring.exporters.gguf_verify import HFReference, verify_gguf

    tiny_llama_dir = tiny_llama_sharp_dir
    ref = HFReference.build(tiny_llama_dir)
    with pytest.raises(SparringError, match="failed verification"):
        with atomic_export_dir(tmp_path / "gguf", format="gguf") as stage:
            path = stage.path / "model-f32.gguf"
            write_gguf(tiny_llama_dir, path, "f32")
            if corruption == "qk_permutation":
                _inverse_permute_in_place(path, {f"blk.{i}.attn_q.weight": 4 for i in range(2)} | {f"blk.{i}.attn_k.weight": 2 for i in range(2)})
            else:
                _flip_bytes_in_place(path, "blk.0.ffn_down.weight")
            stage.records[path.name] = verify_gguf(path, ref, "f32")
    assert not (tmp_path / "gguf").exists()
    failed = list((tmp_path / "failed").iterdir())
    assert len(failed) == 1 and failed[0].name.startswith("gguf-")
    verify = json.loads((failed[0] / "verify.json").read_text())
    rec = verify["artifacts"]["model-f32.gguf"]
    assert verify["passed"] is False and rec["passed"] is False
    assert rec["continuation"]["passed"] is False and rec["tokenization"]["passed"] is True
    assert (failed[0] / "model-f32.gguf").is_file()


def test_rows_not_multiple_of_block_fall_back_to_f16(tiny_llama_dir: Path, tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    cfg = LlamaConfig.from_pretrained(tiny_llama_dir)
    cfg.intermediate_size = 80  # ffn_down rows of 80 do not fit Q8_0's 32-wide blocks
    torch.manual_seed(0)
    model_dir = tmp_path / "odd"
    AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(model_dir)
    arts = GGUFExporter().export(model_dir, tmp_path / "gguf", ExportOptions(quants=["q8_0"]))
    rec = arts[0].verify
    assert rec["passed"]
    assert {f["tensor"] for f in rec["write"]["fallbacks"]} == {"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}
    assert all(f["used"] == "F16" and "not a multiple" in f["reason"] for f in rec["write"]["fallbacks"])


def test_unsupported_architecture_names_it_and_the_supported_ones(tmp_path: Path):
    from sparring.models import make_tiny_model

    with pytest.raises(UserInputError) as err:
        GGUFExporter().export(make_tiny_model("gpt2"), tmp_path / "gguf", ExportOptions(quants=["f16"]))
    assert "GPT2LMHeadModel" in str(err.value) and "llama, qwen2" in str(err.value)
    assert not (tmp_path / "gguf").exists()


def test_lora_adapter_gguf_changes_output_and_matches_merged(tiny_llama_adapter_dir: Path, tmp_path: Path):
    from gguf import GGUFReader

    from sparring.exporters.export import export_model

    arts = export_model(tiny_llama_adapter_dir, tmp_path / "out", formats="ollama", quants="f16", ollama_adapter=True)
    by_name = {Path(a.path).name: a for a in arts}
    assert set(by_name) == {"base-f16.gguf", "adapter.gguf", "Modelfile"}
    rec = by_name["adapter.gguf"].verify
    assert rec["passed"] and rec["changes_output"]["max_abs_logit_change_vs_base"] > 0.01
    assert not rec["continuation"]["greedy_divergences"]
    reader = GGUFReader(by_name["adapter.gguf"].path)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == pytest.approx(8.0)
    names = {t.name for t in reader.tensors}
    assert {"blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b", "blk.1.ffn_down.weight.lora_b"} <= names
    modelfile = (tmp_path / "out" / "ollama" / "Modelfile").read_text()
    assert "FROM ./base-f16.gguf" in modelfile and "ADAPTER ./adapter.gguf" in modelfile


def test_adapter_without_qk_permutation_fails(tiny_llama_dir: Path, tiny_llama_adapter_dir: Path, tmp_path: Path):
    from sparring.exporters.gguf_adapter import verify_lora_gguf, write_lora_gguf
    from sparring.exporters.gguf_verify import HFReference
    from sparring.exporters.merge import merge_adapter

    merged = merge_adapter(tiny_llama_adapter_dir, tmp_path / "merged", base_dir=tiny_llama_dir)
    write_gguf(tiny_llama_dir, tmp_path / "base.gguf", "f32")
    write_lora_gguf(tiny_llama_adapter_dir, tiny_llama_dir, tmp_path / "adapter.gguf")
    _inverse_permute_in_place(tmp_path / "adapter.gguf", {f"blk.{i}.attn_q.weight.lora_b": 4 for i in range(2)})
    rec = verify_lora_gguf(tmp_path / "base.gguf", tmp_path / "adapter.gguf", HFReference.build(merged), "f32")
    assert rec["passed"] is False and rec["continuation"]["logit_correlation_mean"] < 0.9999


def _sentencepiece_style_model(out: Path) -> Path:
    """A tiny Llama with a TinyLlama-style tokenizer: BPE with byte fallback, "▁" for spaces, <s> BOS."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    from sparring.exporters.gguf_verify import TOKENIZER_TEXTS, VERIFY_PROMPTS

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(list(TOKENIZER_TEXTS[:2] + VERIFY_PROMPTS) * 20, trainers.BpeTrainer(vocab_size=600, special_tokens=specials, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


def test_sentencepiece_style_tokenizer_is_written_with_scores_and_byte_tokens(tmp_path: Path):
    model_dir = _sentencepiece_style_model(tmp_path / "spm")
    [artifact] = GGUFExporter().export(model_dir, tmp_path / "gguf", ExportOptions(quants=["f16"]))
    rec = artifact.verify
    assert rec["passed"] and rec["tokenization"]["passed"]  # incl. UTF-8 byte fallback for CJK/emoji and BOS
    assert rec["write"]["tokenizer"]["model"] == "llama" and rec["write"]["tokenizer"]["add_bos"] is True
    reader, fields = read_gguf(Path(artifact.path))
    assert fields["tokenizer.ggml.model"] == "llama" and "tokenizer.ggml.scores" in reader.fields
    types = list(reader.fields["tokenizer.ggml.token_type"].contents())
    assert types[0] == 2 and types[1] == 3 and types.count(6) == 256  # unknown, control, 256 byte tokens
    assert "output.weight" in {t.name for t in reader.tensors}  # untied


@pytest.mark.slow
def test_embedded_smollm2_q8_0_is_verified(embedded_model_dir: Path, tmp_path: Path):
    arts = GGUFExporter().export(embedded_model_dir, tmp_path / "gguf", ExportOptions(quants=["q8_0"]))
    rec = arts[0].verify
    assert rec["passed"] and rec["tokenization"]["passed"]
    assert rec["continuation"]["top1_agreement"] >= 0.95
    assert rec["write"]["tokenizer"]["pre"]["name"] == "smollm"
    assert 130e6 < arts[0].size_bytes < 160e6
