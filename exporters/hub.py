"""Upload verified export dirs to the Hugging Face Hub (``sparring export ... --push-to-hub REPO``).

The ``hf`` dir goes to the repo root (so ``from_pretrained(REPO)`` works and README.md is the model
card); every other format goes to a folder named after it (``gguf/``, ``ollama/``, ``mlc/``).  Only
verified dirs are uploaded (their verify.json says passed).  Offline or unauthenticated, it fails
with a clear message (exit 1) after the local exports are complete.

Exercised by ``pytest tests/exporters/test_export_cli.py -k hub``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sparring.errors import SparringError, UserInputError
from sparring.exporters.base import read_verify


def push_exports(repo_id: str, dirs: dict[str, Path]) -> str:
    """Create ``repo_id`` if needed and upload each format dir; return the repo URL."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UserInputError(f"{repo_id!r} is not a Hub repo id", where="--push-to-hub", fix="use owner/name, e.g. alice/smollm2-jokes")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise SparringError(f"cannot push to {repo_id}: HF_HUB_OFFLINE=1 (offline mode); the exports are complete locally, push them later with --push-to-hub when online")
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, exist_ok=True, repo_type="model")
        for fmt, folder in dirs.items():
            if not read_verify(folder).get("passed"):
                continue
            api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), path_in_repo="" if fmt == "hf" else fmt,
                commit_message=f"sparring export: {fmt}",
            )
    except Exception as exc:  # offline, no token, no permission
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SparringError(
            f"could not push to the Hugging Face Hub repo {repo_id}: {first}. The exports are complete locally; "
            "check the network and `huggingface-cli login` (or HF_TOKEN), then rerun with --push-to-hub"
        ) from None
    return str(url)
