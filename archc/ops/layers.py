"""Fully connected layers and the ops around them: ``FC 4096``, ``FC-1000``, ``dropout 0.5``,
``flatten``, ``softmax``."""

import math
import re
from fractions import Fraction
from typing import Any, Literal

from pydantic import field_validator

from archc import syntax as S
from archc.nodes import NodeBase, Shape, positive
from archc.numbers import fmt_int
from archc.ops.base import NO_COSTS, Costs, Ctor, Evaluator, Op, ShapeContext, same_shape
from archc.spans import Span


class Linear(NodeBase):
    """A fully connected layer. A (C, H, W) input is flattened first, as torchvision does."""

    op: Literal["linear"] = "linear"
    out_features: int
    bias: bool = True

    @field_validator("out_features")
    @classmethod
    def _size(cls, v: int) -> int:
        return positive(v, "number of neurons")


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


class Softmax(NodeBase):
    op: Literal["softmax"] = "softmax"


def _paper_fc(m: re.Match[str], span: Span) -> dict[str, S.Arg]:
    """``FC-4096`` (the VGG paper's columns)."""
    return {"features": S.Arg(S.Num(Fraction(int(m[1])), m[1], span), span)}


class LinearOp(Op):
    model = Linear
    title = "fully connected"
    article = "an FC"
    words = ("FC", "LINEAR")
    slots = ("features",)
    paper_forms = ((re.compile(r"(?:fc|linear)-(\d+)", re.I), _paper_fc),)
    prefix = "fc"
    followed = True
    activation = False
    in_place = False
    keeps_positions = False
    help = "FC takes: N (neurons), no bias"
    docs_args = "`N` neurons, `no bias`"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        declared = layer.declared
        if "features" in layer.options:
            n = ev.int_arg(layer.options["features"], "number of neurons")
        elif declared is not None:
            n = ev.check_size(declared.dims[-1], "number of neurons", declared.span)
        else:
            raise ev.missing(
                "this FC layer has no neuron count",
                layer.span,
                "write it (`FC 4096`) or declare the output shape (`-> [4096]`)",
            )
        return {"out_features": n, "bias": "no_bias" not in layer.flags}

    def shape(self, node: Linear, ins: list[Shape], ctx: ShapeContext) -> Shape:
        return (node.out_features,)

    def costs(self, node: Linear, x: Shape, out: Shape) -> Costs:
        weights = math.prod(x) * node.out_features
        return Costs(weights, node.out_features if node.bias else 0, 0, weights)

    def window(self, node: Linear, x: Shape, height: int) -> tuple[int, int]:
        # A fully connected layer sees its whole input: a window the size of the map.
        return height, 1

    def ctor(self, node: Linear, x: Shape, out: Shape) -> Ctor:
        kwargs = {} if node.bias else {"bias": False}
        return Ctor(
            "Linear", (math.prod(x), node.out_features), kwargs, flatten=len(x) == 3, factory=True
        )

    def describe(self, node: Linear) -> str:
        return f"FC {node.out_features}" + ("" if node.bias else " no bias")

    def weights_formula(self, node: Linear, weights: int) -> str:
        return f"{weights // node.out_features}·{node.out_features} = {fmt_int(weights)}"


class DropoutOp(Op):
    model = Dropout
    transparent = True
    title = "dropout"
    article = "a dropout"
    words = ("DROPOUT",)
    slots = ("p",)
    keywords = {"p": "p"}
    prefix = "dropout"
    followed = False
    activation = False
    in_place = True  # the identity at inference
    keeps_positions = True
    help = "dropout takes: P or p P"
    docs_args = "`P` or `p P` (default 0.5)"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {key: ev.float_arg(a) for key, a in layer.options.items()}

    def costs(self, node: Dropout, x: Shape, out: Shape) -> Costs:
        return NO_COSTS

    def window(self, node: Dropout, x: Shape, height: int) -> None:
        return None

    def ctor(self, node: Dropout, x: Shape, out: Shape) -> Ctor:
        return Ctor("Dropout", (), {"p": node.p})

    def describe(self, node: Dropout) -> str:
        return f"dropout {node.p:g}"


class FlattenOp(Op):
    model = Flatten
    transparent = True
    title = "flatten"
    article = "a flatten"
    words = ("FLATTEN",)
    prefix = "flatten"
    followed = False
    activation = False
    in_place = True  # a view
    keeps_positions = True
    help = "flatten takes no arguments"
    docs_args = "—"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {}

    def shape(self, node: Flatten, ins: list[Shape], ctx: ShapeContext) -> Shape:
        return (math.prod(ins[0]),)

    def costs(self, node: Flatten, x: Shape, out: Shape) -> Costs:
        return NO_COSTS

    def window(self, node: Flatten, x: Shape, height: int) -> None:
        return None

    def ctor(self, node: Flatten, x: Shape, out: Shape) -> Ctor:
        return Ctor("Flatten")

    def describe(self, node: Flatten) -> str:
        return "flatten"


class SoftmaxOp(Op):
    model = Softmax
    title = "softmax"
    article = "a softmax"
    words = ("SOFTMAX", "SOFT-MAX")
    prefix = "softmax"
    followed = False
    activation = False
    in_place = False
    keeps_positions = True
    help = "softmax takes no arguments"
    docs_args = "—"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {}

    def costs(self, node: Softmax, x: Shape, out: Shape) -> Costs:
        return NO_COSTS

    def window(self, node: Softmax, x: Shape, height: int) -> None:
        return None

    def ctor(self, node: Softmax, x: Shape, out: Shape) -> Ctor:
        return Ctor("Softmax", (), {"dim": 1})

    def describe(self, node: Softmax) -> str:
        return "softmax"


class Identity(NodeBase):
    """The input itself: a branch that passes its input through (DenseNet's concatenations)."""

    op: Literal["identity"] = "identity"


class IdentityOp(Op):
    model = Identity
    title = "identity"
    article = "an identity"
    words = ("IDENTITY",)
    prefix = "identity"
    followed = False
    activation = False
    transparent = True
    in_place = True  # the same tensor
    keeps_positions = True
    help = "identity takes no arguments"
    docs_args = "— (passes its input on: a branch of its own)"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {}

    def costs(self, node: Identity, x: Shape, out: Shape) -> Costs:
        return NO_COSTS

    def window(self, node: Identity, x: Shape, height: int) -> None:
        return None

    def ctor(self, node: Identity, x: Shape, out: Shape) -> Ctor:
        return Ctor("Identity")

    def describe(self, node: Identity) -> str:
        return "identity"
