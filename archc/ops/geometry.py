"""A sliding window's arithmetic along one axis (conv, pool): the rows it spans and the size of
its output, as PyTorch computes them. Shape rules and the shape checks both ask it
(:class:`archc.ops.base.ShapeContext`)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from archc.nodes import Pair


def extent(node: Any) -> Pair:
    """The input rows and columns a window spans: its kernel, spread by a conv's dilation."""
    d = getattr(node, "dilation", (1, 1))
    return (d[0] * (node.kernel[0] - 1) + 1, d[1] * (node.kernel[1] - 1) + 1)


def window_out(size: int, k: int, s: int, p: int) -> Fraction:
    return Fraction(size + 2 * p - k, s) + 1


def axis_out(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    exact = window_out(size, k, s, p)
    out = math.ceil(exact) if ceil else math.floor(exact)
    # PyTorch (and Caffe) drop a last ceil-mode window that would start inside the padding only.
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out
