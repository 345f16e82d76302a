"""The statement walker: layers, block calls with repetition, stages, residuals, branches.

It walks a body's statements in order, keeping the name of the current output node (and the
residual or branches still open: :class:`Body`), and emits drafts (archc.elaborate.graph). What
each statement does is its construct's ``elaborate`` (archc.constructs), which asks the walker
for layers, shortcuts, nested bodies and errors. A block call (archc.elaborate.calls) expands
the block's body in a fresh naming scope (``layer1.0.``) with its parameters bound; every node
made that way records its origin chain, and every error inside a block body carries a note per
call site.

An error abandons its statement only. Failed statements and block instances count toward the
node limit like the nodes they would have made, so that a failing block called x1000 three
levels deep stops at the limit instead of reporting a billion errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from archc import syntax as S
from archc.constructs import OpenBranches, OpenResidual, construct_of
from archc.diagnostics import Diagnostic, block_notes, error, warning
from archc.elaborate.calls import (
    BlockCalls,
    repeat_count,
    repeated,
    uses_index,
    with_index,
)
from archc.elaborate.context import MAX_DEPTH, MAX_NODES, MAX_REPEAT, Ctx
from archc.elaborate.defaults import apply_defaults, followers
from archc.elaborate.definitions import Definitions, activation_kind, carried
from archc.elaborate.entry import EmittedShapes
from archc.elaborate.graph import Draft
from archc.elaborate.imports import BlockTable
from archc.elaborate.naming import Names, Scope
from archc.elaborate.problems import (
    Abort,
    Problem,
    Quiet,
    unjoined_branches,
    unjoined_residual,
    unused_shortcut,
)
from archc.elaborate.scope import define
from archc.elaborate.values import (
    check_size,
    claim,
    declared_shape,
    expr_text,
    fill,
)
from archc.ops import OPS
from archc.spans import Span

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_REPEAT", "Body", "Ctx", "Expander"]


@dataclass
class Body:
    """A body being walked: what its next statement elaborates in and may change (the
    constructs' ``elaborate``, archc.constructs)."""

    ctx: Ctx
    scope: Scope
    cur: str | None
    """The current output node: what the next layer reads."""
    entry: str | None
    """What entered the body: `concat input` joins it (DenseNet)."""
    top: bool
    pending: list[S.Stmt]
    """The statements still to walk (an `if` that holds splices its body in front)."""
    residual: OpenResidual | None = None
    branches: OpenBranches | None = None


class Expander(BlockCalls, Definitions):
    def __init__(self, blocks: BlockTable, diags: list[Diagnostic]) -> None:
        self.blocks = blocks
        self.constants = blocks.constants
        self.passes = 0
        self.diags = diags
        self.drafts: list[Draft] = []
        self.names = Names()
        self.failed = 0
        """Statements and block instances abandoned by an error: they count as nodes."""
        self.input_failed = False
        # The last layer that defaults lines gave followers: its line, the kinds of follower
        # ("bn", "activation") with the defaults line of each, and its output (see `layer`).
        self.followed: tuple[tuple[str, int], dict[str, int], str] | None = None
        self.emitted = EmittedShapes(self.drafts, diags)
        self.noted_defaults: set[tuple[str, str]] = set()
        """(block, parameter) pairs I002 has named."""
        self.aux_outputs: list[str] = []
        """The outputs of the ``aux`` classifiers, in the order they are written."""

    # --- diagnostics ---------------------------------------------------------------------------

    def report(self, p: Problem, ctx: Ctx | None) -> None:
        notes = block_notes(ctx.frames) if ctx is not None else []
        self.diags.append(error(p.code, p.message, p.span, p.help, notes=notes))

    def count(self, span: Span) -> None:
        """One more node, made or failed; past the limit the expansion stops (E216)."""
        if len(self.drafts) + self.failed >= MAX_NODES:
            self.diags.append(
                error("E216", f"the network expands to more than {MAX_NODES} nodes", span)
            )
            raise Abort

    # --- statements ----------------------------------------------------------------------------

    def body(
        self,
        stmts: tuple[S.Stmt, ...],
        ctx: Ctx,
        scope: Scope,
        cur: str | None,
        top: bool = False,
        carry: Body | None = None,
    ) -> str | None:
        """Walk ``stmts``; ``carry``: the body of a ``for`` whose pass this is, whose open
        sections the pass continues and leaves open."""
        body = Body(ctx, scope, cur, carry.entry if carry else cur, top, list(stmts))
        body.residual, body.branches = carried(carry)
        while body.pending:
            st = body.pending.pop(0)
            construct = construct_of(st)
            self.close_sections(body, construct.continues(st, body))
            try:
                if construct.needs_input and body.cur is None:
                    if self.input_failed:
                        raise Quiet
                    raise Problem("E201", "the first layer comes before any input line", st.span)
                construct.elaborate(self, st, body)
            except Problem as p:
                self.report(p, body.ctx)
                self.failed += 1
                construct.failed(st, body)
                self.count(p.span)
            except Quiet:
                construct.failed(st, body)
        if carry is not None:
            carry.residual, carry.branches = body.residual, body.branches
            return body.cur
        if body.residual is not None:
            self.report(unjoined_residual(body.residual.span), body.ctx)
        if body.branches is not None:
            self.report(
                unjoined_branches(body.branches.span, body.branches.split is not None), body.ctx
            )
        return body.cur

    def close_sections(self, body: Body, continued: frozenset[str]) -> None:
        """Report the sections open in ``body`` that the next statement does not continue:
        branches not joined by ``concat``, a residual not joined by ``add``."""
        if body.branches is not None and "branches" not in continued:
            self.report(
                unjoined_branches(body.branches.span, body.branches.split is not None), body.ctx
            )
            body.branches = None
        if body.residual is not None and "residual" not in continued:
            self.report(unjoined_residual(body.residual.span), body.ctx)
            body.residual = None

    # --- what the constructs ask (archc.constructs) --------------------------------------------

    errors = Problem
    """What a construct's elaboration raises for an error; the walker reports it."""

    def problem(self, code: str, message: str, span: Span, help: str | None = None) -> Problem:
        return Problem(code, message, span, help)

    def quiet(self) -> Quiet:
        return Quiet()

    def unused_shortcut(self, span: Span, at: Span) -> Problem:
        return unused_shortcut(span, at)

    def with_defaults(self, ctx: Ctx, st: S.Defaults) -> Ctx:
        return replace(ctx, defaults=apply_defaults(ctx.defaults, st))

    def truth(self, ctx: Ctx, condition: S.Condition) -> bool:
        return ctx.values.truth(condition)

    def fields(self, st: S.Layer, ctx: Ctx) -> dict[str, Any]:
        return OPS[st.kind].fields(st, ctx.values)

    def parts_word(self, st: S.Layer) -> str:
        """The number of parts of a ``split`` as written, for a message (`split 2`)."""
        arg = st.options.get("parts")
        if arg is None or isinstance(arg.value, S.Pair | str):
            return "N"
        return expr_text(arg.value)

    def input(self, st: S.InputStmt) -> str:
        try:
            dims = tuple(check_size(d, "input size", st.span) for d in st.dims)
        except Problem:
            self.input_failed = True
            raise
        if len(dims) == 3 and channels_first(dims):
            h, w, c = dims
            self.diags.append(
                warning(
                    "W220",
                    f"this input is {h} pixels high, {w} wide, with {c} channels: "
                    "is it written channels first?",
                    st.span,
                    f"archc writes height x width x channels: `input [{w}x{c}x{h}]`",
                )
            )
        shape = (dims[2], dims[0], dims[1]) if len(dims) == 3 else dims
        claims = [claim(c) for c in st.claims]
        self.names.taken.add("input")
        self.drafts.append(
            Draft("input", "input", [], st.span, [], {"shape": shape}, claims=claims)
        )
        return "input"

    # --- layers --------------------------------------------------------------------------------

    def layer(self, st: S.Layer, ctx: Ctx, scope: Scope, inputs: list[str]) -> str:
        count = repeat_count(st.repeat, ctx, st.span)
        indexed = repeated(st.repeat) and uses_index(tuple(st.options.values()), st.template)
        fields = OPS[st.kind].fields(st, ctx.values) if not indexed and count else {}
        self.doubled_follower(st, inputs)
        cur = inputs[0]
        for i in range(count):
            here = with_index(ctx, i, st.span) if indexed else ctx
            if indexed:
                fields = OPS[st.kind].fields(st, here.values)
            name = st.name if i == 0 else None
            if st.template is not None:
                name = fill(st.template, here.values)
            draft = self.emit(
                st.kind,
                name,
                inputs if i == 0 else [cur],
                st.span,
                ctx,
                scope,
                dict(fields),
                name_span=st.name_span,
            )
            draft.opted_out = "no_relu" in st.flags
            if st.declared is not None and i == count - 1:
                draft.declared = declared_shape(st.declared)
            if i == count - 1:
                draft.claims = [claim(c) for c in st.claims]
            cur = self.followers(st, draft, ctx, scope)
            if st.template is not None:  # `"c{i}": … x2`: each named output, for references
                self.names.output(scope, name, cur)
        return cur

    def define_constants(self, body: Body, names: list[tuple[str, Span]]) -> None:
        """A ``param`` line or a ``variants`` table reached at the top level: its names,
        evaluated when the file was read (archc.elaborate.params), become visible below."""
        for name, span in names:
            known = self.constants.get(span.file)
            if known is None or known.defined.get(name) != span or name not in known.env:
                raise Quiet  # its error is reported (or the variant chose no row)
            body.ctx = define(body.ctx, name, known.env[name], span)

    def fill(self, template: S.Template, ctx: Ctx) -> str:
        """A stage's name template filled in its context (archc.constructs)."""
        return fill(template, ctx.values)

    def doubled_follower(self, st: S.Layer, inputs: list[str]) -> None:
        """W224 when a BN or an activation comes right after the same kind of layer that a
        defaults line already put after a conv (FC): `conv: bn, relu` and then `CONV 64 3x3,
        BN, relu` builds BN, ReLU, BN, ReLU. A BN is warned wherever it stands; an activation
        on the layer's own line only, as before."""
        followed, self.followed = self.followed, None
        if followed is None:
            return
        what = "bn" if st.kind == "batchnorm" else "activation" if OPS[st.kind].activation else ""
        if what == "activation" and followed[0] != (st.span.file, st.span.line):
            return
        if what not in followed[1] or inputs != [followed[2]]:
            return
        line = followed[1][what]
        self.diags.append(
            warning(
                "W224",
                f"this {'BN' if what == 'bn' else 'activation'} comes after the one the defaults "
                f"on line {line} already put after the layer before it: it builds a second",
                st.span,
                f"leave it out, or write `no {'bn' if what == 'bn' else 'relu'}` on that layer",
            )
        )

    def followers(self, st: S.Layer, draft: Draft, ctx: Ctx, scope: Scope) -> str:
        cur = draft.name
        of = draft.name if st.kind == "linear" else None
        applied: dict[str, int] = {}
        for f in followers(st, ctx.defaults, ctx.convention):
            fields: dict[str, Any] = {}
            kind = f.kind
            if kind == S.ACT:
                kind, f = (
                    activation_kind(f.options["name"].value, ctx.values),
                    replace(f, options={}),
                )
            if kind == "bn":
                kind = "batchnorm"
                fields = {k: ctx.values.float_arg(a) for k, a in f.options.items()}
            elif f.options:  # an activation's arguments: `leaky relu 0.1`
                fields = OPS[kind].fields(S.Layer(kind, None, f.span, f.options), ctx.values)
            d = self.emit(kind, None, [cur], st.span, ctx, scope, fields)
            d.follower_of, cur = of, d.name
            if st.kind in ctx.defaults:  # a defaults line's, not the lecture convention's
                applied["bn" if kind == "batchnorm" else "activation"] = f.span.line
        if applied:
            self.followed = ((st.span.file, st.span.line), applied, cur)
        return cur

    def emit(
        self,
        kind: str,
        name: str | None,
        inputs: list[str],
        span: Span,
        ctx: Ctx,
        scope: Scope,
        fields: dict[str, Any],
        name_span: Span | None = None,
    ) -> Draft:
        self.count(span)
        full = self.names.layer(scope, OPS[kind].prefix, name, name_span or span)
        draft = Draft(kind, full, inputs, span, list(ctx.frames), fields)
        if OPS[kind].followed:
            draft.convention = ctx.convention
        self.drafts.append(draft)
        return draft

    # --- residual shortcuts --------------------------------------------------------------------

    def shortcut(self, st: S.Shortcut, ctx: Ctx, scope: Scope, start: str) -> str:
        if st.mode is not None:
            eps = 1e-5
            for f in ctx.defaults.get("conv", ()):
                if f.kind == "bn" and "eps" in f.options:
                    eps = ctx.values.float_arg(f.options["eps"])
            self.names.claim(scope, st.name, st.span)
            self.count(st.span)
            scope.emitted += 1
            name = scope.prefix + st.name
            fields = {"mode": st.mode, "eps": eps}
            self.drafts.append(Draft("shortcut", name, [start], st.span, list(ctx.frames), fields))
            return name
        self.names.claim(scope, st.name, st.span)
        out = self.body(st.body, ctx, scope.child(st.name, positional=True), start)
        if out is None or out == start:
            raise Problem("E211", "the shortcut body has no layers", st.span)
        return out


def channels_first(dims: tuple[int, ...]) -> bool:
    """An input written [CxHxW], PyTorch's order: 1 or 3 "rows" and many more "channels"."""
    first, middle, last = dims
    return first in (1, 3) and middle >= 8 * first and last >= max(16, 8 * first)
