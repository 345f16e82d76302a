"""The statement walker: layers, block calls with repetition, stages, residuals, branches.

It walks a body's statements in order, keeping the name of the current output node, and emits
drafts (archc.elaborate.graph). A block call expands the block's body in a fresh naming scope
(``layer1.0.``) with its parameters bound; every node made that way records its origin chain,
and every error inside a block body carries a note per call site.

An error abandons its statement only. Failed statements and block instances count toward the
node limit like the nodes they would have made, so that a failing block called x1000 three
levels deep stops at the limit instead of reporting a billion errors.
"""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass, replace
from dataclasses import fields as dc_fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from archc import syntax as S
from archc.diagnostics import Diagnostic, block_notes, error, warning
from archc.elaborate.defaults import Convention, Defaults, apply_defaults, followers
from archc.elaborate.entry import EmittedShapes
from archc.elaborate.graph import Draft
from archc.elaborate.imports import BlockTable
from archc.elaborate.naming import Names, Scope, free
from archc.elaborate.problems import (
    Abort,
    Problem,
    Quiet,
    unjoined_branches,
    unjoined_residual,
    unused_shortcut,
)
from archc.elaborate.values import (
    CONSTANTS,
    EntryShape,
    Values,
    check_size,
    claim,
    declared_shape,
)
from archc.ops import OPS, WORDS
from archc.spans import Frame, Span
from archc.suggest import did_you_mean

MAX_REPEAT = 1000
MAX_NODES = 100_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class Ctx:
    """What a body is elaborated in: its parameters, defaults and convention, and the chain
    of block calls that led to it."""

    env: dict[str, Fraction]
    defaults: Defaults
    convention: Convention
    frames: tuple[Frame, ...] = ()
    stack: tuple[str, ...] = ()
    block: str | None = None
    entry: EntryShape | None = None
    """The shape of the value entering the block call (``in.c``); None outside a block."""

    @property
    def values(self) -> Values:
        return Values(self.env, self.block, self.entry)


@dataclass
class _Residual:
    """A residual being assembled: ``output`` is the residual path's end (None while only a
    shortcut written first is known), ``shortcut`` the shortcut's (None: the identity)."""

    start: str
    span: Span
    output: str | None = None
    shortcut: str | None = None
    shortcut_span: Span | None = None


@dataclass
class _Branches:
    start: str
    span: Span
    outputs: list[str]
    split: tuple[S.Layer, dict[str, Any]] | None = None
    """A ``split N`` before the branches: its line and fields; branch i takes part i."""
    taken: int = 0
    """The parts of the split the branches have taken so far."""
    failed: bool = False
    """A branch (or the split opening them) was abandoned by an error already reported: a
    count of branches that falls short at the ``concat`` is its consequence, not reported."""


def split_extras(st: S.Layer) -> list[Problem]:
    """What a ``split N`` that opens branches cannot carry: it makes N parts, one per branch, so
    no one output for a declared shape or a claim, and no one node for a name."""
    parts = f"`split {expr_word(st)}`"
    problems = []
    if st.declared is not None:
        problems.append(
            Problem(
                "E211",
                f"{parts} opens branches and has no single output: this shape declares nothing",
                st.declared.span,
                "declare the joined shape on the `concat` line (`concat -> [HxWxC]`), or a "
                "part's on the last layer of its `branch:`",
            )
        )
    for c in st.claims:
        problems.append(
            Problem(
                "E211",
                f"{parts} opens branches and has no single output: this {c.kind} claim counts "
                "nothing",
                c.span,
                f"write the {c.kind} claim on the `concat` line or on a layer of a `branch:`",
            )
        )
    if st.name is not None:
        problems.append(
            Problem(
                "E211",
                f"{parts} opens branches: its parts are named `split1`, `split2`, …, not "
                f"`{st.name}`",
                st.name_span or st.span,
                "remove the name, or name one part: `NAME: split N part K`",
            )
        )
    return problems


def expr_word(st: S.Layer) -> str:
    """The number of parts as written, for a message (`split 2`)."""
    arg = st.options.get("parts")
    if arg is None:
        return "N"
    from archc.elaborate.values import expr_text

    return expr_text(arg.value) if not isinstance(arg.value, S.Pair | str) else "N"


