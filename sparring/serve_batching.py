"""Continuous batching for ``sparring serve`` on a GGUF: concurrent requests decode together.

One scheduler thread owns a llama.cpp context whose unified KV cache holds ``slots`` sequences.  A
request takes a free slot and its prompt is decoded on that sequence (prefill); from then on every
step decodes one token for every live request in a single ``llama_decode`` batch, so four clients
cost little more per step than one.  Each request samples from its own logits row with its own
seeded generator (``rl/engines/base.sample_token``: temperature, top-p, greedy at 0), so a seeded
request gives the same text whatever else is running.  Requests beyond the slots wait in order.  A
request that ends (end of sequence, max tokens, a stop string, a client gone) frees its slot and
its KV cells at the next step.

    scheduler = DecodeScheduler(gguf, model=llm._model, slots=4, slot_context=2048, threads=2, is_eog=f)
    for token in scheduler.stream(request):      # a GenerationRequest; closing the iterator cancels
        ...

Used by ``LlamaCppBackend`` (``sparring serve --parallel N``); exercised by
``pytest tests/sparring/test_serve.py`` and measured by ``python -m sparring.bench.serve``.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from sparring.rl.engines.base import sample_token

_DONE = object()


class _Slot:
    """One request in flight: where its tokens go, its sampler, its place in the KV cache."""

    def __init__(self, request: Any):
        self.request = request
        self.out: queue.SimpleQueue = queue.SimpleQueue()
        self.cancelled = threading.Event()
        seed = request.seed if request.seed is not None else int.from_bytes(os.urandom(4), "little")
        self.rng = np.random.default_rng(seed)
        self.seq = -1
        self.pos = 0
        self.last = -1
        self.count = 0


class DecodeScheduler:
    """Decodes every live request one token per step in one batch (see the module docstring)."""

    def __init__(self, gguf: Path, *, model: Any, slots: int, slot_context: int, threads: int, is_eog: Callable[[int], bool]):
        from sparring.rl.engines.llamacpp_engine import _Context

        self.slots, self.slot_context, self.is_eog = slots, slot_context, is_eog
        self.ctx = _Context(gguf, n_ctx=slots * slot_context, n_batch=512, n_seq_max=slots, threads=threads, model=model)
        self.free = list(range(slots - 1, -1, -1))
        self.waiting: collections.deque[_Slot] = collections.deque()
        self.live: list[_Slot] = []
        self.wake = threading.Condition()
        self.closed = False
        self.peak_batch = 0  # the most sequences decoded in one step so far
        self.thread = threading.Thread(target=self._run, name="sparring-decode", daemon=True)
        self.thread.start()

    @property
    def busy(self) -> bool:
        return bool(self.live or self.waiting)

    def stream(self, request: Any) -> Iterator[int]:
        """Queue the request now; iterate its token ids as they are sampled (end of sequence ends
        the iteration and is not yielded; closing the iterator early cancels the request)."""
        slot = _Slot(request)
        with self.wake:
            self.waiting.append(slot)
            self.wake.notify()
        return self._tokens(slot)

    def _tokens(self, slot: _Slot) -> Iterator[int]:
        try:
            while True:
                item = slot.out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            slot.cancelled.set()  # the consumer stopped (stop string, max tokens, client gone)
            with self.wake:
                self.wake.notify()

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()
        self.thread.join(30)
        self.ctx.close()

    # -- the scheduler thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.wake:
                while not (self.waiting or self.live or self.closed):
                    self.wake.wait()
                if self.closed:
                    return
                admitted = []
                while self.waiting and self.free:
                    slot = self.waiting.popleft()
                    slot.seq = self.free.pop()
                    admitted.append(slot)
            try:
                self._step(admitted)
            except BaseException as exc:  # noqa: BLE001 - every waiting client gets the error
                for slot in dict.fromkeys(admitted + self.live):  # an admitted slot may be live already
                    slot.out.put(exc)
                    self._release(slot)

    def _release(self, slot: _Slot) -> None:
        if slot in self.live:
            self.live.remove(slot)
        if slot.seq >= 0:
            self.ctx.forget(slot.seq)
            with self.wake:
                self.free.append(slot.seq)
            slot.seq = -1

    def _finish(self, slot: _Slot) -> None:
        slot.out.put(_DONE)
        self._release(slot)

    def _emit(self, slot: _Slot, logits: np.ndarray) -> None:
        """Sample the slot's next token from its logits row and hand it over (or end the slot)."""
        request = slot.request
        token, _ = sample_token(logits, request.temperature, request.top_p, slot.rng)
        if self.is_eog(token):
            self._finish(slot)
            return
        slot.out.put(token)
        slot.last, slot.count = token, slot.count + 1
        if slot.count >= request.max_tokens or slot.pos + 1 >= self.slot_context:
            self._finish(slot)

    def _step(self, admitted: list[_Slot]) -> None:
        for slot in [s for s in self.live if s.cancelled.is_set()]:
            self._release(slot)
        stepping = list(self.live)
        for slot in admitted:  # prefill: the prompt on the slot's sequence, then its first token
            if slot.cancelled.is_set():
                self._release(slot)
                continue
            prompt = list(slot.request.prompt_ids)
            row = self.ctx.decode_sequence(prompt, slot.seq, 0, len(prompt) - 1)[-1]
            slot.pos = len(prompt)
            self.live.append(slot)
            self._emit(slot, row)
        if not stepping:
            return
        self.peak_batch = max(self.peak_batch, len(stepping))
        rows = self.ctx.decode([s.last for s in stepping], [s.pos for s in stepping], [s.seq for s in stepping], [True] * len(stepping))
        for slot, row in zip(stepping, rows):
            slot.pos += 1
            self._emit(slot, row)
