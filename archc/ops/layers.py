"""Fully connected layers and the ops around them: ``FC 4096``, ``FC-1000``, ``dropout 0.5``,
``flatten``, ``softmax``."""

import math
import re
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from archc import syntax as S
from archc.nodes import NodeBase, Shape, fmt_shape, positive
from archc.numbers import fmt_int
from archc.ops import helpers
from archc.ops.base import (
    Costs,
    Ctor,
    Evaluator,
    NoCosts,
    NoWindow,
    Op,
    ShapeContext,
    Stateless,
    float_fields,
    same_shape,
)
from archc.ops.layout import (
    CHANNELS_FIRST,
    CHANNELS_LAST,
    Layout,
    channels_first,
    elementwise,
    permuted,
)
from archc.spans import Span


class Linear(NodeBase):
    """A fully connected layer. A (C, H, W) input is flattened first, as torchvision does;
    ``channels_last``: it maps the last axis at every position instead (torch's ``nn.Linear``
    on a channels-last tensor, after ``permute 0 2 3 1``: ConvNeXt's)."""

    op: Literal["linear"] = "linear"
    out_features: int
    bias: bool = True
    # Written to the IR's JSON only when set, so the IR of every FC before it keeps its form.
    channels_last: bool = Field(False, exclude_if=lambda v: not v)

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
    flags = frozenset({"channels_last"})
    prefix = "fc"
    followed = True
    activation = False
    in_place = False
    keeps_positions = False
    help = "FC takes: N (neurons), no bias, channels last"
    docs_args = (
        "`N` neurons, `no bias`, `channels last` (maps the last axis at every position, after "
        "`permute 0 2 3 1`: ConvNeXt's)"
    )

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
        out: dict[str, Any] = {"out_features": n, "bias": "no_bias" not in layer.flags}
        if "channels_last" in layer.flags:
            out["channels_last"] = True
        return out

    def shape(self, node: Linear, ins: list[Shape], ctx: ShapeContext) -> Shape:
        if node.channels_last:
            return (*ins[0][:-1], node.out_features)
        return (node.out_features,)

    def shape_arithmetic(self, node: Linear, ins: list[Shape], out: Shape) -> str:
        where = "at every position of " if node.channels_last else "from "
        return (
            f"an FC layer of {node.out_features} outputs {where}{fmt_shape(ins[0])}: "
            f"{fmt_shape(out)}"
        )

    def layout(self, node: Linear) -> Layout:
        return CHANNELS_LAST if node.channels_last else CHANNELS_FIRST

    def costs(self, node: Linear, x: Shape, out: Shape) -> Costs:
        features = x[-1] if node.channels_last else math.prod(x)
        weights = features * node.out_features
        macs = weights * math.prod(x[:-1]) if node.channels_last else weights
        return Costs(weights, node.out_features if node.bias else 0, 0, macs)

    def window(self, node: Linear, x: Shape, height: int) -> tuple[int, int] | None:
        if node.channels_last:
            return None  # one position at a time
        # A fully connected layer sees its whole input: a window the size of the map.
        return height, 1

    def ctor(self, node: Linear, x: Shape, out: Shape) -> Ctor:
        kwargs = {} if node.bias else {"bias": False}
        if node.channels_last:
            return Ctor("Linear", (x[-1], node.out_features), kwargs)
        return Ctor("Linear", (math.prod(x), node.out_features), kwargs, flatten=len(x) == 3)

    def describe(self, node: Linear) -> str:
        text = f"FC {node.out_features}" + ("" if node.bias else " no bias")
        return text + (" channels last" if node.channels_last else "")

    def weights_formula(self, node: Linear, weights: int) -> str:
        return f"{weights // node.out_features}·{node.out_features} = {fmt_int(weights)}"


