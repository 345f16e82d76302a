"""Checkpoints of ``archc train``: written atomically, read back only for the same spec.

A checkpoint goes to a temporary file beside the target, is flushed to disk and renamed over
it, so a crash or a full disk while writing leaves the previous checkpoint whole.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(Exception):
    """A checkpoint cannot be written, or is not this spec's."""


def spec_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def save(state: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        kept = "the previous checkpoint is unchanged" if path.exists() else "none was written"
        raise CheckpointError(
            f"cannot write the checkpoint `{path}`: {e.strerror or e}; {kept}"
        ) from e


def load(path: Path, text: str) -> dict[str, Any]:
    """The checkpoint at ``path``, refused unless it was written for the spec ``text``."""
    if not path.is_file():
        raise CheckpointError(f"--resume: there is no checkpoint `{path}`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("spec_hash") != spec_hash(text):
        raise CheckpointError(
            f"`{path}` was written for another spec (sha256 {str(state.get('spec_hash'))[:12]}, "
            f"this spec's is {spec_hash(text)[:12]}): resume with the spec it was trained on, "
            "or train into a new --out directory"
        )
    return state
