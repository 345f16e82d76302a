"""Convolution: ``CONV 96 11x11 stride 4 pad 0``, ``conv3-64``, ``conv7-64/2``."""

import re
from fractions import Fraction
from typing import Any, Literal

from pydantic import model_validator

from archc import syntax as S
from archc.nodes import MAX_SIZE, NodeBase, Pair, Shape, positive, positive_pair
from archc.numbers import fmt_int
from archc.ops.base import (
    Costs,
    Ctor,
    Evaluator,
    ShapeContext,
    SlidingWindow,
    int_pair,
    pair_text,
    window_text,
)
from archc.ops.layout import channels_first
from archc.spans import Span


class Conv(NodeBase):
    op: Literal["conv"] = "conv"
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    bias: bool = True
    groups: int = 1
    """Channel groups: each filter sees C/groups input channels (ResNeXt's cardinality)."""
    depthwise: bool = False
    """One group per input channel (MobileNet): ``groups`` is the input's channel count."""
    dilation: Pair = (1, 1)

    @model_validator(mode="after")
    def _ranges(self) -> "Conv":
        positive(self.out_channels, "number of filters")
        positive_pair(self.kernel, "kernel size")
        positive_pair(self.stride, "stride")
        positive(self.groups, "number of groups")
        positive_pair(self.dilation, "dilation")
        if min(self.padding) < 0 or max(self.padding) > MAX_SIZE:
            raise ValueError(f"padding must be between 0 and {MAX_SIZE}")
        return self


def groups(node: Conv, x: Shape) -> int:
    """The conv's channel groups on an input of shape ``x`` (a depthwise conv: one per
    channel)."""
    return x[0] if node.depthwise else node.groups


def _paper_conv(m: re.Match[str], span: Span) -> dict[str, S.Arg]:
    """``conv3-64``: a 3x3 kernel and 64 filters (the VGG paper's columns)."""
    k = int(m[1])
    return {
        "kernel": S.Arg(S.Pair((k, k), span), span),
        "filters": S.Arg(S.Num(Fraction(int(m[2])), m[2], span), span),
    }


class ConvOp(SlidingWindow):
    model = Conv
    title = "conv"
    article = "a conv"
    words = ("CONV", "CONVOLUTION")
    slots = ("filters", "kernel")
    pair_slot = "kernel"
    keywords = {
        "stride": "stride",
        "pad": "pad",
        "padding": "pad",
        "kernel": "kernel",
        "groups": "groups",
        "dilation": "dilation",
    }
    flags = frozenset({"depthwise"})
    exclusive = {"depthwise": "groups"}  # depthwise: groups = the input's channels
    paper_forms = ((re.compile(r"conv(\d+)-(\d+)", re.I), _paper_conv),)
    prefix = "conv"
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    followed = True
    activation = False
    in_place = False
    keeps_positions = False
    help = (
        "conv takes: N (filters), KxK | kernel K, stride S, pad P | pad same, "
        "groups G | depthwise, dilation D, no bias"
    )
    docs_args = (
        "`N` filters, `KxK` (or a second number `K`), `kernel K`, `stride S` / `sS`, `pad P` / "
        "`padding P` / `pP` / `pad same`, `KxK/S` (window and stride), `groups G` / `gG`, "
        "`depthwise` (one group per input channel), `dilation D` / `dD`, `no bias`"
    )

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o, declared = layer.options, layer.declared
        if "filters" in o:
            filters = ev.int_arg(o["filters"], "number of filters")
        elif declared is not None and len(declared.dims) == 3:
            filters = ev.check_size(declared.dims[2], "number of filters", declared.span)
        else:
            raise ev.missing(
                "this conv has no filter count",
                layer.span,
                "write the number of filters (`CONV 64 3x3`) or a declared shape "
                "(`-> [224x224x64]`)",
            )
        ev.require(layer, "kernel", "this conv has no kernel size", "write it as KxK: `3x3`")
        kernel = ev.pair_arg(o["kernel"], "kernel size")
        stride = ev.pair_arg(o["stride"], "stride") if "stride" in o else (1, 1)
        dilation = ev.pair_arg(o["dilation"], "dilation") if "dilation" in o else (1, 1)
        fields: dict[str, Any] = {
            "out_channels": filters,
            "kernel": kernel,
            "stride": stride,
            "padding": ev.padding(o.get("pad"), kernel, layer.paper, layer.span, dilation),
            "bias": "no_bias" not in layer.flags,
        }
        # Written only when given, so a plain conv's IR keeps its fields.
        if "groups" in o:
            fields["groups"] = ev.int_arg(o["groups"], "number of groups")
        if "depthwise" in layer.flags:
            fields["depthwise"] = True
        if "dilation" in o:
            fields["dilation"] = dilation
        return fields

    def shape(self, node: Conv, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if not ctx.need_map(node, x):
            return None
        g = groups(node, x)
        if x[0] % g or node.out_channels % g:
            kind = "depthwise conv (one group per input channel)" if node.depthwise else "conv"
            ctx.err(
                "E308",
                node,
                f"this {kind} has {g} groups, but its {x[0]} input channels and "
                f"{node.out_channels} filters do not both split into {g} equal parts",
                "the input channels and the filters must both be multiples of the groups",
            )
            return None
        hw = ctx.window(node, x)
        return None if hw is None else (node.out_channels, *hw)

    def costs(self, node: Conv, x: Shape, out: Shape) -> Costs:
        kh, kw = node.kernel
        weights = node.out_channels * (x[0] // groups(node, x)) * kh * kw
        biases = node.out_channels if node.bias else 0
        return Costs(weights, biases, 0, weights * out[1] * out[2])

    def window(self, node: Conv, x: Shape, height: int) -> tuple[int, int]:
        return node.dilation[0] * (node.kernel[0] - 1) + 1, node.stride[0]

    def ctor(self, node: Conv, x: Shape, out: Shape) -> Ctor:
        kwargs: dict[str, Any] = {"kernel_size": int_pair(node.kernel)}
        if node.stride != (1, 1):
            kwargs["stride"] = int_pair(node.stride)
        if node.padding != (0, 0):
            kwargs["padding"] = int_pair(node.padding)
        if node.dilation != (1, 1):
            kwargs["dilation"] = int_pair(node.dilation)
        if groups(node, x) != 1:
            kwargs["groups"] = groups(node, x)
        if not node.bias:
            kwargs["bias"] = False
        return Ctor("Conv2d", (x[0], node.out_channels), kwargs)

    def describe(self, node: Conv) -> str:
        text = f"conv {node.out_channels} {window_text(node)}"
        if node.depthwise:
            text += " depthwise"
        elif node.groups != 1:
            text += f" g{node.groups}"
        if node.dilation != (1, 1):
            d = node.dilation
            text += f" d{d[0]}" if d[0] == d[1] else f" d{pair_text(d)}"
        return text + ("" if node.bias else " no bias")

    def weights_formula(self, node: Conv, weights: int) -> str:
        kh, kw = node.kernel
        c = weights // (node.out_channels * kh * kw)
        return f"{kh}·{kw}·{c}·{node.out_channels} = {fmt_int(weights)}"
