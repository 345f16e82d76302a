"""Fused convolution kernels for archc: tensors in, tensors out (torch and triton only).

``fused_conv2d`` runs ``relu?(conv2d(x, w, b) + residual?)`` as one Triton kernel; ``fold_bn``
folds eval-mode BatchNorm into a convolution's weight and bias. See docs/kernels.md.
"""

from .fused_conv import PackedWeight, fold_bn, fused_conv2d, output_size, prepack_weight

__all__ = ["PackedWeight", "fold_bn", "fused_conv2d", "output_size", "prepack_weight"]
