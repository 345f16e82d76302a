"""Values: arithmetic, sizes, pairs, floats, declared shapes and claims, evaluated exactly.

Arithmetic is evaluated as fractions by walking the expression tree; a size that must be an
integer and is not is an error (E208). Every intermediate result is bounded (E209): a spec's
numbers are sizes and hyper-parameters, and without a bound a hostile file (`/1e-40` chained)
grows integers until Python refuses to print them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from fractions import Fraction

from archc import ir
from archc import syntax as S
from archc.elaborate.functions import (
    MAX_LIST,
    ListValue,
    Number,
    Value,
    arithmetic,
    boolean,
    bounded,
    call,
    compare,
    index,
    number,
    show,
    shown,
    sliced,
    truthy,
    whole,
)
from archc.elaborate.functions import (
    MAX_MAGNITUDE as MAX_MAGNITUDE,
)
from archc.elaborate.functions import (
    make_divisible as make_divisible,
)
from archc.elaborate.problems import Problem
from archc.ops.base import Evaluator
from archc.spans import Span
from archc.suggest import did_you_mean


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
    if isinstance(e, S.BinOp | S.Compare):
        return f"{expr_text(e.left, spaced)}{sep}{e.op}{sep}{expr_text(e.right, spaced)}"
    return _other_text(e, spaced)


def _other_text(e: S.Expr, spaced: bool) -> str:
    comma = ", " if spaced else ","
    if isinstance(e, S.Str):
        return f'"{e.value}"'
    if isinstance(e, S.Logic):
        return f"{expr_text(e.left, spaced)} {e.op} {expr_text(e.right, spaced)}"
    if isinstance(e, S.Not):
        return f"not {expr_text(e.operand, spaced)}"
    if isinstance(e, S.Neg):
        return f"-{expr_text(e.operand, spaced)}"
    if isinstance(e, S.IfElse):
        parts = (expr_text(x, spaced) for x in (e.then, e.condition, e.other))
        return "{} if {} else {}".format(*parts)
    if isinstance(e, S.Index):
        return f"{expr_text(e.value, spaced)}[{expr_text(e.index, spaced)}]"
    if isinstance(e, S.Slice):
        a = expr_text(e.start, spaced) if e.start is not None else ""
        b = expr_text(e.stop, spaced) if e.stop is not None else ""
        return f"{expr_text(e.value, spaced)}[{a}:{b}]"
    if isinstance(e, S.ListExpr):
        return "[" + comma.join(expr_text(x, spaced) for x in e.items) + "]"
    if isinstance(e, S.TupleExpr):
        inner = comma.join(expr_text(x, spaced) for x in e.items)
        return f"({inner}{',' if len(e.items) == 1 else ''})"
    assert isinstance(e, S.Comprehension)
    clauses = " ".join(
        f"for {targets_text(c.targets)} in {expr_text(c.iterable, spaced)}"
        + "".join(f" if {expr_text(x, spaced)}" for x in c.conditions)
        for c in e.clauses
    )
    return f"[{expr_text(e.element, spaced)} {clauses}]"


def targets_text(t: S.Targets, nested: bool = False) -> str:
    inner = ", ".join(x.id if isinstance(x, S.Name) else targets_text(x, True) for x in t.items)
    return f"({inner})" if nested and len(t.items) > 1 else inner


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


MAX_STEPS = 200_000
"""The comprehension passes one expression may make, nested comprehensions included: lists hold
up to 100,000 values, but a comprehension over one inside another would take 10^10 steps."""


MAX_WORK = 2_000_000
"""The values one expression may handle in the lists it makes, reads and compares, nested ones
included: a list holds up to 100,000, but 100,000 passes that each make one would take 10^10."""


MAX_TOTAL = (300_000, 10_000_000)
"""The comprehension passes and list values of all of one elaboration's expressions together:
a `for` loop may run one expression 100,000 times, each within its own budget."""

_TOTAL: ContextVar[list[int] | None] = ContextVar("archc_expression_total", default=None)


_FAILED: ContextVar[dict[str, Span] | None] = ContextVar("archc_failed_names", default=None)
"""The top-level ``let``s and tables whose value is an error, already reported: a line that
reads one says so, not that the name is unknown."""


@contextmanager
def total_budget() -> Iterator[None]:
    """One elaboration: its expressions share :data:`MAX_TOTAL`; the names whose definitions
    failed are collected for it (:func:`failed_definition`)."""
    token, failed = _TOTAL.set(list(MAX_TOTAL)), _FAILED.set({})
    try:
        yield
    finally:
        _TOTAL.reset(token)
        _FAILED.reset(failed)


def failed_definition(name: str, span: Span) -> None:
    """``name``'s definition at ``span`` is an error (reported there)."""
    failed = _FAILED.get()
    if failed is not None:
        failed.setdefault(name, span)


