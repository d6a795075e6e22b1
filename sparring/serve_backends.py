"""Generation backends for ``sparring serve``: transformers and llama.cpp, token by token.

    backend = load_backend("runs/<run>")                      # an HF dir, run dir, adapter or alias
    backend = load_backend("exports/gguf/model-q8_0.gguf")    # llama.cpp (llama-cpp-python)
    ids = backend.tokenize(backend.render_chat(messages), chat=True)
    result = backend.generate(GenerationRequest(ids, max_tokens=32, temperature=0.7, seed=1),
                              on_delta=print)                 # streams text pieces, returns usage

Both backends load through ``sparring.generation`` (``load_generator`` / ``LlamaCppGenerator``) and
decode one token at a time so the server can stream: transformers runs its own forward loop over the
KV cache (seeded multinomial sampling with temperature and top-p, greedy at temperature 0);
llama.cpp runs ``Llama.generate``.  Stop strings are cut out of the text and never emitted, even
when they arrive split across tokens; an incomplete UTF-8 character is held back until it is whole.
On transformers, ``generate`` takes a per-backend lock, so concurrent requests run one after another;
on llama.cpp, up to ``parallel`` requests decode together in one batch per step
(``sparring/serve_batching.py``), the rest wait for a slot.
Exercised by ``pytest tests/sparring/test_serve.py``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from sparring.errors import UserInputError
from sparring.kv_cache import cache_kwarg, cache_of

DEFAULT_GGUF_CONTEXT = 2048


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence or a stop string) or "length"
    seconds: float = 0.0


class TextAssembler:
    """Turns the growing decoded text into safe-to-send pieces, cutting at the first stop string.

    Text that could be the beginning of a stop string, or that ends in an incomplete character
    (U+FFFD from a partial UTF-8 sequence), is held back until the next token decides it."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.sent = 0
        self.stopped = False
        self.text = ""

    def _held_back(self, text: str) -> int:
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:k]):
                    hold = max(hold, k)
                    break
        return hold

    def feed(self, decoded: str) -> str:
        """The new piece to send after the decoded text grew to ``decoded``."""
        cut = min((i for i in (decoded.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self.text = decoded[:cut]
        else:
            self.text = decoded
            safe = len(decoded) - self._held_back(decoded)
            while safe > self.sent and decoded[safe - 1] == "\ufffd":
                safe -= 1
            piece = decoded[self.sent : safe]
            self.sent = max(self.sent, safe)
            return piece
        piece = self.text[self.sent :]
        self.sent = len(self.text)
        return piece

    def flush(self) -> str:
        """What is left at the end of generation (held-back text that never became a stop)."""
        piece = self.text[self.sent :]
        self.sent = len(self.text)
        return piece


class Backend:
    """One loaded model. Subclasses give ``tokenize``, ``render_chat`` and ``_tokens``."""

    kind = "base"
    context_window = 0

    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()

    @property
    def serial(self) -> bool:
        """One request at a time (under ``lock``); False where the backend batches requests itself."""
        return True

    @property
    def busy(self) -> bool:
        """Is a request being generated (``/health``)?"""
        return self.lock.locked()

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        raise NotImplementedError

    def tokenize(self, text: str, *, chat: bool) -> list[int]:
        raise NotImplementedError

    def _tokens(self, request: GenerationRequest) -> Iterator[tuple[int, str]]:
        """Yield (token id, the whole completion decoded so far) until end of sequence."""
        raise NotImplementedError

    def generate(self, request: GenerationRequest, on_delta: Callable[[str], None] | None = None, cancel: threading.Event | None = None) -> GenerationResult:
        """Generate one completion (under the lock for a serial backend); ``on_delta`` gets each new piece."""
        with self.lock if self.serial else contextlib.nullcontext():
            t0 = time.perf_counter()
            text = TextAssembler(request.stop)
            count, finish = 0, "stop"
            tokens = self._tokens(request)
            try:
                for _token, decoded in tokens:
                    count += 1
                    piece = text.feed(decoded)
                    if piece and on_delta:
                        on_delta(piece)
                    if text.stopped or (cancel is not None and cancel.is_set()):
                        break
                    if count >= request.max_tokens:
                        finish = "length"
                        break
            finally:
                tokens.close()
            rest = text.flush()
            if rest and on_delta:
                on_delta(rest)
            return GenerationResult(text.text, len(request.prompt_ids), count, finish, time.perf_counter() - t0)


class HFBackend(Backend):
    """transformers: a forward loop over the KV cache, one token per step."""

    kind = "hf"

    def __init__(self, model, tokenizer, name: str):
        super().__init__(name)
        self.model, self.tokenizer = model, tokenizer
        cfg = model.config
        self.context_window = int(getattr(cfg, "max_position_embeddings", 0) or getattr(cfg, "n_positions", 0) or 2048)
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            ids.add(tokenizer.eos_token_id)
        self.eos_ids = ids

    def render_chat(self, messages):
        from sparring.generation import render_chat

        return render_chat(self.tokenizer, messages)

    def tokenize(self, text, *, chat):
        return list(self.tokenizer(text, add_special_tokens=not chat)["input_ids"])

    def _tokens(self, request):
        import torch

        gen = torch.Generator().manual_seed(request.seed if request.seed is not None else int.from_bytes(os.urandom(4), "little"))
        out_ids: list[int] = []
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([request.prompt_ids]), use_cache=True)
            while True:
                token = _sample(out.logits[0, -1].float(), request.temperature, request.top_p, gen)
                if token in self.eos_ids:
                    return
                out_ids.append(token)
                yield token, self.tokenizer.decode(out_ids, skip_special_tokens=True)
                out = self.model(input_ids=torch.tensor([[token]]), use_cache=True, **cache_kwarg(cache_of(out)))


def _sample(logits, temperature: float, top_p: float, gen) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < top_p  # always keeps the first token
        sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
        choice = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=gen)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=gen))


