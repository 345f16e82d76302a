"""What a body is elaborated in (:class:`Ctx`), and the limits of an expansion."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archc.elaborate.defaults import Convention, Defaults
from archc.elaborate.values import EntryShape, Values
from archc.spans import Frame

MAX_REPEAT = 1000
MAX_NODES = 100_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class Ctx:
    """What a body is elaborated in: its parameters, defaults and convention, and the chain
    of block calls that led to it."""

    env: dict[str, Fraction]
    defaults: Defaults
    convention: Convention
    frames: tuple[Frame, ...] = ()
    stack: tuple[str, ...] = ()
    block: str | None = None
    entry: EntryShape | None = None
    """The shape of the value entering the block call (``in.c``); None outside a block."""

    @property
    def values(self) -> Values:
        return Values(self.env, self.block, self.entry)
