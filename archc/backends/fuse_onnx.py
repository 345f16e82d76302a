"""The fused module under ``torch.onnx.export``: each group is exported as the computation it
stands for, a Conv with the folded weight and bias, an Add for the residual and the
activation's own ONNX ops (Relu; Clip for ReLU6; LeakyRelu; HardSwish; HardSigmoid; Sigmoid
and Mul for SiLU). These are the aten ops torch's exporter translates for the plain module, so
the file has the plain module's ONNX op types (its optimiser folds BN into the Conv there) and
no node in a custom domain, with nothing for the user to pass.

Why here and not as a translation of the op ``archc::fused_conv`` itself: the dynamo exporter
builds its registry of translations afresh at each call, from torch's and onnxscript's torchlib
(``custom_translation_table`` adds to it for one call only, so the user would have to pass it),
and decomposes the ops it finds in torch's global decomposition table. A torchlib entry means
importing onnxscript (about 2 s) wherever ``archc.fuse`` runs, exported or not; an entry in the
global table is also run by FakeTensor in place of the op's fake kernel whenever shapes are
symbolic, in every torch.compile and torch.export. ``torch.onnx.is_in_onnx_export()`` is public
and true for the whole export, the capture included: a FusedConv that sees it hands the
exporter plain aten ops, and the fused module keeps the caller's layout throughout, since ONNX
has no layouts and a channels_last map only makes torch add Reshape and Gather after pooling to
restore its strides. Outside an export nothing changes: torch.compile and torch.export still
see one ``archc::fused_conv`` per group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from archc.backends.fuse import FusedConv

# Out of place, and as the plain module's layers call them (nn.ReLU6 is a Hardtanh(0, 6)), so
# that the exporter translates each as it does for the plain module.
ACTIVATIONS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "relu": lambda y, slope: F.relu(y),
    "relu6": lambda y, slope: F.hardtanh(y, 0.0, 6.0),
    "leaky_relu": lambda y, slope: F.leaky_relu(y, slope),
    "silu": lambda y, slope: F.silu(y),
    "hardswish": lambda y, slope: F.hardswish(y),
    "hardsigmoid": lambda y, slope: F.hardsigmoid(y),
}


def exporting(x: Tensor) -> bool:
    """Whether ``x`` is being traced by ``torch.onnx.export``. A plain tensor outside
    torch.compile and torch.jit.trace (which the TorchScript-based exporter, ``dynamo=False``,
    runs) is an eager call, never an export's capture, so it skips the check, which costs
    microseconds (``torch.onnx.is_in_onnx_export`` imports its flags at each call)."""
    traced = type(x) is not Tensor or torch.compiler.is_compiling() or torch.jit.is_tracing()
    return traced and torch.onnx.is_in_onnx_export()


def unfused(group: FusedConv, x: Tensor, residual: Tensor | None) -> Tensor:
    """What ``group`` computes, ``act?(conv2d(x) + residual?)`` with its folded weight and bias,
    as aten ops the exporter has translations for."""
    y = F.conv2d(
        x, group.weight, group.bias, group.stride, group.padding, group.dilation, group.groups
    )
    if residual is not None:
        y = y + residual
    if group.activation is not None:
        y = ACTIVATIONS[group.activation](y, group.negative_slope)
    return y
