"""Normalisation: ``NORM1: Normalization layer`` / ``LRN size 5`` and ``BN eps 0.001``."""

from typing import Any, Literal

from pydantic import Field, model_validator

from archc import syntax as S
from archc.nodes import NodeBase, Shape, positive
from archc.ops import helpers
from archc.ops.base import (
    Costs,
    Ctor,
    Evaluator,
    NoCosts,
    NoWindow,
    ShapeContext,
    float_fields,
    map_shape,
)
from archc.ops.layout import CHANNELS_FIRST, CHANNELS_LAST, Layout, channels_first


class LRN(NodeBase):
    """Local response normalisation across channels, as ``torch.nn.LocalResponseNorm``."""

    op: Literal["lrn"] = "lrn"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    @model_validator(mode="after")
    def _ranges(self) -> "LRN":
        positive(self.size, "LRN size")
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


class LRNOp(NoCosts, NoWindow):
    model = LRN
    title = "LRN"
    article = "an LRN"
    words = ("NORM", "LRN")
    slots = ("size",)
    keywords = {"size": "size", "alpha": "alpha", "beta": "beta", "k": "k"}
    prefix = "norm"
    followed = False
    activation = False
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = False
    help = "LRN takes: size N, alpha A, beta B, k K"
    docs_args = (
        "`size N`, `alpha A`, `beta B`, `k K` (defaults 5, 1e-4, 0.75, 2; torch's convention: "
        "alpha is divided by size)"
    )
    shape = staticmethod(map_shape)  # type: ignore[assignment]

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        out: dict[str, Any] = {}
        if "size" in o:
            out["size"] = ev.int_arg(o["size"], "LRN size")
        for key in ("alpha", "beta", "k"):
            if key in o:
                out[key] = ev.float_arg(o[key])
        return out

    def ctor(self, node: LRN, x: Shape, out: Shape) -> Ctor:
        return Ctor(
            "LocalResponseNorm", (node.size,), {"alpha": node.alpha, "beta": node.beta, "k": node.k}
        )

    def describe(self, node: LRN) -> str:
        return f"LRN size {node.size}"


class BatchNormOp(NoWindow):
    model = BatchNorm
    transparent = True
    title = "batch norm"
    article = "a BN"
    words = ("BN", "BATCHNORM", "BATCH NORM")
    keywords = {"eps": "eps", "momentum": "momentum"}
    prefix = "bn"
    followed = False
    activation = False
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = False
    help = "BN takes: eps E, momentum M"
    docs_args = "`eps E`, `momentum M`"
    shape = staticmethod(map_shape)  # type: ignore[assignment]

    fields = float_fields

    def costs(self, node: BatchNorm, x: Shape, out: Shape) -> Costs:
        # gamma and beta are parameters; running mean and variance are buffers.
        return Costs(x[0], x[0], 2 * x[0], 0)

    def ctor(self, node: BatchNorm, x: Shape, out: Shape) -> Ctor:
        return Ctor("BatchNorm2d", (out[0],), {"eps": node.eps, "momentum": node.momentum})

    def describe(self, node: BatchNorm) -> str:
        return "BN"


class LayerNorm(NodeBase):
    """LayerNorm over the channels at each position, with a weight and bias per channel
    (ConvNeXt's LayerNorm2d); ``channels_last``: over the last axis of a channels-last tensor
    (``nn.LayerNorm``, after ``permute 0 2 3 1``)."""

    op: Literal["layernorm"] = "layernorm"
    eps: float = 1e-5
    # Written to the IR's JSON only when set: the IR of earlier layer norms keeps its form.
    channels_last: bool = Field(False, exclude_if=lambda v: not v)

    @model_validator(mode="after")
    def _ranges(self) -> "LayerNorm":
        if not 0 < self.eps < 1:
            raise ValueError(f"LayerNorm eps must be between 0 and 1, got {self.eps}")
        return self


class LayerNormOp(NoWindow):
    model = LayerNorm
    title = "layer norm"
    article = "a layer norm"
    words = ("LAYERNORM", "LAYER NORM")
    keywords = {"eps": "eps"}
    flags = frozenset({"channels_last"})
    prefix = "norm"
    followed = False
    activation = False
    transparent = True  # affine per position
    in_place = False
    keeps_positions = False
    help = "layer norm takes: eps E, channels last (over the channels at each position)"
    docs_args = (
        "`eps E` (default 1e-5; ConvNeXt uses 1e-6): over the channels at each position; "
        "`channels last`: over the last axis (after `permute 0 2 3 1`)"
    )

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        out: dict[str, Any] = {key: ev.float_arg(a) for key, a in layer.options.items()}
        if "channels_last" in layer.flags:
            out["channels_last"] = True
        return out

    def shape(self, node: LayerNorm, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        return ins[0] if node.channels_last else map_shape(node, ins, ctx)

    def layout(self, node: LayerNorm) -> Layout:
        return CHANNELS_LAST if node.channels_last else CHANNELS_FIRST

    def costs(self, node: LayerNorm, x: Shape, out: Shape) -> Costs:
        c = x[-1] if node.channels_last else x[0]
        return Costs(c, c, 0, 0)  # a weight and a bias per channel

    def ctor(self, node: LayerNorm, x: Shape, out: Shape) -> Ctor:
        if node.channels_last:
            return Ctor("LayerNorm", (x[-1],), {"eps": node.eps})
        return Ctor("LayerNorm2d", (x[0],), {"eps": node.eps}, helper=helpers.LAYER_NORM_2D)

    def describe(self, node: LayerNorm) -> str:
        return f"layer norm eps {node.eps:g}" + (" channels last" if node.channels_last else "")
