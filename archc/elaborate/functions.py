"""The values of expressions and what operators and functions do with them.

A value is a number — an exact :class:`~fractions.Fraction`, or a Python float once ``log``,
``sqrt`` or a fractional power made one (and whatever is computed from a float stays one) — a
string, a list (:class:`ListValue`) or a tuple. True is 1 and false is 0. Every number is
bounded (E209), and every list too: a spec's values are sizes, hyper-parameters and the rows of
a network's tables.

Errors: a value of the wrong kind (E226), an index out of range (E227), a number that must be
whole and is not, a division by zero or a logarithm of 0 (E208), an absurd size (E209).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from archc.elaborate.problems import Problem
from archc.spans import Span

MAX_MAGNITUDE = 10**30
"""Far beyond any size or hyper-parameter, far below where exact arithmetic gets slow."""
MAX_LIST = 100_000
"""The longest list a spec may make (``range``, ``*``, comprehensions): a network has at most
archc.elaborate.context.MAX_NODES nodes."""


class ListValue(tuple):  # type: ignore[type-arg]
    """A list (``[a, b]``): a tuple that prints and is described as a list."""

    __slots__ = ()


Number = Fraction | float
Value = Fraction | float | str | tuple  # a ListValue is a tuple
TRUE, FALSE = Fraction(1), Fraction(0)


def kind_of(v: Value) -> str:
    if isinstance(v, str):
        return "a string"
    if isinstance(v, ListValue):
        return "a list"
    if isinstance(v, tuple):
        return "a tuple"
    return "a number"


def show(v: Value) -> str:
    """A value as the language writes it: ``3``, ``3/2``, ``0.75`` (a float), ``"b3"``,
    ``[1, 2]``, ``(1, 2)``."""
    if isinstance(v, _Shown):
        return str.__str__(v)
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, ListValue):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(show(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, float):
        return repr(v)
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


def shown(v: Value, limit: int = 60) -> str:
    """``show(v)`` cut to ``limit`` characters; a long list is not printed whole first."""
    if isinstance(v, tuple) and len(v) > limit:
        v = type(v)(v[: limit + 1])
    if isinstance(v, tuple) and any(isinstance(x, tuple | str) for x in v):
        parts = [shown(x, limit) for x in v]  # each part cut: the whole is cut below
        text = show(type(v)(_Shown(p) for p in parts))
    else:
        text = show(v[: limit + 2] if isinstance(v, str) else v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Shown(str):
    """A part already printed (by :func:`shown`): :func:`show` takes it as it is."""

    __slots__ = ()


def truthy(v: Value) -> bool:
    return bool(v) if isinstance(v, str | tuple) else v != 0


def boolean(b: bool) -> Fraction:
    return TRUE if b else FALSE


def bounded(value: Number, span: Span, what: str = "this arithmetic gives") -> Number:
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise Problem("E209", f"{what} an absurdly large number", span)
        return value
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


def wrong_kind(
    v: Value, wanted: str, span: Span, what: str = "", help: str | None = None
) -> Problem:
    where = f"{what} " if what else ""
    return Problem("E226", f"{where}needs {wanted}, not {kind_of(v)} ({shown(v)})", span, help)


def number(v: Value, span: Span, what: str = "") -> Number:
    if isinstance(v, str | tuple):
        raise wrong_kind(v, "a number", span, what)
    return v


def whole(v: Value, span: Span, what: str = "this") -> int:
    """``v`` as an int; a float must be integral (E208) — ``round``, ``int``, ``ceil`` or
    ``floor`` make one."""
    n = number(v, span, what)
    if isinstance(n, float):
        if not n.is_integer():
            raise Problem(
                "E208",
                f"{what} must be a whole number, not {n!r}",
                span,
                "round it: `round(x)`, `int(x)`, `ceil(x)` or `floor(x)`",
            )
        return int(n)
    if n.denominator != 1:
        raise Problem(
            "E208",
            f"{what} must be a whole number, not {show(n)}",
            span,
            "use `//` for floor division, or round it: `round(x)`, `ceil(x)`, `floor(x)`",
        )
    return int(n)


def sequence(v: Value, span: Span, what: str) -> Sequence[Value]:
    if not isinstance(v, tuple | str):
        raise wrong_kind(v, "a list, a tuple or a string", span, what)
    return v


def made_list(items: Sequence[Value], span: Span) -> ListValue:
    if len(items) > MAX_LIST:
        raise Problem(
            "E209",
            f"this makes a list of {len(items):,} values",
            span,
            f"lists hold up to {MAX_LIST:,} values",
        )
    return ListValue(items)


# --- operators ---------------------------------------------------------------------------------


def arithmetic(op: str, a: Value, b: Value, span: Span, text: str) -> Value:
    """``a op b`` for ``+ - * / // % **``."""
    if op == "+" and isinstance(a, str | tuple) and type(a) is type(b):
        joined = a + b  # type: ignore[operator]
        return made_list(joined, span) if isinstance(a, ListValue) else joined
    if op == "*" and isinstance(a, ListValue | str) != isinstance(b, ListValue | str):
        seq, n = (a, b) if isinstance(a, ListValue | str) else (b, a)
        count = whole(n, span, "a list's repetition count")
        if len(seq) * max(count, 0) > MAX_LIST:  # type: ignore[arg-type]
            raise Problem("E209", "this repetition makes too long a list", span)
        return made_list(seq * count, span) if isinstance(seq, ListValue) else seq * count  # type: ignore[operator]
    x, y = number(a, span, f"`{op}`"), number(b, span, f"`{op}`")
    if op == "+":
        return bounded(x + y, span)
    if op == "-":
        return bounded(x - y, span)
    if op == "*":
        return bounded(x * y, span)
    if op == "**":
        return power(x, y, span)
    if y == 0:
        raise Problem("E208", f"division by zero in `{text}`", span, "check the arithmetic")
    if op == "/":
        return bounded(x / y, span)
    if op == "//":
        q = x // y
        return bounded(q if isinstance(q, float) else Fraction(q), span)
    return bounded(x % y, span)


