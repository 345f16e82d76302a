"""Layouts: which axis of a feature map each axis of its tensor holds (E312).

A feature map is channels first, (C, H, W) after the batch, unless a ``permute`` reorders it:
``permute 0 2 3 1`` makes it channels last, (H, W, C), for the ops that act on the last axis
(ConvNeXt's channels-last FC and layer norm), and ``permute 0 3 1 2`` puts the channels first
again. A layout is written as the axes of the channels-first map, 1 (C), 2 (H) and 3 (W), in
the tensor's order after the batch: ``(1, 2, 3)`` channels first, ``(2, 3, 1)`` channels last;
any other order (two permutes that do not undo each other) is a map no layer kind but an
elementwise one reads.

Every op says, with its ``layout`` facet (archc.ops.base), the layout it needs of a feature-map
input, which its output keeps: channels first for nearly all (a conv, pool, BN, GAP, split,
concat or layer scale reads the channels on axis 1), channels last for the ``channels last`` FC
and layer norm; None for an op that treats every element alike (activations, dropout, stochastic
depth, identity, add and multiply), which takes any layout — one layout for all its inputs — and
keeps it. ``permute`` takes any layout and reorders it (its ``relayout`` facet). A vector has no
layout to get wrong: an op given one is not checked. :func:`flow` applies these rules for shape
inference (archc.passes.shapes) and for the elaborator's ``in.c`` (archc.elaborate.entry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archc.nodes import NodeBase, Shape
    from archc.ops.base import Op, ShapeContext

Layout = tuple[int, int, int]
"""The channels-first axes (1 = C, 2 = H, 3 = W) that a tensor's axes 1, 2 and 3 hold."""

CHANNELS_FIRST: Layout = (1, 2, 3)
CHANNELS_LAST: Layout = (2, 3, 1)

_AXES = {1: "channels", 2: "height", 3: "width"}


def channels_first(node: Any) -> Layout:
    """The ``layout`` facet of an op that reads the channels on axis 1 (most of them)."""
    return CHANNELS_FIRST


def elementwise(node: Any) -> None:
    """The ``layout`` facet of an op that treats every element alike: any layout, kept."""
    return None


def permuted(layout: Layout, dims: tuple[int, ...]) -> Layout:
    """The layout after ``permute dims`` (batch first: ``(0, 2, 3, 1)``)."""
    return (layout[dims[1] - 1], layout[dims[2] - 1], layout[dims[3] - 1])


def permute_to(layout: Layout, target: Layout) -> str:
    """The ``permute`` that turns ``layout`` into ``target``: ``permute 0 3 1 2``."""
    return "permute 0 " + " ".join(str(layout.index(axis) + 1) for axis in target)


def layout_name(layout: Layout) -> str:
    """``channels first``, ``channels last``, or the order of the axes, ``permuted to W, H, C``."""
    if layout == CHANNELS_FIRST:
        return "channels first"
    if layout == CHANNELS_LAST:
        return "channels last"
    return "permuted to " + ", ".join(_AXES[a][0].upper() for a in layout)


def channels_first_shape(shape: Shape, layout: Layout) -> Shape:
    """A feature map's (C, H, W), given its tensor's shape and layout."""
    if len(shape) != 3:
        return shape
    out = [0, 0, 0]
    for size, axis in zip(shape, layout):
        out[axis - 1] = size
    return tuple(out)


def flow(
    op: Op,
    node: NodeBase,
    ins: list[Shape],
    layouts: list[Layout],
    ctx: ShapeContext,
    followers: str | None = None,
) -> Layout | None:
    """The layout of ``node``'s output, or None after reporting an input in the wrong one (E312).

    ``ins`` and ``layouts`` are the inputs' shapes and layouts; ``followers`` names the layer
    that ``node`` follows by a defaults line (a BN after an FC), for the help."""
    maps = [layout for shape, layout in zip(ins, layouts) if len(shape) == 3]
    need = op.layout(node)
    if need is None:
        if any(layout != maps[0] for layout in maps):
            found = " and ".join(dict.fromkeys(layout_name(layout) for layout in maps))
            ctx.err(
                "E312",
                node,
                f"{op.article} of feature maps in different layouts: {found}",
                "permute the inputs to one layout first: `permute 0 2 3 1` makes a map channels "
                "last, `permute 0 3 1 2` channels first again",
            )
            return None
        x = maps[0] if maps else CHANNELS_FIRST
    else:
        x = next((layout for layout in maps if layout != need), need)
        if x != need:
            ctx.err("E312", node, _message(op, node, x, need), _help(op, node, x, need, followers))
            return None
    return op.relayout(node, x)


def _message(op: Op, node: NodeBase, found: Layout, need: Layout) -> str:
    # What the op would take for its channels: the tensor's axis 1, or its last axis.
    read = found[0] if need == CHANNELS_FIRST else found[2]
    needed = layout_name(need).replace(" ", "-")
    text = f"{op.title} `{node.name}` needs a {needed} input, but its input is {layout_name(found)}"
    if read != 1:
        text += f": it would take the {_AXES[read]} for the channels"
    return text


def _help(op: Op, node: NodeBase, found: Layout, need: Layout, followers: str | None) -> str:
    text = f"write `{permute_to(found, need)}` before it"
    if "channels_last" in op.flags and {found, need} == {CHANNELS_FIRST, CHANNELS_LAST}:
        if need == CHANNELS_FIRST:
            text += ", or write `channels last` on it to act on the last axis"
        else:
            text += ", or leave out `channels last`"
    if followers is not None:
        flag = "no bn" if op.kind == "batchnorm" else "no relu"
        text = (
            f"`{node.name}` follows `{followers}` by a defaults line: write `{flag}` on that "
            f"layer, or {text}"
        )
    return text
