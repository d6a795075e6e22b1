"""The ``llamacpp`` rollout engine: llama-cpp-python on a GGUF of the policy — the fast CPU path.

The base model stays loaded as one GGUF (``rl.rollout.gguf_quant``, q8_0 by default); each policy
version arrives as a LoRA adapter GGUF that is hot-swapped onto it (``llama_adapter_lora_init`` +
``llama_set_adapters_lora``, the KV cache cleared), so a sync moves a few MB and takes milliseconds.
A policy without LoRA arrives as a whole merged GGUF, written atomically and reloaded.

Decoding uses llama.cpp's low-level API directly: the n completions of every prompt of a call are
sequences of one context with a unified KV cache (up to ``n_seq_max`` at once) — a prefix the prompts
share (the system message and examples before the last turn) is decoded once, each prompt's rest once,
both shared with its n sequences (``llama_memory_seq_cp``), and every step decodes one token for each
live sequence of every prompt in a single batch.  (Per-sequence KV streams, ``kv_unified`` off,
were measured and rejected: a step over 8 live rows of 16 streams took 124 ms against 44 ms unified,
since rows finish at different times; with all 16 rows live they were on par, 70 vs 71 ms, as the
shared prompt cells keep the unified cache small.)  Logits are read per
sequence and sampled by the shared numpy sampler (``rl/engines/base.py``), which also records each
token's logprob; ``logprobs()`` decodes a sequence teacher-forced for the sync probe.

Flash attention is off unless ``options["flash_attn"]`` (``rl.rollout.flash_attn``): on a CPU build
its kernel is the slower one for a batch of rows over the unified cache — one decode step of 16 rows
on SmolLM2-135M q8_0, 2 threads, 51–72 ms off against 67–88 ms on (the cache 0–47 tokens into the
completions), and ``python -m sparring.bench.rollout`` measures both.  A CUDA build may want it on.

    engine = make_engine("llamacpp", base_dir, threads=1, options={"quant": "q8_0"})
    engine.load_policy(update)          # kind "gguf", role "adapter" (hot swap) or "model" (reload)

Exercised by ``pytest tests/rl/test_engines.py`` and ``python -m sparring.bench.rollout``.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sparring.errors import SparringError, UserInputError
from sparring.exporters.base import sha256_file
from sparring.registry import register_engine
from sparring.rl.engines.base import Completion, Engine, GroupStepper, SamplingParams

_BACKEND_READY = False


def _backend() -> Any:
    global _BACKEND_READY
    import llama_cpp
    from llama_cpp._logger import set_verbose

    set_verbose(False)
    if not _BACKEND_READY:
        llama_cpp.llama_backend_init()
        _BACKEND_READY = True
    return llama_cpp


def groups_per_batch(n_seq_max: int, n: int) -> int:
    """Prompts' groups of ``n`` sequences one batch of ``n_seq_max`` holds (at least one)."""
    return max(1, n_seq_max // max(1, n))


class _Context:
    """A llama.cpp model + context with a unified KV cache for ``n_seq_max`` sequences."""

    def __init__(self, gguf: Path, *, n_ctx: int, n_batch: int, n_seq_max: int, threads: int, model: Any = None, flash_attn: bool = False):
        lc = _backend()
        from llama_cpp import _internals

        self.lc = lc
        from llama_cpp._utils import suppress_stdout_stderr

        # ``model``: an already loaded ``_internals.LlamaModel`` to share (not closed with this context)
        self.owns_model = model is None
        self.model = model if model is not None else _internals.LlamaModel(path_model=str(gguf), params=lc.llama_model_default_params(), verbose=False)
        cparams = lc.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, n_batch
        cparams.n_seq_max, cparams.kv_unified = n_seq_max, True
        cparams.n_threads = cparams.n_threads_batch = threads
        # llama.cpp's own default (auto) turns flash attention on: off unless asked (module docstring)
        cparams.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cparams.no_perf = True
        # unified KV: n_ctx counts the cells of all sequences, so it may exceed the training context
        # (positions never do); llama.cpp warns about that on stderr, which is noise here
        with suppress_stdout_stderr(disable=False):
            self.ctx = _internals.LlamaContext(model=self.model, params=cparams, verbose=False)
        self.memory = lc.llama_get_memory(self.ctx.ctx)
        self.n_ctx, self.n_batch, self.n_seq_max = n_ctx, n_batch, n_seq_max
        self.n_vocab = self.model.n_vocab()
        self.batch = lc.llama_batch_init(n_batch, 0, 1)

    def clear(self) -> None:
        self.lc.llama_memory_clear(self.memory, True)

    def decode(self, tokens: Sequence[int], positions: Sequence[int], seqs: Sequence[int], want_logits: Sequence[bool]) -> list[np.ndarray]:
        """Decode one batch; return the logits rows of the tokens flagged in ``want_logits``."""
        b = self.batch
        count = len(tokens)
        for i in range(count):
            b.token[i] = tokens[i]
            b.pos[i] = positions[i]
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seqs[i]
            b.logits[i] = bool(want_logits[i])
        b.n_tokens = count
        rc = self.lc.llama_decode(self.ctx.ctx, b)
        if rc != 0:
            raise SparringError(f"llama_decode returned {rc} (context {self.n_ctx} tokens, batch {count})")
        rows = []
        for i in range(count):
            if want_logits[i]:
                ptr = self.lc.llama_get_logits_ith(self.ctx.ctx, i)
                rows.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
        return rows

    def decode_sequence(self, tokens: Sequence[int], seq: int, start_pos: int, logits_from: int) -> list[np.ndarray]:
        """Decode ``tokens`` on ``seq`` in chunks; logits for positions >= ``logits_from`` (index in tokens)."""
        rows: list[np.ndarray] = []
        for lo in range(0, len(tokens), self.n_batch):
            chunk = list(tokens[lo : lo + self.n_batch])
            idx = range(lo, lo + len(chunk))
            rows += self.decode(chunk, [start_pos + i for i in idx], [seq] * len(chunk), [i >= logits_from for i in idx])
        return rows

    def set_adapter(self, adapter: Any) -> None:
        lc = self.lc
        if adapter is None:
            rc = lc.llama_set_adapters_lora(self.ctx.ctx, None, 0, None)
        else:
            arr = (lc.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            rc = lc.llama_set_adapters_lora(self.ctx.ctx, arr, 1, scales)
        if rc != 0:
            raise SparringError(f"llama_set_adapters_lora returned {rc}")
        self.clear()

    def close(self) -> None:
        if self.batch is not None:
            self.lc.llama_batch_free(self.batch)
            self.batch = None
        self.ctx.close()
        if self.owns_model:
            self.model.close()

    def forget(self, seq: int) -> None:
        """Drop every KV cell of sequence ``seq`` (its slot can take a new sequence)."""
        self.lc.llama_memory_seq_rm(self.memory, seq, -1, -1)


class _LlamaStepper(GroupStepper):
    """The ``n`` continuations of each of several prompts as one batch: group g's rows are sequences
    ``g*n .. g*n+n-1``.  Each distinct prompt prefix (``prefix_lens``) is decoded once and copied to
    the groups that share it; each prompt's remainder is decoded alone, so its numbers never depend
    on the other prompts of the batch (llama.cpp picks other kernels for larger batches)."""

    def __init__(self, c: _Context, prompts: list[list[int]], n: int, prefix_lens: list[int]):
        """``prefix_lens[g]``: 0 (decode prompt g whole) or less than its length."""
        self.c, self.n = c, n
        c.clear()
        owner: dict[tuple[int, ...], int] = {}  # prefix -> the sequence that holds its KV cells
        firsts = []
        for g, (prompt, k) in enumerate(zip(prompts, prefix_lens)):
            seq = g * n
            if k:
                key = tuple(prompt[:k])
                if key in owner:
                    c.lc.llama_memory_seq_cp(c.memory, owner[key], seq, 0, k)
                else:
                    c.decode_sequence(prompt[:k], seq, 0, k)
                    owner[key] = seq
            firsts.append(c.decode_sequence(prompt[k:], seq, k, len(prompt) - k - 1)[-1])
            for j in range(1, n):
                c.lc.llama_memory_seq_cp(c.memory, seq, seq + j, 0, len(prompt))
        self._first = np.repeat(np.stack(firsts), n, axis=0)
        self.pos = np.repeat([len(p) for p in prompts], n)
        self.rows = np.empty_like(self._first)

    def first(self) -> np.ndarray:
        return self._first

    def advance(self, tokens: list[int], done: list[bool]) -> np.ndarray:
        live = [k for k in range(len(tokens)) if not done[k]]
        rows = self.c.decode([tokens[k] for k in live], [int(self.pos[k]) for k in live], live, [True] * len(live))
        for k, row in zip(live, rows):
            self.rows[k] = row
        self.pos += 1
        return self.rows


@register_engine("llamacpp")
class LlamaCppEngine(Engine):
    """llama.cpp generation on a GGUF with hot-swapped LoRA adapters."""

    name = "llamacpp"

    def __init__(self, base_model_dir, *, threads: int = 1, options: dict[str, Any] | None = None):
        super().__init__(base_model_dir, threads=threads, options=options)
        o = self.options
        self.quant = o.get("quant", "q8_0")
        base = Path(o["base_gguf"]) if o.get("base_gguf") else None
        if base is None or not base.is_file():  # another node, or no path given: build it here
            from sparring.rl.engines.gguf_policy import cached_base_gguf

            base = cached_base_gguf(self.base_model_dir, self.quant)
        self.base_gguf = base
        self.n_seq_max = int(o.get("n_seq_max", 16))
        self.n_ctx = int(o.get("n_ctx", 1024)) + self.n_seq_max * int(o.get("max_new_tokens", 64))
        self.n_batch = int(o.get("n_batch", 512))
        self.flash_attn = bool(o.get("flash_attn", False))
        self.work_dir = Path(o.get("work_dir") or tempfile.mkdtemp(prefix="sparring-llamacpp-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.c = self._open(self.base_gguf)
        self._adapter: Any = None
        self._files: list[Path] = []
        # the base GGUF never changes under hot-swapped adapters: its probe logprobs are computed once
        self._base_probe: dict[tuple[tuple[int, ...], int], list[float]] = {}

    def _open(self, gguf: Path) -> _Context:
        return _Context(gguf, n_ctx=self.n_ctx, n_batch=self.n_batch, n_seq_max=self.n_seq_max, threads=self.threads, flash_attn=self.flash_attn)

    # -- weight updates -------------------------------------------------------------------------

    def load_policy(self, update: Any) -> str:
        if update.kind != "gguf":
            raise UserInputError(f"the llamacpp engine loads GGUF updates, not {update.kind!r}", where="rl.rollout.engine", fix="build the update with make_policy_update(..., engine='llamacpp')")
        role = update.payload.get("role", "adapter")
        path = self.work_dir / f"policy-v{update.version}.{role}.gguf"
        fd, tmp = tempfile.mkstemp(dir=self.work_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(update.payload["gguf"])
        os.replace(tmp, path)
        checksum = sha256_file(path)  # what is on disk and about to be loaded
        lc = self.c.lc
        if role == "adapter":
            adapter = lc.llama_adapter_lora_init(self.c.model.model, str(path).encode())
            if not adapter:
                raise SparringError(f"llama.cpp could not load the LoRA adapter GGUF {path} (base {self.base_gguf.name})")
            self.c.set_adapter(adapter)
            if self._adapter is not None:
                lc.llama_adapter_lora_free(self._adapter)
            self._adapter = adapter
        elif role == "model":
            old, self.c = self.c, self._open(path)
            self._base_probe.clear()
            if self._adapter is not None:
                self._adapter = None  # freed with its model
            old.close()
        else:
            raise SparringError(f"unknown GGUF update role {role!r}")
        for stale in self._files:
            stale.unlink(missing_ok=True)
        self._files = [path]
        self.version, self.checksum = update.version, checksum
        return checksum

    # -- generation and probing -----------------------------------------------------------------

    def _start_group(self, prompt: list[int], n: int) -> GroupStepper:
        return _LlamaStepper(self.c, [prompt], n, [0])

    def _sample_group(self, prompt: list[int], n: int, sampling: SamplingParams, seeds: list[int]) -> list[Completion]:
        """A group larger than the context holds, in chunks of rows (the prompt decoded per chunk)."""
        if len(prompt) + sampling.max_new_tokens > self.n_ctx:
            raise UserInputError(f"prompt of {len(prompt)} tokens + {sampling.max_new_tokens} new tokens exceeds the llama.cpp context ({self.n_ctx})", where="model.max_seq_len", fix="raise model.max_seq_len or shorten the prompts")
        room = (self.n_ctx - len(prompt)) // max(1, sampling.max_new_tokens)
        rows = max(1, min(self.n_seq_max, room))
        out: list[Completion] = []
        for lo in range(0, n, rows):
            chunk = seeds[lo : lo + rows]
            out += super()._sample_group(prompt, len(chunk), sampling, chunk)
        return out

    def groups_per_call(self, n: int) -> int:
        return groups_per_batch(self.n_seq_max, n)

    def _generate_groups(self, prompts: list[list[int]], n: int, sampling: SamplingParams, seeds: list[list[int]], prefix_lens: list[int]) -> list[list[Completion]]:
        """Whole groups decoded together, as many as ``n_seq_max`` sequences and the context hold."""
        if n > self.n_seq_max:
            return super()._generate_groups(prompts, n, sampling, seeds, prefix_lens)
        out: list[list[Completion]] = []
        i = 0
        while i < len(prompts):
            if len(prompts[i]) + n * sampling.max_new_tokens > self.n_ctx:  # one group alone overflows: rows in chunks
                out.append(self._sample_group(prompts[i], n, sampling, seeds[i]))
                i += 1
                continue
            j, prefixes, cells = i, set(), 0
            while j < len(prompts) and (j - i + 1) * n <= self.n_seq_max:
                k = prefix_lens[j]
                key = tuple(prompts[j][:k])
                more = (0 if key in prefixes else k) + len(prompts[j]) - k + n * sampling.max_new_tokens
                if cells + more > self.n_ctx:
                    break
                prefixes.add(key)
                cells += more
                j += 1
            stepper = _LlamaStepper(self.c, prompts[i:j], n, prefix_lens[i:j])
            rows = self._sample_rows(stepper, sampling, [s for group in seeds[i:j] for s in group])
            out += [rows[g * n : (g + 1) * n] for g in range(j - i)]
            i = j
        return out

    def logprobs(self, token_ids: Sequence[int], start: int) -> list[float]:
        from sparring.rl.engines.base import log_softmax

        if not 1 <= start < len(token_ids):
            raise ValueError(f"probe start {start} must be in [1, {len(token_ids)})")
        self.c.clear()
        rows = self.c.decode_sequence(list(token_ids[:-1]), 0, 0, start - 1)
        self.c.clear()
        return [float(log_softmax(row)[tok]) for row, tok in zip(rows, token_ids[start:])]

    def base_logprobs(self, token_ids: Sequence[int], start: int) -> list[float] | None:
        if self._adapter is None:
            return None
        key = (tuple(token_ids), start)
        if key not in self._base_probe:
            self.c.set_adapter(None)
            try:
                self._base_probe[key] = self.logprobs(token_ids, start)
            finally:
                self.c.set_adapter(self._adapter)
        return list(self._base_probe[key])

    def close(self) -> None:
        if self._adapter is not None:
            self.c.lc.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        self.c.close()
