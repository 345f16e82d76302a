"""What a layer kind is, as one class: the :class:`Op` every entry of the registry derives from.

An op says everything archc knows of its kind, for every stage:

- **notation** (the parser's argument binder): ``words`` in every notation, positional
  ``slots``, ``keywords`` that take a value, ``flags``, ``paper_forms`` such as ``conv3-64``;
- **meaning** (the elaborator): ``fields`` turns the bound arguments into the IR ``model``'s
  fields; ``prefix`` starts generated names; ``followed`` says whether defaults lines and the
  lecture convention put BN/activations after it; ``activation`` marks a non-linearity;
- **shape** and **cost** (the passes): ``shape``, ``layout`` (channels first or last: what the
  op needs of a feature map, see archc.ops.layout), ``shape_arithmetic`` (how the shape
  follows, E302's help), ``costs``, ``window`` (receptive field),
  ``in_place`` (adds no activation memory), ``keeps_positions``; ``kernel_activation`` names
  the epilogue the fused kernel runs for it, if any;
- **modules**: ``ctor`` describes the ``torch.nn`` module, which the generated source (and so
  ``archc.load``, which runs it) builds; ops without a module give the source ``expression``;
- **words for people**: ``title``, ``article``, ``help``, ``docs_args`` (docs/language.md's
  kind table is tested against them) and ``describe``, the summary's notation, which the
  language reads back.

A subclass that leaves a required facet undefined fails at import (:meth:`Op.__init_subclass__`),
and tests/test_ops.py walks the registry checking that every facet works for every kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from archc.nodes import NodeBase, Pair, Shape, fmt_shape, missing_facets
from archc.numbers import fmt_int
from archc.ops.geometry import axis_out, extent, rounded
from archc.ops.layout import Layout

if TYPE_CHECKING:
    from archc import syntax as S
    from archc.spans import Span


@dataclass(frozen=True)
class Costs:
    weights: int = 0
    biases: int = 0
    buffers: int = 0
    macs: int = 0


NO_COSTS = Costs()


@dataclass(frozen=True)
class Ctor:
    """A module constructor, e.g. ``nn.Conv2d(3, 64, kernel_size=7, stride=2)``.

    ``module`` is the class's name in ``torch.nn``, or, with ``helper``, the class that
    ``helper`` (its source, importing nothing but torch's ``nn`` and ``Tensor``) defines: the
    generated file carries that source once. ``args``/``kwargs`` are plain Python values (ints,
    floats, bools, tuples) whose ``repr`` is valid source. ``flatten`` says the module reads a
    flattened feature map (an FC after a conv), which the generated forward inserts.
    """

    module: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    flatten: bool = False
    helper: str | None = None
    parameter: bool = False
    """Not a module but a bare ``nn.Parameter`` of shape ``args[0]`` starting at ``args[1]``,
    held by the enclosing part under the node's name and multiplying its input (torchvision's
    CNBlock.layer_scale)."""


class Evaluator:
    """What ``Op.fields`` may ask of the elaborator: arguments evaluated and range-checked,
    errors raised as diagnostics at the argument's span (see archc.elaborate)."""

    def int_arg(self, arg: S.Arg, what: str, low: int = 1) -> int:
        raise NotImplementedError

    def pair_arg(self, arg: S.Arg, what: str, low: int = 1) -> Pair:
        raise NotImplementedError

    def float_arg(self, arg: S.Arg) -> float:
        raise NotImplementedError

    def check_size(self, value: int, what: str, span: Span, low: int = 1) -> int:
        raise NotImplementedError

    def padding(
        self, arg: S.Arg | None, kernel: Pair, paper: bool, span: Span, dilation: Pair = (1, 1)
    ) -> Pair:
        """The padding written (``arg``), or ``same`` (written, or unwritten in a paper form):
        dilation·(K − 1)/2 per axis, PyTorch's ``padding='same'``; E209 when that is no
        whole number (an even effective kernel, which only asymmetric padding keeps)."""
        raise NotImplementedError

    def missing(self, what: str, span: Span, help: str) -> Exception:
        """The error for a required argument that is not written (E213)."""
        raise NotImplementedError

    def require(self, layer: S.Layer, keys: str | tuple[str, ...], what: str, help: str) -> None:
        """E213 (:meth:`missing`: ``what``, ``help``) unless each of ``keys`` is written."""
        if any(key not in layer.options for key in ((keys,) if isinstance(keys, str) else keys)):
            raise self.missing(what, layer.span, help)


