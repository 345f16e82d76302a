"""The IR's building blocks, shared by :mod:`archc.ir` and the op registry (:mod:`archc.ops`).

Each layer kind's IR model is defined beside the rest of what archc knows of that kind, in
``archc/ops/``; they all derive from :class:`NodeBase` here. :mod:`archc.ir` assembles the graph.
"""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from archc.spans import Frame, Span

Shape = tuple[int, ...]
Pair = tuple[int, int]

# Sizes beyond this are certainly typos (a 1e9-channel conv cannot be allocated anyway) and would
# make accounting overflow into meaningless numbers.
MAX_SIZE = 1 << 24

_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|[0-9]+")  # `-`: a quoted name, "block1-0"


def _empty() -> list[Any]:
    # A function rather than `list`: pydantic inspects a default factory's signature, and for a
    # builtin that means parsing its text signature, once per field per model (~5 ms at import).
    return []


def positive(value: int, what: str) -> int:
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")
    if value > MAX_SIZE:
        raise ValueError(f"{what} of {value} is larger than {MAX_SIZE}")
    return value


def positive_pair(value: Pair, what: str) -> Pair:
    return (positive(value[0], what), positive(value[1], what))


class Claim(BaseModel):
    """An accounting claim written on a layer line, e.g. ``memory: 224*224*64=3.2M``.

    Either side may be absent: ``params: 0`` has only ``printed``; ``memory: 224*224*3`` only the
    arithmetic. ``value`` is the exact value of ``expression`` (an int when integral). A paper's
    table (archc.table) also claims a row's ``ops`` (multiply-accumulates) and ``depth`` (weight
    layers on its longest path).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["memory", "params", "ops", "depth"]
    expression: str | None = None
    value: int | float | None = None
    printed: str | None = None
    span: Span


class DeclaredShape(BaseModel):
    """A shape the author wrote for a layer's output, e.g. ``[55x55x96]`` as ``(96, 55, 55)``."""

    model_config = ConfigDict(frozen=True)

    shape: Shape
    span: Span


class NodeBase(BaseModel):
    # Schemas are built on first use: a spec builds those of the kinds it uses (archc.ir.Graph).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    inputs: list[str] = Field(default_factory=_empty)
    span: Span | None = None
    origin: list[Frame] = Field(default_factory=_empty)
    declared: DeclaredShape | None = None
    claims: list[Claim] = Field(default_factory=_empty)

    @field_validator("name")
    @classmethod
    def _dotted_identifier(cls, name: str) -> str:
        parts = name.split(".")
        if not all(_NAME_PART.fullmatch(p) for p in parts):
            raise ValueError(
                f"node name {name!r} is not a dotted path of identifiers (`-` allowed after "
                "the first character) and numbers"
            )
        return name


def fmt_shape(shape: Shape) -> str:
    """A shape the way specs write it: ``[55x55x96]`` (H x W x C) or ``[4096]``."""
    if len(shape) == 3:
        c, h, w = shape
        return f"[{h}x{w}x{c}]"
    return "[" + "x".join(str(s) for s in shape) + "]"


def missing_facets(cls: type, required: tuple[str, ...]) -> list[str]:
    """The facets of a registry (ops, constructs) that ``cls`` and its bases below the
    registry's root define nowhere: a registered class must define them all."""
    return [f for f in required if not any(f in vars(k) for k in cls.__mro__[:-2])]
