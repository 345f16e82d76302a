"""The op registry: every layer kind archc knows, one :class:`~archc.ops.base.Op` each.

Every stage asks this registry — the parser for words, slots and keywords, the elaborator for
fields, names and traits, the passes for shapes and costs, the backends for modules, the report
and docs for words. Adding a layer kind is one entry in one of these modules (plus its tests);
tests/test_ops.py checks that every entry answers for every facet.
"""

from __future__ import annotations

from archc.nodes import NodeBase
from archc.ops.activation import ReLUOp, SiLUOp
from archc.ops.base import Costs, Ctor, Op
from archc.ops.conv import ConvOp
from archc.ops.join import AddOp, ConcatOp
from archc.ops.layers import DropoutOp, FlattenOp, LinearOp, SoftmaxOp
from archc.ops.norm import BatchNormOp, LRNOp
from archc.ops.pool import AdaptiveAvgPoolOp, AvgPoolOp, GlobalAvgPoolOp, MaxPoolOp

__all__ = ["OPS", "Costs", "Ctor", "Op", "by_word", "op_of", "LONGEST_WORD"]

# In the order of docs/language.md's kind table.
OPS: dict[str, Op] = {
    op.kind: op
    for op in (
        ConvOp(),
        MaxPoolOp(),
        AvgPoolOp(),
        GlobalAvgPoolOp(),
        AdaptiveAvgPoolOp(),
        LRNOp(),
        BatchNormOp(),
        ReLUOp(),
        SiLUOp(),
        DropoutOp(),
        FlattenOp(),
        LinearOp(),
        SoftmaxOp(),
        ConcatOp(),
        AddOp(),
    )
}


def _words() -> dict[str, Op]:
    table: dict[str, Op] = {}
    for op in OPS.values():
        for word in op.words:
            if word in table:
                raise TypeError(f"`{word}` names both {table[word].kind} and {op.kind}")
            table[word] = op
    return table


WORDS: dict[str, Op] = _words()
"""Surface word (upper case, single spaces) -> op."""
LONGEST_WORD = max(len(w.split()) for w in WORDS)


def by_word(phrase: str) -> Op | None:
    """The op a phrase names (``max pool``, ``MAXPOOL``), case-insensitively."""
    return WORDS.get(" ".join(phrase.split()).upper())


def op_of(node: NodeBase) -> Op:
    """The registry entry of an IR node (KeyError for structural nodes: input, shortcut)."""
    return OPS[node.op]  # type: ignore[attr-defined]
