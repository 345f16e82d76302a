"""Bytes and FLOPs of one convolution layer, for the roofline columns of ``gpu_check.py`` and the
per-layer time model of ``benchmarks/NOTES.md``. Pure Python (no torch), so tests import it.

Bytes are what a layer must move at least once: the input pixels its windows read, the weight,
the output and (with a residual) the residual. A strided 1×1 convolution reads one input pixel
in ``stride²``: counting the whole input there doubles (stride 2) its memory floor.
"""

from __future__ import annotations


def out_extent(size: int, window: int, stride: int, pad: int) -> int:
    """Output length along one axis (floor rounding, as torch)."""
    return (size + 2 * pad - window) // stride + 1


def sampled_extent(size: int, window: int, stride: int, pad: int) -> int:
    """How many of the ``size`` input positions along one axis some output's window reads."""
    read: set[int] = set()
    for o in range(out_extent(size, window, stride, pad)):
        first = o * stride - pad
        read.update(range(max(first, 0), min(first + window, size)))
    return len(read)


def conv_bytes(
    n: int,
    c: int,
    k: int,
    hw: tuple[int, int],
    rs: tuple[int, int],
    stride: int,
    pad: int,
    residual: bool,
    elem_bytes: int = 2,
) -> int:
    """Least bytes a conv layer moves: sampled input, weight, output (and residual)."""
    (h, w), (r, s) = hw, rs
    oh, ow = out_extent(h, r, stride, pad), out_extent(w, s, stride, pad)
    x = n * c * sampled_extent(h, r, stride, pad) * sampled_extent(w, s, stride, pad)
    out = n * k * oh * ow * (2 if residual else 1)
    return elem_bytes * (x + k * c * r * s + out)
