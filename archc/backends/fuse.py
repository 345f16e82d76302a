"""``archc.fuse``: a plain model becomes an inference module whose conv -> BN -> (+ residual) ->
activation groups are one op each.

Fusion is an explicit step after building, like ``torch.ao.quantization.fuse_modules`` but for
whole groups: the model is traced with ``torch.fx`` and each group of the fusion plan's pattern
(archc.passes.fusion: a conv; then its only reader if that is a BN; then an add reading that
alone, the other operand becoming the residual; then an activation reading that alone, if the
kernel has it as an epilogue: one whose registry entry, archc.ops, names a ``kernel_activation``)
is replaced by a :class:`FusedConv` whose weight and bias have the BN folded in once. Grouped
(depthwise) and dilated convs are not in any group: they, their BN and their activation stay the
model's own modules, which PyTorch runs (cuDNN on a GPU). A FusedConv calls the op
``archc::fused_conv`` (``torch.ops.archc.fused_conv``), registered with ``torch.library`` with a
fake (meta) implementation, so FX, torch.compile and torch.export keep it as one node per group:

- on CUDA with triton installed, or anywhere with ``ARCHC_KERNELS=triton`` (on the CPU that
  means Triton's interpreter), it is archc's Triton kernel (archc.kernels.fused_conv2d);
- otherwise, or with ``ARCHC_KERNELS=eager``, a folded ``conv2d``, then the in-place add and
  activation.

The result is a ``torch.fx.GraphModule`` in eval mode with autograd off for its parameters;
``fuse`` refuses a model in training mode (BN must use its running statistics to be folded).
"""

from __future__ import annotations

import functools
import importlib.util
import operator
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from archc.backends.convbn import fold_bn

_triton_found: bool | None = None


def _triton_available() -> bool:
    global _triton_found
    if _triton_found is None:
        _triton_found = importlib.util.find_spec("triton") is not None
    return _triton_found


def _use_kernel(x: Tensor) -> bool:
    mode = os.environ.get("ARCHC_KERNELS", "auto") or "auto"
    if mode not in ("auto", "eager", "triton"):
        raise ValueError(f"ARCHC_KERNELS must be auto, eager or triton, not {mode!r}")
    if mode == "auto":
        return x.is_cuda and _triton_available()
    return mode == "triton"


# The eager epilogues, on a fresh tensor (so in place), by the kernel's names for them; the
# registry's ``kernel_activation`` names these (tests/test_kernels.py checks that the registry,
# this table and archc.kernels.ACTIVATIONS agree).
_EAGER_ACTIVATIONS = {
    "relu": lambda y, slope: F.relu(y, inplace=True),
    "relu6": lambda y, slope: F.relu6(y, inplace=True),
    "leaky_relu": lambda y, slope: F.leaky_relu(y, slope, inplace=True),
    "silu": lambda y, slope: F.silu(y, inplace=True),
    "hardswish": lambda y, slope: F.hardswish(y, inplace=True),
    "hardsigmoid": lambda y, slope: F.hardsigmoid(y, inplace=True),
}


@torch.library.custom_op("archc::fused_conv", mutates_args=())
def fused_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    residual: Tensor | None,
    activation: str | None,
    negative_slope: float,
) -> Tensor:
    """``act?(conv2d(x, weight, bias, stride, padding) + residual?)``, BN already folded."""
    if _use_kernel(x):
        from archc import kernels

        return kernels.fused_conv2d(
            x, weight, bias, stride=tuple(stride), padding=tuple(padding), residual=residual,
            activation=activation, negative_slope=negative_slope,
        )  # fmt: skip
    y = F.conv2d(x, weight, bias, tuple(stride), tuple(padding))
    if residual is not None:
        y += residual  # y is fresh: in place is safe
    return y if activation is None else _EAGER_ACTIVATIONS[activation](y, negative_slope)


@fused_conv.register_fake
def _(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    residual: Tensor | None,
    activation: str | None,
    negative_slope: float,
) -> Tensor:
    n, _, h, w = x.shape
    k, _, r, s = weight.shape
    oh = (h + 2 * padding[0] - r) // stride[0] + 1
    ow = (w + 2 * padding[1] - s) // stride[1] + 1
    return x.new_empty((n, k, oh, ow))


