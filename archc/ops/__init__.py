"""The op registry: every layer kind archc knows, one :class:`~archc.ops.base.Op` each.

Every stage asks this registry — the parser for words, slots and keywords, the elaborator for
fields, names and traits, the passes for shapes and costs, the backends for modules, the report
and docs for words. Adding a layer kind is one entry in one of these modules (plus its tests);
tests/test_ops.py checks that every entry answers for every facet.
"""

from __future__ import annotations

from archc.nodes import NodeBase
from archc.ops import activation, conv, join, layers, norm, pool
from archc.ops.base import REGISTERED, Costs, Ctor, Op

__all__ = [
    "OPS",
    "WORDS",
    "LONGEST_WORD",
    "Costs",
    "Ctor",
    "Op",
    "by_word",
    "kind_table",
    "name_table",
    "op_of",
]

# Importing an entry's module registers its ops; this is the order of docs/language.md's kind
# table (and of the IR's union), definition order within a module.
_MODULES = [m.__name__ for m in (conv, pool, norm, activation, layers, join)]

OPS: dict[str, Op] = {
    cls.kind: cls() for cls in sorted(REGISTERED, key=lambda c: _MODULES.index(c.__module__))
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


def kind_table() -> str:
    """docs/language.md's table of layer kinds (tests/test_ops.py keeps the doc equal to it;
    print it with ``python -c "import archc.ops; print(archc.ops.kind_table())"``)."""
    rows = ["| kind | written | arguments | IR op |", "|---|---|---|---|"]
    return "\n".join(rows + [op.docs_row() for op in OPS.values()])


def name_table() -> str:
    """docs/language.md's table of generated-name prefixes, one row per prefix."""
    prefixes: dict[str, list[str]] = {}
    for op in OPS.values():
        prefixes.setdefault(op.prefix, []).append(op.title)
    rows = ["| kinds | short name |", "|---|---|"]
    return "\n".join(rows + [f"| {' / '.join(t)} | `{p}` |" for p, t in prefixes.items()])