def power(x: Number, y: Number, span: Span) -> Number:
    """``x ** y``: exact for a whole exponent of a fraction, a float otherwise."""
    if isinstance(x, Fraction) and isinstance(y, Fraction) and y.denominator == 1:
        if x == 0 and y < 0:
            raise Problem("E208", "division by zero: 0 to a negative power", span)
        size = max(abs(x.numerator), x.denominator)
        if size > 1 and abs(y) * math.log2(size) > 110:
            raise Problem("E209", "this power is an absurdly large number", span)
        return bounded(x**y, span)
    if x < 0:
        raise Problem(
            "E208",
            f"a negative number ({x}) to a fractional power has no real value",
            span,
        )
    if x == 0 and y < 0:
        raise Problem("E208", "division by zero: 0 to a negative power", span)
    try:
        return bounded(float(x) ** float(y), span)
    except OverflowError:
        raise Problem("E209", "this power is an absurdly large number", span) from None


def compare(op: str, a: Value, b: Value, span: Span) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if isinstance(a, str | tuple) or isinstance(b, str | tuple):
        if not (type(a) is type(b) or (isinstance(a, tuple) and isinstance(b, tuple))):
            raise Problem(
                "E226",
                f"`{op}` compares values of one kind, not {kind_of(a)} and {kind_of(b)}",
                span,
            )
    try:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]  # type: ignore[operator]
    except TypeError:
        raise Problem("E226", f"`{op}` cannot compare {shown(a)} and {shown(b)}", span) from None


def index(seq: Value, k: Value, span: Span, at: Span) -> Value:
    items = sequence(seq, span, "indexing")
    i = whole(k, at, "an index")
    if not -len(items) <= i < len(items):
        raise Problem(
            "E227",
            f"index {i} is out of range: {shown(seq)} has {len(items)} "
            f"value{'s' if len(items) != 1 else ''}",
            at,
            f"indices run from 0 to {len(items) - 1} (or from -{len(items)} to -1, from the end)"
            if items
            else "the value is empty",
        )
    return items[i]


def sliced(seq: Value, start: Value | None, stop: Value | None, span: Span) -> Value:
    items = sequence(seq, span, "slicing")
    a = whole(start, span, "a slice bound") if start is not None else None
    b = whole(stop, span, "a slice bound") if stop is not None else None
    part = items[a:b]
    return ListValue(part) if isinstance(seq, ListValue) else part


# --- functions ---------------------------------------------------------------------------------


