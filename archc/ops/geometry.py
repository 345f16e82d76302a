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


def exact_number(value: Fraction) -> str:
    """A fraction as written exactly: ``54``, ``54.25``, ``1.99999988079071044921875``, or
    ``161/3`` when no decimal ends. A float would round ``1.999999`` up to a misleading ``2``."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    twos, fives = 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    whole, frac = divmod(scaled, 10**places)
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{frac:0{places}d}".rstrip("0")


def window_arithmetic(size: int, k: int, s: int, p: int) -> str:
    return f"({size} − {k} + 2·{p})/{s} + 1 = {exact_number(window_out(size, k, s, p))}"


def rounded(size: int, k: int, s: int, p: int, ceil: bool) -> str:
    """The window arithmetic and, when it is not whole, where it rounds: ``… = 54.25 → 54``."""
    text = window_arithmetic(size, k, s, p)
    if window_out(size, k, s, p).denominator != 1:
        text += f" → {axis_out(size, k, s, p, ceil)}" + (" (ceil mode)" if ceil else "")
    return text
