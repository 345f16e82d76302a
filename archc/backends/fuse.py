"""``archc.fuse``: a plain model becomes an inference module whose conv -> BN -> (+ residual) ->
activation groups are one op each.

Fusion is an explicit step after building, like ``torch.ao.quantization.fuse_modules`` but for
whole groups: the model is copied, traced with ``torch.fx``, and each group (a conv; then its only
reader if that is a BN; then an add reading that alone, the other operand becoming the residual;
then an activation reading that alone, if the engines have it as an epilogue: one whose registry
entry, archc.ops, names a ``kernel_activation``) is replaced by a :class:`FusedConv` whose weight
and bias have the BN folded in once. A FusedConv calls the op ``archc::fused_conv``
(``torch.ops.archc.fused_conv``), registered with ``torch.library`` with a fake implementation
that gives the real op's strides, so FX, torch.compile, torch.export and TorchScript keep it as
one node per group (the ONNX exporter gets each group's conv, add and activation instead:
archc.backends.fuse_onnx). The op runs on the fastest
fused primitive the platform has:

- ``triton``: archc's Triton kernel (archc.kernels.fused_conv2d) on CUDA with triton installed,
  for groups 1 and dilation 1 (anywhere with ``ARCHC_KERNELS=triton``: on the CPU that is
  Triton's interpreter);
- ``onednn``: on the CPU, oneDNN's convolution with post-ops
  (``torch.ops.mkldnn._convolution_pointwise``; its binary form adds the residual and applies
  ReLU), with the weight reordered once into oneDNN's blocked layout and kept beside the dense
  one; grouped, depthwise and dilated convs included; fp32, and bf16/fp16 where the CPU has them;
- ``eager``: otherwise, or with ``ARCHC_KERNELS=eager``: the folded ``conv2d``, then the in-place
  add and activation.

Whatever the engine, the op's result is channels_last (the layout every engine writes fastest).
The fused module converts a 4-D input to channels_last once, at its input, and a 4-D output back
to the caller's layout, so the fast path needs no knowledge from the user. The result is a
``torch.fx.GraphModule`` in eval mode without autograd; ``fuse`` refuses a model in training mode
(BN must use its running statistics to be folded) and leaves the model it is given untouched.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import importlib.util
import operator
import os
import sys
from collections import Counter
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.utils.weak import WeakIdKeyDictionary

from archc.backends import fuse_onnx
from archc.backends.convbn import fold_bn
from archc.backends.fuse_linear import FusedLinear, fuse_linears, hooked, read_directly

_triton_found: bool | None = None


def _triton_available() -> bool:
    global _triton_found
    if _triton_found is None:
        _triton_found = importlib.util.find_spec("triton") is not None
    return _triton_found


def _mode() -> str:
    mode = os.environ.get("ARCHC_KERNELS", "auto") or "auto"
    if mode not in ("auto", "eager", "triton"):
        raise ValueError(f"ARCHC_KERNELS must be auto, eager or triton, not {mode!r}")
    return mode


@functools.cache
def _onednn_dtype(dtype: torch.dtype) -> bool:
    """Whether this build and CPU have oneDNN convolutions in ``dtype`` (asked once per dtype:
    every group asks at every call)."""
    if not torch.backends.mkldnn.is_available():
        return False
    if dtype == torch.float32:
        return True
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if dtype == torch.float16:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    return False  # float64 and integers: oneDNN has no convolution for them


def _onednn_takes(device: torch.device, dtype: torch.dtype) -> bool:
    return device.type == "cpu" and torch.backends.mkldnn.enabled and _onednn_dtype(dtype)


def engine(x: Tensor, groups: int = 1, dilation: list[int] | None = None) -> str:
    """The engine a group with ``groups`` and ``dilation`` runs on for an input like ``x``:
    ``"triton"``, ``"onednn"`` or ``"eager"`` (see the module docstring)."""
    mode = _mode()
    if mode != "eager" and groups == 1 and (dilation is None or dilation == [1, 1]):
        if mode == "triton" or (x.is_cuda and _triton_available()):
            return "triton"
    if mode == "auto" and _onednn_takes(x.device, x.dtype):
        return "onednn"
    return "eager"


# The epilogues, by the kernel's names for them (tests/test_kernels.py checks that the registry's
# ``kernel_activation``s, these tables and archc.kernels.ACTIVATIONS agree): the eager ones on a
# fresh tensor (so in place), and oneDNN's post-op (attribute, scalars) for a slope.
_EAGER_ACTIVATIONS = {
    "relu": lambda y, slope: F.relu(y, inplace=True),
    "relu6": lambda y, slope: F.relu6(y, inplace=True),
    "leaky_relu": lambda y, slope: F.leaky_relu(y, slope, inplace=True),
    "silu": lambda y, slope: F.silu(y, inplace=True),
    "hardswish": lambda y, slope: F.hardswish(y, inplace=True),
    "hardsigmoid": lambda y, slope: F.hardsigmoid(y, inplace=True),
}
_ONEDNN_ACTIVATIONS = {
    "relu": lambda slope: ("relu", []),
    "relu6": lambda slope: ("hardtanh", [0.0, 6.0]),
    "leaky_relu": lambda slope: ("leaky_relu", [slope]),
    "silu": lambda slope: ("swish", []),
    "hardswish": lambda slope: ("hardswish", []),
    "hardsigmoid": lambda slope: ("hardsigmoid", []),
}

# A weight's oneDNN layout, made once and kept as long as the weight lives: (the weight's version
# and the conv's geometry, the reordered weight). Keyed by identity, since tensors compare by value.
_ONEDNN_WEIGHTS: WeakIdKeyDictionary = WeakIdKeyDictionary()


def onednn_weight(
    weight: Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    input_size: list[int] | None = None,
) -> Tensor:
    """``weight`` reordered into oneDNN's blocked layout for this conv (an opaque mkldnn tensor),
    made on the first call and reused until the weight changes in place. ``input_size`` lets
    oneDNN pick the layout for that input; any other input still gets the right answer."""
    version = -1 if weight.is_inference() else weight._version
    # The storage too: `weight.data = t` gives the same parameter new values, same version.
    geometry = (tuple(stride), tuple(padding), tuple(dilation), groups)
    key = (version, weight.data_ptr(), geometry, weight.dtype)
    known = _ONEDNN_WEIGHTS.get(weight)
    if known is not None and known[0] == key:
        return known[1]
    packed = torch.ops.mkldnn._reorder_convolution_weight(
        weight.detach(), padding, stride, dilation, groups, input_size
    )
    _ONEDNN_WEIGHTS[weight] = (key, packed)
    return packed


def _channels_last(y: Tensor) -> Tensor:
    """``y`` as a channels_last tensor with exactly the strides ``torch.empty(...,
    memory_format=torch.channels_last)`` gives (the fake kernel's): engines may differ in the
    strides of size-1 dimensions, which mean nothing but which tools compare."""
    n, c, h, w = y.shape
    strides = (h * w * c, 1, w * c, c)
    if y.is_contiguous(memory_format=torch.channels_last):
        return y if y.stride() == strides else y.as_strided(y.shape, strides)
    return y.contiguous(memory_format=torch.channels_last)


def _output_size(
    x: Tensor, weight: Tensor, stride: list[int], padding: list[int], dilation: list[int]
) -> tuple[int, int, int, int]:
    n, _, h, w = x.shape
    k, _, r, s = weight.shape
    oh = (h + 2 * padding[0] - dilation[0] * (r - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (s - 1) - 1) // stride[1] + 1
    return n, k, oh, ow


# A oneDNN convolution call costs about 30 us however small the problem (the primitive is looked
# up and set up with its post-ops each time). A 1x1 conv over a 1x1 map — the squeeze-excite
# convs of EfficientNet and MobileNetV3 — is a matrix product of the (N, C) rows with the weight,
# which MKL's GEMM does in about 4 us (33 us as a convolution, on the development VM). On larger
# maps oneDNN's convolution wins (ResNet-50's 7x7 1x1 convs: 41.4 ms a batch of 1 as GEMMs
# against 39.6 ms), so only 1x1 maps take this path.
def _squeeze_excite_conv(
    x: Tensor, weight: Tensor, stride: list[int], padding: list[int], groups: int
) -> bool:
    return (
        x.shape[2] == 1
        and x.shape[3] == 1
        and groups == 1
        and weight.shape[2] == 1
        and weight.shape[3] == 1
        and stride == [1, 1]
        and padding == [0, 0]
    )


def _run_gemm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    residual: Tensor | None,
    activation: str | None,
    negative_slope: float,
) -> Tensor:
    """A 1x1 group as one GEMM on the channels_last rows (bias in the GEMM), then the add and
    the activation in place on its fresh result."""
    n, c, h, w = x.shape
    k = weight.shape[0]
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    kernel = weight.reshape(k, c).t()
    y = torch.mm(rows, kernel) if bias is None else torch.addmm(bias, rows, kernel)
    y = y.view(n, h, w, k).permute(0, 3, 1, 2)  # channels_last, canonical strides
    if residual is not None:
        y += residual
    return y if activation is None else _EAGER_ACTIVATIONS[activation](y, negative_slope)


def _run_onednn(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    residual: Tensor | None,
    activation: str | None,
    negative_slope: float,
    accumulate: bool = False,
) -> Tensor:
    """The group as one oneDNN convolution with post-ops. With ``accumulate`` the result is
    written into ``residual`` (oneDNN's sum post-op: no fresh output to allocate and fault in);
    only the fused module's own forward asks for that, for a residual nobody reads again."""
    x = x.contiguous(memory_format=torch.channels_last)
    if _squeeze_excite_conv(x, weight, stride, padding, groups):
        return _run_gemm(x, weight, bias, residual, activation, negative_slope)
    packed = onednn_weight(weight, stride, padding, dilation, groups, list(x.shape))
    bias = None if bias is None else bias.contiguous()
    if residual is None or residual.shape != _output_size(x, weight, stride, padding, dilation):
        attr, scalars = ("none", []) if residual is not None or activation is None else (
            _ONEDNN_ACTIVATIONS[activation](negative_slope)
        )  # fmt: skip
        y = torch.ops.mkldnn._convolution_pointwise(
            x, packed, bias, padding, stride, dilation, groups, attr, scalars, None
        )
        if residual is None:
            return y
        y += residual  # a residual that broadcasts, as the model's own add would
    else:
        # The binary form takes ReLU (or nothing) after the add; other activations run after.
        unary = "relu" if activation == "relu" else None
        args = (packed, bias, padding, stride, dilation, groups, "add", None, unary, [], None)
        if accumulate and residual.is_contiguous(memory_format=torch.channels_last):
            y = torch.ops.mkldnn._convolution_pointwise_.binary(residual, x, *args)
        else:
            other = residual.contiguous(memory_format=torch.channels_last)
            y = torch.ops.mkldnn._convolution_pointwise.binary(x, other, *args)
        if activation is None or unary is not None:
            return y
    return _EAGER_ACTIVATIONS[activation](y, negative_slope)


@torch.library.custom_op("archc::fused_conv", mutates_args=())
def fused_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    residual: Tensor | None,
    activation: str | None,
    negative_slope: float,
) -> Tensor:
    """``act?(conv2d(x, weight, bias, stride, padding, dilation, groups) + residual?)``, BN
    already folded, as a channels_last tensor."""
    way = engine(x, groups, dilation)
    if way == "onednn":
        y = _run_onednn(
            x, weight, bias, stride, padding, dilation, groups, residual, activation,
            negative_slope,
        )  # fmt: skip
    elif way == "triton":
        from archc import kernels

        y = kernels.fused_conv2d(
            x, weight, bias, stride=tuple(stride), padding=tuple(padding), residual=residual,
            activation=activation, negative_slope=negative_slope,
        )  # fmt: skip
    else:
        y = F.conv2d(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups)
        if residual is not None:
            y += residual  # y is fresh: in place is safe
        if activation is not None:
            y = _EAGER_ACTIVATIONS[activation](y, negative_slope)
    return _channels_last(y)


@fused_conv.register_fake
def _(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    residual: Tensor | None,
    activation: str | None,
    negative_slope: float,
) -> Tensor:
    return torch.empty(
        _output_size(x, weight, stride, padding, dilation),
        dtype=x.dtype,
        device=x.device,
        memory_format=torch.channels_last,
    )


class FusedConv(nn.Module):
    """One group: a conv with its BN folded in, then ``+ residual`` (when the group has an add)
    and an activation (one of archc.kernels.ACTIVATIONS, when the group has one;
    ``negative_slope`` is leaky ReLU's). Inference only. ``members`` names the model's layers it
    replaces; its repr names the engine it runs on for its weight's device and dtype."""

    # TorchScript compiles properties too; this one asks about the machine, not the input.
    __jit_unused_properties__ = ["engine"]

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.BatchNorm2d | None,
        activation: str | None,
        negative_slope: float = 0.0,
        members: tuple[str, ...] = (),
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
        # Normal tensors even under torch.inference_mode: an inference tensor has no version
        # counter, so a later in-place load would not renew the engine's layout of it.
        with torch.inference_mode(False):
            self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
            self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), False)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = int(conv.groups)
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.members = list(members)
        # Set by ``fuse`` when this group is the last reader of a residual that an earlier group
        # wrote: oneDNN may then write the result into the residual's memory.
        self.accumulate = False

    @property
    def engine(self) -> str:
        """The engine this group runs on for an input on its weight's device and dtype."""
        return engine(self.weight, self.groups, self.dilation)

    def extra_repr(self) -> str:
        k, c, r, s = self.weight.shape
        text = f"{c * self.groups}, {k}, kernel_size=({r}, {s}), stride={self.stride}"
        text += f", padding={self.padding}"
        if self.dilation != [1, 1]:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.activation is not None:
            text += f", activation={self.activation}"
        if self.negative_slope:
            text += f", negative_slope={self.negative_slope:g}"
        return text + f", engine={self.engine}"

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if not torch.jit.is_scripting():
            if self._direct(x, residual):
                return _run_onednn(
                    x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                    self.groups, residual, self.activation, self.negative_slope, self.accumulate,
                )  # fmt: skip
            # ONNX has no fused op: the exporter gets conv, add and activation; so does a call
            # the op cannot serve (see _needs_plain_ops).
            if fuse_onnx.exporting(x) or _needs_plain_ops(x, residual):
                return fuse_onnx.unfused(self, x, residual)
        return torch.ops.archc.fused_conv(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
            residual, self.activation, self.negative_slope,
        )  # fmt: skip

    def _direct(self, x: Tensor, residual: Tensor | None) -> bool:
        """Whether this is a plain eager call that oneDNN runs: then the group calls oneDNN
        itself, saving the op's dispatch (tens of microseconds a group) and, where ``fuse``
        found the residual dead, writing into it. Tracers, torch.compile, torch.export and
        TorchScript always see the op."""
        return (
            type(x) is Tensor
            and (residual is None or type(residual) is Tensor)
            and not torch.compiler.is_compiling()
            and not torch._C._is_tracing()  # torch.jit.is_tracing() less its scripting test
            and not _needs_plain_ops(x, residual)
            and engine(x, self.groups, self.dilation) == "onednn"
        )


