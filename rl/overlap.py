"""Generation overlapped with learning (``rl.overlap_generation``): while the learner trains on step
n, the rollout actors already generate step n + 1's groups with the policy they hold (one version
behind; the truncated importance weight of ``rl/grpo.py`` corrects for it).

On a few cores neither side uses its second core well (BENCHMARKS.md: the learner's step is 1.33x
faster on 2 threads than on 1, llama.cpp 1.5x), so one core each, side by side, beats both cores
each in turn.  The next step's prompts come from a twin of TRL's seeded sampler (``PromptSchedule``);
every prefetched batch is checked against the prompts TRL then hands over, and one that does not
match is dropped and generated again, so a wrong guess costs time, never correctness.  No batch is
prefetched across a checkpoint: a run resumed there generates its first batch with the policy the
checkpoint holds, exactly as the uninterrupted run did.  A step's ``time/generate_s`` is then what
the learner waited for generation: the batch still in flight when its step ends.

    schedule = PromptSchedule(twin_sampler, rows_per_step=cfg.rl.batch_size)
    ahead = NextBatch(pool, sampling, n=cfg.rl.num_generations)
    samples = ahead.take(step, groups) or pool.generate(groups, n, sampling, step)
    ahead.start(step + 1, [book.prompts[i] for i in schedule.groups(step + 1, n)])
    ahead.wait()            # before the pool is used again (the sync after the step)

Exercised by ``pytest tests/rl/test_grpo.py -k overlap``.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Iterator, Sequence


class PromptSchedule:
    """The dataset rows TRL's sampler hands out, step by step (1-based), read from a twin sampler
    built with the same seed; ``None`` past its end."""

    def __init__(self, twin_sampler: Iterable[int], rows_per_step: int):
        self.rows_per_step = rows_per_step
        self._stream = self._epochs(twin_sampler)
        self._rows: list[int] = []

    @staticmethod
    def _epochs(sampler: Iterable[int]) -> Iterator[int]:
        while True:  # the dataloader iterates the same sampler again each epoch: a new permutation
            empty = True
            for i in sampler:
                empty = False
                yield int(i)
            if empty:
                return

    def rows(self, step: int) -> list[int] | None:
        need = step * self.rows_per_step
        while len(self._rows) < need:  # read the sampler only as far as this step
            row = next(self._stream, None)
            if row is None:
                return None
            self._rows.append(row)
        return self._rows[need - self.rows_per_step : need]

    def groups(self, step: int, n: int) -> list[int] | None:
        """The row of each group of ``n`` repeats in step ``step``."""
        rows = self.rows(step)
        return None if rows is None else rows[::n]


class NextBatch:
    """One batch generated in the background on the rollout actors, taken when its step comes."""

    def __init__(self, pool: Any, sampling: Any, n: int):
        self.pool, self.sampling, self.n = pool, sampling, n
        self._thread: threading.Thread | None = None
        self._key: tuple[int, tuple[str, ...]] | None = None
        self._samples: list[Any] | None = None
        self._error: BaseException | None = None
        self.mispredicted = 0

    def start(self, step: int, groups: Sequence[Any]) -> None:
        self.wait()
        self._key, self._samples, self._error = (step, tuple(p.id for p in groups)), None, None

        def generate() -> None:
            try:
                self._samples = self.pool.generate(list(groups), self.n, self.sampling, step)
            except BaseException as e:  # re-raised in the learner's thread by take()
                self._error = e

        self._thread = threading.Thread(target=generate, name=f"sparring-next-batch-{step}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until the batch in flight, if any, is generated (the pool is not thread-safe)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def take(self, step: int, groups: Sequence[Any]) -> list[Any] | None:
        """The prefetched samples when they are this step's groups; None when nothing (or another
        batch) was prefetched: a batch TRL did not ask for is dropped."""
        self.wait()
        key, samples, error = self._key, self._samples, self._error
        self._key = self._samples = self._error = None
        if key is None:
            return None
        if key != (step, tuple(p.id for p in groups)):
            self.mispredicted += 1
            return None
        if error is not None:
            raise error
        return samples
