"""Prove a GGUF export in llama.cpp itself (llama-cpp-python), against transformers as reference.

Checks, written into verify.json beside the file:

* ``load``: llama-cpp-python opens it; its vocabulary size and context match config.json.
* ``tokenization``: llama.cpp's tokens equal the HF tokenizer's on a fixed multilingual text set
  (English, accents, CJK, Cyrillic/Greek/Arabic, emoji, code, whitespace runs, digits), on a chat
  rendered with special tokens, and with BOS handling on.
* ``greedy`` (F32/F16): the greedy continuation of 32 tokens equals transformers' for 5 prompts.
* ``top1`` (BF16, Q8_0): next-token agreement >= 95% over the same positions, teacher-forced on
  transformers' continuation.
* ``logits``: Pearson correlation of the full logit vectors at every position (a corrupted tensor
  or a wrong q/k permutation drops it far below the floor of its type).
* ``generate`` (every type, the gate for Q4/Q5/K-quants): greedy generation runs and decodes.

Near-ties: tiny random models have almost flat logits, so two tokens can be within rounding of
each other.  A position where llama.cpp picks another token counts as a tie (not a failure) when
transformers' own logits for the two tokens differ by less than the type's ``tie_eps``; after a
tie the two greedy paths are no longer comparable and the comparison stops there.  Every tie is
listed in verify.json.

Exercised by ``pytest tests/exporters/test_gguf.py``.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sparring.kv_cache import cache_kwarg, cache_of

TOKENIZER_TEXTS = (
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "Café déjà vu, naïve façade, Ångström, Straße, señor, cœur.",
    "日本語のテキストと中文文本，还有한국어 문장도 있습니다。",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم",
    "Emoji: 🚀🦙👍🏽 😶\u200d🌫️ ✅ ❤️",
    "def square(x):\n    return x ** 2  # comment\n\tprint(f'{x=}')\n",
    "   leading spaces, trailing   \n\n\n  tabs\t\there  ",
    "Numbers 3 33 333 3333 3.14159 1,000,000 and 2024-01-31.",
)
VERIFY_PROMPTS = (
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):",
    "Question: Why is the sky blue?\nAnswer:",
    "A chess opening that every beginner should know is",
)
GREEDY_TOKENS = 32

# Per type: how the continuation is judged, the tie tolerance (absolute logit difference in the
# transformers reference) and the floor of the mean logit correlation.
RULES: dict[str, dict[str, Any]] = {
    "f32": {"rule": "greedy", "tie_eps": 1e-3, "min_corr": 0.9999},
    "f16": {"rule": "greedy", "tie_eps": 2e-2, "min_corr": 0.999},
    "bf16": {"rule": "top1", "tie_eps": 5e-2, "min_top1": 0.95, "min_corr": 0.99},
    "q8_0": {"rule": "top1", "tie_eps": 5e-2, "min_top1": 0.95, "min_corr": 0.99},
}
DEFAULT_RULE = {"rule": "generate", "tie_eps": 0.0, "min_corr": 0.9}


def rule_for(quant: str) -> dict[str, Any]:
    return RULES.get(quant, DEFAULT_RULE)


def idle_threads(limit: int = 4) -> int:
    """Threads worth using now: the idle cores (1 on a busy machine, where spinning threads cost
    several times the CPU of one thread and run slower)."""
    cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(limit, cpus, round(cpus - busy + 1)))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _threads(path: str | Path) -> int:
    """One thread for small files (thread sync costs more than it saves), else the idle cores."""
    return 1 if Path(path).stat().st_size < 64 * 2**20 else idle_threads()


@dataclass
class HFReference:
    """transformers' tokenizer, prompt ids, greedy continuations and their logits for one model."""

    model_dir: Path
    tokenizer: Any
    prompt_ids: list[list[int]]
    tokens: list[list[int]] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)  # [n_tokens, vocab] per prompt
    vocab_size: int = 0

    @classmethod
    def build(cls, model_dir: str | Path, *, n_tokens: int = GREEDY_TOKENS, prompts: tuple[str, ...] = VERIFY_PROMPTS) -> "HFReference":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model.eval()
        ref = cls(model_dir, tokenizer, [tokenizer(p).input_ids for p in prompts], vocab_size=model.config.vocab_size)
        with torch_threads(idle_threads()), torch.no_grad():
            for ids in ref.prompt_ids:
                toks, rows = greedy_torch(model, ids, n_tokens)
                ref.tokens.append(toks)
                ref.logits.append(rows)
        return ref