class FusedConv(nn.Module):
    """One group of the fusion plan: a conv with its BN folded in, then ``+ residual`` (when the
    group has an add) and an activation (one of archc.kernels.ACTIVATIONS, when the group has
    one; ``negative_slope`` is leaky ReLU's). Inference only."""

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.BatchNorm2d | None,
        activation: str | None,
        negative_slope: float = 0.0,
    ) -> None:
        super().__init__()
        if activation is not None and activation not in _EAGER_ACTIVATIONS:
            raise ValueError(f"no fused epilogue for the activation {activation!r}")
        weight, bias = conv.weight.detach(), conv.bias
        if bn is not None:
            assert bn.running_mean is not None and bn.running_var is not None
            weight, bias = fold_bn(
                weight, bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
            )
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), False)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.activation = activation
        self.negative_slope = float(negative_slope)

    def extra_repr(self) -> str:
        k, c, r, s = self.weight.shape
        text = f"{c}, {k}, kernel_size=({r}, {s}), stride={self.stride}, padding={self.padding}"
        if self.activation is not None:
            text += f", activation={self.activation}"
        if self.negative_slope:
            text += f", negative_slope={self.negative_slope:g}"
        return text

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        return fused_conv(
            x, self.weight, self.bias, self.stride, self.padding, residual, self.activation,
            self.negative_slope,
        )  # fmt: skip


def _fusable_conv(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d
        and module.groups == 1
        and module.dilation == (1, 1)
        and isinstance(module.padding, tuple)
        and module.padding_mode == "zeros"
    )


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _is_add(node: fx.Node | None) -> bool:
    return (
        node is not None
        and (
            (node.op == "call_function" and node.target in (operator.add, torch.add))
            or (node.op == "call_method" and node.target in ("add", "add_"))
        )
        and len(node.args) == 2
        and not node.kwargs
        and all(isinstance(a, fx.Node) for a in node.args)
    )


@functools.cache
def _activation_modules() -> dict[type[nn.Module], str]:
    """``torch.nn`` class -> the kernel's epilogue, for every registry op with a
    ``kernel_activation`` (the module class is the one the op's constructor names)."""
    from archc.ops import OPS

    table: dict[type[nn.Module], str] = {}
    for op in OPS.values():
        if op.kernel_activation is not None:
            ctor = op.ctor(op.model(name="act"), (1, 1, 1), (1, 1, 1))
            table[getattr(nn, ctor.module)] = op.kernel_activation
    return table


def _kernel_activation(node: fx.Node | None, modules: dict[str, nn.Module]) -> tuple[str, float]:
    """The epilogue (name, leaky ReLU's slope) that runs ``node``, or ("", 0) if none does."""
    if node is None:
        return "", 0.0
    if node.op == "call_module":
        module = modules[str(node.target)]
        name = _activation_modules().get(type(module), "")
        return name, float(getattr(module, "negative_slope", 0.0)) if name else 0.0
    if node.op == "call_function" and node.target in (F.relu, torch.relu):
        return "relu", 0.0
    return "", 0.0


def fuse(model: nn.Module) -> fx.GraphModule:
    """The inference module of ``model`` (see the module docstring). ``model`` is not changed.
    The result's ``fusion_groups`` counts the groups and ``fusion_summary`` says what was done."""
    if model.training:
        raise ValueError(
            "archc.fuse makes an inference module: BN is folded with its running statistics, "
            "so the model must be in eval mode (call model.eval() first)"
        )
    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    groups = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not _fusable_conv(modules[str(node.target)]):
            continue
        conv = modules[str(node.target)]
        tail, bn, residual = node, None, None
        nxt = _only_user(tail)
        if nxt is not None and nxt.op == "call_module":
            candidate = modules[str(nxt.target)]
            if type(candidate) is nn.BatchNorm2d and candidate.track_running_stats:
                bn, tail = candidate, nxt
                nxt = _only_user(tail)
        if _is_add(nxt) and nxt is not None:
            others = [a for a in nxt.args if a is not tail]
            if len(others) == 1:
                residual, tail = others[0], nxt
                nxt = _only_user(tail)
        activation, slope = _kernel_activation(nxt, modules)
        if activation and nxt is not None:
            tail = nxt
        fused = FusedConv(conv, bn, activation or None, slope)
        name = str(node.target)
        gm.add_submodule(name, fused)  # replaces the conv under its own name
        with gm.graph.inserting_before(tail):
            args: tuple[Any, ...] = (
                (node.args[0],) if residual is None else (node.args[0], residual)
            )
            new = gm.graph.call_module(name, args)
        tail.replace_all_uses_with(new)
        # The residual must be ready where the group runs: it is, since the group runs where
        # its last member stood. Remove the members, last first.
        doomed = [tail]
        while doomed[-1] is not node:
            inputs = [a for a in doomed[-1].args if isinstance(a, fx.Node) and a is not residual]
            doomed.append(inputs[0])
        for dead in doomed:
            gm.graph.erase_node(dead)
        groups += 1
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.eval()
    gm.requires_grad_(False)
    gm.fusion_groups = groups  # type: ignore[assignment]
    gm.fusion_summary = (  # type: ignore[assignment]
        f"archc.fuse: {groups} conv -> BN -> (+ residual) -> activation group"
        f"{'s' if groups != 1 else ''} fused into one op each"
    )
    return gm
