"""Pooling: ``MAX POOL 3x3 stride 2``, ``AVG POOL 2x2``, ``GLOBAL AVG POOL``,
``ADAPTIVE AVG POOL 7x7``."""

from typing import Any, Literal

from pydantic import field_validator, model_validator

from archc import syntax as S
from archc.nodes import NodeBase, Pair, Shape, positive_pair
from archc.ops.base import (
    Ctor,
    Evaluator,
    NoCosts,
    ShapeContext,
    SlidingWindow,
    int_pair,
    pair_text,
    window_text,
)
from archc.ops.layout import channels_first


class _Pool(NodeBase):
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> "_Pool":
        positive_pair(self.kernel, "pool size")
        positive_pair(self.stride, "stride")
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
        return positive_pair(v, "output size")


class _WindowPool(NoCosts, SlidingWindow, abstract=True):
    """Max and average pooling share their notation, shape and cost."""

    slots = ("kernel",)
    pair_slot = "kernel"
    keywords = {"stride": "stride", "pad": "pad", "padding": "pad", "kernel": "kernel"}
    flags = frozenset({"ceil", "floor"})
    followed = False
    activation = False
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = False
    help = "a pool takes: KxK | kernel K, stride S, pad P, ceil | floor"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        kernel = ev.pair_arg(o["kernel"], "pool size") if "kernel" in o else (2, 2)
        return {
            "kernel": kernel,
            "stride": ev.pair_arg(o["stride"], "stride") if "stride" in o else kernel,
            "padding": ev.padding(o.get("pad"), kernel, False, layer.span),
            "ceil_mode": "ceil" in layer.flags,
        }

    def shape(self, node: Any, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if not ctx.need_map(node, x):
            return None
        hw = ctx.window(node, x)
        return None if hw is None else (x[0], *hw)

    def window(self, node: Any, x: Shape, height: int) -> tuple[int, int]:
        return node.kernel[0], node.stride[0]

    def pool_kwargs(self, node: _Pool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "kernel_size": int_pair(node.kernel),
            "stride": int_pair(node.stride),
        }
        if node.padding != (0, 0):
            kwargs["padding"] = int_pair(node.padding)
        if node.ceil_mode:
            kwargs["ceil_mode"] = True
        return kwargs

    def describe(self, node: Any) -> str:
        return f"{self.title} {window_text(node, stride_1=True)}" + (
            " ceil" if node.ceil_mode else ""
        )


class MaxPoolOp(_WindowPool):
    model = MaxPool
    title = "max pool"
    article = "a max pool"
    words = ("POOL", "MAX POOL", "MAXPOOL", "MAX-POOL")
    prefix = "pool"
    docs_args = (
        "`KxK` (or `K`), `stride S` / `sS` (default: K), `pad P` / `pP`, `KxK/S`, `ceil` / `floor`"
    )

    def ctor(self, node: MaxPool, x: Shape, out: Shape) -> Ctor:
        return Ctor("MaxPool2d", (), self.pool_kwargs(node))


class AvgPoolOp(_WindowPool):
    model = AvgPool
    title = "avg pool"
    article = "an avg pool"
    words = ("AVG POOL", "AVGPOOL", "AVG-POOL", "AVERAGE POOL")
    prefix = "avgpool"
    docs_args = "as max pool"

    def ctor(self, node: AvgPool, x: Shape, out: Shape) -> Ctor:
        kwargs = self.pool_kwargs(node)
        if not node.count_include_pad:
            kwargs["count_include_pad"] = False
        return Ctor("AvgPool2d", (), kwargs)


class _Averaging(NoCosts, abstract=True):
    """The family of the pools that average the whole map, or parts of it, to a size: global
    and adaptive average pooling."""

    prefix = "avgpool"
    followed = False
    activation = False
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = False


class GlobalAvgPoolOp(_Averaging):
    model = GlobalAvgPool
    title = "global avg pool"
    article = "a global avg pool"
    words = ("GLOBAL AVG POOL", "GLOBAL AVGPOOL", "GLOBAL AVERAGE POOL", "GAP")
    help = "a global avg pool takes no arguments"
    docs_args = "—"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {}

    def shape(self, node: GlobalAvgPool, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        return (x[0], 1, 1) if ctx.need_map(node, x) else None

    def window(self, node: GlobalAvgPool, x: Shape, height: int) -> tuple[int, int]:
        return height, 1

    def shape_arithmetic(self, node: GlobalAvgPool, ins: list[Shape], out: Shape) -> str:
        x = ins[0]
        return f"a global avg pool averages each of the {x[0]} channels' {x[1]}x{x[2]} to 1x1"

    def ctor(self, node: GlobalAvgPool, x: Shape, out: Shape) -> Ctor:
        return Ctor("AdaptiveAvgPool2d", ((1, 1),))

    def describe(self, node: GlobalAvgPool) -> str:
        return "global avg pool"


class AdaptiveAvgPoolOp(_Averaging):
    model = AdaptiveAvgPool
    title = "adaptive avg pool"
    article = "an adaptive avg pool"
    words = ("ADAPTIVE AVG POOL", "ADAPTIVE AVGPOOL")
    slots = ("size",)
    pair_slot = "size"
    keywords = {"size": "size"}
    help = "an adaptive avg pool takes its output size: HxW"
    docs_args = "output size `HxW` (or `N`)"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        ev.require(
            layer,
            "size",
            "an adaptive avg pool needs its output size",
            "write e.g. `ADAPTIVE AVG POOL 7x7`",
        )
        return {"output_size": ev.pair_arg(layer.options["size"], "output size")}

    def shape(self, node: AdaptiveAvgPool, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        return (x[0], *node.output_size) if ctx.need_map(node, x) else None

    def window(self, node: AdaptiveAvgPool, x: Shape, height: int) -> tuple[int, int]:
        out = node.output_size[0]
        return -(-height // out), max(height // out, 1)

    def shape_arithmetic(self, node: AdaptiveAvgPool, ins: list[Shape], out: Shape) -> str:
        x = ins[0]
        return (
            f"an adaptive avg pool gives the output size written, "
            f"{pair_text(node.output_size)}, whatever its input's {x[1]}x{x[2]}; the "
            f"{x[0]} channels stay"
        )

    def ctor(self, node: AdaptiveAvgPool, x: Shape, out: Shape) -> Ctor:
        return Ctor("AdaptiveAvgPool2d", (tuple(node.output_size),))

    def describe(self, node: AdaptiveAvgPool) -> str:
        return f"adaptive avg pool {pair_text(node.output_size)}"
