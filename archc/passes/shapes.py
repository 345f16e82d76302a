"""Shape inference: exact integer arithmetic over the IR, with the geometry checks.

For a conv or pool along one axis, out = (H + 2P - K) / S + 1, floored (or ceiled where the node
says ``ceil_mode``). Besides the shapes this pass reports:

- W301 non-exact tiling: the windows stop before the end of the *input* (rows that are only
  padding do not count), so real rows and columns are never read. It is reported at the first
  layer of a chain: layers downstream of one already warned about are not warned again, since
  fixing the first (AlexNet's 224 → 227) is what fixes them;
- E302 a declared shape that differs from the inferred one;
- E303 impossible geometry (a window larger than the padded input, an empty output);
- E304/E305 concat and add operands that do not agree; E306 an op given the wrong rank;
- E307 a shortcut that cannot be an identity or a projection;
- E312 a feature map in the wrong layout: a layer that reads the channels on axis 1 (a conv, BN,
  pool, layer scale, ...) given a channels-last map (after ``permute 0 2 3 1``), or a
  ``channels last`` FC or layer norm given a channels-first one (archc.ops.layout).

A diagnostic at a node made by a block call carries a note per call ("in block `b`, called
here"), and one that every repetition of a call repeats is reported once, with a count.

It also lowers every shortcut — the one structural node the elaborated graph keeps besides
the input (see archc.elaborate) — into an identity (the node disappears) or a projection
(1x1 conv + BN), so that the passes and backends after it see only concrete ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc import ir
from archc.diagnostics import Diagnostic, block_notes, error, merge_repeats, warning
from archc.nodes import fmt_shape
from archc.ops import op_of
from archc.ops.base import ShapeContext
from archc.ops.geometry import (  # noqa: F401 (exact_number: tests ask this module)
    axis_out,
    exact_number,
    extent,
    window_arithmetic,
    window_out,
)
from archc.ops.layout import CHANNELS_FIRST, Layout, flow, layout_name, permute_to
from archc.spans import Span


@dataclass(frozen=True)
class ShapeResult:
    graph: ir.Graph
    """The input graph with every shortcut resolved (identity removed, projection expanded)."""
    shapes: dict[str, ir.Shape]
    """Output shape of every node of ``graph`` whose shape could be inferred."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    layouts: dict[str, Layout] = field(default_factory=dict)
    """The layout of every node that has a shape (archc.ops.layout): channels first,
    except between the permutes of a channels-last stretch."""


def shapes_agree(declared: ir.Shape, inferred: ir.Shape) -> bool:
    """A declared ``[1x1xC]`` or ``[C]`` matches both a flat C vector and a (C, 1, 1) map."""

    def flat(s: ir.Shape) -> ir.Shape:
        return (s[0],) if len(s) == 3 and s[1:] == (1, 1) else s

    return flat(declared) == flat(inferred)


def unread_rows(size: int, k: int, s: int, p: int) -> int:
    """Input rows past the last floor-mode window that the stride does not skip anyway.

    Trailing rows that are padding are free, and a window smaller than its stride (a 1x1 conv
    at stride 2) skips ``s - k`` rows after every window by design, the last one included.
    """
    return max(0, (size + 2 * p - k) % s - p - max(0, s - k))


def _describe_unread(rows: int, cols: int) -> str:
    def part(n: int, what: str) -> str:
        return f"{n} {what}{'s' if n > 1 else ''}"

    if rows == cols:
        plural = "s" if rows > 1 else ""
        return f"the last {rows} row{plural} and column{plural} of the input are never read"
    parts = [part(n, w) for n, w in ((rows, "row"), (cols, "column")) if n]
    verb = "is" if len(parts) == 1 and (rows or cols) == 1 else "are"
    return f"the last {' and '.join(parts)} of the input {verb} never read"


def _tiling_inputs(size: int, k: int, s: int, p: int) -> tuple[int | None, int]:
    """The nearest input sizes below and above ``size`` that leave no row unread.

    Closed form, so that lint time does not grow with the numbers in a spec: the row count
    ``unread_rows`` tests, ``(h + 2p - k) mod s``, steps by one with ``h`` and wraps at ``s``,
    and a size tiles when it is at most ``p + max(0, s - k)``. ``size`` itself does not tile,
    so the next size up is where the remainder wraps to 0, and the next one down is where it
    has fallen to that bound (None when that is below 1).
    """
    remainder = (size + 2 * p - k) % s
    allowed = p + max(0, s - k)
    below = size - (remainder - allowed)
    return (below if below >= 1 else None), size + s - remainder


