"""The tokenizer half of a GGUF file: vocabulary, token types, merges or scores, special ids.

Two tokenizer families are written, both read from the model's ``tokenizer.json``:

* byte-level BPE without ``tokenizer.model`` (SmolLM2, Llama-3.x, Qwen2): ``tokenizer.ggml.model =
  gpt2``, merges as "a b" strings and ``tokenizer.ggml.pre`` naming llama.cpp's pre-tokenizer.  The
  pre-tokenizer is identified the way llama.cpp's converter does it: encode a fixed check text and
  hash the token ids; known hashes map to ``smollm``, ``llama-bpe``, ``qwen2`` and ``gpt-2``.  An
  unknown hash falls back on the model type and the shape of ``tokenizer.json`` (recorded as
  ``method: fallback``) and the tokenization check in :mod:`sparring.exporters.gguf_verify` decides.
* SentencePiece-style BPE with byte fallback (TinyLlama, Llama-2): ``tokenizer.ggml.model = llama``
  with scores.  llama.cpp's SPM tokenizer merges the highest-scoring pair first, so a token's score
  is minus the rank of the merge that produces it (the order the HF merges list encodes).

Exercised by ``pytest tests/exporters/test_gguf.py -k tokeniz``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError

# The check text llama.cpp's converter encodes to identify a BPE pre-tokenizer (a format fact: the
# hash of the encoded ids is what the known values below were computed from).
PRE_TOKENIZER_CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 "
    "3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
    "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)
KNOWN_PRE_TOKENIZER_HASHES = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # SmolLM / SmolLM2
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Llama-3.x
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen1.5 / 2 / 2.5
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3 family
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",  # GPT-2
}
# gguf token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _looks_special(text: str) -> bool:
    return (text.startswith("<|") and text.endswith("|>")) or text in ("<s>", "</s>", "<unk>", "<pad>")


def load_hf_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except Exception as exc:  # missing or unreadable tokenizer files
        raise UserInputError(
            f"cannot load the tokenizer of {model_dir}: {str(exc).splitlines()[0]}",
            where=str(model_dir),
            fix="export a model directory that holds tokenizer.json and tokenizer_config.json (save_pretrained writes both)",
        ) from None


def tokenizer_kind(model_dir: Path) -> str:
    """``gpt2`` (byte-level BPE) or ``llama`` (SentencePiece-style BPE with byte fallback)."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise UserInputError(
            f"{model_dir} has no tokenizer.json",
            where=str(model_dir),
            fix="save the tokenizer with a fast (tokenizers-backed) tokenizer: AutoTokenizer.from_pretrained(...).save_pretrained(dir)",
        )
    model = json.loads(path.read_text(encoding="utf-8")).get("model", {})
    if model.get("type") != "BPE":
        raise UserInputError(
            f"{path}: tokenizer model type {model.get('type')!r} is not supported for GGUF",
            where=f"{path}: model.type",
            fix="GGUF export supports byte-level BPE (SmolLM2, Llama-3, Qwen2) and SentencePiece-style BPE (TinyLlama)",
        )
    return "llama" if model.get("byte_fallback") else "gpt2"