class Expander:
    def __init__(self, blocks: BlockTable, diags: list[Diagnostic]) -> None:
        self.blocks = blocks
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
    ) -> str | None:
        residual: _Residual | None = None
        branches: _Branches | None = None
        entry = cur  # what enters this body: `concat input` joins it (DenseNet)
        pending = list(stmts)
        while pending:
            st = pending.pop(0)
            # An `if` stands between the sections it may continue; its body is checked as it
            # is spliced in.
            joins_branches = isinstance(st, S.Branch | S.If) or (
                isinstance(st, S.Layer) and st.kind == "concat"
            )
            if branches is not None and not joins_branches:
                self.report(unjoined_branches(branches.span, branches.split is not None), ctx)
                branches = None
            joins_residual = isinstance(st, S.Shortcut | S.Residual | S.If) or (
                isinstance(st, S.Layer) and st.kind == "add"
            )
            if residual is not None and (
                not joins_residual or (isinstance(st, S.Residual) and residual.output is not None)
            ):
                self.report(unjoined_residual(residual.span), ctx)
                residual = None
            try:
                if isinstance(st, S.If):
                    if ctx.values.truth(st.condition):
                        pending[0:0] = if_body(st)
                    elif residual is not None and joins(st, "add"):
                        # `if use_residual: add` that does not hold: the residual path is the
                        # block's plain path (MobileNetV2's inverted residual). A shortcut
                        # would be built and never used (parameters without gradients).
                        skipped, residual = residual, None
                        if skipped.shortcut_span is not None:
                            raise unused_shortcut(skipped.shortcut_span, st.span)
                elif isinstance(st, S.Defaults):
                    ctx = replace(ctx, defaults=apply_defaults(ctx.defaults, st))
                elif isinstance(st, S.InputStmt):
                    if not top or cur is not None:
                        raise Problem(
                            "E201",
                            "a second input line" if cur is not None else "an input inside a body",
                            st.span,
                            "a network has exactly one input line, before its first layer",
                        )
                    cur = self.input(st)
                elif isinstance(st, S.Network | S.InitStmt | S.Import | S.TotalClaim | S.Train):
                    if not top:
                        raise Problem("E217", "this line belongs at the top of the file", st.span)
                elif isinstance(st, S.BlockDef):
                    if not top:
                        raise Problem(
                            "E217",
                            "blocks are defined at the top level of a file",
                            st.span,
                            "move this block definition out of the body",
                        )
                elif cur is None:
                    if self.input_failed:
                        raise Quiet
                    raise Problem("E201", "the first layer comes before any input line", st.span)
                elif isinstance(st, S.Layer):
                    if st.kind == "add":
                        if residual is None or residual.output is None:
                            raise Problem(
                                "E211",
                                "`add` needs a `residual:` section before it",
                                st.span,
                                "write the residual path as an indented `residual:` body",
                            )
                        shortcut = residual.shortcut or residual.start
                        joined, residual = residual, None
                        cur = self.layer(st, ctx, scope, [joined.output, shortcut])
                    elif st.kind == "multiply":
                        raise Problem(
                            "E211",
                            "`multiply` is the join a `gate:` section makes itself",
                            st.span,
                            "write the gate's layers indented under `gate:`",
                        )
                    elif st.kind == "concat" and "input" in st.flags:
                        # The body's input first, then the branches or the path since it.
                        joined, branches = branches, None
                        parts = list(joined.outputs) if joined is not None else [cur]
                        start = entry if entry is not None else "input"  # the network's
                        cur = self.layer(st, ctx, scope, [start, *parts])
                    elif st.kind == "split" and "part" not in st.options:
                        # ShuffleNet's channel split: the `branch:` sections after it take one
                        # part each (see `branch_start`).
                        for p in split_extras(st):
                            self.report(p, ctx)
                        try:
                            fields = OPS["split"].fields(st, ctx.values)
                        except Problem:
                            branches = _Branches(cur, st.span, [], failed=True)
                            raise
                        branches = _Branches(cur, st.span, [], split=(st, fields))
                    elif st.kind == "concat":
                        joined, branches = branches, None
                        short = (
                            joined is None
                            or len(joined.outputs) < 2
                            or (
                                joined.split is not None
                                and joined.taken != joined.split[1]["parts"]
                            )
                        )
                        if joined is not None and joined.failed and short:
                            raise Quiet  # the branch that failed was reported
                        if joined is not None and joined.split is not None:
                            parts = joined.split[1]["parts"]
                            if joined.taken != parts:
                                raise Problem(
                                    "E211",
                                    f"`split {parts}` makes {parts} parts, but {joined.taken} "
                                    f"`branch:` section{'s' if joined.taken != 1 else ''} "
                                    "take them",
                                    st.span,
                                    "write one `branch:` section per part (`identity` passes "
                                    "a part on unchanged)",
                                )
                        if joined is None or len(joined.outputs) < 2:
                            raise Problem(
                                "E211",
                                "`concat` needs two or more `branch:` sections before it",
                                st.span,
                                "a single path needs no `concat`: write its layers without "
                                "`branch:`"
                                if joined is not None
                                else None,
                            )
                        cur = self.layer(st, ctx, scope, list(joined.outputs))
                    else:
                        cur = self.layer(st, ctx, scope, [cur])
                elif isinstance(st, S.CallLine):
                    cur = self.call_line(st, ctx, scope, cur)
                elif isinstance(st, S.Stage):
                    name = st.name if st.name is not None else self.position(st, scope)
                    self.names.claim(scope, name, st.span)
                    cur = self.body(st.body, ctx, scope.child(name, st.numbered), cur)
                elif isinstance(st, S.Residual):
                    if residual is None:
                        residual = _Residual(cur, st.span)
                    # After a shortcut written first, the residual starts where it started.
                    out = self.body(st.body, ctx, scope, residual.start)
                    cur = residual.output = out
                elif isinstance(st, S.Gate):
                    cur = self.gate(st, ctx, scope, cur)
                elif isinstance(st, S.Shortcut):
                    if residual is not None and residual.shortcut is not None:
                        raise Problem("E211", "a residual has one shortcut", st.span)
                    if residual is None:
                        if st.mode is not None:
                            raise Problem(
                                "E211",
                                f"`shortcut: {st.mode}` must follow its `residual:` section",
                                st.span,
                                "its shape comes from the residual path; a shortcut written "
                                "first is a body of layers (`shortcut:` + indented layers)",
                            )
                        residual = _Residual(cur, st.span)
                    residual.shortcut = self.shortcut(st, ctx, scope, residual.start)
                    residual.shortcut_span = st.span
                elif isinstance(st, S.Branch):
                    if branches is None:
                        branches = _Branches(cur, st.span, [])
                    start = self.branch_start(branches, st, ctx, scope)
                    if st.inline:
                        child = scope  # its layers are named beside the branches
                    else:
                        name = self.branch_name(branches, scope)
                        self.names.claim(scope, name, st.span)
                        child = scope.child(name, st.numbered)
                    out = self.body(st.body, ctx, child, start)
                    if out is not None:
                        branches.outputs.append(out)
                    else:
                        branches.failed = True
            except Problem as p:
                self.report(p, ctx)
                self.failed += 1
                if branches is not None and isinstance(st, S.Branch):
                    branches.failed = True
                self.count(p.span)
            except Quiet:
                if branches is not None and isinstance(st, S.Branch):
                    branches.failed = True
        if residual is not None:
            self.report(unjoined_residual(residual.span), ctx)
        if branches is not None:
            self.report(unjoined_branches(branches.span, branches.split is not None), ctx)
        return cur

    def branch_name(self, branches: _Branches, scope: Scope) -> str:
        """A scoped branch's name: ``branch`` + its place among the branches before the
        ``concat``, or the next number the scope has not taken (a layer named ``branch2``, the
        branches of an inline branch)."""
        n = len(branches.outputs) + 1
        while f"branch{n}" in scope.names:
            n += 1
        return f"branch{n}"

    def branch_start(self, branches: _Branches, st: S.Branch, ctx: Ctx, scope: Scope) -> str:
        """What a branch starts from: the branches' common input, or after a ``split N`` the
        next of its parts, a node of its own in the enclosing scope (``split1``, ``split2``)."""
        if branches.split is None:
            return branches.start
        line, fields = branches.split
        if branches.taken == fields["parts"]:
            raise Problem(
                "E211",
                f"`split {fields['parts']}` has no part left for this branch",
                st.span,
                f"it makes {fields['parts']} parts: one `branch:` section each",
            )
        branches.taken += 1
        part = {**fields, "part": branches.taken}
        return self.emit("split", None, [branches.start], line.span, ctx, scope, part).name

    def position(self, st: S.Stage, scope: Scope) -> str:
        """The name of an unnamed ``sequential:``: the next position of the sequential body
        around it, an ``nn.Sequential`` inside an ``nn.Sequential`` (MNASNet's stacks)."""
        if not scope.positional:
            raise Problem(
                "E217",
                "an unnamed `sequential:` stands only in a sequential body",
                st.span,
                "name it (`sequential layers:`), or put it in a `sequential NAME:` stage or a "
                "`sequential block`",
            )
        scope.emitted += 1
        return str(scope.emitted - 1)

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

    def gate(self, st: S.Gate, ctx: Ctx, scope: Scope, start: str) -> str:
        """The gate's layers from ``start``, then ``start`` times their output: a ``multiply``
        node the section makes itself, named like any other layer (``multiply1``)."""
        out = self.body(st.body, ctx, scope, start)
        if out is None or out == start:
            raise Problem("E211", "the gate has no layers", st.span, "indent them under `gate:`")
        join = S.Layer(kind="multiply", name=None, span=st.span)
        return self.layer(join, ctx, scope, [start, out])

    def layer(self, st: S.Layer, ctx: Ctx, scope: Scope, inputs: list[str]) -> str:
        if not 1 <= st.repeat <= MAX_REPEAT:
            raise Problem(
                "E209" if st.repeat < 1 else "E216",
                f"repetition x{st.repeat} is out of range (1 to {MAX_REPEAT})",
                st.span,
            )
        fields = OPS[st.kind].fields(st, ctx.values)
        self.doubled_follower(st, inputs)
        cur = inputs[0]
        for i in range(st.repeat):
            draft = self.emit(
                st.kind,
                st.name if i == 0 else None,
                inputs if i == 0 else [cur],
                st.span,
                ctx,
                scope,
                dict(fields),
                name_span=st.name_span,
            )
            draft.opted_out = "no_relu" in st.flags
            if st.declared is not None and i == st.repeat - 1:
                draft.declared = declared_shape(st.declared)
            if i == st.repeat - 1:
                draft.claims = [claim(c) for c in st.claims]
            cur = self.followers(st, draft, ctx, scope)
        return cur

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
            if kind == "bn":
                kind = "batchnorm"
                fields = {k: CONSTANTS.float_arg(a) for k, a in f.options.items()}
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
                    eps = CONSTANTS.float_arg(f.options["eps"])
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

    # --- block calls ---------------------------------------------------------------------------

    def call_line(self, st: S.CallLine, ctx: Ctx, scope: Scope, cur: str) -> str:
        total = sum(c.repeat for c in st.calls)
        for c in st.calls:
            if not 1 <= c.repeat <= MAX_REPEAT:
                raise Problem(
                    "E209" if c.repeat < 1 else "E216",
                    f"repetition x{c.repeat} is out of range (1 to {MAX_REPEAT})",
                    c.span,
                )
        index = 0
        first_new = len(self.drafts)
        for c in st.calls:
            info = self.blocks.get(c.block)
            if info is None and self.blocks.import_failed:
                raise Quiet
            if info is None:
                if c.block.lower() in _SECTIONS and not c.args and not c.kwargs:
                    raise Problem(
                        "E202",
                        f"`{c.block}` needs a `:` after it",
                        c.span,
                        f"write `{c.block.lower()}:` and indent the section's layers under it",
                    )
                near = did_you_mean(c.block, [*self.blocks.blocks, *kind_words()])
                raise Problem(
                    "E202",
                    f"`{c.block}` is neither a layer kind nor a defined block{near}",
                    c.span,
                    f"defined blocks: {self.blocks.known()}; layer kinds are CONV, POOL, FC, "
                    "NORM, BN, RELU, DROPOUT, SOFTMAX, …",
                )
            if c.block in ctx.stack:
                chain = " → ".join([*ctx.stack[ctx.stack.index(c.block) :], c.block])
                raise Problem(
                    "E203",
                    f"block `{c.block}` calls itself: {chain}",
                    c.span,
                    "a block cannot expand into itself; remove the recursive call",
                )
            if len(ctx.stack) >= MAX_DEPTH:
                raise Problem("E203", "blocks are nested too deeply", c.span)
            for _ in range(c.repeat):
                entry = self.entry(cur, c.block)
                env = bind(info.definition, c, ctx, entry)
                self.note_rate_defaults(info.definition, c, env, ctx.frames)
                inst = self.instance_name(st, c, scope, index, total)
                index += 1
                inner = Ctx(
                    env=env,
                    defaults=dict(info.defaults),
                    convention=info.convention,
                    frames=(*ctx.frames, Frame(block=c.block, call=c.span)),
                    stack=(*ctx.stack, c.block),
                    block=c.block,
                    entry=entry,
                )
                before = len(self.drafts)
                child = scope.child(inst, info.definition.numbered)
                out = self.body(info.definition.body, inner, child, cur)
                if len(self.drafts) == before:
                    # An instance that made nothing (its body failed, or holds only
                    # defaults) still costs a step of the expansion.
                    self.failed += 1
                    self.count(c.span)
                if out is not None:
                    cur = out
        if len(self.drafts) > first_new:
            last = self.drafts[-1]
            if st.declared is not None:
                last.declared = declared_shape(st.declared)
            if st.claims:
                last.claims = [claim(c) for c in st.claims]
        return cur

    def note_rate_defaults(
        self, block: S.BlockDef, call: S.Call, env: dict[str, Fraction], frames: tuple[Frame, ...]
    ) -> None:
        """I002, once per block and parameter: a call of a library's block (from the spec, or
        from a library block the spec calls) leaves a parameter at the library's default, and
        that parameter sets a dropout or stochastic depth rate, which no shape or claim checks
        (`mbconv`'s `total = 16`, the network's block count, made EfficientNet-B1's rates up to
        0.275 instead of 0.191). Reported at the spec's own call."""
        outer = frames[0].call if frames else call.span
        if block.span.file == outer.file:
            return  # the spec's own block: its author wrote the default
        through = f", called by `{frames[-1].block}`," if frames else ""
        given = {p.name for p in block.params[: len(call.args)]} | {k.name for k in call.kwargs}
        if all(p.name in given or p.default is None for p in block.params):
            return
        rated = rate_names(block.body)
        for p in block.params:
            key = (block.name, p.name)
            if p.name in given or p.name not in rated or key in self.noted_defaults:
                continue
            self.noted_defaults.add(key)
            value = env[p.name]
            shown = str(value) if value.denominator == 1 else str(float(value))
            self.diags.append(
                Diagnostic(
                    severity="info",
                    code="I002",
                    message=f"`{block.name}`{through} leaves `{p.name}` at its library default "
                    f"{shown} ({Path(block.span.file).name} line {p.span.line}), which sets a "
                    "dropout or stochastic depth rate",
                    span=outer,
                    help=f"pass `{p.name}` in the call if this network needs another value"
                    if not frames
                    else f"`{frames[-1].block}` does not pass `{p.name}`: if this network needs "
                    "another value, call the blocks it calls yourself",
                )
            )

    def entry(self, cur: str, block: str) -> EntryShape:
        """``in.c`` and its kin for a call whose input is the node ``cur``."""
        return lambda span: self.emitted.of(cur, span, block)

    def instance_name(self, st: S.CallLine, c: S.Call, scope: Scope, index: int, total: int) -> str:
        """``layer1`` for a labelled single call, ``layer1.0``, ``layer1.1``, … for several,
        ``bottleneck1``, ``bottleneck2``, … for unlabelled ones."""
        if st.name is not None:
            inst = st.name if total == 1 else f"{st.name}.{index}"
            if total > 1 and index == 0:
                self.names.claim(scope, st.name, st.name_span or st.span)
            if total == 1:
                self.names.claim(scope, inst, st.name_span or st.span)
            else:
                self.names.taken.add(scope.prefix + inst)
            return inst
        scope.counts[c.block] = scope.counts.get(c.block, 0) + 1
        inst = str(scope.emitted) if scope.positional else free(scope, c.block)
        self.names.claim(scope, inst, c.span)
        scope.emitted += 1
        return inst


