"""The walker's part for the statements that define names: ``let``, ``table`` and ``for``
(archc.constructs.names), and the constants of a file — its top-level ``let``s and tables, which
the blocks it defines can read wherever they are called."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.elaborate.context import Ctx
from archc.elaborate.functions import ListValue, Value, shown
from archc.elaborate.problems import Abort, Problem, Quiet
from archc.elaborate.scope import bind_targets, define, twice
from archc.elaborate.values import Values, failed_definition
from archc.ops import WORDS, by_word
from archc.spans import Span
from archc.suggest import did_you_mean

if TYPE_CHECKING:
    from archc.constructs.base import OpenBranches, OpenResidual
    from archc.elaborate.expand import Body
    from archc.elaborate.naming import Scope


@dataclass
class FileConstants:
    """A file's top-level ``let``s and tables, evaluated in order when the file is read."""

    env: dict[str, Value] = field(default_factory=dict)
    defined: dict[str, Span] = field(default_factory=dict)
    read: set[Span] = field(default_factory=set)
    """The definitions evaluated here (their name spans): the top level's own lines, not those
    an ``if`` splices in, which the walker evaluates."""


def file_constants(
    body: tuple[S.Stmt, ...], diags: list[Diagnostic], seed: FileConstants | None = None
) -> FileConstants:
    """The constants of a file's top level, each evaluated with the ones above it; an error is
    reported here, once, and leaves the name undefined. ``seed``: the file's ``param``s and
    variants columns (archc.elaborate.params), which come first."""
    found = FileConstants(dict(seed.env), dict(seed.defined)) if seed else FileConstants()
    for st in body:
        if not isinstance(st, S.Let | S.Table):
            continue
        found.read.add(st.name_span)
        if st.name in found.env:
            p = twice(st.name, st.name_span, found.defined[st.name])
            diags.append(error(p.code, p.message, p.span, p.help))
            continue
        try:
            found.env[st.name] = definition_value(st, Values(found.env, None))
            found.defined[st.name] = st.name_span
        except Problem as p:
            diags.append(error(p.code, p.message, p.span, p.help))
            failed_definition(st.name, st.name_span)
    return found


def definition_value(st: S.Let | S.Table, values: Values) -> Value:
    if isinstance(st, S.Let):
        return values.value(st.value)
    return ListValue(tuple(values.value(v) for v in row) for row, _ in st.rows)


MAX_PASSES = 100_000
"""The passes all ``for`` loops of a spec may make together, as many as a network may have nodes:
loops with nothing to build inside loops would otherwise run 10^10 times."""


class Definitions:
    """``let``, ``table`` and ``for`` in a body being walked."""

    passes: int
    """The ``for`` passes made so far."""
    diags: list[Diagnostic]

    constants: dict[str, FileConstants]
    """Each file's constants, by file name (archc.elaborate.imports fills it)."""

    if TYPE_CHECKING:

        def body(
            self,
            stmts: tuple[S.Stmt, ...],
            ctx: Ctx,
            scope: Scope,
            cur: str | None,
            top: bool = False,
            carry: Body | None = None,
        ) -> str | None: ...

    def let(self, st: S.Let | S.Table, body: Body) -> None:
        known = self.constants.get(st.span.file)
        if body.top and known is not None and st.name_span in known.read:
            # Evaluated when the file was read (file_constants): its errors are reported.
            if known.defined.get(st.name) != st.name_span:
                raise Quiet
            body.ctx = define(body.ctx, st.name, known.env[st.name], st.name_span)
            return
        value = definition_value(st, body.ctx.values)
        body.ctx = define(body.ctx, st.name, value, st.name_span)

    table = let

    def loop(self, st: S.For, body: Body) -> None:
        """The body once per element of the iterable, its targets bound, as if written out one
        pass after another; a section (branches, a residual) open before the loop stays open
        through it."""
        items = body.ctx.values.value(st.iterable)
        if not isinstance(items, tuple | str):
            raise Problem(
                "E226",
                f"`for` runs over a list, a tuple or a string, not {shown(items)}",
                st.iterable.span,
                "e.g. `for k in range(3):`, `for j, row in enumerate(stages):`",
            )
        ctx = body.ctx
        self.passes += len(items)
        if self.passes > MAX_PASSES:
            self.diags.append(
                error(
                    "E216",
                    f"the `for` loops of this spec make more than {MAX_PASSES:,} passes",
                    st.span,
                    "no network needs so many: check the loops' ranges",
                )
            )
            raise Abort  # like the node limit: the expansion stops here
        for item in items:
            spans: dict[str, Span] = {}
            names = bind_targets(st.targets, item, ctx.env, spans, st.iterable.span, ctx.defined)
            inner = replace(ctx, env={**ctx.env, **names}, defined={**ctx.defined, **spans})
            body.cur = self.body(st.body, inner, body.scope, body.cur, carry=body)


def carried(carry: Body | None) -> tuple[OpenResidual | None, OpenBranches | None]:
    return (carry.residual, carry.branches) if carry is not None else (None, None)


def activation_kind(e: S.Expr, values: Values) -> str:
    """The layer kind ``act(e)`` builds: the activation whose word the string ``e`` gives
    (``"relu"``, ``"silu"``, ``"hard swish"``), E226 for anything else."""
    name = values.value(e)
    words = sorted({w.lower() for w, op in WORDS.items() if op.activation})
    if isinstance(name, str):
        op = by_word(name)
        if op is not None and op.activation:
            return op.kind
        raise Problem(
            "E226",
            f"`act` builds an activation: `{name}` is not one{did_you_mean(name, words)}",
            e.span,
            f"activations: {', '.join(words)}",
        )
    raise Problem(
        "E226",
        f"`act` needs the name of an activation (a string), not {shown(name)}",
        e.span,
        'write e.g. `act("relu")`, or pass the name: `param activation = "silu"`',
    )
