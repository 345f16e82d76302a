"""archc: a compiler for CNN architecture specs written the way lectures and papers print them.

The public API. ``lint``/``summary`` paths never import torch; ``load`` and
``transfer_weights`` import it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from archc.diagnostics import ArchcError, Diagnostic

__all__ = [
    "ArchcError",
    "Diagnostic",
    "fuse",
    "load",
    "safe_globals",
    "transfer_weights",
    "__version__",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so that `archc --help` and the CLI's start-up do not pay for pydantic before they
    # need it.
    if name in ("ArchcError", "Diagnostic"):
        from archc import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'archc' has no attribute {name!r}")


def load(
    spec: str, *, device: Any = None, dtype: Any = None, max_bytes: int | None = None
) -> torch.nn.Module:
    """Build the PyTorch module of a spec (a path to a .arch file, or spec text).

    Raises :class:`ArchcError` carrying the diagnostics when the spec has errors, or (E502),
    before allocating anything, when its parameters and buffers would need more than
    ``max_bytes`` bytes (default: the memory of ``device``, or of this machine).
    """
    from archc.backends.torch_module import load as _load

    return _load(spec, device=device, dtype=dtype, max_bytes=max_bytes)


def fuse(model: torch.nn.Module) -> torch.nn.Module:
    """The inference module of a plain model in eval mode: each conv -> BN -> (+ residual) ->
    ReLU group is one op, BN folded in once (the Triton kernel on CUDA, a folded conv on the
    CPU). Traceable by FX, torch.compile and torch.export; ``fusion_summary`` says what it did.
    """
    from archc.backends.fuse import fuse as _fuse

    return _fuse(model)


def safe_globals(model: torch.nn.Module) -> list[type]:
    """The classes ``torch.load(..., weights_only=True)`` must be allowed to build to unpickle
    the whole ``model`` (its module classes): ``with torch.serialization.safe_globals(
    archc.safe_globals(model)): torch.load(path, weights_only=True)``. The classes of a compiled
    file must be importable where it is loaded; a state_dict needs none of this."""
    return sorted({type(m) for m in model.modules()}, key=lambda c: (c.__module__, c.__name__))


def transfer_weights(src: Any, dst: torch.nn.Module) -> None:
    """Copy parameters and buffers from ``src`` (a module or state_dict) into ``dst``,
    matched in definition order with shapes checked; copies nothing on any mismatch."""
    from archc.backends.weights import transfer_weights as _transfer

    _transfer(src, dst)