def _tiling_padding(size: int, k: int, s: int, p: int) -> int | None:
    """The least padding ``q`` in ``p+1 … p+s`` with ``2q <= k`` that leaves no row unread.

    ``unread_rows`` is 0 when ``(a + 2q) mod s <= q + c`` (``a = (size - k) mod s``,
    ``c = max(0, s - k)``). On the ``q`` where ``(a + 2q) // s`` is one value ``m`` the
    remainder is ``a + 2q - m·s``, so the test is ``q <= m·s + c - a``: the least ``q`` is the
    start of that stretch when it passes. ``2q`` spans at most ``2s``, so a few ``m`` suffice.
    """
    a, c = (size - k) % s, max(0, s - k)
    first, last = p + 1, min(p + s, k // 2)
    for m in range((a + 2 * first) // s, (a + 2 * last) // s + 1):
        start = max(first, -((a - m * s) // 2))  # least q with a + 2q >= m·s
        if start <= last and (a + 2 * start) // s == m and start <= m * s + c - a:
            return start
    return None


def _suggest_tiling(size: int, k: int, s: int, p: int) -> str:
    below, above = _tiling_inputs(size, k, s, p)
    # An input above the IR's limit would only trade this warning for an error.
    fits = [h for h in (above, below) if h is not None and h + 2 * p >= k and h <= ir.MAX_SIZE]
    sizes = [str(h) for h in fits]
    hint = f"an input of {' or '.join(sizes)} tiles exactly" if sizes else ""
    pad = _tiling_padding(size, k, s, p)
    if pad is not None:
        hint += f", and so does padding {pad}" if hint else f"padding {pad} tiles exactly"
    return hint or "no nearby input size or padding tiles exactly; change the stride or kernel"


def _least_stride(size: int, out: int) -> int | None:
    """The least stride at which a 1x1 window over ``size`` rows gives ``out`` rows.

    In closed form rather than by trying every stride up to ``size``: the output is
    ``(size - 1) // s + 1``, and ``n // s == q`` holds exactly for ``n // (q + 1) < s <= n // q``.
    """
    n, q = size - 1, out - 1
    if n < 0 or q < 0:
        return None
    s = n // (q + 1) + 1
    return s if n // s == q else None


class _Inference(ShapeContext):
    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.shapes: dict[str, ir.Shape] = {}
        self.layouts: dict[str, Layout] = {}
        self.by_name = {node.name: node for node in graph.nodes}
        self.diags: list[Diagnostic] = []
        self.nodes: list[ir.Node] = []
        self.renamed: dict[str, str] = {}  # resolved-away node -> what its consumers read instead
        self.consumers: dict[str, list[ir.Node]] = {}
        self.untiled: set[str] = set()  # nodes at or downstream of a W301
        for node in graph.nodes:
            for src in node.inputs:
                self.consumers.setdefault(src, []).append(node)

    def span(self, node: ir.NodeBase) -> Span:
        if node.span is not None:
            return node.span
        return Span(file=self.graph.file, line=1, column=1, end_line=1, end_column=2)

    def err(self, code: str, node: ir.NodeBase, message: str, help: str | None = None) -> None:
        notes = block_notes(node.origin)
        self.diags.append(error(code, message, self.span(node), help, notes=notes))

    def run(self) -> ShapeResult:
        for node in self.graph.nodes:
            inputs = [self.renamed.get(i, i) for i in node.inputs]
            if inputs != node.inputs:
                node = node.model_copy(update={"inputs": inputs})
            if not all(i in self.shapes for i in inputs):
                # An input failed already; one diagnostic per root cause is enough.
                self.nodes.append(node)
                continue
            if any(i in self.untiled for i in inputs):
                self.untiled.add(node.name)
            if isinstance(node, ir.Shortcut):
                self.shortcut(node)
                continue
            self.nodes.append(node)
            layout = self.layout(node, inputs)
            if layout is None:
                continue
            shape = self.infer(node, [self.shapes[i] for i in inputs])
            if shape is None:
                continue
            self.shapes[node.name] = shape
            self.layouts[node.name] = layout if len(shape) == 3 else CHANNELS_FIRST
            if node.declared is not None and not shapes_agree(node.declared.shape, shape):
                self.diags.append(
                    error(
                        "E302",
                        f"declared shape {fmt_shape(node.declared.shape)} does not match "
                        f"the inferred {fmt_shape(shape)}",
                        node.declared.span,
                        self.explain(node, inputs, shape),
                        notes=block_notes(node.origin),
                    )
                )
        output = self.renamed.get(self.graph.output, self.graph.output)
        aux = [self.renamed.get(a, a) for a in self.graph.aux]
        update = {"nodes": self.nodes, "output": output, "aux": aux}
        graph = self.graph.model_copy(update=update)
        return ShapeResult(
            graph=graph,
            shapes=self.shapes,
            diagnostics=merge_repeats(self.diags),
            layouts=self.layouts,
        )

    def explain(self, node: ir.Node, inputs: list[str], shape: ir.Shape) -> str | None:
        """How the inferred shape follows (the op's ``shape_arithmetic``), E302's help."""
        return op_of(node).shape_arithmetic(node, [self.shapes[i] for i in inputs], shape)

    # --- per-op rules ------------------------------------------------------------------------

    def layout(self, node: ir.Node, inputs: list[str]) -> Layout | None:
        """The layout of ``node``'s output, or None after an E312."""
        if isinstance(node, ir.Input):
            return CHANNELS_FIRST
        ins = [self.shapes[i] for i in inputs]
        layouts = [self.layouts[i] for i in inputs]
        return flow(op_of(node), node, ins, layouts, self, self.follows(node, inputs))

    def follows(self, node: ir.Node, inputs: list[str]) -> str | None:
        """The layer ``node`` follows by a defaults line (``fc: bn, relu``), if it does: a
        follower has the line of the layer it follows, which is of another kind."""
        source = self.by_name.get(inputs[0]) if len(inputs) == 1 else None
        if source is None or isinstance(source, ir.Input | ir.Shortcut):
            return None
        if node.span is None or source.span != node.span or source.op == node.op:
            return None
        return source.name if op_of(source).followed else None

    def infer(self, node: ir.Node, ins: list[ir.Shape]) -> ir.Shape | None:
        if isinstance(node, ir.Input):
            return node.shape
        return op_of(node).shape(node, ins, self)

    def tiled(self, node: ir.Conv | ir.MaxPool | ir.AvgPool, x: ir.Shape, out: ir.Pair) -> None:
        """W301 when the stride leaves input rows or columns unread (floor mode only)."""
        ceil = getattr(node, "ceil_mode", False)
        span = extent(node)
        lost = [
            0 if ceil else unread_rows(size, k, s, p)
            for size, k, s, p in zip(x[1:], span, node.stride, node.padding)
        ]
        if any(lost) and node.name not in self.untiled:
            self.untiled.add(node.name)
            axis = 0 if lost[0] else 1
            size, k, s, p = x[1 + axis], span[axis], node.stride[axis], node.padding[axis]
            self.diags.append(
                warning(
                    "W301",
                    f"stride {s} does not tile the input: {window_arithmetic(size, k, s, p)} "
                    f"→ {out[axis]}: {_describe_unread(lost[0], lost[1])}",
                    self.span(node),
                    _suggest_tiling(size, k, s, p),
                    notes=block_notes(node.origin),
                )
            )

    # --- shortcuts ---------------------------------------------------------------------------

    def shortcut(self, node: ir.Shortcut) -> None:
        x = self.shapes[node.inputs[0]]
        adds = [c for c in self.consumers.get(node.name, []) if isinstance(c, ir.Add)]
        others = [i for a in adds for i in a.inputs if i != node.name]
        target = self.shapes.get(self.renamed.get(others[0], others[0])) if others else None
        if target is None:
            self.err("E307", node, "a shortcut must feed an `add` whose other input comes first")
            return
        mode = node.mode
        if mode == "auto":
            mode = "identity" if x == target else "projection"
        if mode == "identity":
            if x != target:
                self.err(
                    "E305",
                    node,
                    f"an identity shortcut carries {fmt_shape(x)}, but the residual path "
                    f"gives {fmt_shape(target)}",
                    "use `shortcut: auto` or `shortcut: projection`",
                )
                return
            self.renamed[node.name] = node.inputs[0]
            return
        found = self.layouts[node.inputs[0]]
        if len(x) == 3 and found != CHANNELS_FIRST:
            self.err(
                "E312",
                node,
                f"a projection shortcut needs a channels-first input, but its input is "
                f"{layout_name(found)}",
                f"put the channels first again (`{permute_to(found, CHANNELS_FIRST)}`) before "
                "the residual, or make the residual keep the shape so that the shortcut is an "
                "identity",
            )
            return
        stride = self.projection_stride(node, x, target)
        if stride is None:
            return
        common = {"span": node.span, "origin": node.origin}
        conv = ir.Conv(
            name=f"{node.name}.0",
            inputs=node.inputs,
            out_channels=target[0],
            kernel=(1, 1),
            stride=stride,
            bias=False,
            **common,
        )
        bn = ir.BatchNorm(name=f"{node.name}.1", inputs=[conv.name], eps=node.eps, **common)
        self.nodes += [conv, bn]
        self.shapes[conv.name] = self.shapes[bn.name] = target
        self.layouts[conv.name] = self.layouts[bn.name] = CHANNELS_FIRST
        self.renamed[node.name] = bn.name

    def projection_stride(self, node: ir.Node, x: ir.Shape, target: ir.Shape) -> ir.Pair | None:
        if len(x) == 3 and len(target) == 3:
            strides = [_least_stride(size, out) for size, out in zip(x[1:], target[1:])]
            if strides[0] is not None and strides[1] is not None:
                return strides[0], strides[1]
        self.err(
            "E307",
            node,
            f"no 1x1 projection turns {fmt_shape(x)} into {fmt_shape(target)}",
            "a projection can change channels and reduce height and width by an integer stride",
        )
        return None


def infer_shapes(graph: ir.Graph) -> ShapeResult:
    return _Inference(graph).run()
