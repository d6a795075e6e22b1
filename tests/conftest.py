"""Shared fixtures: tiny random models (cached under ~/.cache/sparring), a fresh run folder,
and the embedded model (converted once and cached, never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_llama() -> Path:
    from sparring.models import make_tiny_model

    return make_tiny_model("llama")


@pytest.fixture(scope="session")
def tiny_gpt2() -> Path:
    from sparring.models import make_tiny_model

    return make_tiny_model("gpt2")


@pytest.fixture(scope="session")
def tiny_qwen2() -> Path:
    from sparring.models import make_tiny_model

    return make_tiny_model("qwen2")


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    from sparring.models import materialize_embedded

    return materialize_embedded()


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d
