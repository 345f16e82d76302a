"""The IR: a typed graph of named nodes, validated by Pydantic.

The elaborator produces a :class:`Graph`; every later stage (passes, backends) reads it and
nothing downstream re-parses text. Nodes are stored in topological order; each names its inputs.
Shapes are ``(C, H, W)`` for feature maps and ``(F,)`` for flat vectors, batch excluded.

Node names are dotted paths (``layer1.0.conv1``): the dots are the module hierarchy, and so the
prefixes of the compiled module's state_dict keys.
"""

import json
from functools import reduce
from operator import or_
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from archc.nodes import (
    MAX_SIZE,
    Claim,
    DeclaredShape,
    NodeBase,
    Pair,
    Shape,
    _empty,
    fmt_shape,
    positive,
)
from archc.ops import OPS
from archc.ops.activation import ReLU
from archc.ops.conv import Conv
from archc.ops.join import Add, Concat
from archc.ops.layers import Dropout, Flatten, Linear, Softmax
from archc.ops.norm import LRN, BatchNorm
from archc.ops.pool import AdaptiveAvgPool, AvgPool, GlobalAvgPool, MaxPool
from archc.recipe_ir import Recipe

__all__ = [
    "MAX_SIZE",
    "AdaptiveAvgPool",
    "Add",
    "AvgPool",
    "BatchNorm",
    "Claim",
    "Concat",
    "Conv",
    "DeclaredShape",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "Graph",
    "Input",
    "LRN",
    "Linear",
    "MaxPool",
    "Node",
    "NodeBase",
    "Pair",
    "ReLU",
    "Recipe",
    "Shape",
    "Shortcut",
    "Softmax",
    "fmt_shape",
    "json_schema",
]


class Input(NodeBase):
    op: Literal["input"] = "input"
    shape: Shape

    @field_validator("shape")
    @classmethod
    def _sizes(cls, shape: Shape) -> Shape:
        if len(shape) not in (1, 3):
            raise ValueError("input shape must be [C, H, W] or [F]")
        return tuple(positive(s, "input size") for s in shape)


class Shortcut(NodeBase):
    """The shortcut path of a residual block.

    ``auto`` is resolved by shape inference: identity when the shapes on both sides of the add
    agree, else a projection. A projection is a 1x1 conv (stride = the spatial reduction, no
    bias) followed by BN, named ``<name>.0`` and ``<name>.1`` like torchvision's ``downsample``.
    """

    op: Literal["shortcut"] = "shortcut"
    mode: Literal["auto", "identity", "projection"] = "auto"
    eps: float = 1e-5


# Structural nodes (the input, a residual's shortcut before shape inference resolves it) and
# every layer kind of the registry.
Node = Annotated[
    reduce(or_, [Input, *(op.model for op in OPS.values()), Shortcut]),  # type: ignore[valid-type]
    Field(discriminator="op"),
]

_ARITY = {"input": (0, 0), "shortcut": (1, 1)}

Init = Literal["kaiming", "xavier", "torchvision"]


def well_formed(nodes: list[Node], output: str, aux: list[str] | tuple[str, ...] = ()) -> None:
    """Raises ``ValueError`` unless ``nodes`` are in topological order, the input first and only
    there, names unique, each op with its number of inputs, and ``output`` one of them, as each
    auxiliary output is (none of them the output or the input, each once)."""
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if (i == 0) != isinstance(node, Input):
            raise ValueError("the first node, and only the first, must be the input")
        if node.name in seen:
            raise ValueError(f"duplicate node name {node.name!r}")
        for src in node.inputs:
            if src not in seen:
                raise ValueError(f"node {node.name!r} reads {src!r} before it is defined")
        lo, hi = OPS[node.op].arity if node.op in OPS else _ARITY[node.op]
        if len(node.inputs) < lo or (hi is not None and len(node.inputs) > hi):
            raise ValueError(f"node {node.name!r} ({node.op}) has {len(node.inputs)} inputs")
        seen.add(node.name)
    if output not in seen:
        raise ValueError(f"output {output!r} is not a node")
    for name in aux:
        if name not in seen or name == nodes[0].name:
            raise ValueError(f"auxiliary output {name!r} is not a layer")
        if name == output or list(aux).count(name) > 1:
            raise ValueError(f"auxiliary output {name!r} is given twice")


class Graph(BaseModel):
    """A whole network: nodes in topological order, the first one the input.

    Validation schemas are built on first use (``defer_build``): the elaborator validates each
    node by its own model and assembles the graph with :meth:`assemble`, so ``archc lint``
    builds the schemas of the kinds a spec uses, not the union of every kind."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    file: str = "<string>"
    init: Init = "kaiming"
    nodes: list[Node]
    output: str
    totals: list[Claim] = Field(default_factory=_empty)
    """Claims on the whole network's totals (a lecture's ``TOTAL params:`` line)."""
    recipe: Recipe | None = None
    """The ``train:`` section's training recipe; None for a spec without one."""
    aux: list[str] = Field(default_factory=list)
    """The outputs of the auxiliary classifiers (``aux NAME:``), in the order the module
    returns them after the main output in training mode; left out of the JSON when empty, so a
    network without them reads and prints as before they existed."""

    @model_validator(mode="after")
    def _well_formed(self) -> "Graph":
        well_formed(self.nodes, self.output, self.aux)
        return self

    @model_serializer(mode="wrap")
    def _without_empty_aux(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("aux"):
            data.pop("aux", None)
        return data

    @classmethod
    def assemble(
        cls,
        *,
        name: str,
        file: str,
        init: Init,
        nodes: list[Node],
        output: str,
        totals: list[Claim],
        aux: list[str] | None = None,
    ) -> "Graph":
        """The graph of nodes validated one by one (raises ``ValueError`` when it is not well
        formed), without validating them again as members of the union of every kind."""
        well_formed(nodes, output, aux or ())
        return cls.model_construct(
            name=name,
            file=file,
            init=init,
            nodes=nodes,
            output=output,
            totals=totals,
            aux=list(aux or ()),
        )

    def node(self, name: str) -> Node:
        """The node named ``name`` (``KeyError`` if none). Looked up in an index of the nodes
        built on the first call: a scan per lookup made compiling 50,000 block instances
        quadratic (issue 24). The index lives in the instance's ``__dict__``, which equality
        ignores (a private attribute would make a graph that was looked into differ from its
        JSON round trip), tied to the list of nodes it indexes, and every hit is checked, so a
        graph whose nodes were replaced or changed is indexed again, never answered wrongly."""
        nodes = self.nodes
        cached = self.__dict__.get("_node_index")
        for attempt in range(2):
            if attempt or cached is None or cached[0] is not nodes:
                cached = (nodes, {n.name: i for i, n in enumerate(nodes)})
                self.__dict__["_node_index"] = cached
            i = cached[1].get(name)
            if i is not None and i < len(nodes) and nodes[i].name == name:
                return nodes[i]
        raise KeyError(name)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Graph":
        return cls.model_validate_json(text)


def json_schema() -> str:
    """The JSON schema of :class:`Graph`, as ``archc schema`` prints it."""
    return json.dumps(Graph.model_json_schema(), indent=2)