def _needs_plain_ops(x: Tensor, residual: Tensor | None) -> bool:
    """Whether this call must run as the plain conv, add and activation: under autocast (the
    plain conv runs in the autocast dtype, the op in the weight's), or when autograd is to
    differentiate it through ``x`` or ``residual`` (the op has no autograd kernel). Never for
    a torch.fx proxy: FX records the op whatever it is asked."""
    if not isinstance(x, Tensor):
        return False
    # Cheapest questions first: every group of every call asks.
    if torch.is_grad_enabled() and (
        x.requires_grad or (isinstance(residual, Tensor) and residual.requires_grad)
    ):
        return True
    if x.is_cpu:
        return torch.is_autocast_enabled("cpu")
    return x.is_cuda and torch.is_autocast_enabled("cuda")


def _to_channels_last(x: Tensor) -> Tensor:
    """The fused module's input, converted once to the layout the engines run fastest on."""
    if not torch.jit.is_scripting():
        if isinstance(x, fx.Proxy):  # the fused module traced again by torch.fx: one node
            return x.tracer.create_proxy("call_function", _to_channels_last, (x,), {})
        if fuse_onnx.exporting(x):  # ONNX has no layouts (see archc.backends.fuse_onnx)
            return x
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _in_callers_layout(y: Tensor, x: Tensor) -> Tensor:
    """The fused module's output, in the layout of the input the caller gave (a channels-first
    input gets a contiguous feature map back; logits are untouched)."""
    if not torch.jit.is_scripting():
        if isinstance(y, fx.Proxy):
            return y.tracer.create_proxy("call_function", _in_callers_layout, (y, x), {})
    if y.dim() == 4 and x.dim() == 4 and not x.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous()
    return y