def greedy_torch(model: Any, prompt_ids: list[int], n_tokens: int) -> tuple[list[int], np.ndarray]:
    """Greedy continuation by argmax (no EOS stop, so every prompt yields ``n_tokens``) + logits."""
    import torch

    past = None
    ids = torch.tensor([prompt_ids])
    tokens: list[int] = []
    rows = []
    for _ in range(n_tokens):
        out = model(input_ids=ids, use_cache=True, **cache_kwarg(past))
        past = cache_of(out)
        row = out.logits[0, -1].float()
        rows.append(row.numpy().copy())
        nxt = int(torch.argmax(row))
        tokens.append(nxt)
        ids = torch.tensor([[nxt]])
    return tokens, np.stack(rows)


def open_gguf(path: str | Path, *, n_ctx: int = 256, lora_path: str | Path | None = None):
    from llama_cpp import Llama

    kwargs: dict[str, Any] = {}
    if lora_path is not None:
        kwargs["lora_path"] = str(lora_path)
    return Llama(
        model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=_threads(path), logits_all=True,
        verbose=False, seed=0, **kwargs,
    )


def greedy_llama(llm: Any, prompt_ids: list[int], n_tokens: int) -> list[int]:
    llm.reset()
    llm.eval(prompt_ids)
    out: list[int] = []
    for _ in range(n_tokens):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(nxt)
        llm.eval([nxt])
    return out


def teacher_forced_logits(llm: Any, prompt_ids: list[int], continuation: list[int]) -> np.ndarray:
    """llama.cpp's logits at the positions that predict each token of ``continuation``."""
    llm.reset()
    llm.eval(prompt_ids + continuation[:-1])
    start = len(prompt_ids) - 1
    return np.array(llm.scores[start:start + len(continuation)], dtype=np.float32)


def check_tokenization(llm: Any, tokenizer: Any) -> dict[str, Any]:
    mismatches = []
    cases = [(text, False) for text in TOKENIZER_TEXTS]
    if getattr(tokenizer, "chat_template", None):
        chat = [{"role": "user", "content": "Tell me a joke about llamas."}, {"role": "assistant", "content": "Why? 🦙"}]
        cases.append((tokenizer.apply_chat_template(chat, tokenize=False), True))
    for text, special in cases:
        hf = tokenizer(text, add_special_tokens=False).input_ids
        ll = llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)
        if list(hf) != list(ll):
            mismatches.append({"text": text, "hf": list(hf)[:40], "llama_cpp": list(ll)[:40]})
    hf_bos = tokenizer(TOKENIZER_TEXTS[0]).input_ids
    ll_bos = llm.tokenize(TOKENIZER_TEXTS[0].encode("utf-8"), add_bos=True, special=False)
    if list(hf_bos) != list(ll_bos):
        mismatches.append({"text": TOKENIZER_TEXTS[0], "with_special_tokens": True, "hf": list(hf_bos)[:40], "llama_cpp": list(ll_bos)[:40]})
    return {"passed": not mismatches, "texts": len(cases) + 1, "mismatches": mismatches}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else 0.0


