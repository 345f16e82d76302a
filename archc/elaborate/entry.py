"""The shapes of the layers emitted so far, for ``in.c``, ``in.h`` and ``in.w``.

A block body may size its layers by the value entering the call (MobileNetV2's expansion
``6 * in.c``, its ``if stride == 1 and in.c == out:``), so elaboration needs a shape before the
shape inference pass runs on the finished graph. It asks the registry's own ``shape`` facet,
draft by draft, in emission order — the order the graph will have, in which every input comes
before its consumers — and only when a spec asks: a file without ``in.`` never pays for it.
Each draft's shape is computed once, so a network of N layers costs N shape rules in all.

Layouts are tracked as the pass does (archc.ops.layout): ``in.c`` is the channels of the value
even between the permutes of a channels-last stretch, where the tensor holds them last.

The one node whose shape depends on a later one is a residual's ``shortcut: auto`` (its shape
is the residual's, known at the ``add``): it has none here, and an ``add`` takes the shape of
its other input. The real pass (archc.passes.shapes) checks everything again and warns; this
one only reports why a shape a spec asked for is unknown, with the pass's own diagnostic.
"""

from __future__ import annotations

from pydantic import ValidationError

from archc import ir
from archc.diagnostics import Diagnostic, block_notes, error
from archc.elaborate.graph import REMOVED, Draft
from archc.elaborate.problems import Problem, Quiet
from archc.nodes import NodeBase
from archc.ops import OPS
from archc.ops.base import ShapeContext
from archc.ops.layout import CHANNELS_FIRST, Layout, channels_first_shape, flow
from archc.spans import Span


class EmittedShapes(ShapeContext):
    """Shapes of ``drafts`` (the expander's list, which grows), computed on demand."""

    def __init__(self, drafts: list[Draft], diags: list[Diagnostic]) -> None:
        self.drafts = drafts
        self.diags = diags
        self.shapes: dict[str, ir.Shape | None] = {}
        self.layouts: dict[str, Layout] = {}
        self.why: list[Diagnostic] = []
        self.done = 0

    def of(self, name: str, span: Span, block: str | None) -> ir.Shape:
        """The shape of the draft ``name``, as a channels-first (C, H, W) or a vector, asked
        for by ``in.`` at ``span``."""
        while self.done < len(self.drafts):
            self.add(self.drafts[self.done])
            self.done += 1
        shape = self.shapes.get(name)
        if shape is not None:
            return channels_first_shape(shape, self.layouts[name])
        if self.why:
            # The shape pass would report the same cause; report it now, where it stops us.
            self.diags.extend(self.why)
            self.why = []
            raise Quiet
        raise Problem(
            "E223",
            f"the shape entering block `{block}` is not known",
            span,
            "the layers before the call have no shape: fix the errors reported above",
        )

    def add(self, d: Draft) -> None:
        if d.kind == "input":
            self.shapes[d.name] = d.fields["shape"]
            self.layouts[d.name] = CHANNELS_FIRST
            return
        ins = [self.shapes.get(i) for i in d.inputs]
        if d.kind in ("shortcut", REMOVED) or not ins:
            self.shapes[d.name] = ins[0] if d.kind == REMOVED and ins else None
            if self.shapes[d.name] is not None:
                self.layouts[d.name] = self.layouts[d.inputs[0]]
            return
        layouts = [self.layouts.get(i, CHANNELS_FIRST) for i in d.inputs]
        if d.kind == "add":
            # A shortcut's shape is the residual's (its other input); see the module docstring.
            known = [(s, lay) for s, lay in zip(ins, layouts) if s is not None]
            if len(known) == 1:
                ins, layouts = [known[0][0]] * 2, [known[0][1]] * 2
        if any(s is None for s in ins):
            self.shapes[d.name] = None
            return
        try:
            model = OPS[d.kind].model
            node = model(name=d.name, inputs=d.inputs, span=d.span, origin=d.origin, **d.fields)
        except ValidationError:
            self.shapes[d.name] = None  # the graph step reports it (E215)
            return
        shapes: list[ir.Shape] = ins  # type: ignore[assignment]
        layout = flow(OPS[d.kind], node, shapes, layouts, self)
        shape = None if layout is None else OPS[d.kind].shape(node, shapes, self)
        self.shapes[d.name] = shape
        if shape is not None and layout is not None:
            self.layouts[d.name] = layout if len(shape) == 3 else CHANNELS_FIRST

    # --- what the registry's shape rules ask ---------------------------------------------------

    def err(self, code: str, node: NodeBase, message: str, help: str | None = None) -> None:
        span = node.span or Span(file="<spec>", line=1, column=1, end_line=1, end_column=1)
        self.why.append(error(code, message, span, help, notes=block_notes(node.origin)))
