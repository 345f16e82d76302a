"""Folding an eval-mode batch norm into the convolution before it: the arithmetic that
``archc.fuse`` (archc.backends.fuse) and the Triton kernels' callers share.

In eval mode BN is an affine map per channel, so ``bn(conv(x, w, b)) = conv(x, w*g, (b - mu)*g +
beta)`` with ``g = gamma / sqrt(var + eps)``: the convolution writes the normalised output
directly, and the separate pass of BN over it disappears. This module imports only torch.
"""

import torch
from torch import Tensor


def fold_bn(
    weight: Tensor,
    bias: Tensor | None,
    running_mean: Tensor,
    running_var: Tensor,
    gamma: Tensor | None,
    beta: Tensor | None,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """Fold eval-mode BatchNorm into the convolution before it.

    ``bn(conv(x, w, b)) = conv(x, w*g, (b - mean)*g + beta)`` with ``g = gamma / sqrt(var + eps)``;
    computed in fp32 (fp64 for fp64 weights) and cast back to the weight's dtype. ``bias``,
    ``gamma`` and ``beta`` may be None (no conv bias, BN without affine parameters).
    """
    k = weight.shape[0]
    f32 = dict(dtype=torch.promote_types(weight.dtype, torch.float32), device=weight.device)
    mean = running_mean.to(**f32)
    scale = torch.rsqrt(running_var.to(**f32) + eps)
    if gamma is not None:
        scale = scale * gamma.to(**f32)
    shift = beta.to(**f32) if beta is not None else torch.zeros(k, **f32)
    b = bias.to(**f32) if bias is not None else torch.zeros(k, **f32)
    w = weight.to(**f32) * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return w.to(weight.dtype), ((b - mean) * scale + shift).to(weight.dtype)