def bind(block: S.BlockDef, call: S.Call, ctx: Ctx, entry: EntryShape) -> dict[str, Fraction]:
    """The block's parameters bound to a call's arguments (E206 for a mismatch); defaults may
    read the call's input (``out = in.c``)."""
    params = block.params
    if len(call.args) > len(params):
        extra = call.args[len(params)]
        raise Problem(
            "E206",
            f"block `{block.name}` takes {len(params)} argument"
            f"{'s' if len(params) != 1 else ''}, but {len(call.args)} were given",
            extra.span,
            f"its parameters are ({', '.join(p.name for p in params)})",
        )
    env: dict[str, Fraction] = {}
    given: dict[str, Fraction] = {}
    outer = ctx.values
    for p, a in zip(params, call.args):
        given[p.name] = outer.evaluate(a)
    names = [p.name for p in params]
    for kw in call.kwargs:
        if kw.name not in names:
            raise Problem(
                "E206",
                f"block `{block.name}` has no parameter `{kw.name}`",
                kw.span,
                f"its parameters are ({', '.join(names)})",
            )
        if kw.name in given:
            raise Problem("E206", f"parameter `{kw.name}` is given twice", kw.span, None)
        given[kw.name] = outer.evaluate(kw.value)
    inner = Values(env, block.name, entry)
    for p in params:
        if p.name in given:
            env[p.name] = given[p.name]
        elif p.default is not None:
            try:
                env[p.name] = inner.evaluate(p.default)
            except Problem as problem:
                problem.span = call.span
                raise
        else:
            raise Problem(
                "E206",
                f"block `{block.name}` needs a value for `{p.name}`",
                call.span,
                f"its parameters are ({', '.join(names)})",
            )
    return env