# Layers that are the identity in eval mode: the fused module drops them (a Python call each).
_IDENTITY_IN_EVAL = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _eval_stochastic_depth(node: fx.Node) -> bool:
    """``torchvision.ops.stochastic_depth(x, p, mode, training=False)``: the identity (FX keeps
    the call, which torchvision wraps, in a traced torchvision model)."""
    target = node.target
    if node.op != "call_function" or getattr(target, "__name__", "") != "stochastic_depth":
        return False
    if not str(getattr(target, "__module__", "")).startswith("torchvision."):
        return False
    training = node.kwargs.get("training", node.args[3] if len(node.args) > 3 else True)
    return training is False and isinstance(node.args[0], fx.Node)


def _drop_identities(gm: fx.GraphModule, modules: dict[str, nn.Module]) -> None:
    for node in list(gm.graph.nodes):
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        if type(module) in _IDENTITY_IN_EVAL and module is not None and not hooked(module):
            if len(node.args) == 1 and not node.kwargs and isinstance(node.args[0], fx.Node):
                node.replace_all_uses_with(node.args[0])
                gm.graph.erase_node(node)
        elif _eval_stochastic_depth(node):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)


def _fusable_conv(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d
        and not hooked(module)
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
            (node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add))
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
        name = "" if hooked(module) else _activation_modules().get(type(module), "")
        return name, float(getattr(module, "negative_slope", 0.0)) if name else 0.0
    if node.op == "call_function" and node.target in (F.relu, torch.relu):
        return "relu", 0.0
    return "", 0.0