def compare_continuations(llm: Any, ref: HFReference, quant: str) -> dict[str, Any]:
    """Greedy paths, teacher-forced top-1 agreement (tie-aware) and logit correlation vs ``ref``."""
    rule = rule_for(quant)
    eps = rule["tie_eps"]
    exact = 0
    ties: list[dict[str, Any]] = []
    divergences: list[dict[str, Any]] = []
    agree = agree_tie_aware = positions = 0
    corrs: list[float] = []
    max_abs = 0.0
    for i, (prompt, hf_toks, hf_rows) in enumerate(zip(ref.prompt_ids, ref.tokens, ref.logits)):
        ll_toks = greedy_llama(llm, prompt, len(hf_toks))
        if ll_toks == hf_toks:
            exact += 1
        else:
            d = next(j for j, (x, y) in enumerate(zip(hf_toks, ll_toks)) if x != y)
            gap = float(hf_rows[d][hf_toks[d]] - hf_rows[d][ll_toks[d]])
            entry = {"prompt": i, "position": d, "hf_token": hf_toks[d], "llama_token": ll_toks[d], "hf_logit_gap": round(gap, 6)}
            (ties if gap <= eps else divergences).append(entry)
        ll_rows = teacher_forced_logits(llm, prompt, hf_toks)
        for j, tok in enumerate(hf_toks):
            pick = int(np.argmax(ll_rows[j]))
            positions += 1
            agree += pick == tok
            agree_tie_aware += pick == tok or float(hf_rows[j][tok] - hf_rows[j][pick]) <= eps
            corrs.append(_correlation(hf_rows[j], ll_rows[j]))
            max_abs = max(max_abs, float(np.max(np.abs(hf_rows[j] - ll_rows[j]))))
    result: dict[str, Any] = {
        "rule": rule["rule"],
        "prompts": len(ref.prompt_ids),
        "tokens_per_prompt": len(ref.tokens[0]) if ref.tokens else 0,
        "greedy_exact_prompts": exact,
        "greedy_ties": ties,
        "greedy_divergences": divergences,
        "top1_agreement": round(agree / positions, 4) if positions else 0.0,
        "top1_agreement_tie_aware": round(agree_tie_aware / positions, 4) if positions else 0.0,
        "tie_eps": eps,
        "logit_correlation_mean": round(float(np.mean(corrs)), 6) if corrs else 0.0,
        "logit_correlation_min": round(float(np.min(corrs)), 6) if corrs else 0.0,
        "max_abs_logit_diff": round(max_abs, 5),
        "min_correlation": rule["min_corr"],
    }
    corr_ok = result["logit_correlation_mean"] >= rule["min_corr"]
    if rule["rule"] == "greedy":
        result["passed"] = not divergences and corr_ok
    elif rule["rule"] == "top1":
        result["min_top1"] = rule["min_top1"]
        result["passed"] = result["top1_agreement_tie_aware"] >= rule["min_top1"] and corr_ok
    else:
        result["passed"] = corr_ok
    return result


def check_generate(llm: Any, ref: HFReference, n_tokens: int = 8) -> dict[str, Any]:
    toks = greedy_llama(llm, ref.prompt_ids[0], n_tokens)
    ok = len(toks) == n_tokens and all(0 <= t < ref.vocab_size for t in toks)
    text = llm.detokenize(toks).decode("utf-8", errors="replace")
    return {"passed": ok, "tokens": toks, "text": text}


def verify_gguf(path: str | Path, ref: HFReference, quant: str, *, lora_path: str | Path | None = None) -> dict[str, Any]:
    """Load ``path`` in llama.cpp and run every check; ``passed`` is the conjunction."""
    import llama_cpp

    started = time.perf_counter()
    record: dict[str, Any] = {"runtime": f"llama-cpp-python {llama_cpp.__version__}", "quant": quant, "rule": rule_for(quant)["rule"]}
    n_ctx = max(len(p) for p in ref.prompt_ids) + GREEDY_TOKENS + 8
    try:
        llm = open_gguf(path, n_ctx=max(64, n_ctx), lora_path=lora_path)
    except Exception as exc:  # llama.cpp refuses the file
        record.update(passed=False, load={"passed": False, "error": str(exc)})
        return record
    try:
        load = {"passed": llm.n_vocab() == ref.vocab_size, "n_vocab": llm.n_vocab(), "n_ctx": llm.n_ctx()}
        checks = {
            "load": load,
            "tokenization": check_tokenization(llm, ref.tokenizer),
            "continuation": compare_continuations(llm, ref, quant),
            "generate": check_generate(llm, ref),
        }
    finally:
        llm.close() if hasattr(llm, "close") else None
    record.update(checks)
    record["passed"] = all(c["passed"] for c in checks.values())
    record["verify_seconds"] = round(time.perf_counter() - started, 3)
    return record
