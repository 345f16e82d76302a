"""The statement registry: one :class:`Construct` per statement of the language (archc.syntax's
``Stmt``), which every stage asks instead of testing a statement's class.

The parser reads a header line by asking each construct in turn (:func:`header`); the walker
elaborates a statement with :func:`construct_of`'s ``elaborate``; the editor outlines it with
its ``outline``. A statement class with no construct fails here, at import.

Adding a construct: its syntax class in archc.syntax (and in the ``Stmt`` union), its header
in grammar.lark's ``HEADER`` terminal when it opens a body, and one :class:`Construct` subclass
in this package defining every facet of archc.constructs.base.REQUIRED; the import-time check
names any facet left out, and tests/test_constructs.py lists every header form.
"""

from __future__ import annotations

from typing import Any, get_args

from archc import syntax as S
from archc.constructs import lines, names, sections
from archc.constructs.base import REGISTERED, Construct, OpenBranches, OpenResidual, Outline

CONSTRUCTS: dict[type, Construct] = {cls.node: cls() for cls in REGISTERED}
"""Each statement class of archc.syntax and its construct."""

_unregistered = [t.__name__ for t in get_args(S.Stmt) if t not in CONSTRUCTS]
if _unregistered:
    raise TypeError(f"statements with no construct: {', '.join(_unregistered)}")

HEADERS = [c for c in CONSTRUCTS.values() if c.headers]
"""The constructs a header line may open."""


def construct_of(st: S.Stmt) -> Construct:
    return CONSTRUCTS[type(st)]


def header(p: Any, line: Any, words: list[str]) -> S.Stmt:
    """The statement of a header line (``line.header``: its words), read by the construct
    whose header it is. The grammar's header terminals make no other."""
    lower = [w.lower() for w in words]
    for construct in HEADERS:
        st = construct.parse(p, line, words, lower)
        if st is not None:
            return st
    raise AssertionError(lower)


__all__ = [
    "CONSTRUCTS",
    "HEADERS",
    "Construct",
    "OpenBranches",
    "OpenResidual",
    "Outline",
    "construct_of",
    "header",
    "lines",
    "names",
    "sections",
]