class DropoutOp(NoCosts, NoWindow):
    model = Dropout
    transparent = True
    rate = "p"
    dropout_like = True
    title = "dropout"
    article = "a dropout"
    words = ("DROPOUT",)
    slots = ("p",)
    keywords = {"p": "p"}
    prefix = "dropout"
    followed = False
    activation = False
    in_place = True  # the identity at inference
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    keeps_positions = True
    help = "dropout takes: P or p P"
    docs_args = "`P` or `p P` (default 0.5)"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    fields = float_fields

    def ctor(self, node: Dropout, x: Shape, out: Shape) -> Ctor:
        return Ctor("Dropout", (), {"p": node.p})

    def describe(self, node: Dropout) -> str:
        return f"dropout {node.p:g}"


class FlattenOp(Stateless):
    model = Flatten
    transparent = True
    title = "flatten"
    article = "a flatten"
    words = ("FLATTEN",)
    prefix = "flatten"
    followed = False
    activation = False
    in_place = True  # a view
    functional = True
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = "flatten takes no arguments"
    docs_args = "—"

    def shape(self, node: Flatten, ins: list[Shape], ctx: ShapeContext) -> Shape:
        return (math.prod(ins[0]),)

    def shape_arithmetic(self, node: Flatten, ins: list[Shape], out: Shape) -> str:
        x = ins[0]
        sizes = "·".join(str(n) for n in ((*x[1:], x[0]) if len(x) == 3 else x))  # as HxWxC
        return f"a flatten of {fmt_shape(ins[0])} gives {sizes} = {out[0]:,} values"

    def ctor(self, node: Flatten, x: Shape, out: Shape) -> Ctor:
        return Ctor("Flatten")

    def expression(self, args: list[str]) -> tuple[str, list[str]]:
        return "torch.flatten", [args[0], "1"]

    def describe(self, node: Flatten) -> str:
        return "flatten"


class SoftmaxOp(Stateless):
    model = Softmax
    title = "softmax"
    article = "a softmax"
    words = ("SOFTMAX", "SOFT-MAX")
    prefix = "softmax"
    followed = False
    activation = False
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = "softmax takes no arguments"
    docs_args = "—"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def ctor(self, node: Softmax, x: Shape, out: Shape) -> Ctor:
        return Ctor("Softmax", (), {"dim": 1})

    def describe(self, node: Softmax) -> str:
        return "softmax"


class Identity(NodeBase):
    """The input itself: a branch that passes its input through (DenseNet's concatenations)."""

    op: Literal["identity"] = "identity"


class IdentityOp(Stateless):
    model = Identity
    title = "identity"
    article = "an identity"
    words = ("IDENTITY",)
    prefix = "identity"
    followed = False
    activation = False
    transparent = True
    in_place = True  # the same tensor
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    keeps_positions = True
    help = "identity takes no arguments"
    docs_args = "— (passes its input on: a branch of its own)"
    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def ctor(self, node: Identity, x: Shape, out: Shape) -> Ctor:
        return Ctor("Identity")

    def describe(self, node: Identity) -> str:
        return "identity"


class ChannelShuffle(NodeBase):
    """Interleaves the channels of ``groups`` groups (ShuffleNet), ``torch.nn.ChannelShuffle``."""

    op: Literal["channel_shuffle"] = "channel_shuffle"
    groups: int

    @field_validator("groups")
    @classmethod
    def _size(cls, v: int) -> int:
        return positive(v, "number of groups")


class LayerScale(NodeBase):
    """A learned per-channel multiplier, starting at ``init`` (ConvNeXt): a parameter of shape
    (C, 1, 1) under the node's own name, as torchvision's CNBlock holds ``layer_scale``."""

    op: Literal["layerscale"] = "layerscale"
    init: float = 1e-6


class StochasticDepth(NodeBase):
    """Drops a sample's residual branch with probability ``p`` in training; the identity at
    inference (torchvision.ops.StochasticDepth, mode "row")."""

    op: Literal["stochastic_depth"] = "stochastic_depth"
    p: float

    @field_validator("p")
    @classmethod
    def _probability(cls, p: float) -> float:
        if not 0 <= p < 1:
            raise ValueError(f"stochastic depth probability must be in [0, 1), got {p}")
        return p


