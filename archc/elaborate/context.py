"""What a body is elaborated in (:class:`Ctx`), and the limits of an expansion."""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.elaborate.defaults import Convention, Defaults
from archc.elaborate.functions import Value
from archc.elaborate.values import EntryShape, Values
from archc.spans import Frame, Span

MAX_REPEAT = 1000
MAX_NODES = 100_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class Ctx:
    """What a body is elaborated in: its parameters, defaults and convention, and the chain
    of block calls that led to it."""

    env: dict[str, Value]
    """The names visible here: block parameters, `let`s, tables, `for` targets, the file's
    constants."""
    defaults: Defaults
    convention: Convention
    frames: tuple[Frame, ...] = ()
    stack: tuple[str, ...] = ()
    block: str | None = None
    entry: EntryShape | None = None
    """The shape of the value entering the block call (``in.c``); None outside a block."""
    defined: dict[str, Span] = field(default_factory=dict)
    """Where each name of ``env`` is defined, for the error of a second definition (E228)."""

    @property
    def values(self) -> Values:
        return Values(self.env, self.block, self.entry)