def _spend_total(k: int, amount: int, span: Span) -> None:
    total = _TOTAL.get()
    if total is None:
        return
    total[k] -= amount
    if total[k] < 0:
        what = "comprehension passes" if k == 0 else "list values"
        raise Problem(
            "E209",
            f"the expressions of this spec make more than {MAX_TOTAL[k]:,} {what} in all",
            span,
            "no network's sizes need so much: check the loops around this expression",
        )


MAX_NAME = 255
"""The longest name a template may make (a state_dict key's part, a file name's)."""


def weight(limit: int, *values: Value) -> int:
    """How many values ``values`` hold, nested lists' and strings' included, counted up to just
    past ``limit``: lists share their elements, so ``[xs for k in range(100000)]`` of a long
    ``xs`` holds 10^10 values in a few bytes, and printing or comparing it would take that long."""
    total, todo = 0, list(values)
    while todo and total <= limit:
        v = todo.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, tuple):
            total += len(v)
            todo.extend(v)
    return total


class Values(Evaluator):
    """Evaluation in one scope: ``env`` binds the names visible there (a block's parameters,
    ``let``s, tables, ``for`` targets, the file's constants) in ``block`` (None outside any) and
    ``entry`` gives the shape of the value entering the block call (``in.c``). It is also what
    the registry's ``Op.fields`` gets."""

    def __init__(
        self,
        env: Mapping[str, Value],
        block: str | None,
        entry: EntryShape | None = None,
        budget: list[int] | None = None,
    ) -> None:
        self.env, self.block, self.entry = env, block, entry
        self.budget = budget if budget is not None else [MAX_STEPS, MAX_WORK]
        """The comprehension passes and the list values this evaluation may still make and
        handle (shared by the nested evaluations of one expression)."""

    def spend(self, *values: Value, span: Span) -> None:
        """Count the values that ``values`` hold against the budget: E209 when it is spent."""
        total = _TOTAL.get()
        left = min(self.budget[1], total[1]) if total is not None else self.budget[1]
        spent = weight(max(left, 0), *values)
        self.budget[1] -= spent
        _spend_total(1, spent, span)
        if self.budget[1] < 0:
            raise Problem(
                "E209",
                f"this expression handles more than {MAX_WORK:,} list values",
                span,
                "no network's sizes need so much: check the lists it makes and reads",
            )

    def constant(self, e: S.Expr) -> Value:
        """Any value (a ``param``'s default, a variants cell, a template's hole): :meth:`value`."""
        return self.value(e)

    def evaluate(self, e: S.Expr) -> Number:
        """A number: E226 for any other value."""
        return number(self.value(e), e.span, f"`{expr_text(e, True)}`")

    def value(self, e: S.Expr) -> Value:
        if isinstance(e, S.Num):
            return bounded(e.value, e.span, "this is")
        if isinstance(e, S.Paren):
            return self.value(e.inner)
        if isinstance(e, S.InShape):
            return Fraction(self.entry_size(e))
        if isinstance(e, S.Func):
            args = [self.value(a) for a in e.args]
            self.spend(*args, span=e.span)
            result = call(e.name, args, [a.span for a in e.args], e.span)
            self.spend(result, span=e.span)
            return result
        if isinstance(e, S.Name):
            return self.name(e)
        if isinstance(e, S.BinOp):
            left, right = self.value(e.left), self.value(e.right)
            result = arithmetic(e.op, left, right, e.span, expr_text(e, True))
            self.spend(result, span=e.span)
            return result
        if isinstance(e, S.Compare):
            left, right = self.value(e.left), self.value(e.right)
            self.spend(left, right, span=e.span)
            return boolean(compare(e.op, left, right, e.span))
        if isinstance(e, S.Logic):
            first = truthy(self.value(e.left))
            if first == (e.op == "or"):
                return boolean(first)  # `or` of a truth, `and` of a falsehood: decided
            return boolean(truthy(self.value(e.right)))
        return self.compound(e)

    def compound(self, e: S.Expr) -> Value:
        if isinstance(e, S.Str):
            return e.value
        if isinstance(e, S.Not):
            return boolean(not truthy(self.value(e.operand)))
        if isinstance(e, S.Neg):
            return bounded(-number(self.value(e.operand), e.span, "a unary `-`"), e.span)
        if isinstance(e, S.IfElse):
            return self.value(e.then if truthy(self.value(e.condition)) else e.other)
        if isinstance(e, S.Index):
            return index(self.value(e.value), self.value(e.index), e.span, e.index.span)
        if isinstance(e, S.Slice):
            bounds = [self.value(b) if b is not None else None for b in (e.start, e.stop)]
            part = sliced(self.value(e.value), bounds[0], bounds[1], e.span)
            self.spend(part, span=e.span)
            return part
        if isinstance(e, S.ListExpr | S.TupleExpr):
            items = [self.value(x) for x in e.items]
            self.spend(*items, span=e.span)
            return ListValue(items) if isinstance(e, S.ListExpr) else tuple(items)
        assert isinstance(e, S.Comprehension)
        return self.comprehension(e)

    def comprehension(self, e: S.Comprehension) -> ListValue:
        """``[element for targets in iterable if cond …]``: each clause binds its targets in a
        scope of its own (a name already visible is E228, never shadowed)."""
        from archc.elaborate.scope import bind_targets

        out: list[Value] = []

        def run(env: Mapping[str, Value], k: int) -> None:
            inner = Values(env, self.block, self.entry, self.budget)
            if k == len(e.clauses):
                out.append(inner.value(e.element))
                self.spend(out[-1], span=e.span)
                if len(out) > MAX_LIST:
                    raise Problem("E209", "this comprehension makes too long a list", e.span)
                return
            clause = e.clauses[k]
            items = inner.value(clause.iterable)
            if not isinstance(items, tuple | str):
                raise Problem(
                    "E226",
                    f"`for` runs over a list, a tuple or a string, not {shown(items)}",
                    clause.iterable.span,
                )
            for item in items:
                names = bind_targets(clause.targets, item, env, {}, clause.iterable.span)
                bound = {**env, **names}
                self.budget[0] -= 1
                _spend_total(0, 1, e.span)
                if self.budget[0] < 0:
                    raise Problem(
                        "E209",
                        f"this expression takes more than {MAX_STEPS:,} steps to compute",
                        e.span,
                        "no network's sizes need so much: check the comprehension's ranges",
                    )
                test = Values(bound, self.block, self.entry, self.budget)
                if all(truthy(test.value(c)) for c in clause.conditions):
                    run(bound, k + 1)

        run(self.env, 0)
        return ListValue(out)

    def name(self, e: S.Name) -> Value:
        if e.id in self.env:
            return self.env[e.id]
        failed = (_FAILED.get() or {}).get(e.id)
        if failed is not None:
            raise Problem(
                "E207",
                f"`{e.id}` has no value: its definition ({failed.file}:{failed.line}) is in error",
                e.span,
                "fix the error reported at that line first",
            )
        near = did_you_mean(e.id, list(self.env))
        if self.block is not None:
            known = ", ".join(f"`{n}`" for n in self.env) or "none"
            raise Problem(
                "E207",
                f"`{e.id}` is not a parameter of block `{self.block}` nor a name defined "
                f"before it{near}",
                e.span,
                f"the names it can read are: {known}",
            )
        if self.env:
            known = ", ".join(f"`{n}`" for n in self.env)
            raise Problem(
                "E207",
                f"unknown name `{e.id}`{near}",
                e.span,
                f"the names defined here are: {known}",
            )
        raise Problem(
            "E207",
            f"unexpected word `{e.id}`",
            e.span,
            "outside a block, sizes are numbers; names are block parameters or defined with "
            "`let NAME = VALUE`",
        )

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

    def truth(self, c: S.Condition) -> bool:
        """Whether an ``if`` condition holds: a value that is not 0 (nor empty)."""
        return truthy(self.value(c))

    def int_value(self, e: S.Expr, what: str, low: int = 1) -> int:
        v = number(self.value(e), e.span, what)
        if isinstance(v, float) and not v.is_integer():
            raise Problem(
                "E208",
                f"{what} `{expr_text(e)}` = {v!r} is not an integer",
                e.span,
                "round it: `round(x)`, `int(x)`, `ceil(x)` or `floor(x)`",
            )
        if isinstance(v, Fraction) and v.denominator != 1:
            raise Problem(
                "E208",
                f"{what} `{expr_text(e)}` = {v} is not an integer",
                e.span,
                "use `//` for floor division, or change the arithmetic",
            )
        return check_size(whole(v, e.span, what), what, e.span, low)

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


def name_text(v: Value) -> str:
    """A value in a name: a string as itself, a whole number without ``.0``."""
    if isinstance(v, str):
        return v
    if isinstance(v, Fraction) and v.denominator == 1:
        return str(v.numerator)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return show(v)


def fill(template: S.Template, values: Values, identifier: bool = False) -> str:
    """A name template filled: each ``{EXPR}`` by its value (a whole number without ``.0``,
    a string as itself). The name must be a name (E110): letters, digits, `_` and, unless it
    must be an ``identifier``, `-`."""
    texts = []
    for part in template.parts:
        value = part if isinstance(part, str) else values.value(part)
        if weight(MAX_NAME, value) > MAX_NAME:
            raise Problem(
                "E110",
                f"the template `{template.text}` makes a name of more than {MAX_NAME} characters",
                template.span,
                "a name is a word, not a list or a long string",
            )
        texts.append(value if isinstance(part, str) else name_text(value))
    name = "".join(texts)
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
