"""W221: a stochastic depth that is not on the residual branch of an add.

Stochastic depth (torchvision.ops.StochasticDepth, mode "row") zeroes a whole sample's tensor
with probability P in training. On a residual branch that drops the branch and the add passes
the shortcut on: the block is skipped for that sample. Anywhere else nothing passes around it,
so it drops the network's whole path for that sample — almost never what the author meant.

A stochastic depth is on a residual branch when some add after it reads one input that its
output reaches and one that it does not reach (the shortcut). Runs on the elaborated graph,
whose ``Shortcut`` nodes read the residual's input.
"""

from __future__ import annotations

from archc import ir
from archc.diagnostics import Diagnostic, block_notes, warning

HELP = (
    "put it last in a `residual:` body, before its `add`, so that a dropped sample keeps "
    "the shortcut"
)


def stray_stochastic_depth(graph: ir.Graph) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for i, node in enumerate(graph.nodes):
        if node.op != "stochastic_depth" or node.span is None:
            continue
        if not _on_a_residual_branch(graph.nodes[i + 1 :], node.name):
            found.append(
                warning(
                    "W221",
                    "this stochastic depth is not on the residual branch of an add: in "
                    "training it drops a sample's whole path, not a branch beside a shortcut",
                    node.span,
                    HELP,
                    notes=block_notes(node.origin),
                )
            )
    return found


def _on_a_residual_branch(after: list[ir.Node], start: str) -> bool:
    reached = {start}
    for node in after:  # topological order: every input comes before its reader
        if not any(src in reached for src in node.inputs):
            continue
        if node.op == "add" and not all(src in reached for src in node.inputs):
            return True
        reached.add(node.name)
    return False
