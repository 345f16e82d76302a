"""The IR: a typed graph of named nodes, validated by Pydantic.

The elaborator produces a :class:`Graph`; every later stage (passes, backends) reads it and
nothing downstream re-parses text. Nodes are stored in topological order; each names its inputs.
Shapes are ``(C, H, W)`` for feature maps and ``(F,)`` for flat vectors, batch excluded.

Node names are dotted paths (``layer1.0.conv1``): the dots are the module hierarchy, and so the
prefixes of the compiled module's state_dict keys.
"""

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from archc.spans import Frame, Span

Shape = tuple[int, ...]
Pair = tuple[int, int]

# Sizes beyond this are certainly typos (a 1e9-channel conv cannot be allocated anyway) and would
# make accounting overflow into meaningless numbers.
MAX_SIZE = 1 << 24

_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


def _empty() -> list[Any]:
    # A function rather than `list`: pydantic inspects a default factory's signature, and for a
    # builtin that means parsing its text signature, once per field per model (~5 ms at import).
    return []


def _positive(value: int, what: str) -> int:
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")
    if value > MAX_SIZE:
        raise ValueError(f"{what} of {value} is larger than {MAX_SIZE}")
    return value


def _positive_pair(value: Pair, what: str) -> Pair:
    return (_positive(value[0], what), _positive(value[1], what))


class Claim(BaseModel):
    """An accounting claim written on a layer line, e.g. ``memory: 224*224*64=3.2M``.

    Either side may be absent: ``params: 0`` has only ``printed``; ``memory: 224*224*3`` only the
    arithmetic. ``value`` is the exact value of ``expression`` (an int when integral).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["memory", "params"]
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
    model_config = ConfigDict(frozen=True, extra="forbid")

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
            raise ValueError(f"node name {name!r} is not a dotted path of identifiers")
        return name


class Input(NodeBase):
    op: Literal["input"] = "input"
    shape: Shape

    @field_validator("shape")
    @classmethod
    def _sizes(cls, shape: Shape) -> Shape:
        if len(shape) not in (1, 3):
            raise ValueError("input shape must be [C, H, W] or [F]")
        return tuple(_positive(s, "input size") for s in shape)


class Conv(NodeBase):
    op: Literal["conv"] = "conv"
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    bias: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> "Conv":
        _positive(self.out_channels, "number of filters")
        _positive_pair(self.kernel, "kernel size")
        _positive_pair(self.stride, "stride")
        if min(self.padding) < 0 or max(self.padding) > MAX_SIZE:
            raise ValueError(f"padding must be between 0 and {MAX_SIZE}")
        return self


class _Pool(NodeBase):
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> "_Pool":
        _positive_pair(self.kernel, "pool size")
        _positive_pair(self.stride, "stride")
        for k, p in zip(self.kernel, self.padding):
            if p < 0 or 2 * p > k:
                raise ValueError(f"pool padding {p} must be between 0 and half the pool size {k}")
        return self


class MaxPool(_Pool):
    op: Literal["maxpool"] = "maxpool"


class AvgPool(_Pool):
    op: Literal["avgpool"] = "avgpool"
    count_include_pad: bool = True


class GlobalAvgPool(NodeBase):
    """Average over all spatial positions: (C, H, W) -> (C, 1, 1)."""

    op: Literal["global_avgpool"] = "global_avgpool"


class AdaptiveAvgPool(NodeBase):
    """torchvision's ``AdaptiveAvgPool2d(output_size)``."""

    op: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    output_size: Pair

    @field_validator("output_size")
    @classmethod
    def _sizes(cls, v: Pair) -> Pair:
        return _positive_pair(v, "output size")


class LRN(NodeBase):
    """Local response normalisation across channels, as ``torch.nn.LocalResponseNorm``."""

    op: Literal["lrn"] = "lrn"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    @model_validator(mode="after")
    def _ranges(self) -> "LRN":
        _positive(self.size, "LRN size")
        if self.alpha < 0 or self.beta < 0 or self.k <= 0:
            raise ValueError("LRN needs alpha >= 0, beta >= 0 and k > 0")
        return self


