"""Drafts -> the IR graph: the last step of elaboration.

Nodes are collected as mutable drafts first and validated as IR models here, at the end, so
that a later line can still attach a declared shape or remove the last FC's default followers.
A value the IR rejects (E215) is reported at its line with the block notes of its origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from archc import ir
from archc.diagnostics import Diagnostic, block_notes, error
from archc.elaborate.defaults import Convention
from archc.ops import OPS
from archc.spans import Frame, Span

# The nodes that are no layer kind of the registry. The elaborated graph keeps a residual's
# shortcut as one node, which shape inference later lowers (see archc.elaborate).
STRUCTURAL: dict[str, type[ir.NodeBase]] = {"input": ir.Input, "shortcut": ir.Shortcut}

REMOVED = "removed"
"""The kind of a draft taken out again (the last FC's default followers)."""


@dataclass
class Draft:
    kind: str
    name: str
    inputs: list[str]
    span: Span | None
    origin: list[Frame]
    fields: dict[str, Any] = field(default_factory=dict)
    declared: ir.DeclaredShape | None = None
    claims: list[ir.Claim] = field(default_factory=list)
    follower_of: str | None = None
    """For a default follower of an FC: that FC (the last FC's followers are removed)."""
    opted_out: bool = False
    """Written with `no relu`: the author wants no activation after it."""
    convention: Convention | None = None
    """The lecture convention where the layer was written (for W219)."""


def renames(drafts: list[Draft]) -> dict[str, str]:
    """Removed draft -> the node its consumers read instead."""
    return {d.name: d.follower_of for d in drafts if d.kind == REMOVED and d.follower_of}


def build_graph(
    drafts: list[Draft],
    file: str,
    name: str,
    init: str,
    output: str,
    diags: list[Diagnostic],
    totals: list[ir.Claim],
    aux: list[str] | None = None,
) -> ir.Graph | None:
    renamed = renames(drafts)
    nodes: list[ir.Node] = []
    for d in drafts:
        if d.kind == REMOVED:
            continue
        inputs = [renamed.get(i, i) for i in d.inputs]
        cls = OPS[d.kind].model if d.kind in OPS else STRUCTURAL[d.kind]
        try:
            nodes.append(
                cls(
                    name=d.name,
                    inputs=inputs,
                    span=d.span,
                    origin=d.origin,
                    declared=d.declared,
                    claims=d.claims,
                    **d.fields,
                )
            )
        except ValidationError as e:
            msg = e.errors()[0]["msg"].removeprefix("Value error, ")
            span = d.span or _start(file)
            help = "docs/language.md gives each layer's arguments and their ranges"
            diags.append(error("E215", msg, span, help, notes=block_notes(d.origin)))
    if any(d.severity == "error" for d in diags):
        return None
    output = renamed.get(output, output)
    try:
        return ir.Graph.assemble(
            name=name,
            file=file,
            init=init,
            nodes=nodes,
            output=output,
            totals=totals,  # type: ignore[arg-type]
            aux=[renamed.get(a, a) for a in aux or ()],
        )
    except ValueError as e:
        diags.append(error("E215", f"the network is not well formed: {e}", _start(file)))
        return None


def _start(file: str) -> Span:
    return Span(file=file, line=1, column=1, end_line=1, end_column=1)
