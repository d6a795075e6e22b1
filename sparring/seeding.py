"""One seed for python, numpy and torch (and the helpers that derive per-worker seeds).

    seed_everything(cfg.seed)

Exercised by ``pytest tests/sparring/test_seeding.py``.
"""

from __future__ import annotations

import hashlib
import os
import random


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) from one value."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def derive_seed(seed: int, *names: object) -> int:
    """A stable 31-bit seed for a named sub-stream (a worker, a split, an episode)."""
    digest = hashlib.sha256(repr((seed, *names)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
