"""Train/validation/test splits shared by the text envs: fixed by a hash, ordered by a seed.

    split_of("What is the capital of France?")    # "train" | "validation" | "test" (80/10/10)
    seeded_order(items, seed)                      # a shuffled copy, the same for the same seed

A hash split never moves an item between splits when the pool grows or the seed changes, so no
test item is ever trained on.  Exercised by ``pytest tests/envs/test_text_envs.py``.
"""

from __future__ import annotations

import hashlib
import random
from typing import Sequence, TypeVar

from sparring.errors import UserInputError

SPLITS = ("train", "validation", "test")
T = TypeVar("T")


def require_split(split: str) -> None:
    if split not in SPLITS:
        raise UserInputError(f"unknown split {split!r}", where="split", fix="use train, validation or test")


def split_of(key: str) -> str:
    """80/10/10 by the SHA-1 of the (lowercased, stripped) key."""
    bucket = int(hashlib.sha1(key.strip().lower().encode("utf-8", "replace")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def seeded_order(items: Sequence[T], seed: int) -> list[T]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out
