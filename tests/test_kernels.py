"""archc.kernels against torch, in float64.

On a machine without a GPU these run in Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1), so shapes are kept small: the interpreter's cost grows with the number of
programs and loop iterations, not with arithmetic.
"""

from __future__ import annotations

import random
import zlib

import pytest
import torch
import torch.nn.functional as F
from archc.kernels import ACTIVATIONS, PackedWeight, fold_bn, fused_conv2d, prepack_weight

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def strict_fp32():
    """fp32 tolerances here are for strict fp32; on a GPU the kernel follows cuDNN's TF32 switch."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = previous


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖ / ‖ref‖; absolute when ref is all zeros (a window that sees only padding)."""
    diff = (out.double().cpu() - ref.cpu()).norm().item()
    scale = ref.norm().item()
    return diff / scale if scale > 0 else diff


def reference(x, w, b, stride, padding, residual, relu):
    y = F.conv2d(x.double(), w.double(), None if b is None else b.double(), stride, padding)
    if residual is not None:
        y = y + residual.double()
    return torch.relu(y) if relu else y


def check(
    *,
    n: int,
    c: int,
    k: int,
    hw: tuple[int, int],
    rs: tuple[int, int],
    stride,
    padding,
    dtype: torch.dtype,
    bias: bool,
    residual: bool,
    relu: bool,
    channels_last: bool,
    tol: float,
    gen: torch.Generator,
) -> float:
    x = torch.randn(n, c, *hw, generator=gen).to(DEVICE, dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w = (torch.randn(k, c, *rs, generator=gen) / (c * rs[0] * rs[1]) ** 0.5).to(DEVICE, dtype)
    b = torch.randn(k, generator=gen).to(DEVICE, dtype) if bias else None
    ref = reference(x, w, b, stride, padding, None, False)
    res = torch.randn(ref.shape, generator=gen).to(DEVICE, dtype) if residual else None
    if res is not None and channels_last:
        # The residual follows the input's layout: channels_last takes the dense residual path,
        # NCHW the strided one.
        res = res.to(memory_format=torch.channels_last)
    ref = reference(x, w, b, stride, padding, res, relu)
    # Poisoned output buffer: any element the kernel fails to write stays NaN.
    out = torch.full(ref.shape, float("nan"), device=DEVICE, dtype=dtype).to(
        memory_format=torch.channels_last
    )
    y = fused_conv2d(x, w, b, stride=stride, padding=padding, residual=res, relu=relu, out=out)
    assert y is out
    assert y.shape == ref.shape
    assert not torch.isnan(y).any(), "kernel left output elements unwritten"
    err = rel_err(y, ref)
    assert err < tol, f"relative error {err:.2e} >= {tol:.0e}"
    return err


# Random geometries: kernel 1–11, stride 1–4, padding 0–3, odd sizes, C from 3 to 64, every
# combination of bias/residual/ReLU and both memory formats, drawn from a fixed seed.
def random_cases(count: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    cases = []
    for i in range(count):
        r, s = rnd.randint(1, 11), rnd.randint(1, 11)
        if rnd.random() < 0.5:
            s = r
        sh = rnd.randint(1, 4)
        sw = sh if rnd.random() < 0.7 else rnd.randint(1, 4)
        ph, pw = rnd.randint(0, 3), rnd.randint(0, 3)
        h = rnd.randint(max(1, r - 2 * ph), max(1, r - 2 * ph) + 13)
        w = rnd.randint(max(1, s - 2 * pw), max(1, s - 2 * pw) + 13)
        cases.append(
            dict(
                n=rnd.randint(1, 2),
                c=rnd.choice([3, rnd.randint(3, 64)]),
                k=rnd.randint(1, 72),
                hw=(h, w),
                rs=(r, s),
                stride=(sh, sw) if sh != sw else sh,
                padding=(ph, pw) if ph != pw else ph,
                bias=bool(i & 1),
                residual=bool(i & 2),
                relu=bool(i & 4),
                channels_last=rnd.random() < 0.7,
            )
        )
    return cases


@pytest.mark.parametrize("case", random_cases(24, seed=1), ids=lambda c: f"{c['rs']}s{c['stride']}")
def test_random_geometry_fp32(case: dict) -> None:
    gen = torch.Generator().manual_seed(zlib.crc32(repr(case).encode()))
    check(**case, dtype=torch.float32, tol=1e-4, gen=gen)


@pytest.mark.parametrize("case", random_cases(10, seed=2), ids=lambda c: f"{c['rs']}s{c['stride']}")
def test_random_geometry_fp16(case: dict) -> None:
    gen = torch.Generator().manual_seed(7)
    check(**case, dtype=torch.float16, tol=1e-2, gen=gen)


@pytest.mark.parametrize("case", random_cases(4, seed=3), ids=lambda c: f"{c['rs']}s{c['stride']}")
def test_random_geometry_bf16(case: dict) -> None:
    gen = torch.Generator().manual_seed(11)
    check(**case, dtype=torch.bfloat16, tol=1e-2, gen=gen)


def test_stem_7x7_c3_flat_reduction_fp32() -> None:
    """ResNet's stem: C = 3 with a 7×7 window runs the flattened (r, s, c) reduction."""
    gen = torch.Generator().manual_seed(0)
    err = check(
        n=2, c=3, k=64, hw=(29, 31), rs=(7, 7), stride=2, padding=3, dtype=torch.float32,
        bias=True, residual=False, relu=True, channels_last=True, tol=1e-4, gen=gen,
    )  # fmt: skip
    assert err < 1e-6


@pytest.mark.parametrize("rs,stride,padding", [(1, 1, 0), (3, 2, 1)], ids=["gemm", "conv"])
def test_many_tiles_in_both_directions(rs: int, stride: int, padding: int) -> None:
    """More output pixels and channels than one tile, and more M tiles than one group of the
    tile swizzle: every program's offsets are exercised, and the poisoned output catches gaps."""
    gen = torch.Generator().manual_seed(3)
    check(
        n=3, c=40, k=200, hw=(23, 25), rs=(rs, rs), stride=stride, padding=padding,
        dtype=torch.float32, bias=True, residual=True, relu=True, channels_last=True,
        tol=1e-4, gen=gen,
    )  # fmt: skip


def _residual(layout: str, shape: tuple, gen: torch.Generator) -> torch.Tensor:
    n, k, h, w = shape
    if layout == "channels_last":
        return torch.randn(shape, generator=gen).to(DEVICE).to(memory_format=torch.channels_last)
    if layout == "nchw":
        return torch.randn(shape, generator=gen).to(DEVICE)
    if layout == "channel_slice":
        # Every other channel of a channels_last tensor twice as wide: NHWC-ordered, not dense.
        big = torch.randn(n, 2 * k, h, w, generator=gen).to(DEVICE)
        return big.to(memory_format=torch.channels_last)[:, ::2]
    # "spatial_slice": a window of a larger channels_last tensor (row pitch ≠ OW·K).
    big = torch.randn(n, k, h + 3, w + 2, generator=gen).to(DEVICE)
    return big.to(memory_format=torch.channels_last)[:, :, 1 : h + 1, 2 : w + 2]


RESIDUAL_LAYOUTS = ["channels_last", "nchw", "channel_slice", "spatial_slice"]


@pytest.mark.parametrize("layout", RESIDUAL_LAYOUTS)
@pytest.mark.parametrize("rs,stride,padding", [(1, 1, 0), (3, 2, 1)], ids=["gemm", "conv"])
def test_residual_layouts(layout: str, rs: int, stride: int, padding: int) -> None:
    """A channels_last-contiguous residual is read with the output's offsets (dense path);
    any other layout — NCHW, a channel or spatial slice of a bigger tensor — through its strides.
    Two M tiles and a partial N tile, so both paths see tile edges."""
    from archc.kernels.fused_conv import _residual_is_dense

    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 40, 9, 8, generator=gen).to(DEVICE).to(memory_format=torch.channels_last)
    w = torch.randn(72, 40, rs, rs, generator=gen).to(DEVICE) / (40 * rs * rs) ** 0.5
    b = torch.randn(72, generator=gen).to(DEVICE)
    shape = reference(x, w, b, stride, padding, None, False).shape
    res = _residual(layout, tuple(shape), gen)
    assert _residual_is_dense(res) == (layout == "channels_last")
    ref = reference(x, w, b, stride, padding, res, True)
    y = fused_conv2d(x, w, b, stride=stride, padding=padding, residual=res, relu=True)
    assert rel_err(y, ref) < 1e-4


def test_1x1_gemm_path_matches_strided_path() -> None:
    """A 1×1 stride-1 convolution of a channels_last input is a plain GEMM; of an NCHW input
    it goes through the conv kernel. Both must agree with torch and with each other."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 48, 7, 9, generator=gen).to(DEVICE)
    w = torch.randn(40, 48, 1, 1, generator=gen).to(DEVICE)
    b = torch.randn(40, generator=gen).to(DEVICE)
    ref = reference(x, w, b, 1, 0, None, True)
    y_cl = fused_conv2d(x.to(memory_format=torch.channels_last), w, b, relu=True)
    y_nchw = fused_conv2d(x.contiguous(), w, b, relu=True)
    assert rel_err(y_cl, ref) < 1e-4
    assert rel_err(y_nchw, ref) < 1e-4
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y_cl, y_nchw, rtol=1e-5, atol=1e-5)


# Every distinct convolution of the torchvision models, with full channel counts but reduced
# spatial size (about 7×6 outputs, batch 1) and at most ~80 output channels, so each layer is
# one or two programs in the interpreter.
def torchvision_geometries(name: str) -> list[tuple]:
    torchvision = pytest.importorskip("torchvision")
    kwargs = dict(aux_logits=False, init_weights=True) if name == "googlenet" else {}
    with torch.device("meta"):  # shapes only: no weight initialisation, no arithmetic
        model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    found: dict[tuple, bool] = {}

    def hook_for(mod_name: str):
        def hook(mod, inputs, output):
            key = (mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding)
            found.setdefault(key, mod_name.endswith("conv3"))

        return hook

    handles = [
        m.register_forward_hook(hook_for(n))
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        model(torch.empty(1, 3, 64, 64, device="meta"))
    for h in handles:
        h.remove()
    return [(*key, res) for key, res in found.items()]


def reduced_input(rs: int, stride: int, pad: int, out: int) -> int:
    return max(rs - 2 * pad, (out - 1) * stride + rs - 2 * pad, 1)


EXPECTED_GEOMETRIES = {"resnet50": 23, "vgg16": 8, "alexnet": 5, "googlenet": 47}


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "alexnet", "googlenet"])
def test_torchvision_geometries(name: str) -> None:
    geoms = torchvision_geometries(name)
    assert len(geoms) == EXPECTED_GEOMETRIES[name]
    gen = torch.Generator().manual_seed(0)
    for i, (c, k, (r, s), (sh, sw), (ph, pw), residual) in enumerate(geoms):
        h = reduced_input(r, sh, ph, 7)
        w = reduced_input(s, sw, pw, 6)
        k_small = k if k <= 80 else 64 + k % 16
        check(
            n=1, c=c, k=k_small, hw=(h, w), rs=(r, s), stride=(sh, sw), padding=(ph, pw),
            dtype=torch.float32, bias=True, residual=residual, relu=residual or i % 4 != 3,
            channels_last=True, tol=1e-4, gen=gen,
        )  # fmt: skip


def test_output_is_channels_last_for_nchw_input() -> None:
    x = torch.randn(1, 5, 6, 6).to(DEVICE)
    w = torch.randn(4, 5, 3, 3).to(DEVICE)
    y = fused_conv2d(x, w, padding=1)
    assert y.shape == (1, 4, 6, 6)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert rel_err(y, reference(x, w, None, 1, 1, None, False)) < 1e-4


def test_prepacked_weight_and_cache_invalidation() -> None:
    x = torch.randn(1, 8, 5, 5).to(DEVICE)
    w = torch.randn(6, 8, 3, 3).to(DEVICE)
    packed = prepack_weight(w)
    assert isinstance(packed, PackedWeight)
    assert packed.data.shape == (3 * 3 * 8, 6)
    # Row (r·S + s)·C + c, column k holds w[k, c, r, s].
    assert packed.data[(1 * 3 + 2) * 8 + 5, 4] == w[4, 5, 1, 2]
    y1 = fused_conv2d(x, packed, padding=1)
    y2 = fused_conv2d(x, w, padding=1)
    assert torch.equal(y1, y2)
    # An in-place update bumps the tensor's version: the cached packing must not be reused.
    w.mul_(2)
    y3 = fused_conv2d(x, w, padding=1)
    assert torch.allclose(y3, 2 * y2, rtol=1e-5, atol=1e-5)


def test_inference_mode_tensors_are_packed_without_the_cache() -> None:
    """Inference tensors have no version counter; they are packed on every call instead."""
    with torch.inference_mode():
        x = torch.randn(1, 4, 6, 6).to(DEVICE)
        w = torch.randn(3, 4, 3, 3).to(DEVICE)
        y1 = fused_conv2d(x, w, padding=1)
        w.mul_(-1)
        y2 = fused_conv2d(x, w, padding=1)
    assert rel_err(y1, reference(x, -w, None, 1, 1, None, False)) < 1e-4
    assert torch.allclose(y2, -y1, rtol=1e-5, atol=1e-5)


BAD_INPUTS = [
    # (description, kwargs overrides, exception, message fragment)
    ("mixed dtypes", dict(w=torch.randn(4, 6, 3, 3).half()), TypeError, "mixed dtypes"),
    ("grouped conv", dict(w=torch.randn(4, 3, 3, 3)), ValueError, "groups other than 1"),
    ("channel mismatch", dict(w=torch.randn(4, 5, 3, 3)), ValueError, "channel mismatch"),
    ("3-D input", dict(x=torch.randn(6, 8, 8)), ValueError, "4-D"),
    ("residual shape", dict(residual=torch.randn(1, 4, 7, 7)), ValueError, "residual"),
    ("bias shape", dict(b=torch.randn(5)), ValueError, "bias"),
    ("residual dtype", dict(residual=torch.randn(1, 4, 8, 8).double()), TypeError, "mixed"),
    ("int dtype", dict(x=torch.ones(1, 6, 8, 8, dtype=torch.int32)), TypeError, "dtype"),
    ("negative padding", dict(padding=-1), ValueError, "padding"),
    ("zero stride", dict(stride=0), ValueError, "stride"),
    ("window larger than input", dict(w=torch.randn(4, 6, 11, 11)), ValueError, "empty output"),
    ("meta device weight", dict(w=torch.randn(4, 6, 3, 3, device="meta")), ValueError, "device"),
]


@pytest.mark.parametrize("desc,over,exc,msg", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise(desc, over, exc, msg) -> None:
    args = dict(
        x=torch.randn(1, 6, 8, 8), w=torch.randn(4, 6, 3, 3), b=None, residual=None,
        padding=1, stride=1,
    )  # fmt: skip
    args.update(over)
    # On a GPU machine the kernel wants CUDA tensors; the meta-device case stays where it is.
    args = {
        k: v.to(DEVICE) if isinstance(v, torch.Tensor) and v.device.type == "cpu" else v
        for k, v in args.items()
    }
    with pytest.raises(exc, match=msg):
        fused_conv2d(
            args["x"], args["w"], args["b"], stride=args["stride"], padding=args["padding"],
            residual=args["residual"], relu=True,
        )  # fmt: skip


def test_fold_bn_matches_eval_batchnorm_in_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(5, 7, 3, padding=1, bias=True).double()
    bn = torch.nn.BatchNorm2d(7, eps=1e-3).double().eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(7, generator=gen))
        bn.running_var.copy_(torch.rand(7, generator=gen) + 0.5)
        bn.weight.copy_(torch.randn(7, generator=gen))
        bn.bias.copy_(torch.randn(7, generator=gen))
        x = torch.randn(2, 5, 6, 6, generator=gen, dtype=torch.float64)
        ref = bn(conv(x))
        w, b = fold_bn(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
        )
        # Folding is done in fp32, so a float64 weight comes back float64 at fp32 precision.
        assert w.dtype == torch.float64 and b.dtype == torch.float64
        assert rel_err(F.conv2d(x, w, b, padding=1), ref) < 1e-6
        # No conv bias: BN's shift alone.
        w2, b2 = fold_bn(
            conv.weight, None, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
        )
        ref2 = bn(F.conv2d(x, conv.weight, None, padding=1))
        assert rel_err(F.conv2d(x, w2, b2, padding=1), ref2) < 1e-6


def test_fold_bn_casts_back_to_weight_dtype_and_feeds_the_kernel() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(8, 4, 3, 3, generator=gen).half()
    mean, var = torch.randn(8, generator=gen), torch.rand(8, generator=gen) + 0.5
    gamma, beta = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
    wf, bf = fold_bn(w, None, mean, var, gamma, beta, 1e-5)
    assert wf.dtype == torch.float16 and bf.dtype == torch.float16
    scale = gamma.double() / (var.double() + 1e-5).sqrt()
    assert torch.allclose(wf.double(), w.double() * scale[:, None, None, None], rtol=1e-3)
    assert torch.allclose(bf.double(), beta.double() - mean.double() * scale, rtol=1e-3, atol=1e-3)
    x = torch.randn(1, 4, 9, 9, generator=gen).half().to(DEVICE)
    y = fused_conv2d(x, wf.to(DEVICE), bf.to(DEVICE), padding=1, relu=True)
    bn_ref = torch.relu(
        (F.conv2d(x.double().cpu(), w.double(), padding=1) - mean.double()[:, None, None])
        * scale[:, None, None]
        + beta.double()[:, None, None]
    )
    assert rel_err(y.cpu(), bn_ref) < 1e-2


def test_cpu_tensors_outside_the_interpreter_raise(monkeypatch) -> None:
    from archc.kernels import fused_conv

    monkeypatch.setattr(fused_conv, "_INTERPRET", False)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        fused_conv2d(torch.randn(1, 4, 6, 6), torch.randn(3, 4, 3, 3))


def test_tf32_mode_rounds_operands_to_nearest() -> None:
    """With TF32 allowed, fp32 operands are rounded (as cuDNN does), not truncated (as the tensor
    cores do): the error is ~3e-4 here, where truncation gives ~8e-4, beside 1e-7 strict."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 9, 9, generator=gen).to(DEVICE).to(memory_format=torch.channels_last)
    w = (torch.randn(48, 64, 3, 3, generator=gen) / 24).to(DEVICE)
    ref = reference(x, w, None, 1, 1, None, False)
    torch.backends.cudnn.allow_tf32 = True  # the autouse fixture restores it
    err_tf32 = rel_err(fused_conv2d(x, w, padding=1), ref)
    torch.backends.cudnn.allow_tf32 = False
    err_ieee = rel_err(fused_conv2d(x, w, padding=1), ref)
    assert 1e-4 < err_tf32 < 5e-4
    assert err_ieee < 1e-5


# --- epilogues: conv -> BN -> (+ residual) -> activation ------------------------------------------
# Each epilogue against torch's own modules in float64 (eval-mode BatchNorm2d, then the residual,
# then the activation module), the kernel fed the folded weights; every reduction loop (1x1 GEMM,
# channel-blocked, flat) and both residual-free and residual groups.

EAGER_ACTIVATIONS = {
    "relu": torch.nn.ReLU(),
    "relu6": torch.nn.ReLU6(),
    "leaky_relu": torch.nn.LeakyReLU(0.2),
    "silu": torch.nn.SiLU(),
    "hardswish": torch.nn.Hardswish(),
    "hardsigmoid": torch.nn.Hardsigmoid(),
}
EPILOGUE_GEOMETRIES = [
    # 1x1 stride 1 on channels_last: the GEMM kernel, with torchvision's act(bn(conv) + identity)
    dict(c=40, k=24, hw=(7, 6), rs=(1, 1), stride=1, padding=0, residual=True, channels_last=True),
    # 3x3 stride 2, C >= 32: the channel-blocked loop
    dict(c=40, k=24, hw=(9, 8), rs=(3, 3), stride=2, padding=1, residual=False, channels_last=True),
    # 5x5 on 3 channels, NCHW: the flat (r, s, c) loop, with a strided residual
    dict(c=3, k=24, hw=(9, 8), rs=(5, 5), stride=2, padding=2, residual=True, channels_last=False),
]


def check_epilogue(activation: str, dtype: torch.dtype, geometry: dict, seed: int) -> float:
    g = geometry
    gen = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(g["c"], g["k"], g["rs"], g["stride"], g["padding"], bias=False)
    bn = torch.nn.BatchNorm2d(g["k"])
    conv, bn = conv.double(), bn.double().eval()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        conv.weight /= (g["c"] * g["rs"][0] * g["rs"][1]) ** 0.5
        # Wide pre-activations (about ±10): every piece of every activation is reached.
        bn.running_mean.copy_(torch.randn(g["k"], generator=gen) * 0.1)
        bn.running_var.copy_(torch.rand(g["k"], generator=gen) + 0.5)
        bn.weight.copy_(torch.rand(g["k"], generator=gen) * 2 + 2)
        bn.bias.copy_(torch.randn(g["k"], generator=gen) * 3)
    x = torch.randn(2, g["c"], *g["hw"], generator=gen, dtype=torch.float64)
    with torch.no_grad():
        pre = bn(conv(x.to(dtype).double()))
        res = torch.randn(pre.shape, generator=gen, dtype=torch.float64).to(dtype)
        if g["residual"]:
            pre = pre + res.double()
        ref = EAGER_ACTIVATIONS[activation](pre)
    # Every piece of the activation is exercised: below -3 (hardswish/hardsigmoid's 0), between
    # -3 and 0, between 0 and 3 and above 6 (ReLU6's clamp).
    for low, high in ((-99, -3), (-3, 0), (0, 3), (6, 99)):
        assert ((pre > low) & (pre < high)).sum() > 10, (low, high)
    w, b = fold_bn(conv.weight, None, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps)
    xk = x.to(DEVICE, dtype)
    if g["channels_last"]:
        xk = xk.to(memory_format=torch.channels_last)
        res = res.to(memory_format=torch.channels_last)
    out = torch.full(ref.shape, float("nan"), device=DEVICE, dtype=dtype).to(
        memory_format=torch.channels_last
    )
    y = fused_conv2d(
        xk, w.to(DEVICE, dtype), b.to(DEVICE, dtype), stride=g["stride"], padding=g["padding"],
        residual=res.to(DEVICE) if g["residual"] else None, activation=activation,
        negative_slope=0.2, out=out,
    )  # fmt: skip
    assert not torch.isnan(y).any(), "kernel left output elements unwritten"
    return rel_err(y, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("activation", list(EAGER_ACTIVATIONS))
def test_epilogue_matches_eager_conv_bn_activation(activation: str, dtype: torch.dtype) -> None:
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    for i, geometry in enumerate(EPILOGUE_GEOMETRIES):
        err = check_epilogue(activation, dtype, geometry, seed=i)
        assert err < tol, f"{geometry}: relative error {err:.2e} >= {tol:.0e}"


def test_the_epilogues_are_the_kernels_activations() -> None:
    assert set(EAGER_ACTIVATIONS) == set(ACTIVATIONS)


def test_relu_flag_and_activation_name_are_one_epilogue() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 8, 6, 6, generator=gen).to(DEVICE)
    w = torch.randn(16, 8, 3, 3, generator=gen).to(DEVICE)
    by_flag = fused_conv2d(x, w, padding=1, relu=True)
    assert torch.equal(by_flag, fused_conv2d(x, w, padding=1, activation="relu"))
    assert torch.equal(by_flag, fused_conv2d(x, w, padding=1, relu=True, activation="relu"))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        fused_conv2d(x, w, padding=1, activation="gelu")
    with pytest.raises(ValueError, match="contradict"):
        fused_conv2d(x, w, padding=1, relu=True, activation="silu")


# The channel-blocked loop drops each mask a launch does not need (EVEN_M, EVEN_C, EVEN_N,
# PADDED, computed per config): one case per combination that matters, at the interpreter's
# 64x64x32 tile (on a GPU the autotuned tiles decide). Layouts of M, C and K chosen by arithmetic:
# M = N·OH·OW, a multiple of 64 or not; C a multiple of 32 or not; K a multiple of 64 or not.
MASK_CASES = [
    # 1x1 stride 2, no padding, M = 4·4·4 = 64, C = 64, K = 64: no mask at all.
    (dict(n=4, c=64, k=64, hw=(8, 8), rs=(1, 1), stride=2, padding=0), (1, 1, 1, 0)),
    # 3x3 padded, M = 1·8·8 = 64, C = 32, K = 64: only the window's bit masks.
    (dict(n=1, c=32, k=64, hw=(8, 8), rs=(3, 3), stride=1, padding=1), (1, 1, 1, 1)),
    # 3x3 stride 2 padded, M = 2·4·4 = 32, C = 40, K = 72: every mask, channel tail included.
    (dict(n=2, c=40, k=72, hw=(7, 7), rs=(3, 3), stride=2, padding=1), (0, 0, 0, 1)),
    # 5x3 window, padding (2, 0): M = 1·8·6 = 48, C = 64, K = 40: rows and columns masked.
    (dict(n=1, c=64, k=40, hw=(8, 8), rs=(5, 3), stride=1, padding=(2, 0)), (0, 1, 0, 1)),
]


@pytest.mark.parametrize("case,flags", MASK_CASES, ids=["none", "window", "all", "rows-cols"])
def test_channel_blocked_masks(case: dict, flags: tuple) -> None:
    from archc.kernels import fused_conv as fc

    ph, pw = case["padding"] if isinstance(case["padding"], tuple) else (case["padding"],) * 2
    r, s = case["rs"]
    oh = (case["hw"][0] + 2 * ph - r) // case["stride"] + 1
    ow = (case["hw"][1] + 2 * pw - s) // case["stride"] + 1
    args = dict(
        M=case["n"] * oh * ow, C=case["c"], K=case["k"], R=r, S=s, PAD_H=ph, PAD_W=pw, FLAT=False,
        **fc._INTERPRETER_CONFIG.kwargs,
    )  # fmt: skip
    got = tuple(int(fc._CONV_HEURISTICS[f](args)) for f in ("EVEN_M", "EVEN_C", "EVEN_N", "PADDED"))
    assert got == flags
    gen = torch.Generator().manual_seed(5)
    common = dict(bias=True, residual=True, relu=True, channels_last=True, gen=gen)
    check(**case, dtype=torch.float32, tol=1e-4, **common)


def test_autotuner_path_passes_the_launch_facts(monkeypatch) -> None:
    """Tests run small problems, which skip the autotuner; with the threshold at 0 the autotuner
    launches, and its config's BLOCK sizes must reach the heuristics (EVEN_*, PADDED, FC...)."""
    from archc.kernels import fused_conv as fc

    monkeypatch.setattr(fc, "_SMALL_PROBLEM_FLOPS", 0)
    gen = torch.Generator().manual_seed(9)
    common = dict(bias=True, residual=False, relu=True, channels_last=True, gen=gen)
    check(n=2, c=40, k=72, hw=(7, 7), rs=(3, 3), stride=2, padding=1, dtype=torch.float32,
          tol=1e-4, **common)  # fmt: skip
    check(n=1, c=3, k=16, hw=(9, 9), rs=(3, 3), stride=1, padding=1, dtype=torch.float32,
          tol=1e-4, **common)  # fmt: skip
    check(n=2, c=48, k=40, hw=(7, 7), rs=(1, 1), stride=1, padding=0, dtype=torch.float32,
          tol=1e-4, **common)  # fmt: skip
    assert fc._conv_kernel.best_config is not None and fc._gemm_kernel.best_config is not None
