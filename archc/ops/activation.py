"""Activations: ``relu``, ``relu6``, ``leaky relu 0.01``, ``silu`` (``swish``), ``hardswish``,
``hardsigmoid``, ``sigmoid``, ``tanh``, ``gelu``. Each is a non-linearity (``activation``), so
defaults lines may follow layers with it and the lecture convention steps aside for it."""

from typing import Any, Literal

from archc import syntax as S
from archc.nodes import NodeBase, Shape
from archc.ops.base import Ctor, Evaluator, Stateless, same_shape
from archc.ops.layout import elementwise


class ReLU(NodeBase):
    op: Literal["relu"] = "relu"


class SiLU(NodeBase):
    """x · sigmoid(x), ``torch.nn.SiLU`` (also called swish)."""

    op: Literal["silu"] = "silu"


class _Activation(Stateless, abstract=True):
    followed = False
    activation = True
    keeps_positions = True
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    docs_args = "—"
    shape = staticmethod(same_shape)  # type: ignore[assignment]


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
    kernel_activation = "silu"
    in_place = False  # its backward reads its input
    help = "SiLU takes no arguments"

    def ctor(self, node: SiLU, x: Shape, out: Shape) -> Ctor:
        return Ctor("SiLU")

    def describe(self, node: SiLU) -> str:
        return "SiLU"


class ReLU6(NodeBase):
    """min(max(x, 0), 6), ``torch.nn.ReLU6`` (MobileNet)."""

    op: Literal["relu6"] = "relu6"


class LeakyReLU(NodeBase):
    """x for x > 0, else slope·x, ``torch.nn.LeakyReLU``."""

    op: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: float = 0.01


class Hardswish(NodeBase):
    """x · relu6(x + 3) / 6, ``torch.nn.Hardswish`` (MobileNetV3)."""

    op: Literal["hardswish"] = "hardswish"


class Hardsigmoid(NodeBase):
    """relu6(x + 3) / 6, ``torch.nn.Hardsigmoid`` (MobileNetV3's gates)."""

    op: Literal["hardsigmoid"] = "hardsigmoid"


class Sigmoid(NodeBase):
    op: Literal["sigmoid"] = "sigmoid"


class Tanh(NodeBase):
    op: Literal["tanh"] = "tanh"


class GELU(NodeBase):
    """x · Φ(x), ``torch.nn.GELU`` (exact, not the tanh approximation)."""

    op: Literal["gelu"] = "gelu"


class _Plain(_Activation, abstract=True):
    """An activation that is one ``torch.nn`` module without arguments: its ``article`` (``a``
    + title) and ``help`` (it takes no arguments) follow from its title unless it sets them."""

    module: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "title" in vars(cls):
            if "article" not in vars(cls):
                cls.article = f"a {cls.title}"
            if "help" not in vars(cls):
                cls.help = f"{cls.title} takes no arguments"
        super().__init_subclass__(**kwargs)

    def ctor(self, node: Any, x: Shape, out: Shape) -> Ctor:
        return Ctor(self.module)

    def describe(self, node: Any) -> str:
        return self.title


class ReLU6Op(_Plain):
    model = ReLU6
    module = "ReLU6"
    title = "ReLU6"
    words = ("RELU6",)
    prefix = "relu"
    kernel_activation = "relu6"
    in_place = True  # its backward reads its output's range, as ReLU's does


class LeakyReLUOp(_Activation):
    model = LeakyReLU
    title = "leaky ReLU"
    article = "a leaky ReLU"
    words = ("LEAKY RELU", "LEAKYRELU")
    slots = ("slope",)
    keywords = {"slope": "slope"}
    prefix = "relu"
    kernel_activation = "leaky_relu"
    in_place = True  # a positive slope keeps the sign, so its backward reads its output
    help = "leaky ReLU takes its negative slope: `leaky relu 0.1` (default 0.01)"
    docs_args = "negative slope `S` or `slope S` (default 0.01)"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        return {"negative_slope": ev.float_arg(o["slope"])} if "slope" in o else {}

    def ctor(self, node: LeakyReLU, x: Shape, out: Shape) -> Ctor:
        return Ctor("LeakyReLU", (node.negative_slope,))

    def describe(self, node: LeakyReLU) -> str:
        return f"leaky ReLU {node.negative_slope:g}"


class HardswishOp(_Plain):
    model = Hardswish
    module = "Hardswish"
    title = "hardswish"
    words = ("HARDSWISH", "HARD SWISH")
    prefix = "hardswish"
    kernel_activation = "hardswish"
    in_place = False  # its backward reads its input


class HardsigmoidOp(_Plain):
    model = Hardsigmoid
    module = "Hardsigmoid"
    title = "hardsigmoid"
    words = ("HARDSIGMOID", "HARD SIGMOID")
    prefix = "hardsigmoid"
    kernel_activation = "hardsigmoid"
    in_place = False


class SigmoidOp(_Plain):
    model = Sigmoid
    module = "Sigmoid"
    title = "sigmoid"
    words = ("SIGMOID",)
    prefix = "sigmoid"
    in_place = False


class TanhOp(_Plain):
    model = Tanh
    module = "Tanh"
    title = "tanh"
    words = ("TANH",)
    prefix = "tanh"
    in_place = False


class GELUOp(_Plain):
    model = GELU
    module = "GELU"
    title = "GELU"
    words = ("GELU",)
    prefix = "gelu"
    in_place = False
