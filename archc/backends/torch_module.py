"""The torch eager backend: a checked graph becomes an ``nn.Module``.

Every node with a module is registered under its node name, a dotted name becoming nested plain
``nn.Module`` containers (``layer1.0.conv1`` -> ``model.layer1._modules["0"].conv1``), in graph
order, so state_dict keys are the spec's names and parameter order is graph order.

Each fusion group (conv [-> BN] [-> add] [-> ReLU]) is one :class:`FusedConv2d` registered under
the conv's name; its BN is the child ``bn``. Ops without parameters that ``torch.nn`` has a module
for (ReLU, pools, LRN, dropout, flatten, softmax) are modules too, so ``print(model)`` reads like
the spec; ``concat`` and ``add`` are plain functions in the execution plan.

``forward`` walks a precomputed plan -- a list of (callable, input slots, output slot, slots to
free) -- over a list of tensors, so the hot loop does no name lookups and drops every
intermediate as soon as its last reader has run.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archc import ir
from archc.backends.convbn import ConvBN, _tracing, fold_bn
from archc.diagnostics import ArchcError, Diagnostic, error
from archc.ops import op_of
from archc.passes.fusion import FusionGroup, plan_fusion
from archc.passes.shapes import infer_shapes
from archc.spans import Span


class CheckedGraph(Protocol):
    """What the backends read from :class:`archc.check.Checked`."""

    graph: ir.Graph | None
    shapes: dict[str, ir.Shape]
    fusion: list[FusionGroup]


# --- the fused group --------------------------------------------------------------------------


_triton_found: bool | None = None


def _triton_available() -> bool:
    global _triton_found
    if _triton_found is None:
        _triton_found = importlib.util.find_spec("triton") is not None
    return _triton_found


class FusedConv2d(ConvBN):
    """conv -> [bn] -> [+ residual] -> [relu] as one module, keeping the ordinary parameters.

    State_dict keys are those of the conv (``weight``, ``bias``) and of its child ``bn``
    (``bn.weight``, ``bn.running_mean``, ...). In eval mode on CUDA (or with
    ``ARCHC_KERNELS=triton``) the group runs as one Triton kernel with BN folded into the conv.
    Otherwise it runs eagerly: in eval mode without autograd as a conv with BN folded into its
    weight and bias (:class:`~archc.backends.convbn.ConvBN`), then the in-place add and ReLU; in
    training, with gradients, or under torch.compile/export tracing, as conv, BN, add and ReLU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | ir.Pair,
        stride: int | ir.Pair = 1,
        padding: int | ir.Pair = 0,
        bias: bool = True,
        *,
        bn: ir.BatchNorm | None = None,
        relu: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, bias=bias, **factory
        )
        self.bn = None
        if bn is not None:
            self.bn = nn.BatchNorm2d(out_channels, eps=bn.eps, momentum=bn.momentum, **factory)
        self.relu = relu
        self._packed: tuple[tuple | None, Any, Tensor | None] | None = None

    def extra_repr(self) -> str:
        return super().extra_repr() + (", relu=True" if self.relu else "")

    def train(self, mode: bool = True) -> FusedConv2d:
        self._packed = None
        return super().train(mode)

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_packed": None}

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if self._use_kernels(x):
            return self._fused_forward(x, residual)
        if self.bn is None:
            y = self._conv_forward(x, self.weight, self.bias)
        else:
            y = super().forward(x)
        # In place is safe: y is a fresh tensor, and neither BN's nor conv's backward reads it.
        if residual is not None:
            y += residual
        if self.relu:
            y = F.relu(y, inplace=True)
        return y

    def _use_kernels(self, x: Tensor) -> bool:
        mode = os.environ.get("ARCHC_KERNELS", "auto") or "auto"
        if mode == "eager" or self.training or _tracing():
            return False
        if mode == "triton":
            return True
        if mode != "auto":
            raise ValueError(f"ARCHC_KERNELS must be auto, eager or triton, not {mode!r}")
        # The kernel has no backward: when gradients are wanted, stay eager.
        wants_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        return x.is_cuda and not wants_grad and _triton_available()

    def _fused_forward(self, x: Tensor, residual: Tensor | None) -> Tensor:
        from archc import kernels

        key = self.fold_key()
        if key is None or self._packed is None or self._packed[0] != key:
            with torch.no_grad():
                weight, bias = self.weight, self.bias
                if self.bn is not None:
                    bn = self.bn
                    assert bn.running_mean is not None and bn.running_var is not None
                    weight, bias = fold_bn(
                        weight, bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
                    )
                packed = kernels.prepack_weight(weight.detach())
            folded = (key, packed, None if bias is None else bias.detach())
            # Not cached when the key cannot be told (weights made under inference mode).
            self._packed = folded if key is not None else None
        else:
            folded = self._packed
        _, packed, bias = folded
        return kernels.fused_conv2d(
            x,
            packed,
            bias,
            stride=self.stride,
            padding=self.padding,
            residual=residual,
            relu=self.relu,
        )


