"""Fused Conv → (folded) BN → (+residual) → ReLU as one Triton kernel.

Why
===
In eval mode a CNN block is ``relu(bn(conv(x)) + residual)``. Run eagerly that is four kernels and
three round trips of the activation through memory; BN folds into the convolution's weight and
bias (``fold_bn``), and the add and the ReLU cost nothing once the output tile is still in
registers. So one kernel computes ``relu?(conv2d(x, w, b) + residual?)`` and writes the result once.

The convolution is an *implicit GEMM* over NHWC (channels_last) activations:

* rows ``M = N·OH·OW`` — one per output pixel,
* columns ``K`` — one per output channel,
* reduction over ``(r, s, c)`` — the filter window times the input channels.

Nothing is unfolded in memory (no im2col): each program computes the input addresses of its
``BLOCK_M × BLOCK_K`` tile of the virtual im2col matrix on the fly. The weight is packed once to
``(R·S·C, K)``, K contiguous, so its tiles are plain dense loads (:func:`prepack_weight`).

Three shapes of reduction loop:

* **channel-blocked** (``C ≥ 32``): the loop runs over ``(r, s)`` × blocks of ``C``, flattened into
  one loop so the software pipeliner sees many iterations; the padding mask depends only on the
  output pixel and ``(r, s)``, so it is a vector, not a tile.
* **flat** (small ``C``, the RGB stems): ``C = 3`` with a 7×7 window would fill 3 of 32 lanes of a
  channel block. Instead the whole ``(r, s, c)`` axis is one flat index whose gather offsets are
  computed per element, so every tile is full but for the last.
* **1×1, stride 1, no padding, channels_last input**: a plain GEMM on ``x`` viewed as ``(M, C)``.

The epilogue adds bias and residual in fp32, applies ReLU, rounds once and stores NHWC. All
address arithmetic is 64-bit: an activation of a large batch easily exceeds 2³¹ elements.

Kernel, launcher, check and benchmark follow in this order, the layout of Triton's matrix
multiplication tutorial; the check lives in ``tests/test_kernels.py`` (CPU, Triton interpreter)
and ``benchmarks/gpu_check.py`` (GPU, full size, timings).
"""

from __future__ import annotations

import functools
import os
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# %%
# Kernel
# ======
#
# Autotuning: a handful of tile shapes, keyed on the layer's geometry and pruned to the layer's
# width. The interpreter cannot autotune over several configs, so it gets exactly one; there the
# cost is Python-level work per loaded element, and 64×64×32 tiles measured fastest on the test
# shapes.

_INTERPRETER_CONFIG = triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 4})


def _configs(shapes: list[tuple[int, int, int, int, int]]) -> list[triton.Config]:
    if _INTERPRET:
        return [_INTERPRETER_CONFIG]
    return [
        triton.Config(
            {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
            num_warps=w,
            num_stages=s,
        )
        for bm, bn, bk, w, s in shapes
    ]


# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages). Conv kernels stay at 4 warps: Triton has
# miscompiled the flattened conv loop at 8. BLOCK_K = 64 halves the integer (address, mask,
# counter) work per MAC of the conv loop, which at BLOCK_K = 32 is about as long as the wgmma
# it feeds on Hopper (benchmarks/NOTES.md); 32 stays for the stems' flat (r, s, c) axis
# (C·R·S = 147: 5 blocks of 32 waste 8 %, 3 of 64 waste 23 %). Every conv tile leaves room for
# two or more CTAs per SM (benchmarks/codegen_check.py); a 4-stage 128x128x64 tile (128 KB of
# shared memory, one CTA per SM) measured no faster and was dropped (NOTES.md, change 10).
_CONV_SHAPES = [
    (128, 128, 64, 4, 3),
    (128, 128, 32, 4, 3),
    (128, 64, 64, 4, 4),
    (128, 64, 32, 4, 4),
    (64, 128, 64, 4, 4),
    (64, 64, 64, 4, 3),
    (128, 32, 64, 4, 4),
]
_GEMM_SHAPES = [
    (128, 256, 64, 8, 3),
    (128, 128, 64, 8, 3),
    (128, 128, 64, 4, 4),
    (128, 64, 64, 4, 4),
    (64, 128, 64, 4, 4),
    (64, 64, 64, 4, 4),
    (128, 32, 64, 4, 4),
    # Two stages, for C <= _SHALLOW_C only (one or two K steps: nothing to pipeline in a CTA,
    # and less shared memory lets more CTAs share an SM and overlap each other's epilogues).
    (128, 128, 64, 8, 2),
    (128, 64, 64, 4, 2),
]
_SHALLOW_C = 128

# With a residual the epilogue holds the residual tile beside the fp32 accumulator: above 64
# accumulators per thread (128x256 at 8 warps, 128x128 at 4) ptxas spills (NOTES.md).
_RES_MAX_ACC_PER_THREAD = 64

# Below this many FLOPs a layer takes a few microseconds whatever the tile, and benchmarking
# every config (and compiling it) would cost far more than it could save: such problems get one.
_SMALL_PROBLEM_FLOPS = 4e9


def _width_fits(configs: list[triton.Config], k: int) -> list[triton.Config]:
    """Tiles about as wide as the layer's output channels."""
    widest = max(32, triton.next_power_of_2(k))
    narrowest = 32 if k <= 32 else 64
    return [c for c in configs if narrowest <= c.kwargs["BLOCK_N"] <= widest] or configs


def _acc_per_thread(c: triton.Config) -> int:
    return c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] // (32 * c.num_warps)