class ShapeContext:
    """What ``Op.shape`` may ask of shape inference (archc.passes.shapes)."""

    def err(self, code: str, node: NodeBase, message: str, help: str | None = None) -> None:
        raise NotImplementedError

    def need_map(self, node: NodeBase, x: Shape) -> bool:
        """True when ``x`` is a feature map; otherwise reports E306."""
        if len(x) == 3:
            return True
        from archc.ops import op_of  # the registry, which imports this module

        self.err(
            "E306",
            node,
            f"{op_of(node).article} needs a feature map [HxWxC], but its input is the vector "
            f"{fmt_shape(x)}",
        )
        return False

    def window(self, node: Any, x: Shape) -> Pair | None:
        """The output height and width of a sliding window (conv, pool); reports E303 when the
        window does not fit, and hands the result to :meth:`tiled`."""
        ceil = getattr(node, "ceil_mode", False)
        out: list[int] = []
        span = extent(node)
        for size, k, s, p in zip(x[1:], span, node.stride, node.padding):
            if k > size + 2 * p:
                self.err(
                    "E303",
                    node,
                    f"a {span[0]}x{span[1]} window does not fit in the padded "
                    f"input of {size + 2 * p}",
                    f"the input is {size} with padding {p} on each side",
                )
                return None
            out.append(axis_out(size, k, s, p, ceil))
        self.tiled(node, x, (out[0], out[1]))
        return out[0], out[1]

    def tiled(self, node: Any, x: Shape, out: Pair) -> None:
        """Called with every window that fits: the shape pass warns here when the stride leaves
        input rows unread (W301); elaboration's early shapes do not."""


PaperForm = tuple["re.Pattern[str]", "Callable[[re.Match[str], Span], dict[str, S.Arg]]"]

# Facets every op must define itself (or inherit from an op family such as the pools).
REQUIRED = (
    "model",
    "title",
    "article",
    "words",
    "prefix",
    "help",
    "docs_args",
    "followed",
    "activation",
    "in_place",
    "keeps_positions",
    "fields",
    "shape",
    "layout",
    "costs",
    "window",
    "ctor",
    "describe",
)


REGISTERED: list[type[Op]] = []
"""Every op class, in definition order (archc.ops builds the registry from it)."""