class Linear(nn.Linear):
    """A fully connected layer that flattens a feature map first, as torchvision's models do
    (for an op whose constructor says ``flatten``)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() > 2:
            x = torch.flatten(x, 1)
        return super().forward(x)


# --- the network ------------------------------------------------------------------------------

Step = tuple[Callable[..., Tensor], tuple[int, ...], int, tuple[int, ...]]


class CompiledNetwork(nn.Module):
    """The compiled network. ``print(model)`` shows the spec's network name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.network_name = name
        self._steps: list[Step] = []
        self._slots = 1
        self._output = 0

    def _get_name(self) -> str:
        return self.network_name

    def forward(self, x: Tensor) -> Tensor:
        values: list[Tensor | None] = [None] * self._slots
        values[0] = x
        for fn, args, out, free in self._steps:
            values[out] = fn(*[values[i] for i in args])
            for i in free:
                values[i] = None
        return values[self._output]  # type: ignore[return-value]


def _diagnostic(graph: ir.Graph, node: ir.Node, message: str) -> Diagnostic:
    span = node.span or Span(file=graph.file, line=1, column=1, end_line=1, end_column=2)
    return error(
        "E501", message, span, "rename the layer: names become attributes of torch modules"
    )


class _Builder:
    def __init__(self, checked: CheckedGraph, device: Any, dtype: Any) -> None:
        if checked.graph is None:
            raise ValueError("cannot build a module from a graph that failed to check")
        self.checked = checked
        self.graph = checked.graph
        self.shapes = checked.shapes
        self.factory = {"device": device, "dtype": dtype}
        self.net = CompiledNetwork(self.graph.name)
        self.nodes = {n.name: n for n in self.graph.nodes}
        self.diagnostics: list[Diagnostic] = []
        self.by_last: dict[str, FusionGroup] = {}
        self.relu_inplace_nodes: set[str] = set()
        self.steps: list[tuple[Callable[..., Tensor], list[str], str]] = []
        """(callable, input node names, output node name) in execution order."""

    def register(self, node: ir.Node, module: nn.Module) -> None:
        *prefix, leaf = node.name.split(".")
        parent: nn.Module = self.net
        for part in prefix:
            child = parent._modules.get(part)
            if child is None:
                if hasattr(parent, part):
                    self.diagnostics.append(
                        _diagnostic(
                            self.graph,
                            node,
                            f"name part {part!r} of {node.name!r} "
                            f"collides with an attribute of {type(parent).__name__}",
                        )
                    )
                    return
                child = nn.Module()
                parent.add_module(part, child)
            parent = child
        if hasattr(parent, leaf):
            what = "another layer" if leaf in parent._modules else type(parent).__name__
            self.diagnostics.append(
                _diagnostic(
                    self.graph,
                    node,
                    f"layer name {node.name!r} collides with {what} (attribute {leaf!r})",
                )
            )
            return
        parent.add_module(leaf, module)

    def relu_inplace(
        self, node: ir.Node, readers: dict[str, int], by_last: dict[str, FusionGroup]
    ) -> bool:
        """A standalone ReLU may overwrite its input when nobody else reads it and the producer
        made a fresh tensor whose backward does not need it (not a view, not an activation)."""
        op = op_of(node)
        if not (op.activation and op.in_place):
            return False
        src = node.inputs[0]
        group = by_last.get(src)
        producer = self.nodes[group.conv if group is not None else src]
        safe = (ir.Conv, ir.Linear, ir.BatchNorm, ir.MaxPool, ir.AvgPool, ir.Concat, ir.Add)
        if isinstance(producer, safe) and readers[src] == 1 and src != self.graph.output:
            self.relu_inplace_nodes.add(node.name)
            return True
        return False

    def module_for(self, node: ir.Node, group: FusionGroup | None, relu_inplace: bool) -> Any:
        x = self.shapes[node.inputs[0]] if node.inputs else ()
        op = op_of(node)
        ctor = op.ctor(node, x, self.shapes[node.name])
        if ctor is None:
            return op.function(torch)
        factory = self.factory if ctor.factory else {}
        if isinstance(node, ir.Conv):
            bn = self.graph.node(group.bn) if group and group.bn else None
            assert bn is None or isinstance(bn, ir.BatchNorm)
            relu = bool(group and group.relu)
            return FusedConv2d(*ctor.args, **ctor.kwargs, bn=bn, relu=relu, **factory)
        if relu_inplace:
            return getattr(nn, ctor.module)(*ctor.args, **ctor.kwargs, inplace=True)
        if ctor.flatten:
            return Linear(*ctor.args, **ctor.kwargs, **factory)
        return getattr(nn, ctor.module)(*ctor.args, **ctor.kwargs, **factory)

    def build(self, fusion: list[FusionGroup]) -> CompiledNetwork:
        graph = self.graph
        by_conv = {g.conv: g for g in fusion}
        by_last = self.by_last = {g.last: g for g in fusion}
        absorbed = {m for g in fusion for m in g.members if m != g.conv}
        readers: dict[str, int] = {}
        for node in graph.nodes:
            for src in node.inputs:
                readers[src] = readers.get(src, 0) + 1
        nodes = self.nodes

        slot = {graph.nodes[0].name: 0}
        steps = self.steps
        fused: dict[str, FusedConv2d] = {}
        for node in graph.nodes[1:]:
            group = by_conv.get(node.name)
            if node.name not in absorbed:
                fn = self.module_for(node, group, self.relu_inplace(node, readers, by_last))
                if isinstance(fn, nn.Module):
                    self.register(node, fn)
                if isinstance(fn, FusedConv2d):
                    fused[node.name] = fn
            finished = by_last.get(node.name)
            if finished is not None:
                # The group runs where its last member stands: its residual is ready there.
                fn = fused[finished.conv]
                args = [nodes[finished.conv].inputs[0]]
                if finished.residual is not None:
                    args.append(finished.residual)
            elif node.name in absorbed or group is not None:
                continue
            else:
                args = list(node.inputs)
            slot[node.name] = len(slot)
            steps.append((fn, args, node.name))

        if self.diagnostics:
            raise ArchcError(self.diagnostics, getattr(self.checked, "sources", None))
        last_read = {}
        for i, (_, args, _) in enumerate(steps):
            for a in args:
                last_read[a] = i
        net = self.net
        output = graph.output
        for i, (fn, args, name) in enumerate(steps):
            free = tuple(sorted({slot[a] for a in args if last_read[a] == i and a != output}))
            net._steps.append((fn, tuple(slot[a] for a in args), slot[name], free))
        net._slots = len(slot)
        net._output = slot[output]
        return net