def detect_pre_tokenizer(tokenizer: Any, model_dir: Path, model_type: str) -> dict[str, str]:
    """Name llama.cpp's pre-tokenizer for a byte-level BPE tokenizer: ``{"name", "method", "hash"}``."""
    ids = tokenizer.encode(PRE_TOKENIZER_CHECK_TEXT)
    digest = hashlib.sha256(str(ids).encode()).hexdigest()
    if digest in KNOWN_PRE_TOKENIZER_HASHES:
        return {"name": KNOWN_PRE_TOKENIZER_HASHES[digest], "method": "check-hash", "hash": digest}
    spec = json.dumps(json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8")).get("pre_tokenizer"))
    if model_type == "qwen2":
        name = "qwen2"
    elif r"\\p{N}{1,3}" in spec:  # Llama-3's split regex groups digits by three
        name = "llama-bpe"
    elif '"ByteLevel"' in spec and '"Split"' not in spec:
        name = "gpt-2"
    else:
        name = "default"
    return {"name": name, "method": "fallback", "hash": digest}


def _gpt2_vocab(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    id_to_token = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in id_to_token:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        token = id_to_token[i]
        if i in added:
            types.append(CONTROL if added[i].special or _looks_special(token) else USER_DEFINED)
        else:
            types.append(NORMAL)
        tokens.append(token)
    return tokens, types


def _spm_vocab(tokenizer: Any, model_dir: Path, vocab_size: int) -> tuple[list[bytes], list[float], list[int]]:
    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    merge_rank: dict[str, int] = {}
    for rank, merge in enumerate(spec.get("merges", [])):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        merge_rank.setdefault(left + right, rank)
    id_to_token = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    unk = spec.get("unk_token")
    tokens: list[bytes] = []
    scores: list[float] = []
    types: list[int] = []
    for i in range(vocab_size):
        token = id_to_token.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]".encode())
            scores.append(-1000.0)
            types.append(UNUSED)
            continue
        if token == unk:
            kind = UNKNOWN
        elif _BYTE_TOKEN.fullmatch(token):  # byte-fallback pieces, even when declared as added tokens
            kind = BYTE
        elif i in added:
            kind = CONTROL if added[i].special or _looks_special(token) else USER_DEFINED
        else:
            kind = NORMAL
        tokens.append(token.encode("utf-8"))
        scores.append(-float(merge_rank[token]) if kind == NORMAL and token in merge_rank else 0.0)
        types.append(kind)
    return tokens, scores, types


@dataclass
class TokenizerPayload:
    """Everything the tokenizer keys need, built once per model dir and written into each GGUF."""

    kind: str
    tokens: list[Any]
    types: list[int]
    scores: list[float] | None
    special: Any  # gguf.SpecialVocab
    info: dict[str, Any]


@functools.lru_cache(maxsize=4)
def _payload(model_dir: str, stamp: float, vocab_size: int, model_type: str) -> TokenizerPayload:
    import gguf

    path = Path(model_dir)
    tokenizer = load_hf_tokenizer(path)
    if len(tokenizer) > vocab_size:
        raise UserInputError(
            f"the tokenizer has {len(tokenizer)} tokens but config.json vocab_size is {vocab_size}",
            where=f"{path}/config.json: vocab_size",
            fix="resize the model's embeddings to the tokenizer (model.resize_token_embeddings(len(tokenizer))) before exporting",
        )
    kind = tokenizer_kind(path)
    info: dict[str, Any] = {"model": kind, "vocab_size": vocab_size}
    scores = None
    if kind == "gpt2":
        info["pre"] = detect_pre_tokenizer(tokenizer, path, model_type)
        tokens, types = _gpt2_vocab(tokenizer, vocab_size)
        special = gguf.SpecialVocab(path, load_merges=True, n_vocab=vocab_size)
        if not special.merges:
            raise UserInputError(f"{path}/tokenizer.json has no BPE merges", where=f"{path}/tokenizer.json", fix="export a complete BPE tokenizer")
    else:
        info["pre"] = {"name": "default", "method": "sentencepiece"}
        tokens, scores, types = _spm_vocab(tokenizer, path, vocab_size)
        special = gguf.SpecialVocab(path, load_merges=False, n_vocab=vocab_size)
    # transformers >= 5 omits add_bos_token from tokenizer_config.json: take it from the tokenizer.
    probe = tokenizer("a").input_ids
    add_bos = bool(tokenizer.bos_token_id is not None and probe and probe[0] == tokenizer.bos_token_id)
    special.add_special_token["bos"] = add_bos
    special.add_special_token.setdefault("eos", False)
    if not special.chat_template and getattr(tokenizer, "chat_template", None):
        special.chat_template = tokenizer.chat_template
    info["add_bos"] = add_bos
    info["special_ids"] = dict(special.special_token_ids)
    info["chat_template"] = bool(special.chat_template)
    return TokenizerPayload(kind, tokens, types, scores, special, info)


def add_tokenizer(writer: Any, model_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Write the tokenizer keys of ``model_dir`` into ``writer``; return what was decided."""
    model_dir = Path(model_dir)
    stamp = max((model_dir / f).stat().st_mtime for f in ("tokenizer.json", "config.json") if (model_dir / f).is_file())
    payload = _payload(str(model_dir.resolve()), stamp, int(config["vocab_size"]), config.get("model_type", ""))
    writer.add_tokenizer_model(payload.kind)
    writer.add_tokenizer_pre(payload.info["pre"]["name"])
    writer.add_token_list(payload.tokens)
    if payload.scores is not None:
        writer.add_token_scores(payload.scores)
    writer.add_token_types(payload.types)
    payload.special.add_to_gguf(writer, quiet=True)
    return dict(payload.info)