def _fuse_group(
    gm: fx.GraphModule, node: fx.Node, modules: dict[str, nn.Module], may_fold: bool = True
) -> FusedConv:
    """Replace the group that starts at the conv ``node`` by one FusedConv call (with its BN
    only if ``may_fold``: the FusedConv takes the conv's name, so its folded weight is what
    the model's other readers of the conv's weight would get)."""
    conv = modules[str(node.target)]
    tail, bn, residual = node, None, None
    nxt = _only_user(tail)
    if may_fold and nxt is not None and nxt.op == "call_module":
        candidate = modules[str(nxt.target)]
        if (
            type(candidate) is nn.BatchNorm2d
            and candidate.track_running_stats
            and not hooked(candidate)
        ):
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
    # The group's members, first to last (the residual is an input, not a member).
    doomed = [tail]
    while doomed[-1] is not node:
        inputs = [a for a in doomed[-1].args if isinstance(a, fx.Node) and a is not residual]
        doomed.append(inputs[0])
    members = tuple(str(m.target) if m.op == "call_module" else m.name for m in reversed(doomed))
    fused = FusedConv(conv, bn, activation or None, slope, members)
    name = str(node.target)
    gm.add_submodule(name, fused)  # replaces the conv under its own name
    with gm.graph.inserting_before(tail):
        args: tuple[Any, ...] = (node.args[0],) if residual is None else (node.args[0], residual)
        new = gm.graph.call_module(name, args)
    tail.replace_all_uses_with(new)
    # The residual is ready where the group runs, since the group runs where its last member
    # stood. Remove the members, last first.
    for dead in doomed:
        gm.graph.erase_node(dead)
    return fused


