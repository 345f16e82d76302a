"""Checkpoints of ``archc train``: written atomically, read back checked.

A checkpoint goes to a temporary file beside the target, is flushed to disk and renamed over
it, so a crash or a full disk while writing leaves the previous checkpoint whole and no
temporary file. Reading one checks every part before anything uses it: a truncated, empty or
foreign file, a missing or mistyped entry is a :class:`CheckpointError` naming the file, never
a traceback from torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch


class CheckpointError(Exception):
    """A checkpoint cannot be written or read, or is not this run's."""


REQUIRED: dict[str, type | tuple[type, ...]] = {
    "model": dict,
    "optimizer": dict,
    "scheduler": dict,
    "epoch": int,
    "rng": dict,
    "graph_hash": str,
    "network": str,
    "recipe": str,
    "best": (float, int, type(None)),
    "metrics": list,
}
"""What a training checkpoint holds (``ema`` too when the recipe averages the weights)."""


def save(state: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch's zip writer says a full disk as RuntimeError
        tmp.unlink(missing_ok=True)
        kept = "the previous checkpoint is unchanged" if path.exists() else "none was written"
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).split("\n")[0]
        raise CheckpointError(f"cannot write the checkpoint `{path}`: {reason}; {kept}") from e
    except BaseException:  # Ctrl-C while writing: no temporary file left behind either
        tmp.unlink(missing_ok=True)
        raise


def read(path: Path) -> Any:
    """Whatever ``path`` holds, loaded with ``weights_only`` (tensors and plain containers)."""
    if path.is_dir():
        raise CheckpointError(f"`{path}` is a directory, not a checkpoint")
    if not path.is_file():
        raise CheckpointError(f"there is no checkpoint `{path}`")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, garbage, a pickle weights_only refuses: all unreadable
        first = str(e).strip().split("\n")[0][:160] or type(e).__name__
        why = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. |\n|$)", str(e))
        if first.startswith("Weights only load failed") and why:  # the reason, not the advice
            first = f"torch's weights-only loader: {why[1].strip()[:120]}"
        raise CheckpointError(f"`{path}` is damaged or not a checkpoint ({first})") from None


def load(path: Path) -> dict[str, Any]:
    """The training checkpoint at ``path``, every entry present and of its type."""
    state = read(path)
    if not isinstance(state, dict):
        raise CheckpointError(
            f"`{path}` is not an archc training checkpoint (it holds a {type(state).__name__})"
        )
    for key, kind in REQUIRED.items():
        if key not in state:
            raise CheckpointError(f"`{path}` is damaged or not archc's: it has no `{key}`")
        value = state[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(f"`{path}` is damaged: `{key}` is a {type(value).__name__}")
    if state["epoch"] < 1:
        raise CheckpointError(f"`{path}` is damaged: epoch {state['epoch']}")
    if not all(isinstance(r, dict) and type(r.get("epoch")) is int for r in state["metrics"]):
        raise CheckpointError(f"`{path}` is damaged: its metrics are not epoch rows")
    if not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        raise CheckpointError(f"`{path}` is damaged: its model weights are not all tensors")
    return state


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The model weights of ``path``: an archc checkpoint's (its averaged weights when it has
    them), or a plain state_dict."""
    state = read(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state.get("ema") or state["model"]
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise CheckpointError(
            f"`{path}` holds no weights: neither an archc checkpoint nor a state_dict of tensors"
        )
    return state


def restore(module: Any, state: dict[str, Any], what: str, path: Path) -> None:
    """``module.load_state_dict(state)`` (a model, optimizer or scheduler), its errors said in
    one line."""
    try:
        module.load_state_dict(state)
    except Exception as e:  # wrong shapes, keys or types: torch raises several kinds
        first = str(e).strip().split("\n")
        detail = next((line.strip() for line in first[1:] if line.strip()), first[0])
        raise CheckpointError(
            f"`{path}` is damaged: its {what} state does not fit ({detail[:200]})"
        ) from None