class BatchNorm(NodeBase):
    op: Literal["batchnorm"] = "batchnorm"
    eps: float = 1e-5
    momentum: float = 0.1

    @model_validator(mode="after")
    def _ranges(self) -> "BatchNorm":
        if not 0 < self.eps < 1:
            raise ValueError(f"BN eps must be between 0 and 1, got {self.eps}")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"BN momentum must be between 0 and 1, got {self.momentum}")
        return self


class ReLU(NodeBase):
    op: Literal["relu"] = "relu"


class Dropout(NodeBase):
    op: Literal["dropout"] = "dropout"
    p: float = 0.5

    @field_validator("p")
    @classmethod
    def _probability(cls, p: float) -> float:
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        return p


class Flatten(NodeBase):
    op: Literal["flatten"] = "flatten"


class Linear(NodeBase):
    """A fully connected layer. A (C, H, W) input is flattened first, as torchvision does."""

    op: Literal["linear"] = "linear"
    out_features: int
    bias: bool = True

    @field_validator("out_features")
    @classmethod
    def _size(cls, v: int) -> int:
        return _positive(v, "number of neurons")


class Concat(NodeBase):
    """Channel concatenation of two or more inputs (Inception)."""

    op: Literal["concat"] = "concat"


class Add(NodeBase):
    """Element-wise sum of two inputs (a residual join)."""

    op: Literal["add"] = "add"


class Shortcut(NodeBase):
    """The shortcut path of a residual block.

    ``auto`` is resolved by shape inference: identity when the shapes on both sides of the add
    agree, else a projection. A projection is a 1x1 conv (stride = the spatial reduction, no
    bias) followed by BN, named ``<name>.0`` and ``<name>.1`` like torchvision's ``downsample``.
    """

    op: Literal["shortcut"] = "shortcut"
    mode: Literal["auto", "identity", "projection"] = "auto"
    eps: float = 1e-5


class Softmax(NodeBase):
    op: Literal["softmax"] = "softmax"


Node = Annotated[
    Input
    | Conv
    | MaxPool
    | AvgPool
    | GlobalAvgPool
    | AdaptiveAvgPool
    | LRN
    | BatchNorm
    | ReLU
    | Dropout
    | Flatten
    | Linear
    | Concat
    | Add
    | Shortcut
    | Softmax,
    Field(discriminator="op"),
]

Init = Literal["kaiming", "xavier", "torchvision"]


class Graph(BaseModel):
    """A whole network: nodes in topological order, the first one the input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    file: str = "<string>"
    init: Init = "kaiming"
    nodes: list[Node]
    output: str

    @model_validator(mode="after")
    def _well_formed(self) -> "Graph":
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if (i == 0) != isinstance(node, Input):
                raise ValueError("the first node, and only the first, must be the input")
            if node.name in seen:
                raise ValueError(f"duplicate node name {node.name!r}")
            for src in node.inputs:
                if src not in seen:
                    raise ValueError(f"node {node.name!r} reads {src!r} before it is defined")
            arity = {"input": (0, 0), "concat": (2, None), "add": (2, 2)}.get(node.op, (1, 1))
            lo, hi = arity
            if len(node.inputs) < lo or (hi is not None and len(node.inputs) > hi):
                raise ValueError(f"node {node.name!r} ({node.op}) has {len(node.inputs)} inputs")
            seen.add(node.name)
        if self.output not in seen:
            raise ValueError(f"output {self.output!r} is not a node")
        return self

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Graph":
        return cls.model_validate_json(text)


def json_schema() -> str:
    """The JSON schema of :class:`Graph`, as ``archc schema`` prints it."""
    return json.dumps(Graph.model_json_schema(), indent=2)


NodeAdapter: TypeAdapter[Node] = TypeAdapter(Node)