def _convert_layouts(gm: fx.GraphModule) -> None:
    """channels_last once at the first input, the caller's layout again at a 4-D output."""
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not inputs:
        return
    x = inputs[0]
    with gm.graph.inserting_after(x):
        converted = gm.graph.call_function(_to_channels_last, (x,))
    x.replace_all_uses_with(converted, delete_user_cb=lambda user: user is not converted)
    output = next(n for n in gm.graph.nodes if n.op == "output")
    result = output.args[0]
    if isinstance(result, fx.Node):
        with gm.graph.inserting_before(output):
            restored = gm.graph.call_function(_in_callers_layout, (result, x))
        output.args = (restored,)


def _mark_accumulation(gm: fx.GraphModule) -> None:
    """Let a group write into its residual where no one reads the residual after it: the
    residual is another group's fresh output, every reader of it is a group, and this group is
    the last of them (graph order is execution order) and does not also read it as its input."""

    def group(node: Any) -> bool:
        return (
            isinstance(node, fx.Node)
            and node.op == "call_module"
            and isinstance(gm.get_submodule(str(node.target)), FusedConv)
        )

    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    for node in gm.graph.nodes:
        if not group(node) or len(node.args) != 2:
            continue
        x, residual = node.args
        if (
            group(residual)
            and x is not residual
            and all(group(user) for user in residual.users)
            and max(residual.users, key=order.__getitem__) is node
        ):
            gm.get_submodule(str(node.target)).accumulate = True


