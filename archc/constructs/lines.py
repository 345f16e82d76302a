"""The constructs of one line: file-wide lines, the input, defaults, a layer, a line of calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archc import syntax as S
from archc.constructs import references
from archc.constructs.base import FileWide, Line, OpenBranches, Outline
from archc.nodes import fmt_shape

if TYPE_CHECKING:
    from archc.editor import SpecView
    from archc.elaborate.expand import Body, Expander


class Network(FileWide):
    node = S.Network
    title = "the network's name"


class TotalClaim(FileWide):
    node = S.TotalClaim
    title = "a claim on the network's totals"


class Init(FileWide):
    node = S.InitStmt
    title = "the weight initialisation"


class Import(FileWide):
    node = S.Import
    title = "an import of block definitions"


class SpecParam(FileWide):
    node = S.SpecParam
    title = "a parameter of the spec"
    where = "a `param` line stands at the top level of a file"

    def elaborate(self, walk: Expander, st: S.SpecParam, body: Body) -> None:
        super().elaborate(walk, st, body)
        walk.define_constants(body, [(st.name, st.name_span)])

    def outline(self, view: SpecView, st: S.SpecParam) -> Outline | None:
        return Outline(st.name, "constant", "param")


class Variants(FileWide):
    node = S.Variants
    title = "the variants of a network family"
    where = "a `variants(...)` table stands at the top level of a file"

    def elaborate(self, walk: Expander, st: S.Variants, body: Body) -> None:
        super().elaborate(walk, st, body)
        walk.define_constants(body, [(c, st.span) for c in st.columns])

    def outline(self, view: SpecView, st: S.Variants) -> Outline | None:
        return Outline("variants", "constant", ", ".join(row.key for row in st.rows))


class Train(FileWide):
    node = S.Train
    title = "the training recipe"
    headers = ("train:",)

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        return S.Train(p.settings(line), line.span) if lower == ["train"] else None


class Input(Line):
    node = S.InputStmt
    title = "the input line"
    part = "the graph's first node, `input`"
    builds = needs_input = False
    conditional = False

    def elaborate(self, walk: Expander, st: S.InputStmt, body: Body) -> None:
        if not body.top or body.cur is not None:
            raise walk.problem(
                "E201",
                "a second input line" if body.cur is not None else "an input inside a body",
                st.span,
                "a network has exactly one input line, before its first layer",
            )
        body.cur = walk.input(st)

    def outline(self, view: SpecView, st: S.InputStmt) -> Outline | None:
        return Outline("input", "input", "[" + "x".join(str(d) for d in st.dims) + "]")


class Defaults(Line):
    node = S.Defaults
    title = "a defaults line"
    part = "nothing itself: the BN and activations it adds are layers of the lines after it"
    builds = needs_input = False

    def elaborate(self, walk: Expander, st: S.Defaults, body: Body) -> None:
        body.ctx = walk.with_defaults(body.ctx, st)

    def outline(self, view: SpecView, st: S.Defaults) -> Outline | None:
        return None


class CallLine(Line):
    node = S.CallLine
    title = "a line of block calls"
    part = "each instance a part named by the line (`layer1.0`), a block class in the source"

    def elaborate(self, walk: Expander, st: S.CallLine, body: Body) -> None:
        body.cur = walk.call_line(st, body.ctx, body.scope, body.cur)
        walk.names.output(body.scope, st.name, body.cur)

    def outline(self, view: SpecView, st: S.CallLine) -> Outline | None:
        calls = ", ".join(c.block + _times(c.repeat) for c in st.calls)
        made = view.made_by_call(st)
        shape = fmt_shape(made[-1].output_shape) if made else ""
        return Outline(st.name or calls, "call", f"{calls} {shape}".strip())


def _times(repeat: int | S.Expr) -> str:
    if isinstance(repeat, int):
        return f" x{repeat}" if repeat > 1 else ""
    return f" x {repeat.id}" if isinstance(repeat, S.Name) else " x …"


class Layer(Line):
    node = S.Layer
    title = "a layer"
    part = "a node (a box) and, for a kind with a module, an attribute of its part"

    def continues(self, st: S.Layer, body: Body) -> frozenset[str]:
        if st.ref_mode == "of":
            return frozenset()  # it joins the named outputs only: open sections stay unjoined
        if st.kind == "concat":
            return frozenset({"branches"})
        if st.kind == "add":
            return frozenset({"residual", "branches"})  # the sum of branches too (RepVGG)
        return frozenset()

    def holds(self, st: S.Layer, kind: str) -> bool:
        return st.kind == kind

    def outline(self, view: SpecView, st: S.Layer) -> Outline | None:
        first = view.made_by_layer(st)
        name = st.name or (first[0].name.rsplit(".", 1)[-1] if first else st.kind.lower())
        shape = fmt_shape(first[-1].output_shape) if first else ""
        return Outline(name, "layer", f"{st.kind.lower()} {shape}".strip())

    def elaborate(self, walk: Expander, st: S.Layer, body: Body) -> None:
        self.join(walk, st, body)
        walk.names.output(body.scope, st.name, body.cur)

    def join(self, walk: Expander, st: S.Layer, body: Body) -> None:
        if st.ref_mode is not None:
            self.referring(walk, st, body)
        elif st.kind == "add":
            self.add(walk, st, body)
        elif st.kind == "multiply":
            raise walk.problem(
                "E211",
                "`multiply` is the join a `gate:` section makes itself",
                st.span,
                "write the gate's layers indented under `gate:`",
            )
        elif st.kind == "concat" and "input" in st.flags:
            # The body's input first, then the branches or the path since it.
            joined, body.branches = body.branches, None
            parts = list(joined.outputs) if joined is not None else [body.cur]
            start = body.entry if body.entry is not None else "input"  # the network's
            body.cur = walk.layer(st, body.ctx, body.scope, [start, *parts])
        elif st.kind == "split" and "part" not in st.options:
            self.split(walk, st, body)
        elif st.kind == "concat":
            self.concat(walk, st, body)
        else:
            body.cur = walk.layer(st, body.ctx, body.scope, [body.cur])

    def referring(self, walk: Expander, st: S.Layer, body: Body) -> None:
        """``concat with a, b`` / ``add with a``: the current output (or the branches open
        before it, after the body's input with ``concat input``), then earlier named outputs
        of the same scope; ``… of a, b``: the named ones only."""
        named = [references.resolve(walk, ref, body) for ref in st.refs]
        if st.ref_mode == "of":
            if len(named) < 2:
                raise walk.problem(
                    "E211",
                    f"`{st.kind} of` joins two or more named outputs",
                    st.span,
                    f"name another, or write `{st.kind} with {st.refs[0].id}` to join it with "
                    "the current output",
                )
            body.cur = walk.layer(st, body.ctx, body.scope, named)
            return
        if body.residual is not None:
            raise walk.problem(
                "E211",
                f"`{st.kind} with` cannot close a `residual:` section",
                st.span,
                "join the residual with a plain `add`, then `add with NAME` on a line of its own",
            )
        current = self.joined(walk, st, body) if body.branches is not None else [body.cur]
        if "input" in st.flags:
            current.insert(0, body.entry if body.entry is not None else "input")
        body.cur = walk.layer(st, body.ctx, body.scope, [*current, *named])

    def add(self, walk: Expander, st: S.Layer, body: Body) -> None:
        if body.branches is not None and body.residual is None:
            body.cur = walk.layer(st, body.ctx, body.scope, self.joined(walk, st, body))
            return
        residual = body.residual
        if residual is None or residual.output is None:
            raise walk.problem(
                "E211",
                "`add` needs a `residual:` section before it",
                st.span,
                "write the residual path as an indented `residual:` body",
            )
        shortcut = residual.shortcut or residual.start
        body.residual = None
        body.cur = walk.layer(st, body.ctx, body.scope, [residual.output, shortcut])

    def split(self, walk: Expander, st: S.Layer, body: Body) -> None:
        """ShuffleNet's channel split: the ``branch:`` sections after it take one part each
        (see :meth:`archc.constructs.sections.Branch.start`)."""
        for p in split_extras(walk, st):
            walk.report(p, body.ctx)
        try:
            fields = walk.fields(st, body.ctx)
        except walk.errors:
            body.branches = OpenBranches(body.cur, st.span, [], failed=True)
            raise
        body.branches = OpenBranches(body.cur, st.span, [], split=(st, fields))

    def concat(self, walk: Expander, st: S.Layer, body: Body) -> None:
        body.cur = walk.layer(st, body.ctx, body.scope, self.joined(walk, st, body))

    def joined(self, walk: Expander, st: S.Layer, body: Body) -> list[str]:
        """The outputs of the ``branch:`` sections a ``concat`` or an ``add`` joins (E211 when
        they are fewer than two, or fewer than a split's parts); closes them."""
        joined, body.branches = body.branches, None
        short = (
            joined is None
            or len(joined.outputs) < 2
            or (joined.split is not None and joined.taken != joined.split[1]["parts"])
        )
        if joined is not None and joined.failed and short:
            raise walk.quiet()  # the branch that failed was reported
        if joined is not None and joined.split is not None:
            parts = joined.split[1]["parts"]
            if joined.taken != parts:
                raise walk.problem(
                    "E211",
                    f"`split {parts}` makes {parts} parts, but {joined.taken} "
                    f"`branch:` section{'s' if joined.taken != 1 else ''} "
                    "take them",
                    st.span,
                    "write one `branch:` section per part (`identity` passes a part on unchanged)",
                )
        if joined is None or len(joined.outputs) < 2:
            raise walk.problem(
                "E211",
                f"`{st.kind}` needs two or more `branch:` sections before it",
                st.span,
                f"a single path needs no `{st.kind}`: write its layers without `branch:`"
                if joined is not None
                else None,
            )
        return list(joined.outputs)


def split_extras(walk: Expander, st: S.Layer) -> list[Exception]:
    """What a ``split N`` that opens branches cannot carry: it makes N parts, one per branch, so
    no one output for a declared shape or a claim, and no one node for a name."""
    parts = f"`split {walk.parts_word(st)}`"
    problems = []
    if st.declared is not None:
        problems.append(
            walk.problem(
                "E211",
                f"{parts} opens branches and has no single output: this shape declares nothing",
                st.declared.span,
                "declare the joined shape on the `concat` line (`concat -> [HxWxC]`), or a "
                "part's on the last layer of its `branch:`",
            )
        )
    for c in st.claims:
        problems.append(
            walk.problem(
                "E211",
                f"{parts} opens branches and has no single output: this {c.kind} claim counts "
                "nothing",
                c.span,
                f"write the {c.kind} claim on the `concat` line or on a layer of a `branch:`",
            )
        )
    if st.name is not None:
        problems.append(
            walk.problem(
                "E211",
                f"{parts} opens branches: its parts are named `split1`, `split2`, …, not "
                f"`{st.name}`",
                st.name_span or st.span,
                "remove the name, or name one part: `NAME: split N part K`",
            )
        )
    return problems
