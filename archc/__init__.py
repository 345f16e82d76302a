"""archc: a compiler for CNN architecture specs written the way lectures and papers print them.

The public API. ``lint``/``summary`` paths never import torch; ``load`` and
``transfer_weights`` import it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from archc.diagnostics import ArchcError, Diagnostic

__all__ = ["ArchcError", "Diagnostic", "load", "transfer_weights", "__version__"]
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


def transfer_weights(src: Any, dst: torch.nn.Module) -> None:
    """Copy parameters and buffers from ``src`` (a module or state_dict) into ``dst``,
    matched in definition order with shapes checked; copies nothing on any mismatch."""
    from archc.backends.weights import transfer_weights as _transfer

    _transfer(src, dst)
