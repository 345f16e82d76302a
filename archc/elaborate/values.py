"""Values: arithmetic, sizes, pairs, floats, declared shapes and claims, evaluated exactly.

Arithmetic is evaluated as fractions by walking the expression tree; a size that must be an
integer and is not is an error (E208). Every intermediate result is bounded (E209): a spec's
numbers are sizes and hyper-parameters, and without a bound a hostile file (`/1e-40` chained)
grows integers until Python refuses to print them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction

from archc import ir
from archc import syntax as S
from archc.elaborate.problems import Problem
from archc.ops.base import Evaluator
from archc.spans import Span
from archc.suggest import did_you_mean

# Far beyond any size or hyper-parameter (sizes stop at ir.MAX_SIZE), far below where exact
# arithmetic gets slow.
MAX_MAGNITUDE = 10**30


def expr_text(e: S.Expr, spaced: bool = False) -> str:
    """An expression as normalised text, parentheses as written: without spaces (the IR's
    claims), or ``spaced`` around operators and after commas (for people: the editor)."""
    sep, comma = (" ", ", ") if spaced else ("", ",")
    if isinstance(e, S.Num):
        return e.text
    if isinstance(e, S.Str):
        return f'"{e.value}"'
    if isinstance(e, S.Name):
        return e.id
    if isinstance(e, S.Paren):
        return f"({expr_text(e.inner, spaced)})"
    if isinstance(e, S.InShape):
        return f"in.{e.dim}"
    if isinstance(e, S.Func):
        return f"{e.name}({comma.join(expr_text(a, spaced) for a in e.args)})"
    return f"{expr_text(e.left, spaced)}{sep}{e.op}{sep}{expr_text(e.right, spaced)}"


def bounded(value: Fraction, span: Span, what: str = "this arithmetic gives") -> Fraction:
    if abs(value) > MAX_MAGNITUDE:
        raise Problem("E209", f"{what} an absurdly large number", span)
    if value.denominator > MAX_MAGNITUDE:
        raise Problem(
            "E209",
            f"{what} an absurdly fine fraction",
            span,
            "numbers are kept exact, with denominators up to 10^30",
        )
    return value


def check_size(v: int, what: str, span: Span, low: int = 1) -> int:
    if v < low:
        raise Problem(
            "E209",
            f"{what} must be at least {low}, got {v}",
            span,
            "sizes, strides and counts are positive integers (padding may be 0)",
        )
    if v > ir.MAX_SIZE:
        shown = str(v) if v < 10**12 else f"{str(v)[0]}e{len(str(v)) - 1}"
        raise Problem(
            "E209",
            f"{what} of {shown} is absurdly large (more than {ir.MAX_SIZE})",
            span,
            "check for a typo",
        )
    return v


EntryShape = Callable[[Span], ir.Shape]
"""The shape (C, H, W) or (F,) of the value entering a block call, asked for at a span; the
statement walker computes it from the layers emitted so far (archc.elaborate.entry)."""

_DIMS = {"c": "channels", "h": "height", "w": "width"}


def make_divisible(v: Fraction, d: Fraction) -> Fraction:
    """torchvision's ``_make_divisible``: ``v`` rounded to the nearest multiple of ``d`` (half
    up), at least ``d``, and never more than 10 % below ``v`` — in exact arithmetic, where
    torchvision compares against the float ``0.9 * v``."""
    rounded = max(d, math.trunc(v + d / 2) // d * d)
    return rounded + d if rounded < Fraction(9, 10) * v else rounded


class Values(Evaluator):
    """Evaluation in one scope: ``env`` binds the parameters of ``block`` (None at the top
    level, where a name is never a number) and ``entry`` gives the shape of the value entering
    the block call (``in.c``). It is also what the registry's ``Op.fields`` gets."""

    def __init__(
        self,
        env: Mapping[str, Fraction | str],
        block: str | None,
        entry: EntryShape | None = None,
    ) -> None:
        self.env, self.block, self.entry = env, block, entry

    def constant(self, e: S.Expr) -> Fraction | str:
        """A value that may be a string (a ``param``'s default, a variants cell, a
        comparison's side); anything else is a number."""
        if isinstance(e, S.Str):
            return e.value
        if isinstance(e, S.Paren):
            return self.constant(e.inner)
        if isinstance(e, S.Name) and isinstance(self.env.get(e.id), str):
            return self.env[e.id]
        return self.evaluate(e)

    def evaluate(self, e: S.Expr) -> Fraction:
        if isinstance(e, S.Num):
            return bounded(e.value, e.span, "this is")
        if isinstance(e, S.Str):
            raise Problem(
                "E208",
                f'the string "{e.value}" is no number',
                e.span,
                "strings are the values of parameters and variant keys, compared with `==`",
            )
        if isinstance(e, S.Paren):
            return self.evaluate(e.inner)
        if isinstance(e, S.InShape):
            return Fraction(self.entry_size(e))
        if isinstance(e, S.Func):
            return self.function(e)
        if isinstance(e, S.Name):
            if e.id in self.env:
                value = self.env[e.id]
                if isinstance(value, str):
                    raise Problem(
                        "E208",
                        f'`{e.id}` is the string "{value}", not a number',
                        e.span,
                        f'a string is compared (`if {e.id} == "{value}":`), not computed with',
                    )
                return value
            if self.block is not None:
                known = ", ".join(f"`{n}`" for n in self.env) or "none"
                raise Problem(
                    "E207",
                    f"`{e.id}` is not a parameter of block `{self.block}`",
                    e.span,
                    f"the block's parameters are: {known}",
                )
            known = ", ".join(f"`{n}`" for n in self.env)
            raise Problem(
                "E207",
                f"unexpected word `{e.id}`{did_you_mean(e.id, list(self.env))}",
                e.span,
                f"the names known here are: {known}"
                if known
                else "outside a block, sizes are numbers; names are block parameters and `param`s",
            )
        left = self.evaluate(e.left)
        right = self.evaluate(e.right)
        if e.op == "+":
            return bounded(left + right, e.span)
        if e.op == "-":
            return bounded(left - right, e.span)
        if e.op == "*":
            return bounded(left * right, e.span)
        if right == 0:
            raise Problem(
                "E208", f"division by zero in `{expr_text(e)}`", e.span, "check the arithmetic"
            )
        return bounded(left / right if e.op == "/" else Fraction(left // right), e.span)

    def entry_size(self, e: S.InShape) -> int:
        if self.entry is None:
            raise Problem(
                "E223",
                f"`in.{e.dim}` is only known inside a block",
                e.span,
                f"`in.{e.dim}` is the {_DIMS[e.dim]} of the value entering a block call; "
                "outside a block, write the number",
            )
        shape = self.entry(e.span)
        if len(shape) == 1 and e.dim != "c":
            raise Problem(
                "E223",
                f"the value entering block `{self.block}` is the vector [{shape[0]}]: "
                f"it has no {_DIMS[e.dim]}",
                e.span,
                "`in.c` is a vector's length; `in.h` and `in.w` need a feature map",
            )
        return shape["chw".index(e.dim)] if len(shape) == 3 else shape[0]

    def function(self, e: S.Func) -> Fraction:
        args = [self.evaluate(a) for a in e.args]
        if e.name == "max":
            return max(args)
        if e.name == "min":
            return min(args)
        if e.name == "round":
            return Fraction(round(args[0]))  # half to even, as Python's round
        v, d = args
        if d <= 0 or d.denominator != 1:
            raise Problem(
                "E208",
                f"`make_divisible` needs a whole divisor of at least 1, not {d}",
                e.args[1].span,
                "write e.g. `make_divisible(in.c * 6, 8)`",
            )
        return bounded(make_divisible(v, d), e.span)

    def truth(self, c: S.Condition) -> bool:
        """Whether an ``if`` condition holds: a comparison, ``and``/``or``, or a value that is
        not 0."""
        if isinstance(c, S.Logic):
            if c.op == "and":
                return self.truth(c.left) and self.truth(c.right)
            return self.truth(c.left) or self.truth(c.right)
        if isinstance(c, S.Compare):
            left, right = self.constant(c.left), self.constant(c.right)
            if isinstance(left, str) or isinstance(right, str):
                if c.op not in ("==", "!="):
                    raise Problem(
                        "E208", f"strings are compared with `==` and `!=`, not `{c.op}`", c.span
                    )
                return (left == right) == (c.op == "==")
            return {
                "==": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[c.op]
        return self.evaluate(c) != 0

    def int_value(self, e: S.Expr, what: str, low: int = 1) -> int:
        v = self.evaluate(e)
        if v.denominator != 1:
            raise Problem(
                "E208",
                f"{what} `{expr_text(e)}` = {v} is not an integer",
                e.span,
                "use `//` for floor division, or change the arithmetic",
            )
        return check_size(int(v), what, e.span, low)

    # --- the registry's Evaluator --------------------------------------------------------------

    def int_arg(self, arg: S.Arg, what: str, low: int = 1) -> int:
        if isinstance(arg.value, S.Pair) or isinstance(arg.value, str):
            raise Problem("E106", f"{what} is one number here", arg.span)
        return self.int_value(arg.value, what, low)

    def pair_arg(self, arg: S.Arg, what: str, low: int = 1) -> ir.Pair:
        v = arg.value
        if isinstance(v, S.Pair):
            return (
                check_size(v.values[0], what, v.span, low),
                check_size(v.values[1], what, v.span, low),
            )
        if isinstance(v, str):
            raise Problem("E106", f"`{v}` is not a {what}", arg.span)
        n = self.int_value(v, what, low)
        return (n, n)

    def float_arg(self, arg: S.Arg) -> float:
        if isinstance(arg.value, S.Pair | str):
            raise Problem("E106", "expected a single number", arg.span)
        return float(self.evaluate(arg.value))

    def check_size(self, value: int, what: str, span: Span, low: int = 1) -> int:
        return check_size(value, what, span, low)

    def padding(
        self,
        arg: S.Arg | None,
        kernel: ir.Pair,
        paper: bool,
        span: Span,
        dilation: ir.Pair = (1, 1),
    ) -> ir.Pair:
        if arg is None and not paper:
            return (0, 0)
        if arg is None or arg.value == "same":
            # PyTorch's padding='same': d·(K − 1) in all, half on each side. An odd total (an
            # even effective kernel d·(K − 1) + 1) would need one more row after than before,
            # which nn.Conv2d(padding=int) cannot express.
            spans = [d * (k - 1) for k, d in zip(kernel, dilation)]
            if spans[0] % 2 or spans[1] % 2:
                at = ""
                if dilation != (1, 1):
                    d = (
                        "x".join(str(v) for v in dilation)
                        if dilation[0] != dilation[1]
                        else dilation[0]
                    )
                    at = f" at dilation {d} (it spans {spans[0] + 1}x{spans[1] + 1})"
                raise Problem(
                    "E209",
                    f"`same` padding needs an odd kernel, not {kernel[0]}x{kernel[1]}{at}: "
                    "it would need one more row or column of padding after than before, "
                    "which a conv's padding cannot express",
                    arg.span if arg else span,
                    "write the padding as a number",
                )
            return (spans[0] // 2, spans[1] // 2)
        return self.pair_arg(arg, "padding", low=0)

    def missing(self, what: str, span: Span, help: str) -> Exception:
        return Problem("E213", what, span, help)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def fill(template: S.Template, values: Values, identifier: bool = False) -> str:
    """A name template filled: each ``{EXPR}`` by its value (a whole number without ``.0``,
    a string as itself). The name must be a name (E110): letters, digits, `_` and, unless it
    must be an ``identifier``, `-`."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        v = values.constant(part)
        out.append(
            v if isinstance(v, str) else str(v.numerator) if v.denominator == 1 else str(float(v))
        )
    name = "".join(out)
    if not _NAME.fullmatch(name) or (identifier and "-" in name):
        raise Problem(
            "E110",
            f"the template `{template.text}` makes `{name}`, which is not a valid name",
            template.span,
            "a name holds letters, digits and `_`"
            + ("" if identifier else " (and `-` in a quoted one)")
            + ", and starts with a letter",
        )
    return name


CONSTANTS = Values({}, None)
"""Evaluation outside any block: claims, declared shapes, the input line."""


def declared_shape(d: S.DeclaredShape) -> ir.DeclaredShape:
    """A declared ``[HxWxC]`` as the IR's (C, H, W)."""
    dims = tuple(check_size(x, "declared size", d.span) for x in d.dims)
    shape = (dims[2], dims[0], dims[1]) if len(dims) == 3 else dims
    return ir.DeclaredShape(shape=shape, span=d.span)


def claim(c: S.ClaimSyntax) -> ir.Claim:
    value: int | float | None = None
    text = None
    if c.expression is not None:
        v = CONSTANTS.evaluate(c.expression)
        value = int(v) if v.denominator == 1 else float(v)
        text = expr_text(c.expression)
    return ir.Claim(kind=c.kind, expression=text, value=value, printed=c.printed, span=c.span)