def _prune_configs(configs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
    fits = _width_fits(configs, named_args["K"])
    if named_args["C"] > _SHALLOW_C:
        fits = [c for c in fits if (c.num_stages or 3) > 2] or fits
    if kwargs.get("HAS_RES", named_args.get("HAS_RES", False)):
        fits = [c for c in fits if _acc_per_thread(c) <= _RES_MAX_ACC_PER_THREAD] or fits
    return fits


def _small_problem_config(configs: list[triton.Config], k: int) -> triton.Config:
    return min(
        _width_fits(configs, k),
        key=lambda c: (c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"], -c.kwargs["BLOCK_K"]),
    )


@triton.jit
def _tile_ids(M, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Grouped ordering of output tiles (as in the matmul tutorial) so neighbouring programs share
    input rows and weight columns in L2."""
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(K, BLOCK_N)
    num_in_group = GROUP_M * num_pid_n
    group_id = pid // num_in_group
    first_m = group_id * GROUP_M
    group_size = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % num_in_group) % group_size)
    pid_n = (pid % num_in_group) // group_size
    return pid_m, pid_n


# The epilogues, by the name the launcher takes (``activation=``) and archc's op registry gives
# its activations (``kernel_activation``). Each is a few fp32 instructions on the accumulator
# tile while it is in registers; ``ACT`` is a constexpr, so a kernel compiles only its own
# branch and the ReLU kernel is the same code as before there were others.
ACTIVATIONS = ("relu", "relu6", "leaky_relu", "silu", "hardswish", "hardsigmoid")


@triton.jit
def _activation(acc, ACT: tl.constexpr, SLOPE: tl.constexpr):
    """The epilogue's activation, in fp32, with torch's formulas (torch.nn.ReLU6, LeakyReLU,
    SiLU, Hardswish, Hardsigmoid). ``SLOPE`` is leaky ReLU's negative slope."""
    if ACT == "relu":
        acc = tl.maximum(acc, 0.0)
    elif ACT == "relu6":
        acc = tl.minimum(tl.maximum(acc, 0.0), 6.0)
    elif ACT == "leaky_relu":
        acc = tl.where(acc > 0.0, acc, acc * SLOPE)
    elif ACT == "silu":
        acc = acc * tl.sigmoid(acc)
    elif ACT == "hardswish":
        acc = acc * tl.minimum(tl.maximum(acc + 3.0, 0.0), 6.0) / 6.0
    elif ACT == "hardsigmoid":
        acc = tl.minimum(tl.maximum(acc + 3.0, 0.0), 6.0) / 6.0
    return acc


@triton.jit
def _epilogue(
    acc,
    offs_m,
    offs_n,
    M,
    K,
    OH,
    OW,
    out_ptr,
    bias_ptr,
    res_ptr,
    srn,
    srk,
    srh,
    srw,
    HAS_BIAS: tl.constexpr,
    HAS_RES: tl.constexpr,
    RES_DENSE: tl.constexpr,
    ACT: tl.constexpr,
    SLOPE: tl.constexpr,
):
    """bias, residual and the activation in fp32, one rounding, one NHWC store.

    ``RES_DENSE``: the residual is channels_last-contiguous with the output's shape, so its
    offsets are the output's (``m·K + k``). Otherwise each row is decomposed into (n, oh, ow) —
    in 32 bits (``M < 2³¹``), widened only for the address."""
    mask_m = offs_m < M
    mask_n = offs_n < K
    mask = mask_m[:, None] & mask_n[None, :]
    out_offs = offs_m.to(tl.int64)[:, None] * K + offs_n[None, :]
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        acc += bias[None, :]
    if HAS_RES:
        if RES_DENSE:
            res = tl.load(res_ptr + out_offs, mask=mask, other=0.0)
        else:
            ow = offs_m % OW
            oh = (offs_m // OW) % OH
            n = offs_m // (OW * OH)
            res_row = n.to(tl.int64) * srn + oh.to(tl.int64) * srh + ow.to(tl.int64) * srw
            res = tl.load(
                res_ptr + res_row[:, None] + offs_n.to(tl.int64)[None, :] * srk,
                mask=mask,
                other=0.0,
            )
        acc += res.to(tl.float32)
    acc = _activation(acc, ACT, SLOPE)
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _round_to_tf32(v):
    """Round fp32 to the nearest TF32 (10-bit mantissa), halves away from zero. The tensor cores
    truncate, which biases every product by about -2^-10; cuDNN rounds."""
    bits = v.to(tl.int32, bitcast=True)
    return ((bits + 0x1000) & -8192).to(tl.float32, bitcast=True)


@triton.jit
def _mma(acc, a, b, PRECISION: tl.constexpr, UPCAST: tl.constexpr, ROUND_TF32: tl.constexpr):
    # The interpreter's bf16 dot returns garbage (numpy has no bf16); fp32 there is exact enough.
    if UPCAST:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    if ROUND_TF32:
        a = _round_to_tf32(a)
        b = _round_to_tf32(b)
    return tl.dot(a, b, acc, input_precision=PRECISION)


@triton.jit
def _inside(i, n):
    """0 <= i < n in one unsigned comparison (a negative i wraps to above any n)."""
    return i.to(tl.uint32) < n.to(tl.uint32)


@triton.jit
def _flat_loop(
    x_ptr, w_ptr, x_row, ih0, iw0, mask_m, offs_n, mask_n, K, H, W, sxc, sxh, sxw,
    C: tl.constexpr, R: tl.constexpr, S: tl.constexpr, WIDE: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, ROUND_TF32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """The reduction as one flat (r, s, c) axis, gather offsets per element (small C)."""
    offs_k = tl.arange(0, BLOCK_K)
    RSC: tl.constexpr = R * S * C
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, RSC, BLOCK_K):
        kk = k0 + offs_k
        c = kk % C
        rs = kk // C
        r = rs // S
        s = rs % S
        ih = ih0[:, None] + r[None, :]
        iw = iw0[:, None] + s[None, :]
        k_ok = kk < RSC
        a_mask = mask_m[:, None] & k_ok[None, :] & _inside(ih, H) & _inside(iw, W)
        # The offset within the window fits 32 bits unless one window spans 2^31 elements.
        if WIDE:
            col = r.to(tl.int64) * sxh + s.to(tl.int64) * sxw + c.to(tl.int64) * sxc
        else:
            col = r * sxh + s * sxw + c * sxc
        a_offs = x_row[:, None] + col[None, :]
        a = tl.load(x_ptr + a_offs, mask=a_mask, other=0.0)
        b_offs = kk.to(tl.int64)[:, None] * K + offs_n[None, :]
        b = tl.load(w_ptr + b_offs, mask=k_ok[:, None] & mask_n[None, :], other=0.0)
        acc = _mma(acc, a, b, PRECISION, UPCAST, ROUND_TF32)
    return acc


@triton.jit
def _blocked_loop(
    x_ptr, w_ptr, x_row, ih0, iw0, mask_m, offs_n, mask_n, K, C, H, W, R, S, sxc, sxh, sxw,
    EVEN_M: tl.constexpr, EVEN_C: tl.constexpr, EVEN_N: tl.constexpr, PADDED: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, ROUND_TF32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """The reduction over (r, s) x blocks of C as one loop (one loop for the pipeliner).

    Addresses are incremental: the A pointers of each tile row are computed once, at
    (r, s, c) = (0, 0, 0), and every step adds one scalar offset ``r·sxh + s·sxw + c0·sxc``; the
    weight pointers advance by whole rows (the packed weight's rows run in the loop's order).
    (r, s, c0) advance as loop-carried counters: no division in the loop."""
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = x_ptr + (x_row[:, None] + offs_k.to(tl.int64)[None, :] * sxc)
    b_ptrs = w_ptr + (offs_k[:, None] * K + offs_n[None, :])
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if PADDED:
        # Per row, bit r of h_in (bit s of w_in) says whether window row r (column s) lies inside
        # the input: the loop tests two bits, not four coordinates (R, S <= 32 here).
        h_in = tl.zeros((BLOCK_M,), dtype=tl.int32)
        w_in = tl.zeros((BLOCK_M,), dtype=tl.int32)
        for i in range(0, R):
            h_in = h_in | (_inside(ih0 + i, H).to(tl.int32) << i)
        for i in range(0, S):
            w_in = w_in | (_inside(iw0 + i, W).to(tl.int32) << i)
    r = 0
    s = 0
    c0 = 0
    rs_off = tl.zeros((), dtype=tl.int64)
    for _ in range(0, R * S * tl.cdiv(C, BLOCK_K)):
        # Rows inside the input at this (r, s), and inside M (all are when M is a multiple of
        # BLOCK_M: the usual case, N·OH·OW with N a power of 2).
        row_ok = mask_m
        if PADDED:
            row_ok = ((h_in >> r) & (w_in >> s) & 1) != 0
            if not EVEN_M:
                row_ok = row_ok & mask_m
        a_step = a_ptrs + (rs_off + c0 * sxc)
        if EVEN_C:
            if PADDED or not EVEN_M:
                a = tl.load(a_step, mask=row_ok[:, None], other=0.0)
            else:
                a = tl.load(a_step)
            if EVEN_N:
                b = tl.load(b_ptrs)
            else:
                b = tl.load(b_ptrs, mask=mask_n[None, :], other=0.0)
        else:
            c_ok = (c0 + offs_k) < C
            a = tl.load(a_step, mask=row_ok[:, None] & c_ok[None, :], other=0.0)
            b = tl.load(b_ptrs, mask=c_ok[:, None] & mask_n[None, :], other=0.0)
        acc = _mma(acc, a, b, PRECISION, UPCAST, ROUND_TF32)
        # Next block of channels; past the last, the next (r, s). The weight's next rows follow
        # on: BLOCK_K of them, or at the end of C what is left of it.
        step = BLOCK_K
        c0 += BLOCK_K
        next_s = c0 >= C
        if not EVEN_C:
            step = tl.where(next_s, C - (c0 - BLOCK_K), BLOCK_K)
        b_ptrs += step * K
        c0 = tl.where(next_s, 0, c0)
        s = tl.where(next_s, s + 1, s)
        rs_off = tl.where(next_s, rs_off + sxw, rs_off)
        next_r = s >= S
        s = tl.where(next_r, 0, s)
        r = tl.where(next_r, r + 1, r)
        rs_off = tl.where(next_r, rs_off + (sxh - S * sxw), rs_off)
    return acc


# Facts of a launch that remove work from the main loop, computed per config at each launch:
# whole row tiles (no row mask), whole channel blocks (no channel mask), whole column tiles (no
# weight-column mask), padding (no padding mask without it: every window lies inside the input).
def _even_m(a: dict) -> bool:
    return a["M"] % a["BLOCK_M"] == 0


def _even_c(a: dict) -> bool:
    return a["C"] % a["BLOCK_K"] == 0


def _even_n(a: dict) -> bool:
    return a["K"] % a["BLOCK_N"] == 0


_CONV_HEURISTICS = {
    "EVEN_M": _even_m,
    "EVEN_C": _even_c,
    "EVEN_N": _even_n,
    "PADDED": lambda a: a["PAD_H"] > 0 or a["PAD_W"] > 0,
    # The flat (stem) path's C, R, S as constants: its per-element divisions by C and S become
    # multiply-shifts. 0 elsewhere, so the channel-blocked kernel compiles once for all sizes.
    "FC": lambda a: a["C"] if a["FLAT"] else 0,
    "FR": lambda a: a["R"] if a["FLAT"] else 0,
    "FS": lambda a: a["S"] if a["FLAT"] else 0,
    "FLAT_WIDE": lambda a: bool(a["FLAT"]) and _window_span(a) >= 2**31,
}


def _window_span(a: dict) -> int:
    """The largest element offset within one window (strides are not negative)."""
    return (a["R"] - 1) * a["sxh"] + (a["S"] - 1) * a["sxw"] + (a["C"] - 1) * a["sxc"]


# Geometry integers are not specialised (no recompiles per layer size); C, K and the tensor strides
# are, since "divisible by 16" and "== 1" there make loads vectorised.
@triton.autotune(
    configs=_configs(_CONV_SHAPES),
    key=["M", "K", "C", "R", "S", "STRIDE_H", "FLAT", "HAS_RES"],
    prune_configs_by={"early_config_prune": _prune_configs},
)
@triton.heuristics(_CONV_HEURISTICS)
@triton.jit(
    do_not_specialize=[
        "M", "H", "W", "OH", "OW", "R", "S", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W",
    ]
)  # fmt: skip
def _conv_kernel(
    x_ptr,
    w_ptr,
    out_ptr,
    bias_ptr,
    res_ptr,
    M,
    K,
    C,
    H,
    W,
    OH,
    OW,
    R,
    S,
    STRIDE_H,
    STRIDE_W,
    PAD_H,
    PAD_W,
    sxn,
    sxc,
    sxh,
    sxw,
    srn,
    srk,
    srh,
    srw,
    HAS_BIAS: tl.constexpr,
    HAS_RES: tl.constexpr,
    RES_DENSE: tl.constexpr,
    ACT: tl.constexpr,
    SLOPE: tl.constexpr,
    FLAT: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
    ROUND_TF32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    EVEN_M: tl.constexpr,
    EVEN_C: tl.constexpr,
    EVEN_N: tl.constexpr,
    PADDED: tl.constexpr,
    FC: tl.constexpr,
    FR: tl.constexpr,
    FS: tl.constexpr,
    FLAT_WIDE: tl.constexpr,
):
    """out[m, k] = Σ_{r,s,c} x[n, c, oh·sh − ph + r, ow·sw − pw + s] · wp[(r·S + s)·C + c, k]."""
    pid_m, pid_n = _tile_ids(M, K, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < K

    # Output pixel → top-left corner of its window in the input (may lie in the padding). Pixel
    # indices and input coordinates fit 32 bits (M < 2³¹); only addresses are 64-bit.
    ow = offs_m % OW
    oh = (offs_m // OW) % OH
    n = offs_m // (OW * OH)
    ih0 = oh * STRIDE_H - PAD_H
    iw0 = ow * STRIDE_W - PAD_W
    x_row = n.to(tl.int64) * sxn + ih0.to(tl.int64) * sxh + iw0.to(tl.int64) * sxw

    if FLAT:
        acc = _flat_loop(
            x_ptr, w_ptr, x_row, ih0, iw0, mask_m, offs_n, mask_n, K, H, W, sxc, sxh, sxw,
            FC, FR, FS, FLAT_WIDE, PRECISION, UPCAST, ROUND_TF32, BLOCK_M, BLOCK_N, BLOCK_K,
        )  # fmt: skip
    else:
        acc = _blocked_loop(
            x_ptr, w_ptr, x_row, ih0, iw0, mask_m, offs_n, mask_n, K, C, H, W, R, S,
            sxc, sxh, sxw, EVEN_M, EVEN_C, EVEN_N, PADDED, PRECISION, UPCAST, ROUND_TF32,
            BLOCK_M, BLOCK_N, BLOCK_K,
        )  # fmt: skip

    _epilogue(
        acc, offs_m, offs_n, M, K, OH, OW, out_ptr, bias_ptr, res_ptr, srn, srk, srh, srw,
        HAS_BIAS, HAS_RES, RES_DENSE, ACT, SLOPE,
    )  # fmt: skip


@triton.autotune(
    configs=_configs(_GEMM_SHAPES),
    key=["M", "K", "C", "HAS_RES"],
    prune_configs_by={"early_config_prune": _prune_configs},
)
@triton.heuristics({"EVEN_M": _even_m, "EVEN_C": _even_c, "EVEN_N": _even_n})
@triton.jit(do_not_specialize=["M", "OH", "OW"])
def _gemm_kernel(
    x_ptr,
    w_ptr,
    out_ptr,
    bias_ptr,
    res_ptr,
    M,
    K,
    C,
    OH,
    OW,
    srn,
    srk,
    srh,
    srw,
    HAS_BIAS: tl.constexpr,
    HAS_RES: tl.constexpr,
    RES_DENSE: tl.constexpr,
    ACT: tl.constexpr,
    SLOPE: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
    ROUND_TF32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    EVEN_M: tl.constexpr,
    EVEN_C: tl.constexpr,
    EVEN_N: tl.constexpr,
):
    """1×1 stride-1 convolution of a channels_last input: out (M, K) = x (M, C) @ wp (C, K).
    Pointers advance by BLOCK_K columns (rows) a step; masks only where a tile can overhang."""
    pid_m, pid_n = _tile_ids(M, K, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < K
    a_ptrs = x_ptr + (offs_m.to(tl.int64)[:, None] * C + offs_k[None, :])
    b_ptrs = w_ptr + (offs_k[:, None] * K + offs_n[None, :])

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, C, BLOCK_K):
        if EVEN_C:
            if EVEN_M:
                a = tl.load(a_ptrs)
            else:
                a = tl.load(a_ptrs, mask=mask_m[:, None], other=0.0)
            if EVEN_N:
                b = tl.load(b_ptrs)
            else:
                b = tl.load(b_ptrs, mask=mask_n[None, :], other=0.0)
        else:
            c_ok = (k0 + offs_k) < C
            a = tl.load(a_ptrs, mask=mask_m[:, None] & c_ok[None, :], other=0.0)
            b = tl.load(b_ptrs, mask=c_ok[:, None] & mask_n[None, :], other=0.0)
        acc = _mma(acc, a, b, PRECISION, UPCAST, ROUND_TF32)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * K

    _epilogue(
        acc, offs_m, offs_n, M, K, OH, OW, out_ptr, bias_ptr, res_ptr, srn, srk, srh, srw,
        HAS_BIAS, HAS_RES, RES_DENSE, ACT, SLOPE,
    )  # fmt: skip


# %%
# Launcher
# ========


@dataclass(frozen=True)
class PackedWeight:
    """A convolution weight packed for the kernels: ``data`` is ``(R·S·C, K)`` contiguous, row
    ``(r·S + s)·C + c``. Pack once per weight (:func:`prepack_weight`) and pass it instead of the
    weight tensor to skip the repacking."""

    data: torch.Tensor
    K: int
    C: int
    R: int
    S: int

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device


def prepack_weight(weight: torch.Tensor) -> PackedWeight:
    """Pack a ``(K, C, R, S)`` weight to ``(R·S·C, K)``."""
    if weight.dim() != 4:
        raise ValueError(f"weight must be 4-D (K, C, R, S), got shape {tuple(weight.shape)}")
    K, C, R, S = weight.shape
    data = weight.detach().permute(2, 3, 1, 0).reshape(R * S * C, K).contiguous()
    return PackedWeight(data, K, C, R, S)


# The internal cache holds a weak reference to the source tensor: a freed tensor whose memory (and
# data_ptr, at version 0) is reused by a new one must not hit the old entry.
_PACK_CACHE: OrderedDict[tuple, tuple[weakref.ref, PackedWeight]] = OrderedDict()
_PACK_CACHE_SIZE = 512


def _packed(weight: torch.Tensor | PackedWeight) -> PackedWeight:
    if isinstance(weight, PackedWeight):
        return weight
    if weight.is_inference():
        # No version counter to tell an in-place update from the original: pack every time.
        return prepack_weight(weight)
    key = (weight.data_ptr(), weight._version, tuple(weight.shape), weight.stride(), weight.dtype)
    hit = _PACK_CACHE.get(key)
    if hit is not None and hit[0]() is weight:
        _PACK_CACHE.move_to_end(key)
        return hit[1]
    packed = prepack_weight(weight)
    _PACK_CACHE[key] = (weakref.ref(weight), packed)
    if len(_PACK_CACHE) > _PACK_CACHE_SIZE:
        _PACK_CACHE.popitem(last=False)
    return packed


def _pair(v: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(e, int) for e in v):
        return int(v[0]), int(v[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")


def _precision(dtype: torch.dtype) -> str:
    if dtype == torch.float32 and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "ieee"


def output_size(
    h: int, w: int, r: int, s: int, stride: tuple[int, int], padding: tuple[int, int]
) -> tuple[int, int]:
    """Spatial output size of a convolution (floor rounding, as torch)."""
    return (h + 2 * padding[0] - r) // stride[0] + 1, (w + 2 * padding[1] - s) // stride[1] + 1


def _check_inputs(
    x: torch.Tensor,
    pw: PackedWeight,
    bias: torch.Tensor | None,
    residual: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> tuple[int, int]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype not in _DTYPES:
        raise TypeError(f"unsupported dtype {x.dtype}; use float32, float16 or bfloat16")
    named = [("weight", pw.data), ("bias", bias), ("residual", residual)]
    for name, t in named:
        if t is None:
            continue
        if t.dtype != x.dtype:
            raise TypeError(f"mixed dtypes: x is {x.dtype} but {name} is {t.dtype}")
        if t.device != x.device:
            raise ValueError(f"device mismatch: x is on {x.device} but {name} is on {t.device}")
    if x.device.type != "cuda" and not _INTERPRET:
        raise ValueError(
            f"fused_conv2d needs CUDA tensors (x is on {x.device}); "
            "on the CPU it runs only under TRITON_INTERPRET=1"
        )
    c = x.shape[1]
    if c != pw.C:
        if c % pw.C == 0:
            raise ValueError(
                f"groups other than 1 are not supported: x has {c} channels, "
                f"the weight {pw.C} per group"
            )
        raise ValueError(f"channel mismatch: x has {c} channels, the weight expects {pw.C}")
    if bias is not None and tuple(bias.shape) != (pw.K,):
        raise ValueError(f"bias must have shape ({pw.K},), got {tuple(bias.shape)}")
    if min(stride) < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    oh, ow = output_size(x.shape[2], x.shape[3], pw.R, pw.S, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"empty output: input {x.shape[2]}x{x.shape[3]} with a {pw.R}x{pw.S} window, "
            f"stride {stride}, padding {padding}"
        )
    expected = (x.shape[0], pw.K, oh, ow)
    if residual is not None and tuple(residual.shape) != expected:
        raise ValueError(
            f"residual must have the output's shape {expected}, got {tuple(residual.shape)}"
        )
    return oh, ow


def _residual_is_dense(residual: torch.Tensor) -> bool:
    """A residual of the output's shape that is channels_last-contiguous has the output's element
    offsets (``m·K + k``), so the kernel addresses it without decomposing rows into (n, oh, ow).
    Strides of size-1 dimensions are irrelevant (the index there is 0), as in ``is_contiguous``."""
    return residual.is_contiguous(memory_format=torch.channels_last)


def _activation_name(relu: bool, activation: str | None) -> str:
    """The epilogue's ``ACT``: an activation of :data:`ACTIVATIONS`, or ``"none"``."""
    if activation is None:
        return "relu" if relu else "none"
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; the kernel's epilogues are "
            + ", ".join(ACTIVATIONS)
        )
    if relu and activation != "relu":
        raise ValueError(f"relu=True and activation={activation!r} contradict each other")
    return activation


def fused_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor | PackedWeight,
    bias: torch.Tensor | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    residual: torch.Tensor | None = None,
    relu: bool = False,
    activation: str | None = None,
    negative_slope: float = 0.01,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act?(conv2d(x, weight, bias, stride, padding) + residual?)`` in one kernel.

    ``activation`` is one of :data:`ACTIVATIONS` (torch's formulas) or None; ``relu=True`` is
    ``activation="relu"``. ``negative_slope`` is leaky ReLU's (ignored by the others).

    ``x`` is ``(N, C, H, W)`` in any memory format (channels_last is the fast path); ``weight`` is
    ``(K, C, R, S)`` or a :class:`PackedWeight`; groups 1, dilation 1. fp32 uses TF32 when
    ``torch.backends.cudnn.allow_tf32`` is set; all dtypes accumulate in fp32. The result is
    channels_last; ``out``, if given, must be a channels_last ``(N, K, OH, OW)`` tensor to write.
    Inference only: the result carries no autograd history.
    """
    if isinstance(weight, torch.Tensor) and weight.dim() != 4:
        raise ValueError(f"weight must be 4-D (K, C, R, S), got shape {tuple(weight.shape)}")
    if not isinstance(weight, (torch.Tensor, PackedWeight)):
        raise TypeError(f"weight must be a tensor or PackedWeight, got {type(weight).__name__}")
    act = _activation_name(relu, activation)
    slope = float(negative_slope) if act == "leaky_relu" else 0.0
    stride_hw = _pair(stride, "stride")
    padding_hw = _pair(padding, "padding")
    if isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor):
        if weight.dtype != x.dtype:
            raise TypeError(f"mixed dtypes: x is {x.dtype} but weight is {weight.dtype}")
        if weight.device != x.device:
            raise ValueError(
                f"device mismatch: x is on {x.device} but weight is on {weight.device}"
            )
    pw = _packed(weight)
    oh, ow = _check_inputs(x, pw, bias, residual, stride_hw, padding_hw)
    n, c, h, w = x.shape
    shape = (n, pw.K, oh, ow)
    if out is None:
        out = torch.empty(shape, device=x.device, dtype=x.dtype, memory_format=torch.channels_last)
    elif (
        tuple(out.shape) != shape
        or out.dtype != x.dtype
        or out.device != x.device
        or not out.is_contiguous(memory_format=torch.channels_last)
    ):
        raise ValueError(f"out must be a channels_last {x.dtype} tensor of shape {shape}")

    M = n * oh * ow
    if M >= 2**31:
        # Addresses are 64-bit, but output-pixel indices are int32 (one per row of the GEMM).
        raise ValueError(f"N·OH·OW = {M} output pixels exceeds the kernel's limit of 2^31 - 1")
    bias_arg = bias.contiguous() if bias is not None else out
    res_arg = residual if residual is not None else out
    rs = residual.stride() if residual is not None else (0, 0, 0, 0)
    common = dict(
        HAS_BIAS=bias is not None,
        HAS_RES=residual is not None,
        RES_DENSE=residual is not None and _residual_is_dense(residual),
        ACT=act,
        SLOPE=slope,
        PRECISION=_precision(x.dtype),
        ROUND_TF32=_precision(x.dtype) == "tf32",
        UPCAST=_INTERPRET and x.dtype == torch.bfloat16,
    )

    def grid(meta: dict) -> tuple[int]:
        return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(pw.K, meta["BLOCK_N"]),)

    gemm = (
        pw.R == 1
        and pw.S == 1
        and stride_hw == (1, 1)
        and padding_hw == (0, 0)
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    # Small problems bypass the autotuner (whose benchmarking, in some Triton versions, runs even
    # for a single config) and launch the JIT function with one small-tile config.
    small = 2 * M * pw.K * c * pw.R * pw.S < _SMALL_PROBLEM_FLOPS
    kernel, shapes = (_gemm_kernel, _GEMM_SHAPES) if gemm else (_conv_kernel, _CONV_SHAPES)
    launcher = kernel[grid]
    if small:
        cfg = _small_problem_config(_configs(shapes), pw.K)
        launcher = functools.partial(
            kernel.fn[grid], num_warps=cfg.num_warps, num_stages=cfg.num_stages, **cfg.kwargs
        )
    if gemm:
        launcher(x, pw.data, out, bias_arg, res_arg, M, pw.K, c, oh, ow, *rs, **common)
    else:
        launcher(
            x, pw.data, out, bias_arg, res_arg,
            M, pw.K, c, h, w, oh, ow, pw.R, pw.S,
            stride_hw[0], stride_hw[1], padding_hw[0], padding_hw[1],
            *x.stride(), *rs,
            # Small C, or a window too wide for the channel-blocked loop's per-row bit masks.
            FLAT=c < 32 or pw.R > 32 or pw.S > 32,
            **common,
        )  # fmt: skip
    return out