_RATES = ("dropout", "stochastic_depth")
_SECTIONS = ("residual", "shortcut", "branch", "gate", "stage")
"""Section words that open an indented body: without their `:` they read as a block call."""


def kind_words() -> list[str]:
    """The registry's layer kind words, as a spec may write them (lower case)."""
    return [w.lower() for w in WORDS]


def rate_names(body: tuple[S.Stmt, ...]) -> set[str]:
    """The names the options of a body's dropout and stochastic depth layers read (nested
    bodies too)."""
    found: set[str] = set()
    for st in body:
        if isinstance(st, S.Layer) and st.kind in _RATES:
            found |= names_in(tuple(st.options.values()))
        found |= rate_names(getattr(st, "body", ()))
    return found


def names_in(value: object) -> set[str]:
    """Every ``Name`` in a piece of syntax (an argument, an expression, a tuple of them)."""
    if isinstance(value, S.Name):
        return {value.id}
    if isinstance(value, tuple):
        return set().union(*(names_in(v) for v in value))
    if is_dataclass(value):
        return set().union(*(names_in(getattr(value, f.name)) for f in dc_fields(value)))
    return set()


_NOT_IN_IF = (S.BlockDef, S.Network, S.InitStmt, S.Import, S.TotalClaim, S.Train, S.InputStmt)


def if_body(st: S.If) -> tuple[S.Stmt, ...]:
    """The statements an ``if`` that holds splices into its body; definitions and header lines
    hold for the whole file and cannot be conditional (E217)."""
    for inner in st.body:
        if isinstance(inner, _NOT_IN_IF):
            raise Problem(
                "E217",
                "this line cannot stand in an `if` body",
                inner.span,
                "definitions, imports and the input hold for the whole file: move it out",
            )
    return st.body


def joins(st: S.If, kind: str) -> bool:
    """Whether an ``if`` body holds a layer of ``kind`` at its own level (nested ifs too)."""
    for inner in st.body:
        if isinstance(inner, S.Layer) and inner.kind == kind:
            return True
        if isinstance(inner, S.If) and joins(inner, kind):
            return True
    return False


def channels_first(dims: tuple[int, ...]) -> bool:
    """An input written [CxHxW], PyTorch's order: 1 or 3 "rows" and many more "channels"."""
    first, middle, last = dims
    return first in (1, 3) and middle >= 8 * first and last >= max(16, 8 * first)
