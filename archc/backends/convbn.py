"""A convolution with its batch norm folded in at inference: the one piece of runtime code that
``archc.load``'s modules and the files of ``archc compile`` share.

In eval mode BN is an affine map per channel, so ``bn(conv(x, w, b)) = conv(x, w*g, (b - mu)*g +
beta)`` with ``g = gamma / sqrt(var + eps)``: the convolution writes the normalised output
directly, and the separate pass of BN over it -- a read and a write of the whole activation, and
one more allocation -- disappears. :class:`ConvBN` does that whenever it may: in eval mode, when
autograd records nothing, and outside torch.compile/torch.export tracing; otherwise it runs the
conv and then ``self.bn`` as usual, so training, BN batch statistics and gradients are untouched.

This module imports only torch, and :mod:`archc.backends.source` copies the text of
:func:`_tracing`, :func:`fold_bn` and :class:`ConvBN` into every generated file that has a conv
with BN, so both backends run the same arithmetic and give bit-identical outputs.
"""

import torch
from torch import Tensor, nn


def _tracing() -> bool:
    """True while torch.compile or torch.export traces the model (torch.compiler.is_exporting
    exists from torch 2.5 on): tracing sees the plain conv and BN, not the cache."""
    compiler = torch.compiler
    return compiler.is_compiling() or getattr(compiler, "is_exporting", bool)()


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


class ConvBN(nn.Conv2d):
    """A convolution and the batch norm after it, ``self.bn`` (set after construction).

    In eval mode, when no gradient is wanted, the BN is folded into the convolution's weight and
    bias (see ``fold_bn``): one pass over the output instead of two. The folded pair is cached --
    one extra copy of the weight -- until a parameter or buffer changes (every in-place write,
    ``load_state_dict`` and optimizer steps included, bumps a tensor's version) and dropped by
    ``train()``. Tensors made under ``torch.inference_mode`` have no version counter, so with
    those the BN runs on its own.
    """

    bn: nn.BatchNorm2d | None
    _folded: tuple[tuple, Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        folded = self.folded(x)
        if folded is None:
            return self.bn(super().forward(x))
        return self._conv_forward(x, *folded)

    def train(self, mode: bool = True) -> "ConvBN":
        self._folded = None
        return super().train(mode)

    def __getstate__(self) -> dict:
        # Pickles (torch.save of the module, deepcopy) leave the cached copy out.
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_folded"}

    def fold_key(self) -> tuple | None:
        """What the folded pair is made from, or None when that cannot be told (BN without
        running statistics, inference tensors)."""
        bn = self.bn
        tensors = [self.weight, self.bias]
        if bn is not None:
            if bn.running_mean is None or bn.running_var is None:
                return None
            tensors += [bn.weight, bn.bias, bn.running_mean, bn.running_var]
        key: list = [None if bn is None else bn.eps]
        for t in tensors:
            if t is not None and t.is_inference():
                return None
            key.append(None if t is None else (t.data_ptr(), t._version, t.dtype, t.device))
        return tuple(key)

    def folded(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """The BN-folded weight and bias, or None where the BN must run on its own: in training,
        when autograd records, while tracing, and when the fold cannot be cached."""
        wants_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if self.training or wants_grad or _tracing():
            return None
        key = self.fold_key()
        if key is None:
            return None
        if self._folded is None or self._folded[0] != key:
            w, b, bn = self.weight, self.bias, self.bn
            with torch.no_grad():
                weight, bias = fold_bn(
                    w, b, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
                )
            self._folded = (key, weight, bias)
        return self._folded[1], self._folded[2]
