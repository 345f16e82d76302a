"""Block calls: a line of calls (``layer2: bottleneck(128, stride 2), bottleneck(128) x3``)
expands each call's block body in a fresh naming scope with the block's parameters bound.

:class:`BlockCalls` is the statement walker's part (archc.elaborate.expand.Expander) that does it.
"""

from __future__ import annotations

from collections import ChainMap
from dataclasses import fields as dc_fields
from dataclasses import is_dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from archc import syntax as S
from archc.diagnostics import Diagnostic
from archc.elaborate.context import MAX_DEPTH, MAX_REPEAT, Ctx
from archc.elaborate.definitions import FileConstants, activation_kind
from archc.elaborate.entry import EmittedShapes
from archc.elaborate.functions import Value, show
from archc.elaborate.graph import Draft
from archc.elaborate.imports import BlockTable
from archc.elaborate.naming import Names, Scope, free
from archc.elaborate.problems import Problem, Quiet
from archc.elaborate.scope import twice
from archc.elaborate.values import EntryShape, Values, claim, declared_shape, expr_text, fill
from archc.ops import OPS, WORDS
from archc.spans import Frame, Span
from archc.suggest import did_you_mean


class BlockCalls:
    """The walker's block calls; the walker (archc.elaborate.expand.Expander) holds the state."""

    blocks: BlockTable
    diags: list[Diagnostic]
    drafts: list[Draft]
    names: Names
    emitted: EmittedShapes
    noted_defaults: set[tuple[str, str]]
    failed: int
    constants: dict[str, FileConstants]

    if TYPE_CHECKING:  # the walker's, which a call's block body is walked with

        def body(
            self,
            stmts: tuple[S.Stmt, ...],
            ctx: Ctx,
            scope: Scope,
            cur: str | None,
            top: bool = False,
        ) -> str | None: ...

        def count(self, span: Span) -> None: ...

        def layer(self, st: S.Layer, ctx: Ctx, scope: Scope, inputs: list[str]) -> str: ...

    def call_line(self, st: S.CallLine, ctx: Ctx, scope: Scope, cur: str) -> str:
        counts = [repeat_count(c.repeat, ctx, c.span) for c in st.calls]
        total = sum(counts)
        index = 0
        first_new = len(self.drafts)
        for c, count in zip(st.calls, counts):
            info = self.blocks.get(c.block)
            if info is None and c.block == S.ACT:
                cur = self.activation_call(st, c, ctx, scope, cur)
                continue
            if info is None:
                raise self.unknown_block(c)
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
            indexed = repeated(c.repeat) and uses_index(c, st.template)
            for k in range(count):
                entry = self.entry(cur, c.block)
                consts = self.constants.get(info.definition.span.file)
                outer = with_index(ctx, k, c.span) if indexed else ctx
                env = bind(info.definition, c, outer, entry, consts or FileConstants())
                self.note_rate_defaults(info.definition, c, env, ctx.frames)
                inst = self.instance_name(st, c, scope, index, total, outer)
                index += 1
                inner = Ctx(
                    env={**(consts.env if consts else {}), **env},
                    defined={
                        **(consts.defined if consts else {}),
                        **{p.name: p.span for p in info.definition.params},
                    },
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
                    self.names.output(scope, inst, out)
        if len(self.drafts) > first_new:
            last = self.drafts[-1]
            if st.declared is not None:
                last.declared = declared_shape(st.declared)
            if st.claims:
                last.claims = [claim(c) for c in st.claims]
        return cur

    def unknown_block(self, c: S.Call) -> Exception:
        """The error of a call whose block is not defined (E202)."""
        if self.blocks.import_failed:
            return Quiet()  # an import that failed is the cause, already reported
        if c.block.lower() in _SECTIONS and not c.args and not c.kwargs:
            return Problem(
                "E202",
                f"`{c.block}` needs a `:` after it",
                c.span,
                f"write `{c.block.lower()}:` and indent the section's layers under it",
            )
        near = did_you_mean(c.block, [*self.blocks.blocks, *kind_words()])
        return Problem(
            "E202",
            f"`{c.block}` is neither a layer kind nor a defined block{near}",
            c.span,
            f"defined blocks: {self.blocks.known()}; layer kinds are CONV, POOL, FC, "
            "NORM, BN, RELU, DROPOUT, SOFTMAX, …",
        )

    def activation_call(self, st: S.CallLine, c: S.Call, ctx: Ctx, scope: Scope, cur: str) -> str:
        """``act(EXPR)`` on a line of its own: the activation the string names, a layer."""
        if len(c.args) != 1 or c.kwargs:
            raise Problem(
                "E206",
                "`act` takes one value: the name of an activation",
                c.span,
                'write e.g. `act(activation)` or `act("silu")`',
            )
        kind = activation_kind(c.args[0], ctx.values)
        alone = len(st.calls) == 1 and c.repeat == 1
        name, name_span = (st.name, st.name_span) if alone else (None, None)
        layer = S.Layer(kind, name, c.span, repeat=c.repeat, name_span=name_span)
        return self.layer(layer, ctx, scope, [cur])

    def note_rate_defaults(
        self, block: S.BlockDef, call: S.Call, env: dict[str, Value], frames: tuple[Frame, ...]
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
            exact = isinstance(value, Fraction) and value.denominator != 1
            shown = show(float(value) if exact else value)
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

    def instance_name(
        self, st: S.CallLine, c: S.Call, scope: Scope, index: int, total: int, ctx: Ctx
    ) -> str:
        """``layer1`` for a labelled single call, ``layer1.0``, ``layer1.1``, … for several,
        ``bottleneck1``, ``bottleneck2``, … for unlabelled ones; a template's name
        (``"block4-{i}"``) for each instance of a templated line."""
        if st.template is not None:
            inst = fill(st.template, ctx.values)
            self.names.claim(scope, inst, st.name_span or st.span)
            scope.emitted += 1
            return inst
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


def repeated(repeat: int | S.Expr) -> bool:
    """Whether an item is repeated, so that ``i`` is its repetition index."""
    return not isinstance(repeat, int) or repeat > 1


def uses_index(item: object, template: S.Template | None = None) -> bool:
    """Whether an item (its arguments) or its name template reads ``i``."""
    return "i" in names_in(item) or (template is not None and "i" in names_in(template.parts))


def with_index(ctx: Ctx, k: int, span: Span) -> Ctx:
    """``ctx`` with ``i`` the repetition index ``k``; E228 where ``i`` is a name already."""
    if "i" in ctx.env:
        earlier = ctx.defined.get("i")
        at = f" (line {earlier.line})" if earlier is not None else ""
        raise Problem(
            "E228",
            f"`i` is the repetition index of this item, and also a name visible here{at}",
            span,
            "rename the other `i` (a block parameter, a `param`, a `let`)",
        )
    return replace(ctx, env={**ctx.env, "i": Fraction(k)})


def repeat_count(repeat: int | S.Expr, ctx: Ctx, span: Span) -> int:
    """An item's repetition count: ``xN`` as written (1 to MAX_REPEAT), or ``x EXPR``
    computed (0 to MAX_REPEAT: 0 emits nothing)."""
    if isinstance(repeat, int):
        if not 1 <= repeat <= MAX_REPEAT:
            raise Problem(
                "E209" if repeat < 1 else "E216",
                f"repetition x{repeat} is out of range (1 to {MAX_REPEAT})",
                span,
            )
        return repeat
    value = ctx.values.evaluate(repeat)
    shown = expr_text(repeat, spaced=True)
    if isinstance(value, float) and value.is_integer():
        value = Fraction(int(value))
    if isinstance(value, float) or value.denominator != 1:
        raise Problem(
            "E208",
            f"repetition count `{shown}` = {value} is not a whole number",
            repeat.span,
            "use `//` for floor division, or `round(...)`",
        )
    if not 0 <= value <= MAX_REPEAT:
        raise Problem(
            "E209" if value < 0 else "E216",
            f"repetition count `{shown}` = {value} is out of range (0 to {MAX_REPEAT})",
            repeat.span,
        )
    return int(value)


def bind(
    block: S.BlockDef,
    call: S.Call,
    ctx: Ctx,
    entry: EntryShape,
    constants: FileConstants,
) -> dict[str, Value]:
    """The block's parameters bound to a call's arguments (E206 for a mismatch); defaults may
    read the call's input (``out = in.c``) and the constants of the block's file, which a
    parameter may not shadow (E228)."""
    params = block.params
    for p in params:
        if p.name in constants.env:
            raise twice(p.name, p.span, constants.defined.get(p.name))
    if len(call.args) > len(params):
        extra = call.args[len(params)]
        raise Problem(
            "E206",
            f"block `{block.name}` takes {len(params)} argument"
            f"{'s' if len(params) != 1 else ''}, but {len(call.args)} were given",
            extra.span,
            f"its parameters are ({', '.join(p.name for p in params)})",
        )
    env: dict[str, Value] = {}
    given: dict[str, Value] = {}
    outer = ctx.values
    for p, a in zip(params, call.args):
        given[p.name] = outer.value(a)
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
        given[kw.name] = outer.value(kw.value)
    inner = Values(ChainMap(env, constants.env), block.name, entry)
    for p in params:
        if p.name in given:
            env[p.name] = given[p.name]
        elif p.default is not None:
            try:
                env[p.name] = inner.value(p.default)
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
        if isinstance(st, S.Layer) and st.kind in OPS and OPS[st.kind].rate is not None:
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
