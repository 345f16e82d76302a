"""Fused convolution kernels for archc: tensors in, tensors out (torch and triton only).

``fused_conv2d`` runs ``act?(conv2d(x, w, b) + residual?)`` as one Triton kernel, ``act`` one of
``ACTIVATIONS`` (ReLU, ReLU6, leaky ReLU, SiLU, hardswish, hardsigmoid); ``fold_bn``
folds eval-mode BatchNorm into a convolution's weight and bias (it lives in the torch-only
``archc.backends.convbn``, which the eager path and generated files share, and is re-exported
here). See docs/kernels.md.
"""

from archc.backends.convbn import fold_bn

from .fused_conv import ACTIVATIONS, PackedWeight, fused_conv2d, output_size, prepack_weight

__all__ = [
    "ACTIVATIONS",
    "PackedWeight",
    "fold_bn",
    "fused_conv2d",
    "output_size",
    "prepack_weight",
]