class Op:
    """One layer kind. Subclasses set the class attributes and methods below; defining one
    registers it."""

    # notation
    words: ClassVar[tuple[str, ...]]
    """Surface words, upper case, spaces between words: ``("MAX POOL", "MAXPOOL", …)``."""
    slots: ClassVar[tuple[str, ...]] = ()
    """Positional arguments in order."""
    pair_slot: ClassVar[str | None] = None
    """The slot a ``KxK`` size fills (``kernel``, or ``size`` for an adaptive pool)."""
    keywords: ClassVar[dict[str, str]] = {}
    """Keyword -> the option it sets (``padding`` -> ``pad``)."""
    flags: ClassVar[frozenset[str]] = frozenset()
    """Words that stand alone (``ceil``). ``no bias`` is read for ops whose model has a bias,
    ``no relu``/``no bn`` for ``followed`` ops (E106 elsewhere)."""
    exclusive: ClassVar[dict[str, str]] = {}
    """Flag -> the option it sets too (``depthwise`` -> ``groups``): a line with both is E106."""
    paper_forms: ClassVar[tuple[PaperForm, ...]] = ()
    """Whole-word forms that carry arguments (``conv3-64``): pattern -> options."""

    # meaning
    model: ClassVar[type[NodeBase]]
    prefix: ClassVar[str]
    followed: ClassVar[bool]
    activation: ClassVar[bool]
    kernel_activation: ClassVar[str | None] = None
    transparent: ClassVar[bool] = False
    """A missing non-linearity passes through it (affine in each input, or a reshape: BN, add,
    concat, dropout, flatten): a conv then BN then ReLU has its activation (W219)."""
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    references: ClassVar[bool] = False
    """It may join earlier named outputs: ``concat with a, b``, ``add of a, b``."""
    rate: ClassVar[str | None] = None
    """The field holding the probability with which the op drops values in training (dropout,
    stochastic depth): a library default of it is named in the summary (I002)."""
    dropout_like: ClassVar[bool] = False
    """Drops single activations at random in training, so the recipe's ``dropout P`` line speaks
    of it (E221 when they disagree). Stochastic depth drops whole branches: not dropout-like."""

    # accounting
    in_place: ClassVar[bool]
    keeps_positions: ClassVar[bool]

    # the generated forward
    augmented: ClassVar[str | None] = None
    """For a function op that is ``in_place``: the augmented assignment it is written as where
    it may overwrite its first argument. Add's ``+=`` is torchvision's ``out += identity``, which
    FX traces as the add the quantizer matches in torchvision's models (``out.add_(identity)``,
    a method call, it leaves unquantized)."""
    functional: ClassVar[bool] = False
    """A module op that the forward of a class calls as its ``expression``; inside an
    ``nn.Sequential`` it stays a module. Flatten: torchvision's forwards call
    ``torch.flatten(x, 1)``, which the quantizer runs on int8 values (``nn.Flatten`` it runs in
    float), and ConvNeXt's classifier holds an ``nn.Flatten()``."""

    # words for people
    title: ClassVar[str]
    article: ClassVar[str]
    help: ClassVar[str]
    docs_args: ClassVar[str]

    kind: ClassVar[str]
    """The IR op tag, read from the model's ``op`` literal."""

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        missing = missing_facets(cls, REQUIRED)
        if missing:
            raise TypeError(f"op {cls.__name__} does not define {', '.join(missing)}")
        cls.kind = cls.model.model_fields["op"].default
        REGISTERED.append(cls)

    # --- the stages' facets (subclasses define them) ------------------------------------------

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        """The IR model's fields from the bound arguments of a layer line."""
        raise NotImplementedError

    def shape(self, node: Any, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
        """The output shape, or None after reporting why there is none."""
        raise NotImplementedError

    def layout(self, node: Any) -> Layout | None:
        """The layout the op needs of a feature-map input, which its output keeps:
        ``channels_first`` (archc.ops.layout) for an op that reads the channels on axis 1,
        ``CHANNELS_LAST`` for one that reads the last axis; None (``elementwise``) for an op
        that treats every element alike, which takes any layout, the same for all its inputs.
        A feature map in another layout is E312."""
        raise NotImplementedError

    def relayout(self, node: Any, x: Layout) -> Layout:
        """The output's layout, given the input's (which ``layout`` accepted): the same, but
        for a permute."""
        return x

    def costs(self, node: Any, x: Shape, out: Shape) -> Costs:
        """Weights, biases, buffers and MACs, given the first input's and the output's shape."""
        raise NotImplementedError

    def window(self, node: Any, x: Shape, height: int) -> tuple[int, int | Fraction] | None:
        """(kernel, stride) along the height for the receptive field, None when the op does
        not look at neighbouring positions. An upsampling op's stride is a fraction: 1/2 for
        a 2x upsample (pixel shuffle 2), whose neighbouring outputs are half an input pixel
        apart, so the receptive field and jump after it are exact fractions."""
        raise NotImplementedError

    def ctor(self, node: Any, x: Shape, out: Shape) -> Ctor | None:
        """The module, or None for an op that is a function of its inputs (concat, add)."""
        raise NotImplementedError

    def shape_arithmetic(self, node: Any, ins: list[Shape], out: Shape) -> str | None:
        """How ``out`` follows from the inputs' shapes, written for a person: the help of a
        declared shape that differs from the inferred one (E302). An op whose shape rule is
        ``same_shape`` says so; the window, pooling and FC families show their arithmetic;
        None where there is nothing to add."""
        if self.shape is same_shape:
            return f"{self.article} keeps its input's shape, {fmt_shape(ins[0])}"
        return None

    def describe(self, node: Any) -> str:
        """The node in archc's own notation (``conv 64 7x7 s2 p3``); the parser reads it."""
        raise NotImplementedError

    def expression(self, args: list[str]) -> str | tuple[str, list[str]]:
        """For ops without a module (and ``functional`` ones): the generated source's
        expression of the variables ``args``, or a call as (callee, arguments) so the generator
        can wrap it."""
        raise TypeError(f"{self.kind} has a module, not an expression")

    def docs_row(self) -> str:
        """This kind's row of docs/language.md's kind table."""
        words = ", ".join(f"`{w}`" for w in self.words)
        return f"| {self.title} | {words} | {self.docs_args} | `{self.kind}` |"

    def weights_formula(self, node: Any, weights: int) -> str:
        """How ``weights`` add up, for claim diagnostics (``3·3·3·64 = 1,728``)."""
        return fmt_int(weights)


class NoCosts(Op, abstract=True):
    """The family of ops without weights, biases, buffers or MACs."""

    def costs(self, node: Any, x: Shape, out: Shape) -> Costs:
        return NO_COSTS


class NoWindow(Op, abstract=True):
    """The family of ops that read each position alone: no window for the receptive field."""

    def window(self, node: Any, x: Shape, height: int) -> None:
        return None


class SlidingWindow(Op, abstract=True):
    """The family of ops that slide a window over the map (conv, max and average pools): the
    output's height and width follow from the window arithmetic."""

    def shape_arithmetic(self, node: Any, ins: list[Shape], out: Shape) -> str | None:
        ceil = getattr(node, "ceil_mode", False)
        rows, cols = (
            rounded(size, k, s, p, ceil)
            for size, k, s, p in zip(ins[0][1:], extent(node), node.stride, node.padding)
        )
        return rows if rows == cols else f"rows: {rows}; columns: {cols}"


class Stateless(NoCosts, NoWindow, abstract=True):
    """The family of ops with no arguments, no parameters and no window: activations, joins,
    flatten, softmax, identity."""

    def fields(self, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
        return {}


# --- helpers the entries share ----------------------------------------------------------------


def pair_text(p: Pair) -> str:
    return f"{p[0]}x{p[1]}"


def window_text(node: Any, stride_1: bool = False) -> str:
    """``3x3 s2 p1`` for a sliding window; padding left out when it is 0, and the stride when
    it is 1, unless ``stride_1`` (a pool's unwritten stride is its window, not 1)."""
    text = pair_text(node.kernel)
    s, p = node.stride, node.padding
    if s != (1, 1) or stride_1:
        text += f" s{s[0]}" if s[0] == s[1] else f" s{pair_text(s)}"
    if p != (0, 0):
        text += f" p{p[0]}" if p[0] == p[1] else f" p{pair_text(p)}"
    return text


def int_pair(p: Pair) -> int | Pair:
    """A pair as torch's constructors take it, collapsed to one int when both agree."""
    return p[0] if p[0] == p[1] else tuple(p)  # type: ignore[return-value]


def float_fields(op: Op, layer: S.Layer, ev: Evaluator) -> dict[str, Any]:
    """``fields`` of an op whose every option is a number taken as written (dropout, BN):
    ``fields = float_fields`` in its class."""
    return {key: ev.float_arg(a) for key, a in layer.options.items()}


def same_shape(node: Any, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
    return ins[0]


def map_shape(node: Any, ins: list[Shape], ctx: ShapeContext) -> Shape | None:
    """The input shape, for ops that need a feature map (BN, LRN)."""
    return ins[0] if ctx.need_map(node, ins[0]) else None