def make_divisible(v: Number, d: Number) -> Number:
    """torchvision's ``_make_divisible``: ``v`` rounded to the nearest multiple of ``d`` (half
    up), at least ``d``, and never more than 10 % below ``v`` — in exact arithmetic, where
    torchvision compares against the float ``0.9 * v``."""
    rounded = max(d, math.trunc(v + d / 2) // d * d)
    return rounded + d if rounded < Fraction(9, 10) * v else rounded


def call(name: str, args: list[Value], spans: list[Span], span: Span) -> Value:
    """The value of the function ``name`` (archc.parsing.lines.FUNCTIONS) of ``args``, whose
    arity the parser checked."""
    if name in ("max", "min"):
        return extreme(name, args, spans, span)
    if name in ("round", "ceil", "floor", "int", "abs"):
        x = number(args[0], spans[0], f"`{name}`")
        if name == "abs":
            return abs(x)
        rounding = {"round": round, "ceil": math.ceil, "floor": math.floor, "int": math.trunc}
        return Fraction(rounding[name](x))  # round: halves to even, as Python's
    if name in ("log", "sqrt"):
        return transcendental(name, args, spans, span)
    if name == "make_divisible":
        v = number(args[0], spans[0], "`make_divisible`")
        d = number(args[1], spans[1], "`make_divisible`")
        if d <= 0 or (d.denominator != 1 if isinstance(d, Fraction) else not d.is_integer()):
            raise Problem(
                "E208",
                f"`make_divisible` needs a whole divisor of at least 1, not {show(d)}",
                spans[1],
                "write e.g. `make_divisible(in.c * 6, 8)`",
            )
        return bounded(make_divisible(v, d), span)
    if name == "range":
        return ranged(args, spans, span)
    if name == "zip":
        return zipped(args, spans, span)
    return of_sequence(name, args, spans, span)


def extreme(name: str, args: list[Value], spans: list[Span], span: Span) -> Value:
    """``max(a, b, …)``, ``max(xs)`` and ``min``'s likewise."""
    values: Sequence[Value] = args
    if len(args) == 1:
        values = sequence(args[0], spans[0], f"`{name}` of one value")
        if not values:
            raise Problem("E227", f"`{name}` of an empty list", spans[0])
    kinds = {kind_of(v) for v in values}
    if len(kinds) > 1 and not kinds <= {"a list", "a tuple"}:
        raise Problem(
            "E226", f"`{name}` compares values of one kind, not {' and '.join(sorted(kinds))}", span
        )
    return max(values) if name == "max" else min(values)  # type: ignore[type-var]


def transcendental(name: str, args: list[Value], spans: list[Span], span: Span) -> float:
    """``log(x)``, ``log(x, base)``, ``sqrt(x)``: Python's doubles, as torchvision computes."""
    x = number(args[0], spans[0], f"`{name}`")
    if name == "sqrt":
        if x < 0:
            raise Problem("E208", f"`sqrt` of a negative number ({show(x)})", spans[0])
        return math.sqrt(x)
    if x <= 0:
        raise Problem("E208", f"`log` of {show(x)}: only positive numbers have one", spans[0])
    if len(args) == 1:
        return math.log(x)
    base = number(args[1], spans[1], "`log`")
    if base <= 0 or base == 1:
        raise Problem(
            "E208",
            f"`log` to the base {show(base)} is undefined",
            spans[1],
            "a logarithm's base is positive and not 1",
        )
    return math.log(x, base)


def ranged(args: list[Value], spans: list[Span], span: Span) -> ListValue:
    bounds = [whole(a, s, "an argument of `range`") for a, s in zip(args, spans)]
    start, stop, step = (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]
    if step == 0:
        raise Problem("E208", "`range` with a step of 0", spans[2])
    r = range(start, stop, step)
    if len(r) > MAX_LIST:
        raise Problem(
            "E209", f"`range` of {len(r):,} values", span, f"lists hold up to {MAX_LIST:,} values"
        )
    return ListValue(Fraction(k) for k in r)


def zipped(args: list[Value], spans: list[Span], span: Span) -> ListValue:
    """``zip(xs, ys, …)``: the list of tuples ``(xs[k], ys[k], …)``, as long as the shortest
    argument, as Python's."""
    lists = [sequence(a, s, "`zip`") for a, s in zip(args, spans)]
    return made_list([tuple(row) for row in zip(*lists)], span)


def of_sequence(name: str, args: list[Value], spans: list[Span], span: Span) -> Value:
    """``len``, ``sum``, ``enumerate``, ``distinct``, ``count``."""
    items = sequence(args[0], spans[0], f"`{name}`")
    if name == "len":
        return Fraction(len(items))
    if name == "count":
        return Fraction(items.count(args[1]))  # type: ignore[arg-type]
    if name == "sum":
        total: Number = FALSE
        for v in items:
            total = bounded(total + number(v, spans[0], "`sum`"), span)
        return total
    if name == "enumerate":
        return ListValue((Fraction(k), v) for k, v in enumerate(items))
    if name == "distinct":
        return ListValue(dict.fromkeys(items))
    raise AssertionError(name)