class LlamaCppBackend(Backend):
    """llama.cpp on a GGUF file; the chat template stored in the GGUF renders chats."""

    kind = "llamacpp"

    def __init__(self, path: Path, *, threads: int | None = None, n_ctx: int | None = None, parallel: int = 4):
        import llama_cpp

        from sparring.generation import LlamaCppGenerator

        super().__init__(str(path))
        if parallel < 1:
            raise UserInputError(f"--parallel {parallel} must be at least 1", where="--parallel", fix="pass the number of requests to decode together, e.g. 4")
        self.generator = LlamaCppGenerator(path, n_ctx=n_ctx or DEFAULT_GGUF_CONTEXT, threads=threads, name=str(path))
        self.llm = self.generator.llm
        trained = int(self.llm._model.n_ctx_train() or 0)
        # the window is never more than the model was trained for (the KV cache may be a bit larger)
        self.context_window = min(self.llm.n_ctx(), trained) if trained > 0 and not n_ctx else self.llm.n_ctx()
        self._is_eog = lambda tok: bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, tok))
        self.scheduler = None
        if parallel > 1:  # concurrent requests share decode steps (sparring/serve_batching.py)
            from sparring.serve_batching import DecodeScheduler

            self.scheduler = DecodeScheduler(path, model=self.llm._model, slots=parallel, slot_context=self.context_window,
                                             threads=self.llm.n_threads, is_eog=self._is_eog)
        meta = self.llm.metadata
        self.template = meta.get("tokenizer.chat_template")
        self.bos_text = self._token_text(self.llm.token_bos())
        self.eos_text = self._token_text(self.llm.token_eos())

    @property
    def serial(self) -> bool:
        return self.scheduler is None

    @property
    def busy(self) -> bool:
        return self.lock.locked() if self.scheduler is None else self.scheduler.busy

    def _token_text(self, token: int) -> str:
        if token is None or token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    @functools.cached_property
    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from sparring.models import CHATML_TEMPLATE

        return Jinja2ChatFormatter(self.template or CHATML_TEMPLATE, eos_token=self.eos_text, bos_token=self.bos_text)  # compiled once

    def render_chat(self, messages):
        return self._chat_formatter(messages=list(messages)).prompt

    def tokenize(self, text, *, chat):
        add_bos = not (chat and self.bos_text and text.startswith(self.bos_text))
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=chat))

    def _tokens(self, request):
        if self.scheduler is not None:
            out_ids: list[int] = []
            stream = self.scheduler.stream(request)
            try:
                for token in stream:
                    out_ids.append(token)
                    yield token, self.llm.detokenize(out_ids).decode("utf-8", errors="replace")
            finally:
                stream.close()  # a stop string, max_tokens or a client gone: the slot is freed now
            return
        if request.seed is not None:
            self.llm.set_seed(request.seed)
        else:
            self.llm.set_seed(int.from_bytes(os.urandom(4), "little"))
        out_ids: list[int] = []
        for token in self.llm.generate(request.prompt_ids, temp=request.temperature, top_p=request.top_p, top_k=0, min_p=0.0, repeat_penalty=1.0, reset=True):
            if self._is_eog(token):
                return
            out_ids.append(token)
            yield token, self.llm.detokenize(out_ids).decode("utf-8", errors="replace")


def load_backend(model: str | os.PathLike[str], *, threads: int | None = None, n_ctx: int | None = None, parallel: int = 4) -> Backend:
    """llama.cpp for a .gguf file (``parallel`` requests decoded together), transformers for anything
    else ``sparring.models`` resolves (one request at a time)."""
    text = str(model)
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise UserInputError(f"GGUF file {text} does not exist", where="MODEL", fix="check the path (e.g. runs/<run>/exports/latest/gguf/model-q8_0.gguf)")
        return LlamaCppBackend(path, threads=threads, n_ctx=n_ctx, parallel=parallel)
    from sparring.generation import load_generator

    generator = load_generator(text, engine="hf", threads=threads)
    return HFBackend(generator.model, generator.tokenizer, name=text)
