"""Joins: ``concat`` (Inception's branches) and ``add`` (a residual and its shortcut). They are
functions of their inputs, with no module of their own."""

from typing import Any, Literal

from archc.nodes import NodeBase, Shape, fmt_shape
from archc.ops.base import ShapeContext, Stateless
from archc.ops.layout import channels_first, elementwise


class Concat(NodeBase):
    """Channel concatenation of two or more inputs (Inception)."""

    op: Literal["concat"] = "concat"


class Add(NodeBase):
    """Element-wise sum of two or more inputs: a residual join, or the ``branch:`` sections
    before it (RepVGG's training-time block)."""

    op: Literal["add"] = "add"


class Multiply(NodeBase):
    """A feature map times a gate of the same channels, one value per channel or a map of the
    input's shape: the end of a ``gate:`` section (squeeze-and-excitation)."""

    op: Literal["multiply"] = "multiply"


class _Join(Stateless, abstract=True):
    transparent = True
    followed = False
    activation = False
    keeps_positions = False
    docs_args = "—"

    def ctor(self, node: Any, x: Shape, out: Shape) -> None:
        return None


class ConcatOp(_Join):
    model = Concat
    title = "concat"
    article = "a concat"
    words = ("CONCAT",)
    prefix = "concat"
    flags = frozenset({"input"})
    arity = (2, None)
    references = True
    in_place = False
    layout = staticmethod(channels_first)  # type: ignore[assignment]
    help = (
        "concat joins the `branch:` sections before it; `concat input` puts the input of the "
        "enclosing body (a block's, a stage's) first; `concat with NAME, …` joins earlier "
        "named outputs after the current one, `concat of NAME, …` only those"
    )
    docs_args = (
        "— (joins branches); `concat input`: the enclosing body's input first, then the branches "
        "or the path since it (DenseNet's layers); `with NAME, …`: the current output, then "
        "earlier named outputs; `of NAME, …`: only those"
    )

    def shape(self, node: Concat, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        if any(len(s) != len(ins[0]) for s in ins) or any(s[1:] != ins[0][1:] for s in ins):
            shown = ", ".join(fmt_shape(s) for s in ins)
            ctx.err(
                "E304",
                node,
                f"cannot concatenate {shown}: their spatial sizes differ",
                "every branch must keep the same height and width; check strides and padding",
            )
            return None
        return (sum(s[0] for s in ins), *ins[0][1:])

    def expression(self, args: list[str]) -> tuple[str, list[str]]:
        return "torch.cat", [f"[{', '.join(args)}]", "1"]

    def describe(self, node: Concat) -> str:
        return f"concat {len(node.inputs)}"


class AddOp(_Join):
    model = Add
    title = "add"
    article = "an add"
    words = ("ADD",)
    prefix = "add"
    arity = (2, None)
    references = True
    in_place = True
    augmented = "+="
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    help = (
        "add joins a `residual:` section and its shortcut, or the `branch:` sections before it; "
        "`add with NAME, …` adds earlier named outputs to the current one, `add of NAME, …` "
        "only those"
    )
    docs_args = (
        "— (joins a residual and its shortcut, or the `branch:` sections before it: their sum); "
        "`with NAME, …`: the current output plus earlier named outputs; `of NAME, …`: only those"
    )

    def shape(self, node: Add, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        if any(s != ins[0] for s in ins):
            shown = " and ".join(fmt_shape(s) for s in ins)
            ctx.err(
                "E305",
                node,
                f"cannot add {shown}: shapes differ",
                "use `shortcut: auto` to project the shortcut to the residual's shape; "
                "branches and named outputs an add joins must end in one shape",
            )
            return None
        return ins[0]

    def expression(self, args: list[str]) -> str:
        return " + ".join(args)

    def describe(self, node: Add) -> str:
        return "add"


class MultiplyOp(_Join):
    model = Multiply
    title = "multiply"
    article = "a multiply"
    words = ("MULTIPLY",)
    prefix = "multiply"
    arity = (2, 2)
    in_place = False
    layout = staticmethod(elementwise)  # type: ignore[assignment]
    help = "multiply takes no arguments (a `gate:` section ends with it by itself)"
    docs_args = (
        "— (the end of a `gate:` section: the input times the gate's output, one value per "
        "channel or a map of the input's shape)"
    )

    def shape(self, node: Multiply, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        x, gate = ins
        if len(x) != 3 or len(gate) != 3 or gate[0] != x[0] or gate[1:] not in ((1, 1), x[1:]):
            ctx.err(
                "E310",
                node,
                f"a gate of shape {fmt_shape(gate)} cannot scale {fmt_shape(x)} channel by channel",
                f"the gate must end in [1x1x{x[0]}], one value per channel of its input, "
                "or in a map of the input's shape"
                if len(x) == 3
                else "a gate scales a feature map",
            )
            return None
        return x

    def expression(self, args: list[str]) -> str:
        return f"{args[0]} * {args[1]}"

    def describe(self, node: Multiply) -> str:
        return "multiply"