class ChannelShuffleOp(NoCosts, NoWindow):
    model = ChannelShuffle
    title = "channel shuffle"
    article = "a channel shuffle"
    words = ("CHANNEL SHUFFLE", "SHUFFLE")
    slots = ("groups",)
    keywords = {"groups": "groups"}
    prefix = "shuffle"
    followed = False
    activation = False
    transparent = True  # a permutation of channels
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = "channel shuffle takes its number of groups: `channel shuffle 2`"
    docs_args = "`G` groups (the channels must split into G equal groups: E309)"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        ev.require(
            layer,
            "groups",
            "a channel shuffle needs its number of groups",
            "write e.g. `channel shuffle 2`",
        )
        return {"groups": ev.int_arg(layer.options["groups"], "number of groups")}

    def shape(self, node: ChannelShuffle, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if not ctx.need_map(node, x):
            return None
        if x[0] % node.groups:
            ctx.err(
                "E309",
                node,
                f"{x[0]} channels do not split into {node.groups} equal groups to shuffle",
                "shuffle a number of groups that divides the channels",
            )
            return None
        return x

    def ctor(self, node: ChannelShuffle, x: Shape, out: Shape) -> Ctor:
        return Ctor("ChannelShuffle", (node.groups,))

    def describe(self, node: ChannelShuffle) -> str:
        return f"channel shuffle {node.groups}"


class LayerScaleOp(NoWindow):
    model = LayerScale
    title = "layer scale"
    article = "a layer scale"
    words = ("LAYERSCALE", "LAYER SCALE")
    slots = ("init",)
    keywords = {"init": "init"}
    prefix = "layer_scale"
    followed = False
    activation = False
    transparent = True  # a per-channel multiply
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = "layer scale takes its starting value: `layer scale 1e-6`"
    docs_args = (
        "starting value `V` or `init V` (default 1e-6): a learned multiplier per channel, a "
        "parameter of shape (C, 1, 1) named as the layer"
    )

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        return {"init": ev.float_arg(o["init"])} if "init" in o else {}

    def shape(self, node: LayerScale, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        return ins[0] if ctx.need_map(node, ins[0]) else None

    def costs(self, node: LayerScale, x: Shape, out: Shape) -> Costs:
        return Costs(x[0], 0, 0, 0)

    def ctor(self, node: LayerScale, x: Shape, out: Shape) -> Ctor:
        return Ctor("Parameter", ((x[0], 1, 1), node.init), parameter=True)

    def describe(self, node: LayerScale) -> str:
        return f"layer scale {node.init:g}"


class StochasticDepthOp(NoCosts, NoWindow):
    model = StochasticDepth
    rate = "p"
    title = "stochastic depth"
    article = "a stochastic depth"
    words = ("STOCHASTIC DEPTH", "DROP PATH")
    slots = ("p",)
    keywords = {"p": "p"}
    prefix = "stochastic_depth"
    followed = False
    activation = False
    transparent = True
    in_place = True  # the identity at inference
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    keeps_positions = True
    help = "stochastic depth takes its drop probability: `stochastic depth 0.1`"
    docs_args = (
        "`P`: in training, drop a sample's residual branch with probability P (on a residual "
        "branch, before its `add`; elsewhere W221)"
    )

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        ev.require(
            layer,
            "p",
            "stochastic depth needs its probability",
            "write e.g. `stochastic depth 0.1`",
        )
        return {"p": ev.float_arg(layer.options["p"])}

    shape = staticmethod(same_shape)  # type: ignore[assignment]

    def ctor(self, node: StochasticDepth, x: Shape, out: Shape) -> Ctor:
        return Ctor("StochasticDepth", (node.p,), helper=helpers.STOCHASTIC_DEPTH)

    def describe(self, node: StochasticDepth) -> str:
        return f"stochastic depth {node.p:g}"


class Split(NodeBase):
    """One of ``parts`` equal groups of channels, the ``part``-th (1-based): ShuffleNet's channel
    split, ``x.chunk(parts, dim=1)[part - 1]``."""

    op: Literal["split"] = "split"
    parts: int
    part: int = 1

    @model_validator(mode="after")
    def _ranges(self) -> "Split":
        positive(self.parts, "number of parts")
        if not 1 <= self.part <= self.parts:
            raise ValueError(f"part {self.part} of a split into {self.parts} does not exist")
        return self


class SplitOp(NoCosts, NoWindow):
    model = Split
    title = "channel split"
    article = "a channel split"
    words = ("SPLIT", "CHANNEL SPLIT")
    slots = ("parts",)
    keywords = {"parts": "parts", "part": "part"}
    prefix = "split"
    followed = False
    activation = False
    transparent = True  # a selection of channels
    in_place = True  # a view
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = (
        "split takes its number of parts: `split 2` before as many `branch:` sections (each "
        "takes one part), or `split 2 part 1` for one part"
    )
    docs_args = (
        "`N` equal groups of channels (E311 when they do not split): each of the N `branch:` "
        "sections after it takes one, in order; `part K`: the K-th alone"
    )

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        ev.require(
            layer,
            "parts",
            "a channel split needs its number of parts",
            "write e.g. `split 2`",
        )
        if "part" in o:
            out = {"parts": ev.int_arg(o["parts"], "number of parts")}
            out["part"] = ev.int_arg(o["part"], "part")
            return out
        # Before `branch:` sections, one part per branch, and a `concat` joins two or more.
        what = "the number of parts of a split that opens `branch:` sections"
        return {"parts": ev.int_arg(o["parts"], what, low=2)}

    def shape(self, node: Split, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if x[0] % node.parts:
            ctx.err(
                "E311",
                node,
                f"{x[0]} channels do not split into {node.parts} equal parts",
                "split into a number of parts that divides the channels",
            )
            return None
        return (x[0] // node.parts, *x[1:])

    def ctor(self, node: Split, x: Shape, out: Shape) -> Ctor:
        return Ctor("ChannelSplit", (node.parts, node.part - 1), helper=helpers.CHANNEL_SPLIT)

    def describe(self, node: Split) -> str:
        return f"split {node.parts} part {node.part}"


class SliceChannels(NodeBase):
    """Channels ``start`` to ``stop - 1`` of the input, ``x[:, start:stop]`` (GhostNet's
    ``out[:, :oup]``)."""

    op: Literal["slice"] = "slice"
    start: int
    stop: int

    @model_validator(mode="after")
    def _ranges(self) -> "SliceChannels":
        if self.start < 0 or self.stop <= self.start:
            raise ValueError(
                f"channels {self.start}:{self.stop} are no range: A:B needs 0 <= A < B"
            )
        positive(self.stop, "end of the channel range")
        return self


class PadChannels(NodeBase):
    """``count`` zero channels appended to the input (ReXNet's shortcut, which adds its input
    to the first channels of a wider residual: ``out[:, :c] += x``)."""

    op: Literal["pad"] = "pad"
    count: int

    @field_validator("count")
    @classmethod
    def _size(cls, v: int) -> int:
        return 0 if v == 0 else positive(v, "number of channels to pad")


class SliceOp(NoCosts, NoWindow):
    model = SliceChannels
    title = "channel slice"
    article = "a channel slice"
    words = ("SLICE CHANNELS",)
    slots = ("range",)
    prefix = "slice"
    followed = False
    activation = False
    transparent = True  # a selection of channels
    in_place = True  # a view
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = "slice channels takes a range A:B, the channels A to B - 1: `slice channels 0:16`"
    docs_args = "`A:B`: the channels A to B - 1 (`x[:, A:B]`; E313 when the input has fewer than B)"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        if "range" in o or "start" not in o:
            raise ev.missing(
                "a channel slice needs its range of channels, `A:B`",
                o["range"].span if "range" in o else layer.span,
                "write e.g. `slice channels 0:16` (the channels 0 to 15)",
            )
        start = ev.int_arg(o["start"], "start of the channel range", low=0)
        stop = ev.int_arg(o["stop"], "end of the channel range", low=start + 1)
        return {"start": start, "stop": stop}

    def shape(self, node: SliceChannels, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if not ctx.need_map(node, x):
            return None
        if node.stop > x[0]:
            ctx.err(
                "E313",
                node,
                f"channels {node.start}:{node.stop} do not exist in an input of {x[0]} channels",
                f"a slice of this input ends at {x[0]} or before",
            )
            return None
        return (node.stop - node.start, *x[1:])

    def ctor(self, node: SliceChannels, x: Shape, out: Shape) -> Ctor:
        return Ctor("ChannelSlice", (node.start, node.stop), helper=helpers.CHANNEL_SLICE)

    def describe(self, node: SliceChannels) -> str:
        return f"slice channels {node.start}:{node.stop}"


class PadOp(NoCosts, NoWindow):
    model = PadChannels
    title = "channel pad"
    article = "a channel pad"
    words = ("PAD CHANNELS",)
    slots = ("count",)
    prefix = "pad"
    followed = False
    activation = False
    transparent = True  # zeros appended
    in_place = False  # a new, wider tensor
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    keeps_positions = True
    help = "pad channels takes the number of zero channels to append: `pad channels 8`"
    docs_args = "`N`: N zero channels appended after the input's (0 passes it on)"

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        ev.require(
            layer,
            "count",
            "a channel pad needs its number of channels",
            "write e.g. `pad channels 8`",
        )
        return {"count": ev.int_arg(layer.options["count"], "number of channels to pad", low=0)}

    def shape(self, node: PadChannels, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if not ctx.need_map(node, x):
            return None
        return (x[0] + node.count, *x[1:])

    def ctor(self, node: PadChannels, x: Shape, out: Shape) -> Ctor:
        return Ctor("ChannelPad", (node.count,), helper=helpers.CHANNEL_PAD)

    def describe(self, node: PadChannels) -> str:
        return f"pad channels {node.count}"


class Permute(NodeBase):
    """The tensor's axes in the order ``dims`` (batch first), torchvision's ``Permute``:
    ``permute 0 2 3 1`` makes a (C, H, W) map channels last, (H, W, C)."""

    op: Literal["permute"] = "permute"
    dims: tuple[int, int, int, int]

    @field_validator("dims")
    @classmethod
    def _order(cls, dims: tuple[int, ...]) -> tuple[int, ...]:
        if sorted(dims) != [0, 1, 2, 3] or dims[0] != 0:
            raise ValueError(
                f"permute {' '.join(map(str, dims))} is not an order of the axes 0 1 2 3 that "
                "keeps the batch (0) first"
            )
        return dims


class PermuteOp(NoCosts, NoWindow):
    model = Permute
    title = "permute"
    article = "a permute"
    words = ("PERMUTE",)
    slots = ("d0", "d1", "d2", "d3")
    prefix = "permute"
    followed = False
    activation = False
    transparent = True  # a reshape
    in_place = True  # a view
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    keeps_positions = True
    help = "permute takes the order of the axes, batch first: `permute 0 2 3 1`"
    docs_args = (
        "the order of the 4 axes, batch first: `permute 0 2 3 1` (channels last), "
        "`permute 0 3 1 2` (back)"
    )

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        o = layer.options
        ev.require(
            layer,
            self.slots,
            "a permute needs the order of all 4 axes",
            "write e.g. `permute 0 2 3 1`",
        )
        return {"dims": tuple(ev.int_arg(o[slot], "axis", low=0) for slot in self.slots)}

    def shape(self, node: Permute, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x = ins[0]
        if not ctx.need_map(node, x):
            return None
        return tuple(x[d - 1] for d in node.dims[1:])

    def relayout(self, node: Permute, x: Layout) -> Layout:
        return permuted(x, node.dims)

    def ctor(self, node: Permute, x: Shape, out: Shape) -> Ctor:
        return Ctor("Permute", (list(node.dims),), helper=helpers.PERMUTE)

    def describe(self, node: Permute) -> str:
        return "permute " + " ".join(map(str, node.dims))
