"""The constructs with a header and an indented body: blocks, stages, residual paths and their
shortcuts, gates, branches and ``if``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archc import syntax as S
from archc.constructs.base import Construct, OpenBranches, OpenResidual, Outline

if TYPE_CHECKING:
    from archc.editor import SpecView
    from archc.elaborate.expand import Body, Expander


class Section(Construct, abstract=True):
    """A section of a body (``residual:``, ``gate:`` …): a ``section`` in the outline, its body
    its children."""

    def outline(self, view: SpecView, st: Any) -> Outline | None:
        return Outline(type(st).__name__.lower(), "section", "", st.body)


class BlockDef(Construct):
    node = S.BlockDef
    title = "a block definition"
    part = "nothing until called: each call's instance is a part, the block a class in the source"
    headers = ("block NAME(PARAMS):", "sequential block NAME(PARAMS):")
    builds = needs_input = conditional = False

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if line.colon and lower in (["block"], ["sequential", "block"]):
            # `block NAME(params):`, `sequential block NAME(params):`
            call = line.items[0]
            p.block_name(call.name, call.span)
            params = p.params(call)
            body = p.body(line, "block")
            return S.BlockDef(call.name, params, body, line.span, numbered=len(lower) == 2)
        if lower[0] == "block":
            p.check_ident(words[1], p.label_span(line))
            p.block_name(words[1], p.label_span(line))
            return S.BlockDef(words[1], (), p.body(line, "block"), line.span)
        if lower[:2] == ["sequential", "block"] and len(words) == 3:
            p.check_ident(words[2], p.label_span(line))
            p.block_name(words[2], p.label_span(line))
            body = p.body(line, "block")
            return S.BlockDef(words[2], (), body, line.span, numbered=True)
        return None

    def elaborate(self, walk: Expander, st: S.BlockDef, body: Body) -> None:
        if not body.top:
            raise walk.problem(
                "E217",
                "blocks are defined at the top level of a file",
                st.span,
                "move this block definition out of the body",
            )

    def outline(self, view: SpecView, st: S.BlockDef) -> Outline | None:
        return Outline(st.name, "block", f"({view.params_text(st.params)})", st.body)


class If(Construct):
    node = S.If
    title = "a conditional section"
    part = "nothing itself: its layers, when the condition holds, are the body's own"
    headers = ("if CONDITION:",)
    needs_input = False

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower == ["if"]:
            condition = p.condition(line.items[1:], line.items[0].span)
            return S.If(condition, p.body(line, "if"), line.span)
        if lower[0] == "if":
            # `if se:`: its one word is the condition.
            condition = S.Name(words[1], p.label_span(line))
            return S.If(condition, p.body(line, "if"), line.span)
        return None

    def continues(self, st: S.If, body: Body) -> frozenset[str]:
        # It stands between the sections it may continue; its body is checked as it is
        # spliced in.
        return frozenset({"branches", "residual"})

    def holds(self, st: S.If, kind: str) -> bool:
        from archc.constructs import construct_of

        return any(construct_of(inner).holds(inner, kind) for inner in st.body)

    def elaborate(self, walk: Expander, st: S.If, body: Body) -> None:
        if walk.truth(body.ctx, st.condition):
            body.pending[0:0] = self.spliced(walk, st)
        elif body.residual is not None and self.holds(st, "add"):
            # `if use_residual: add` that does not hold: the residual path is the block's
            # plain path (MobileNetV2's inverted residual). A shortcut would be built and never
            # used (parameters without gradients).
            skipped, body.residual = body.residual, None
            if skipped.shortcut_span is not None:
                raise walk.unused_shortcut(skipped.shortcut_span, st.span)

    def spliced(self, walk: Expander, st: S.If) -> tuple[S.Stmt, ...]:
        """The statements an ``if`` that holds splices into its body; definitions and header
        lines hold for the whole file and cannot be conditional (E217)."""
        from archc.constructs import construct_of

        for inner in st.body:
            if not construct_of(inner).conditional:
                raise walk.problem(
                    "E217",
                    "this line cannot stand in an `if` body",
                    inner.span,
                    "definitions, imports and the input hold for the whole file: move it out",
                )
        return st.body

    def outline(self, view: SpecView, st: S.If) -> Outline | None:
        return Outline("if", "section", "", st.body)


class Stage(Construct):
    node = S.Stage
    title = "a stage"
    part = "a part named by the stage (a cluster in the picture, an attribute in the source)"
    headers = ("stage NAME:", "sequential NAME:", "sequential:")

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower == ["sequential", "branch"]:
            return None  # a branch's (Branch.parse)
        if lower == ["sequential"]:
            # Unnamed: the next position of the sequential body it stands in (MNASNet's stacks).
            return S.Stage(None, p.body(line, "sequential"), line.span, numbered=True)
        if lower[0] == "sequential" and lower[1] in ("gate", "residual", "shortcut", "inline"):
            p.err(
                "E106",
                f"`sequential {words[1]}:` is not a section archc has",
                p.label_span(line),
                f"`{words[1]}` sections are written without `sequential`; a stage named "
                f"`{words[1]}` is `stage {words[1]}:`",
            )
        if lower[0] in ("stage", "sequential") and words[1].startswith('"'):
            # `stage "block{s + 1}":`: a name template, filled where the stage is elaborated.
            at = p.label_span(line)  # the header's words; the quoted name starts at its `"`
            quoted = at.model_copy(update={"column": at.column + str(line.label).index('"')})
            template = p.template(words[1], quoted)
            numbered = lower[0] == "sequential"
            body = p.body(line, lower[0])
            return S.Stage(template.text, body, line.span, numbered, template=template)
        if lower[0] in ("stage", "sequential"):
            p.check_ident(words[1], p.label_span(line))
            numbered = lower[0] == "sequential"
            return S.Stage(words[1], p.body(line, lower[0]), line.span, numbered)
        return None

    def elaborate(self, walk: Expander, st: S.Stage, body: Body) -> None:
        name = st.name if st.name is not None else self.position(walk, st, body)
        if st.template is not None:
            name = walk.fill(st.template, body.ctx)
        walk.names.claim(body.scope, name, st.span)
        inner = body.scope.child(name, st.numbered)
        body.cur = walk.body(st.body, body.ctx, inner, body.cur)
        walk.names.output(body.scope, name, body.cur)

    def position(self, walk: Expander, st: S.Stage, body: Body) -> str:
        """The name of an unnamed ``sequential:``: the next position of the sequential body
        around it, an ``nn.Sequential`` inside an ``nn.Sequential`` (MNASNet's stacks)."""
        if not body.scope.positional:
            raise walk.problem(
                "E217",
                "an unnamed `sequential:` stands only in a sequential body",
                st.span,
                "name it (`sequential layers:`), or put it in a `sequential NAME:` stage or a "
                "`sequential block`",
            )
        body.scope.emitted += 1
        return str(body.scope.emitted - 1)

    def outline(self, view: SpecView, st: S.Stage) -> Outline | None:
        return Outline(st.name or "sequential", "stage", "", st.body)


class Residual(Section):
    node = S.Residual
    title = "a residual path"
    part = "nothing itself: its layers sit in the enclosing part, joined by `add`"
    headers = ("residual:",)

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        return S.Residual(p.body(line, "residual"), line.span) if lower == ["residual"] else None

    def continues(self, st: S.Residual, body: Body) -> frozenset[str]:
        # After a shortcut written first; a second residual path closes the first.
        open_path = body.residual is not None and body.residual.output is not None
        return frozenset() if open_path else frozenset({"residual"})

    def elaborate(self, walk: Expander, st: S.Residual, body: Body) -> None:
        if body.residual is None:
            body.residual = OpenResidual(body.cur, st.span)
        # After a shortcut written first, the residual starts where it started.
        out = walk.body(st.body, body.ctx, body.scope, body.residual.start)
        body.cur = body.residual.output = out


class Shortcut(Section):
    node = S.Shortcut
    title = "a residual's shortcut"
    part = "a part named `downsample` (or its name), the add's second input"
    headers = ("shortcut:", "shortcut: auto", "shortcut: identity", "shortcut: projection")

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower[0] != "shortcut":
            return None
        # `shortcut proj:` names it (RegNet's `proj`); by default it is torchvision's ResNet
        # `downsample`.
        name = words[1] if len(words) == 2 else "downsample"
        p.check_ident(name, p.label_span(line))
        if not line.items:
            return S.Shortcut(None, p.body(line, "shortcut"), line.span, name)
        p.no_body(line)
        mode = p.shortcut_mode(line.items)
        return S.Shortcut(mode, (), line.span, name)  # type: ignore[arg-type]

    def continues(self, st: S.Shortcut, body: Body) -> frozenset[str]:
        return frozenset({"residual"})

    def elaborate(self, walk: Expander, st: S.Shortcut, body: Body) -> None:
        if body.residual is not None and body.residual.shortcut is not None:
            raise walk.problem("E211", "a residual has one shortcut", st.span)
        if body.residual is None:
            if st.mode is not None:
                raise walk.problem(
                    "E211",
                    f"`shortcut: {st.mode}` must follow its `residual:` section",
                    st.span,
                    "its shape comes from the residual path; a shortcut written "
                    "first is a body of layers (`shortcut:` + indented layers)",
                )
            body.residual = OpenResidual(body.cur, st.span)
        body.residual.shortcut = walk.shortcut(st, body.ctx, body.scope, body.residual.start)
        body.residual.shortcut_span = st.span

    def outline(self, view: SpecView, st: S.Shortcut) -> Outline | None:
        return Outline("shortcut", "section", st.mode or "", st.body)


class Gate(Section):
    node = S.Gate
    title = "a gate (squeeze-and-excitation)"
    part = "nothing itself: its layers and the `multiply` it ends with sit in the enclosing part"
    headers = ("gate:",)

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        return S.Gate(p.body(line, "gate"), line.span) if lower == ["gate"] else None

    def elaborate(self, walk: Expander, st: S.Gate, body: Body) -> None:
        """The gate's layers from the value entering it, then that value times their output:
        a ``multiply`` node the section makes itself, named like any other layer."""
        start = body.cur
        out = walk.body(st.body, body.ctx, body.scope, start)
        if out is None or out == start:
            raise walk.problem(
                "E211", "the gate has no layers", st.span, "indent them under `gate:`"
            )
        join = S.Layer(kind="multiply", name=None, span=st.span)
        body.cur = walk.layer(join, body.ctx, body.scope, [start, out])


class Branch(Section):
    node = S.Branch
    title = "a branch"
    part = "a part named `branchN` (none when inline), one input of the `concat`"
    headers = ("branch:", "sequential branch:", "inline branch:")

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower == ["sequential", "branch"]:
            return S.Branch(p.body(line, "branch"), line.span, numbered=True)
        if lower == ["inline", "branch"]:
            return S.Branch(p.body(line, "branch"), line.span, inline=True)
        if lower == ["branch"]:
            return S.Branch(p.body(line, "branch"), line.span)
        return None

    def continues(self, st: S.Branch, body: Body) -> frozenset[str]:
        return frozenset({"branches"})

    def failed(self, st: S.Branch, body: Body) -> None:
        if body.branches is not None:
            body.branches.failed = True

    def elaborate(self, walk: Expander, st: S.Branch, body: Body) -> None:
        if body.branches is None:
            body.branches = OpenBranches(body.cur, st.span, [])
        branches = body.branches
        start = self.start(walk, branches, st, body)
        if st.inline:
            child = body.scope  # its layers are named beside the branches
        else:
            name = self.name(branches, body)
            walk.names.claim(body.scope, name, st.span)
            child = body.scope.child(name, st.numbered)
        out = walk.body(st.body, body.ctx, child, start)
        if out is not None:
            branches.outputs.append(out)
        else:
            branches.failed = True

    def name(self, branches: OpenBranches, body: Body) -> str:
        """A scoped branch's name: ``branch`` + its place among the branches before the
        ``concat``, or the next number the scope has not taken (a layer named ``branch2``, the
        branches of an inline branch)."""
        n = len(branches.outputs) + 1
        while f"branch{n}" in body.scope.names:
            n += 1
        return f"branch{n}"

    def start(self, walk: Expander, branches: OpenBranches, st: S.Branch, body: Body) -> str:
        """What a branch starts from: the branches' common input, or after a ``split N`` the
        next of its parts, a node of its own in the enclosing scope (``split1``, ``split2``)."""
        if branches.split is None:
            return branches.start
        line, fields = branches.split
        if branches.taken == fields["parts"]:
            raise walk.problem(
                "E211",
                f"`split {fields['parts']}` has no part left for this branch",
                st.span,
                f"it makes {fields['parts']} parts: one `branch:` section each",
            )
        branches.taken += 1
        part = {**fields, "part": branches.taken}
        draft = walk.emit("split", None, [branches.start], line.span, body.ctx, body.scope, part)
        return draft.name


class Aux(Section):
    node = S.Aux
    title = "an auxiliary classifier"
    part = (
        "a part named by it, computed in training mode only and returned beside the main "
        "output (GoogLeNet's `aux1`, Inception-v3's `AuxLogits`)"
    )
    headers = ("aux NAME:",)

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower[0] != "aux":
            return None
        p.check_ident(words[1], p.label_span(line))
        return S.Aux(words[1], p.body(line, "aux"), line.span)

    def elaborate(self, walk: Expander, st: S.Aux, body: Body) -> None:
        """The classifier's layers from the current output, in a scope of their own; the
        output of the body they stand in stays what it was (the main path goes on)."""
        if not body.top or body.ctx.frames:
            raise walk.problem(
                "E217",
                "an `aux` classifier stands at the top level of the network",
                st.span,
                "its output is one of the network's outputs: move it out of the block, stage "
                "or section",
            )
        walk.names.claim(body.scope, st.name, st.span)
        start = body.cur
        out = walk.body(st.body, body.ctx, body.scope.child(st.name), start)
        if out is None or out == start:
            raise walk.problem(
                "E211", "the auxiliary classifier has no layers", st.span, "indent them under it"
            )
        walk.aux_outputs.append(out)

    def outline(self, view: SpecView, st: S.Aux) -> Outline | None:
        return Outline(st.name, "section", "aux", st.body)