def build_module(
    checked: CheckedGraph, *, device: Any = None, dtype: Any = None, max_bytes: int | None = None
) -> nn.Module:
    """The module of a checked graph, initialised by the graph's ``init`` scheme. Raises
    :class:`ArchcError` (E502) before allocating when its tensors would need more than
    ``max_bytes`` (default: the memory of ``device``; archc.memory)."""
    from archc.backends.init import initialize
    from archc.memory import device_memory, too_large

    # Built on the meta device and then materialised: ``initialize`` writes every tensor once,
    # instead of after the layers' own default initialisation (halves VGG's build time).
    builder = _Builder(checked, "meta", dtype)
    net = builder.build(checked.fusion)
    limit = max_bytes if max_bytes is not None else device_memory(device)
    problem = too_large(net, builder.graph, limit, device)
    if problem is not None:
        raise ArchcError([problem])
    net.to_empty(device=device if device is not None else torch.get_default_device())
    initialize(net, builder.graph)
    return net


class _GraphChecked:
    def __init__(self, graph: ir.Graph) -> None:
        shaped = infer_shapes(graph)
        errors = [d for d in shaped.diagnostics if d.severity == "error"]
        if errors:
            raise ArchcError(errors)
        self.graph: ir.Graph | None = shaped.graph
        self.shapes = shaped.shapes
        self.fusion = plan_fusion(shaped.graph)


def build_graph(graph: ir.Graph, *, device: Any = None, dtype: Any = None) -> nn.Module:
    """The module of an IR graph built without the front end (shapes and fusion are run here)."""
    return build_module(_GraphChecked(graph), device=device, dtype=dtype)


def _is_path(spec: str | os.PathLike[str]) -> bool:
    if isinstance(spec, os.PathLike):
        return True
    if "\n" in spec or len(spec) > 4096:
        return False
    return spec.endswith(".arch") or Path(spec).is_file()


def load(
    spec: str | os.PathLike[str],
    *,
    device: Any = None,
    dtype: Any = None,
    max_bytes: int | None = None,
) -> nn.Module:
    """Build the PyTorch module of a spec: a path (an existing file or one ending in ``.arch``)
    or spec text. Raises :class:`ArchcError` when the spec has errors, or when the module's
    tensors would need more than ``max_bytes`` (default: the device's memory)."""
    from archc.check import check_file, check_source

    checked = check_file(spec) if _is_path(spec) else check_source(str(spec))
    if not checked.ok:
        raise ArchcError(checked.diagnostics, checked.sources)
    try:
        return build_module(checked, device=device, dtype=dtype, max_bytes=max_bytes)
    except ArchcError as e:
        raise ArchcError(e.diagnostics, checked.sources) from None
