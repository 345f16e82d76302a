"""Activations: ``relu``, ``silu`` (``swish``). Each is a non-linearity (``activation``), so
defaults lines may follow layers with it and the lecture convention steps aside for it."""

from typing import Any, Literal

from archc import syntax as S
from archc.nodes import NodeBase, Shape
from archc.ops.base import NO_COSTS, Costs, Ctor, Evaluator, Op, same_shape


class ReLU(NodeBase):
    op: Literal["relu"] = "relu"


class SiLU(NodeBase):
    """x · sigmoid(x), ``torch.nn.SiLU`` (also called swish)."""

    op: Literal["silu"] = "silu"


class _Activation(Op, abstract=True):
    followed = False
    activation = True
    keeps_positions = True
    docs_args = "—"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {}

    def costs(self, node: Any, x: Shape, out: Shape) -> Costs:
        return NO_COSTS

    def window(self, node: Any, x: Shape, height: int) -> None:
        return None


class ReLUOp(_Activation):
    model = ReLU
    title = "ReLU"
    article = "a ReLU"
    words = ("RELU",)
    prefix = "relu"
    kernel_activation = "relu"
    in_place = True  # its backward reads its output, so it may overwrite its input
    help = "ReLU takes no arguments"

    def ctor(self, node: ReLU, x: Shape, out: Shape) -> Ctor:
        return Ctor("ReLU")

    def describe(self, node: ReLU) -> str:
        return "ReLU"


class SiLUOp(_Activation):
    model = SiLU
    title = "SiLU"
    article = "a SiLU"
    words = ("SILU", "SWISH")
    prefix = "silu"
    in_place = False  # its backward reads its input
    help = "SiLU takes no arguments"

    def ctor(self, node: SiLU, x: Shape, out: Shape) -> Ctor:
        return Ctor("SiLU")

    def describe(self, node: SiLU) -> str:
        return "SiLU"