@functools.cache
def _keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the
    kernel (once per process; ``ARCHC_MALLOPT=0`` leaves malloc alone). By default every
    activation over 32 MiB, and the freed top of the heap, goes back to the kernel, so each call
    of a large batch faults its outputs in again, page by page: 14,000 faults and about a tenth
    of ResNet-50's time at batch 8. ONNX Runtime's arena and Inductor's memory planning avoid
    the same cost by reusing buffers. Returns whether malloc was told."""
    if sys.platform != "linux" or os.environ.get("ARCHC_MALLOPT", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's; musl and others have none
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, (1 << 31) - 1))


def _kept(node: fx.Node) -> bool:
    """Whether dead-code elimination keeps ``node`` although nothing reads it: all but the
    constants a group no longer reads (a folded layer scale). FX's own rule would drop an
    unread in-place call such as ``r.add_(y)``, whose effect is on ``r``."""
    return node.op != "get_attr"


def describe(module: nn.Module) -> str:
    """Which of a fused module's groups run on which engine (for inputs on their weights'
    device and dtype), and the convolutions left as the model's own layers."""
    groups = [(n, m) for n, m in module.named_modules() if isinstance(m, (FusedConv, FusedLinear))]
    lines = [f"{name}: {' -> '.join(m.members) or name} [{m.engine}]" for name, m in groups]
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            why = "it has forward hooks" if hooked(m) else "a convolution no engine takes"
            lines.append(f"{name}: not fused ({why})")
    return "\n".join(lines)


def fuse(model: nn.Module, example_input: Tensor | None = None) -> fx.GraphModule:
    """The inference module of ``model`` (see the module docstring); ``model`` is not changed.
    ``example_input`` (optional) is run once, so that each group's weight is laid out for the
    engine and for inputs of that size before the first real call. The result's
    ``fusion_groups`` counts the conv groups, ``linear_groups`` the linear ones
    (archc.backends.fuse_linear), ``fusion_summary`` says what was done and on which
    engines, and :func:`describe` lists the groups."""
    if model.training:
        raise ValueError(
            "archc.fuse makes an inference module: BN is folded with its running statistics, "
            "so the model must be in eval mode (call model.eval() first)"
        )
    # A copy, so that the caller's layers keep their parameters' requires_grad (the fused
    # module turns autograd off) and later edits to the model do not leak into the snapshot.
    gm = fx.symbolic_trace(copy.deepcopy(model))
    for node in gm.graph.nodes:
        # A postponed annotation ("Tensor") stays a string, which the generated code names as a
        # global holding it: TorchScript cannot read that, and takes a Tensor when told nothing.
        if isinstance(node.type, str):
            node.type = None
    modules = dict(gm.named_modules())
    _drop_identities(gm, modules)
    calls = Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_module")
    read = read_directly(gm)
    fused = [
        _fuse_group(gm, node, modules, str(node.target) not in read)
        for node in list(gm.graph.nodes)
        if node.op == "call_module"
        and _fusable_conv(modules[str(node.target)])
        and calls[str(node.target)] == 1  # a conv called twice shares its weight: left alone
    ]
    linears = fuse_linears(gm, modules)
    if fused:
        _convert_layouts(gm)
        _mark_accumulation(gm)
    gm.graph.eliminate_dead_code(is_impure_node=_kept)
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.eval()
    gm.requires_grad_(False)
    engines = Counter(group.engine for group in fused)
    if engines["onednn"]:
        _keep_freed_memory()
    on = ", ".join(f"{count} {name}" for name, count in sorted(engines.items()))
    gm.fusion_groups = len(fused)  # type: ignore[assignment]
    gm.linear_groups = len(linears)  # type: ignore[assignment]
    gm.fusion_summary = (  # type: ignore[assignment]
        f"archc.fuse: {len(fused)} conv -> BN -> (+ residual) -> activation group"
        f"{'s' if len(fused) != 1 else ''} fused into one op each"
        + (f" (engines: {on})" if on else "")
    )
    if linears:
        on = ", ".join(
            f"{count} {name}" for name, count in sorted(Counter(g.engine for g in linears).items())
        )
        gm.fusion_summary += (  # type: ignore[operator]
            f"; {len(linears)} linear -> (scale, + residual | activation) group"
            f"{'s' if len(linears) != 1 else ''} as one matmul each (engines: {on})"
        )
    if example_input is not None:
        with torch.no_grad():
            gm(example_input)
    return gm
