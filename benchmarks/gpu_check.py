"""GPU check of archc's fused convolution kernels: correctness, per-layer speed, whole networks.

Run from the repository root on a machine with an NVIDIA GPU (no install of archc needed):

    python3 benchmarks/gpu_check.py --out DIR            # everything, under ~8 minutes on an H100
    python3 benchmarks/gpu_check.py --out DIR --quick    # resnet50 timings only, ~3 minutes
    python3 benchmarks/gpu_check.py --out DIR --smoke    # tiny, on the CPU, Triton interpreter

Parts, each guarded so that one failure is recorded and the rest still runs:

(a) correctness of ``fused_conv2d`` for every distinct convolution of torchvision's resnet50,
    vgg16, alexnet and googlenet at full size, fp32 (TF32 as cuDNN is set) / fp16 / bf16 against
    a float64 reference, outputs poisoned with NaN beforehand; a strict-fp32 check; a >2³¹-element
    tensor for 64-bit addressing;
(e) the other epilogues (ReLU6, leaky ReLU, SiLU, hardswish, hardsigmoid): correctness of each
    on a 1x1 (+residual) and a 3x3 layer in fp32/fp16/bf16 against float64, and a bf16 timing of
    each against the fused ReLU and against cuDNN conv+BN(+residual) and torch's activation;
(b) per-geometry timing in bf16, channels_last: fused conv+BN(+residual)+ReLU vs cuDNN conv alone
    vs cuDNN conv+BN+ReLU eager, with TFLOP/s, bytes, MACs, the fraction of the matmul ceiling;
(c) whole networks in images/s: torchvision eager, archc's plain module (``archc.load``), archc's
    fused inference module (``archc.fuse``) eager (``ARCHC_KERNELS=eager``: cuDNN conv with BN
    folded in) and with Triton kernels (``ARCHC_KERNELS=triton``), and torch.compile of the
    torchvision module and of archc's fused module (its op kept as one node per group) if time
    allows;
(d) ``results.json`` and ``results.md`` in ``--out``; the markdown is printed at the end.

A global time budget stops starting new timings when it runs out; what was skipped is listed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETS = ("resnet50", "vgg16", "alexnet", "googlenet")
DTYPE_TOL = {"float32": 1e-3, "float16": 1e-2, "bfloat16": 1e-2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for results.json/results.md")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (interpreter)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, resnet50 timings only")
    p.add_argument("--budget", type=float, default=None, help="seconds (default 440, quick 170)")
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.smoke:
    # Must precede the first import of triton.
    os.environ["TRITON_INTERPRET"] = "1"
os.environ.setdefault("PYTHONUNBUFFERED", "1")
START = time.monotonic()
# Smoke runs do every part at tiny sizes, so nothing there should be cut by the budget.
BUDGET = ARGS.budget or (600.0 if ARGS.smoke else 170.0 if ARGS.quick else 440.0)


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


def elapsed() -> float:
    return time.monotonic() - START


RESULTS: dict = {
    "env": {},
    "args": {"smoke": ARGS.smoke, "quick": ARGS.quick, "budget_s": BUDGET},
    "errors": [],
    "skipped": [],
    "geometries": [],
    "correctness": [],
    "ceilings": {},
    "timing": [],
    "networks": [],
    "epilogues": {"correctness": [], "timing": []},
    "summary": {},
}


def record_error(where: str, exc: BaseException) -> None:
    msg = f"{type(exc).__name__}: {exc}"
    RESULTS["errors"].append(
        {"where": where, "error": msg, "trace": traceback.format_exc()[-2000:]}
    )
    log(f"ERROR in {where}: {msg}")


# %%
# Imports: archc.kernels without an install
# =========================================
# The GPU machine has the repository but no pip install of archc. Put the root on sys.path and, if
# ``archc.kernels`` is still not importable (it lives in ./kernels, mapped by pyproject.toml),
# load ./kernels under that name.

sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402

try:
    from archc.progress import counted  # noqa: E402
except ImportError:  # tqdm may be missing where archc is not installed: the log lines remain

    def counted(items, what, total=None):  # type: ignore[no-redef]
        return items


def import_kernels() -> types.ModuleType:
    try:
        import archc.kernels as kernels

        return kernels
    except Exception as exc:  # noqa: BLE001 - any failure means: load it by path instead
        RESULTS["env"]["archc_kernels_import"] = f"aliased from ./kernels ({type(exc).__name__})"
    try:
        import archc
    except Exception as exc:  # archc itself broken: a bare package so archc.kernels still loads
        record_error("import archc", exc)
        archc = types.ModuleType("archc")
        archc.__path__ = [str(ROOT / "archc")]
        sys.modules["archc"] = archc
    spec = importlib.util.spec_from_file_location(
        "archc.kernels",
        ROOT / "kernels" / "__init__.py",
        submodule_search_locations=[str(ROOT / "kernels")],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["archc.kernels"] = module
    spec.loader.exec_module(module)
    archc.kernels = module
    return module


kernels = import_kernels()


def import_roofline() -> types.ModuleType:
    """benchmarks/roofline.py by path (benchmarks/ is not a package), registered in sys.modules
    before it runs, as any module must be."""
    spec = importlib.util.spec_from_file_location("roofline", ROOT / "benchmarks" / "roofline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


roofline = import_roofline()
CUDA = torch.cuda.is_available() and not ARGS.smoke
DEVICE = torch.device("cuda" if CUDA else "cpu")


def env_info() -> dict:
    info = {
        "gpu": torch.cuda.get_device_name(0) if CUDA else "none (CPU, Triton interpreter)",
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "tf32_conv": torch.backends.cudnn.allow_tf32,
        "interpreter": os.environ.get("TRITON_INTERPRET") == "1",
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except Exception as exc:
        record_error("import torchvision", exc)
    return info


# %%
# Geometries
# ==========


def enumerate_geometries() -> list[dict]:
    """Every distinct convolution (C, K, window, stride, padding, input size) of the four networks,
    found with forward hooks; a ResNet ``conv3`` (followed by BN, the residual add and ReLU) is
    marked as residual."""
    import torchvision

    found: dict[tuple, dict] = {}
    for net in NETS:
        kwargs = {"aux_logits": False, "init_weights": True} if net == "googlenet" else {}
        # On the meta device: shapes only, no weight initialisation, no arithmetic.
        with torch.device("meta"):
            model = getattr(torchvision.models, net)(weights=None, **kwargs).eval()
        hooks = []
        for name, mod in model.named_modules():
            if not isinstance(mod, torch.nn.Conv2d):
                continue

            def hook(m, inputs, output, name=name, net=net):
                h, w = inputs[0].shape[2:]
                key = (m.in_channels, m.out_channels, *m.kernel_size, *m.stride, *m.padding, h, w)
                g = found.setdefault(
                    key,
                    {
                        "id": len(found),
                        "C": m.in_channels,
                        "K": m.out_channels,
                        "R": m.kernel_size[0],
                        "S": m.kernel_size[1],
                        "stride": m.stride[0],
                        "pad": m.padding[0],
                        "H": h,
                        "W": w,
                        "residual": net.startswith("resnet") and name.endswith("conv3"),
                        "layers": [],
                    },
                )
                g["layers"].append(f"{net}.{name}")

            hooks.append(mod.register_forward_hook(hook))
        with torch.no_grad():
            model(torch.empty(1, 3, 224, 224, device="meta"))
        for h in hooks:
            h.remove()
    geoms = list(found.values())
    for g in geoms:
        g["nets"] = sorted({layer.split(".")[0] for layer in g["layers"]})
    if ARGS.smoke:
        # A few per network, channels and spatial size capped, so the interpreter finishes in
        # seconds.
        picked, per_net = [], {}
        for g in geoms:
            net = g["nets"][0]
            if per_net.get(net, 0) < 2 or (g["residual"] and per_net.get(net, 0) < 3):
                per_net[net] = per_net.get(net, 0) + 1
                g["C"] = min(g["C"], 24)
                g["K"] = min(g["K"], 40)
                g["H"] = g["W"] = max(min(g["H"], 12), g["R"] - 2 * g["pad"])
                picked.append(g)
        geoms = picked
    for g in geoms:
        g["name"] = f"{g['C']}->{g['K']} {g['R']}x{g['S']}/s{g['stride']}p{g['pad']} @{g['H']}"
    return geoms


def out_size(g: dict) -> tuple[int, int]:
    return (
        (g["H"] + 2 * g["pad"] - g["R"]) // g["stride"] + 1,
        (g["W"] + 2 * g["pad"] - g["S"]) // g["stride"] + 1,
    )


def macs(g: dict, n: int) -> int:
    oh, ow = out_size(g)
    return n * oh * ow * g["K"] * g["C"] * g["R"] * g["S"]


def make_layer(g: dict, n: int, dtype: torch.dtype, seed: int = 0) -> dict:
    """Input, weight, BN parameters and (if the geometry has one) residual, on DEVICE."""
    gen = torch.Generator(device=DEVICE).manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=DEVICE, dtype=torch.float32)

    oh, ow = out_size(g)
    fan_in = g["C"] * g["R"] * g["S"]
    x = randn(n, g["C"], g["H"], g["W"]).to(dtype).to(memory_format=torch.channels_last)
    w = (randn(g["K"], g["C"], g["R"], g["S"]) / math.sqrt(fan_in)).to(dtype)
    bn = {
        "mean": randn(g["K"]) * 0.1,
        "var": torch.rand(g["K"], generator=gen, device=DEVICE) + 0.5,
        "gamma": randn(g["K"]) * 0.2 + 1.0,
        "beta": randn(g["K"]) * 0.1,
    }
    res = None
    if g["residual"]:
        res = randn(n, g["K"], oh, ow).to(dtype).to(memory_format=torch.channels_last)
    return {"x": x, "w": w, "bn": bn, "res": res}


def folded(layer: dict) -> tuple[torch.Tensor, torch.Tensor]:
    bn = layer["bn"]
    return kernels.fold_bn(
        layer["w"], None, bn["mean"], bn["var"], bn["gamma"], bn["beta"], 1e-5
    )  # fmt: skip


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double() - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def poisoned(n: int, g: dict, dtype: torch.dtype) -> torch.Tensor:
    oh, ow = out_size(g)
    out = torch.empty(
        n, g["K"], oh, ow, device=DEVICE, dtype=dtype, memory_format=torch.channels_last
    )
    return out.fill_(float("nan"))


# %%
# (a) Correctness
# ===============


def check_one(
    g: dict, dtype: torch.dtype, n: int, label: str, tf32: bool, res_nchw: bool = False
) -> dict:
    entry = {"geometry": g["id"], "name": g["name"], "dtype": label, "batch": n}
    try:
        prev = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = tf32
        try:
            layer = make_layer(g, n, dtype, seed=g["id"])
            if res_nchw and layer["res"] is not None:
                # Not channels_last-contiguous: the kernel's strided (non-dense) residual path.
                layer["res"] = layer["res"].contiguous()
            w, b = folded(layer)
            out = poisoned(n, g, dtype)
            y = kernels.fused_conv2d(
                layer["x"], w, b, stride=g["stride"], padding=g["pad"],
                residual=layer["res"], relu=True, out=out,
            )  # fmt: skip
        finally:
            torch.backends.cudnn.allow_tf32 = prev
        ref = F.conv2d(layer["x"].double(), w.double(), b.double(), g["stride"], g["pad"])
        if layer["res"] is not None:
            ref = ref + layer["res"].double()
        ref = torch.relu(ref)
        if CUDA:
            torch.cuda.synchronize()
        tol = 1e-5 if label == "float32-ieee" else DTYPE_TOL[str(dtype).removeprefix("torch.")]
        nan_free = not bool(torch.isnan(y).any())
        err = rel_err(y, ref)
        entry.update(rel_err=err, tol=tol, nan_free=nan_free, passed=nan_free and err < tol)
    except Exception as exc:
        record_error(f"correctness {g['name']} {label}", exc)
        entry.update(passed=False, error=f"{type(exc).__name__}: {exc}")
    return entry


def check_int64_addressing(n: int | None = None) -> list[dict]:
    """A bf16 input and output of more than 2^31 elements: 1×1 (GEMM path) and 3×3 (conv path),
    with a residual as big; the first and last images are checked against float64."""
    entries = []
    c = k = 64
    hw = 56
    n = n or 2**31 // (c * hw * hw) + 2
    x = torch.empty(
        n, c, hw, hw, device=DEVICE, dtype=torch.bfloat16, memory_format=torch.channels_last
    ).normal_()
    res = x  # same shape as the output: exercises 64-bit residual addressing too
    for rs, pad in ((1, 0), (3, 1)):
        size = f"{n * c * hw * hw / 2**31:.2f}x2^31 elements"
        name = f"int64 addressing {c}->{k} {rs}x{rs} N={n} ({size})"
        entry = {"geometry": None, "name": name, "dtype": "bfloat16", "batch": n}
        try:
            w = torch.randn(k, c, rs, rs, device=DEVICE, dtype=torch.bfloat16) / math.sqrt(
                c * rs * rs
            )
            b = torch.randn(k, device=DEVICE, dtype=torch.bfloat16)
            y = kernels.fused_conv2d(x, w, b, padding=pad, residual=res, relu=True)
            errs = []
            for sl in (slice(0, 1), slice(n - 2, n)):
                ref = torch.relu(
                    F.conv2d(x[sl].double(), w.double(), b.double(), 1, pad) + res[sl].double()
                )
                errs.append(rel_err(y[sl], ref))
            nan_free = not bool(torch.isnan(y[-2:]).any())
            err = max(errs)
            entry.update(rel_err=err, tol=1e-2, nan_free=nan_free, passed=nan_free and err < 1e-2)
            del y
        except Exception as exc:
            record_error(name, exc)
            entry.update(passed=False, error=f"{type(exc).__name__}: {exc}")
        entries.append(entry)
        log(f"  {name}: {'ok' if entry['passed'] else 'FAIL'} {entry.get('rel_err', '')}")
    del x, res
    torch.cuda.empty_cache()
    return entries


def correctness_batch(g: dict) -> int:
    """Batch 2 (so the image index is exercised) unless that makes the layer big enough to be
    autotuned: compiling and benchmarking every config in three dtypes would eat the time budget,
    and the autotuned configs are checked in bf16 at the timing batch (part b) anyway."""
    return 2 if 2 * macs(g, 2) < 3.9e9 else 1


def part_a(geoms: list[dict], deadline: float) -> None:
    log(f"(a) correctness: {len(geoms)} geometries x fp32/fp16/bf16, until {deadline:.0f}s")
    cases = [
        (torch.float32, "float32-tf32" if torch.backends.cudnn.allow_tf32 else "float32", True),
        (torch.float16, "float16", True),
        (torch.bfloat16, "bfloat16", True),
    ]
    for i, g in enumerate(counted(geoms, "(a) correctness")):
        if elapsed() > deadline:
            RESULTS["skipped"].append(f"correctness of {len(geoms) - i} geometries (time budget)")
            RESULTS["skipped"].extend(f"correctness {rest['name']}" for rest in geoms[i:])
            break
        n = correctness_batch(g)
        for dtype, label, tf32 in cases:
            entry = check_one(g, dtype, n, label, tf32 and torch.backends.cudnn.allow_tf32)
            RESULTS["correctness"].append(entry)
            if not entry["passed"]:
                log(f"  FAIL {g['name']} {label}: {entry.get('rel_err', entry.get('error'))}")
        if i % 10 == 9:
            log(f"  {i + 1}/{len(geoms)} geometries checked")
    # The residual layers once more with an NCHW residual (the strided residual path; the
    # channels_last residuals above take the dense one). GPU only: the interpreter tests cover
    # every residual layout, and the smoke test counts its checks.
    for g in [g for g in geoms if g["residual"]][:4] if CUDA else []:
        n = correctness_batch(g)
        RESULTS["correctness"].append(
            check_one(g, torch.bfloat16, n, "bfloat16-nchw-residual", True, res_nchw=True)
        )
    # Strict fp32 (no TF32) on a few layers: the kernel must then match to ~1e-6.
    for g in geoms[:3]:
        n = correctness_batch(g)
        RESULTS["correctness"].append(check_one(g, torch.float32, n, "float32-ieee", False))
    if CUDA and elapsed() > 0.5 * BUDGET:
        RESULTS["skipped"].append("int64 addressing check (time budget)")
    elif CUDA:
        try:
            RESULTS["correctness"].extend(check_int64_addressing())
        except Exception as exc:
            record_error("int64 addressing", exc)
    bad = [e for e in RESULTS["correctness"] if not e["passed"]]
    log(f"(a) done: {len(RESULTS['correctness']) - len(bad)} passed, {len(bad)} failed")


# %%
# Ceilings and timing helpers
# ===========================


def bench_ms(fn) -> float:
    """Median milliseconds of fn(); on the CPU (smoke runs, interpreter) one untimed-warmup-free
    call is all there is time for."""
    if CUDA:
        rep = 30 if ARGS.quick else 80
        # Three quantiles: with one, some Triton versions return a bare float, others a list.
        return triton.testing.do_bench(fn, warmup=10, rep=rep, quantiles=[0.5, 0.2, 0.8])[0]
    times = []
    for _ in range(1):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def part_ceilings() -> None:
    size = 256 if ARGS.smoke else 8192
    dtype = torch.bfloat16 if CUDA else torch.float32
    a = torch.randn(size, size, device=DEVICE, dtype=dtype)
    b = torch.randn(size, size, device=DEVICE, dtype=dtype)
    ms = bench_ms(lambda: torch.matmul(a, b))
    RESULTS["ceilings"]["matmul_tflops"] = 2 * size**3 / ms / 1e9
    RESULTS["ceilings"]["matmul_shape"] = (
        f"{size}x{size}x{size} {str(dtype).removeprefix('torch.')}"
    )
    numel = (1 << 20) if ARGS.smoke else (1 << 29)  # 1 GiB of bf16
    src = torch.empty(numel, device=DEVICE, dtype=torch.bfloat16).fill_(1)
    dst = torch.empty_like(src)
    ms = bench_ms(lambda: dst.copy_(src))
    RESULTS["ceilings"]["copy_gbps"] = 2 * src.numel() * 2 / ms / 1e6
    log(
        f"ceilings: matmul {RESULTS['ceilings']['matmul_tflops']:.1f} TFLOP/s, "
        f"copy {RESULTS['ceilings']['copy_gbps']:.0f} GB/s"
    )


# %%
# (b) Per-geometry timing
# =======================


def timing_batch(g: dict) -> int:
    if ARGS.smoke:
        return 1
    for n in (256, 128, 64):
        oh, ow = out_size(g)
        # Input, output, eager intermediates and residual, bf16, with room to spare.
        need = 2 * n * (g["C"] * g["H"] * g["W"] + 4 * g["K"] * oh * ow)
        if need < 0.6 * torch.cuda.mem_get_info()[0]:
            return n
    return 64


def time_one(g: dict) -> dict:
    dtype = torch.bfloat16
    n = timing_batch(g)
    layer = make_layer(g, n, dtype, seed=g["id"])
    x, w, res, bn = layer["x"], layer["w"], layer["res"], layer["bn"]
    wf, bf = folded(layer)
    packed = kernels.prepack_weight(wf)
    bnp = {k: v.to(dtype) for k, v in bn.items()}
    stride, pad = g["stride"], g["pad"]

    def fused():
        return kernels.fused_conv2d(
            x, packed, bf, stride=stride, padding=pad, residual=res, relu=True
        )

    def conv_only():
        return F.conv2d(x, w, None, stride, pad)

    def eager():
        y = F.conv2d(x, w, None, stride, pad)
        y = F.batch_norm(y, bnp["mean"], bnp["var"], bnp["gamma"], bnp["beta"], False, 0.0, 1e-5)
        if res is not None:
            y = y + res
        return F.relu(y, inplace=True)

    with torch.inference_mode():
        # The fused result must agree with cuDNN at this (autotuned) size as well.
        diff = rel_err(fused(), eager().double())
        t_fused = bench_ms(fused)
        t_conv = bench_ms(conv_only)
        t_eager = bench_ms(eager)
    mac = macs(g, n)
    # The input pixels the windows read, not the whole input: a stride-2 1x1 conv reads a quarter.
    nbytes = roofline.conv_bytes(
        n, g["C"], g["K"], (g["H"], g["W"]), (g["R"], g["S"]), stride, pad, res is not None
    )
    ceil = RESULTS["ceilings"]
    entry = {
        "geometry": g["id"],
        "name": g["name"],
        "nets": g["nets"],
        "residual": g["residual"],
        "batch": n,
        "macs": mac,
        "bytes": nbytes,
        "flop_per_byte": 2 * mac / nbytes,
        "ms_fused": t_fused,
        "ms_conv": t_conv,
        "ms_eager": t_eager,
        "tflops_fused": 2 * mac / t_fused / 1e9,
        "tflops_conv": 2 * mac / t_conv / 1e9,
        "speedup_vs_eager": t_eager / t_fused,
        "speedup_vs_conv": t_conv / t_fused,
        "rel_diff_vs_cudnn": diff,
        "agrees_with_cudnn": diff < 2e-2,
        "config": picked_config(g, n),
    }
    if ceil.get("matmul_tflops"):
        entry["frac_matmul_ceiling"] = entry["tflops_fused"] / ceil["matmul_tflops"]
        if ceil.get("copy_gbps"):
            bound = max(2 * mac / (ceil["matmul_tflops"] * 1e9), nbytes / (ceil["copy_gbps"] * 1e6))
            entry["frac_roofline"] = bound / t_fused
    return entry


def picked_config(g: dict, n: int) -> str | None:
    """The tile the autotuner kept for the layer just timed (as codegen_check names configs:
    BMxBNxBK wW sS), to hold against the offline codegen baselines; None if it did not tune."""
    fc = getattr(kernels, "fused_conv", None)
    if fc is None or 2 * macs(g, n) < fc._SMALL_PROBLEM_FLOPS:
        return None  # small problems bypass the autotuner
    gemm = g["R"] == g["S"] == 1 and g["stride"] == 1 and g["pad"] == 0
    tuner = getattr(fc, "_gemm_kernel" if gemm else "_conv_kernel", None)
    c = getattr(tuner, "best_config", None)
    if c is None:
        return None
    kw = c.kwargs
    return f"{kw['BLOCK_M']}x{kw['BLOCK_N']}x{kw['BLOCK_K']} w{c.num_warps} s{c.num_stages}"


def part_b(geoms: list[dict], deadline: float) -> None:
    nets = ("resnet50",) if ARGS.quick else NETS
    todo = [g for g in geoms if any(n in nets for n in g["nets"])]
    log(f"(b) timing {len(todo)} geometries (bf16, channels_last), budget until {deadline:.0f}s")
    for i, g in enumerate(counted(todo, "(b) timing")):
        if elapsed() > deadline:
            RESULTS["skipped"].append(f"timing of {len(todo) - i} geometries (time budget)")
            RESULTS["skipped"].extend(f"timing {rest['name']}" for rest in todo[i:])
            break
        try:
            e = time_one(g)
            RESULTS["timing"].append(e)
            log(
                f"  {g['name']:<34} N={e['batch']:<3} fused {e['ms_fused']:.3f} ms "
                f"({e['tflops_fused']:.0f} TF/s)  conv {e['ms_conv']:.3f}  "
                f"eager {e['ms_eager']:.3f}"
                f"  x{e['speedup_vs_eager']:.2f}"
            )
        except Exception as exc:
            record_error(f"timing {g['name']}", exc)
        finally:
            if CUDA:
                torch.cuda.empty_cache()


# %%
# (e) The other epilogues
# =======================
# Each activation of archc.kernels.ACTIVATIONS besides ReLU (which parts a and b cover) on two
# layers: a 1x1 conv with a residual (the GEMM kernel; the activation after the add, as in
# torchvision's blocks) and a 3x3 conv (the conv kernel). BN is scaled so that pre-activations
# reach about ±10 and every piece of each function is exercised. The timing reuses the ReLU
# kernel's autotuned config (the autotuner's key leaves the epilogue out), so each activation
# costs one compile.

EPILOGUE_SLOPE = 0.1


def torch_activation(name: str, y: torch.Tensor) -> torch.Tensor:
    """torch's own function for an epilogue, in place on a fresh tensor."""
    if name == "leaky_relu":
        return F.leaky_relu(y, EPILOGUE_SLOPE, inplace=True)
    return getattr(F, name)(y, inplace=True)


def epilogue_geometries(geoms: list[dict]) -> list[dict]:
    gemm = [g for g in geoms if g["R"] == 1 and g["stride"] == 1 and g["residual"]]
    conv = [g for g in geoms if g["R"] == 3 and g["stride"] == 1 and not g["residual"]]
    return gemm[:1] + conv[:1]


def epilogue_layer(g: dict, n: int, dtype: torch.dtype) -> dict:
    layer = make_layer(g, n, dtype, seed=g["id"])
    layer["bn"]["gamma"] = layer["bn"]["gamma"] * 4
    layer["bn"]["beta"] = layer["bn"]["beta"] * 30
    return layer


def check_epilogue(g: dict, act: str, dtype: torch.dtype, label: str, tf32: bool) -> dict:
    n = correctness_batch(g)
    entry = {"activation": act, "geometry": g["id"], "name": g["name"], "dtype": label, "batch": n}
    try:
        prev = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = tf32
        try:
            layer = epilogue_layer(g, n, dtype)
            w, b = folded(layer)
            out = poisoned(n, g, dtype)
            y = kernels.fused_conv2d(
                layer["x"], w, b, stride=g["stride"], padding=g["pad"], residual=layer["res"],
                activation=act, negative_slope=EPILOGUE_SLOPE, out=out,
            )  # fmt: skip
        finally:
            torch.backends.cudnn.allow_tf32 = prev
        pre = F.conv2d(layer["x"].double(), w.double(), b.double(), g["stride"], g["pad"])
        if layer["res"] is not None:
            pre = pre + layer["res"].double()
        ref = torch_activation(act, pre.clone())
        if CUDA:
            torch.cuda.synchronize()
        tol = DTYPE_TOL[str(dtype).removeprefix("torch.")]
        nan_free = not bool(torch.isnan(y).any())
        err = rel_err(y, ref)
        entry.update(
            rel_err=err, tol=tol, nan_free=nan_free, passed=nan_free and err < tol,
            frac_above_6=float((pre > 6).double().mean()),
            frac_below_minus_3=float((pre < -3).double().mean()),
        )  # fmt: skip
    except Exception as exc:
        record_error(f"epilogue {act} {g['name']} {label}", exc)
        entry.update(passed=False, error=f"{type(exc).__name__}: {exc}")
    return entry


def time_epilogue(g: dict, act: str) -> dict:
    dtype = torch.bfloat16
    n = timing_batch(g)
    layer = epilogue_layer(g, n, dtype)
    x, w, res, bn = layer["x"], layer["w"], layer["res"], layer["bn"]
    wf, bf = folded(layer)
    packed = kernels.prepack_weight(wf)
    bnp = {k: v.to(dtype) for k, v in bn.items()}
    stride, pad = g["stride"], g["pad"]

    def fused(activation=act):
        return kernels.fused_conv2d(
            x, packed, bf, stride=stride, padding=pad, residual=res, activation=activation,
            negative_slope=EPILOGUE_SLOPE,
        )  # fmt: skip

    def eager():
        y = F.conv2d(x, w, None, stride, pad)
        y = F.batch_norm(y, bnp["mean"], bnp["var"], bnp["gamma"], bnp["beta"], False, 0.0, 1e-5)
        if res is not None:
            y = y + res
        return torch_activation(act, y)

    with torch.inference_mode():
        diff = rel_err(fused(), eager().double())
        t_relu = bench_ms(lambda: fused("relu"))
        t_fused = bench_ms(fused)
        t_eager = bench_ms(eager)
    return {
        "activation": act,
        "geometry": g["id"],
        "name": g["name"],
        "residual": g["residual"],
        "batch": n,
        "ms_fused": t_fused,
        "ms_fused_relu": t_relu,
        "ms_eager": t_eager,
        "speedup_vs_eager": t_eager / t_fused,
        "cost_vs_relu": t_fused / t_relu,
        "rel_diff_vs_cudnn": diff,
        "agrees_with_cudnn": diff < 2e-2,
        "config": picked_config(g, n),
    }


def part_e(geoms: list[dict], deadline: float) -> None:
    acts = [a for a in kernels.ACTIVATIONS if a != "relu"]
    picked = epilogue_geometries(geoms)
    log(f"(e) epilogues {', '.join(acts)} on {[g['name'] for g in picked]}, until {deadline:.0f}s")
    dtypes = [
        (torch.float32, "float32-tf32" if torch.backends.cudnn.allow_tf32 else "float32"),
        (torch.float16, "float16"),
        (torch.bfloat16, "bfloat16"),
    ]
    done = RESULTS["epilogues"]
    for act in acts:
        if elapsed() > deadline:
            RESULTS["skipped"].append(f"epilogue {act} (time budget)")
            continue
        for g in picked:
            for dtype, label in dtypes:
                entry = check_epilogue(g, act, dtype, label, torch.backends.cudnn.allow_tf32)
                done["correctness"].append(entry)
                if not entry["passed"]:
                    log(f"  FAIL {act} {g['name']} {label}: {entry.get('rel_err', entry)}")
            try:
                e = time_epilogue(g, act)
                done["timing"].append(e)
                log(
                    f"  {act:<11} {g['name']:<30} N={e['batch']:<3} fused {e['ms_fused']:.3f} ms "
                    f"(relu {e['ms_fused_relu']:.3f})  eager {e['ms_eager']:.3f}  "
                    f"x{e['speedup_vs_eager']:.2f}"
                )
            except Exception as exc:
                record_error(f"epilogue timing {act} {g['name']}", exc)
            finally:
                if CUDA:
                    torch.cuda.empty_cache()
    bad = [e for e in done["correctness"] if not e["passed"]]
    log(f"(e) done: {len(done['correctness']) - len(bad)} passed, {len(bad)} failed")


# %%
# (c) Whole networks
# ==================


def run_and_time(model, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The model's output (first call: also autotunes) and its throughput in images/s."""
    with torch.inference_mode():
        t = time.perf_counter()
        y = model(x).float()
        first_ms = (time.perf_counter() - t) * 1e3
        ms = bench_ms(lambda: model(x)) if CUDA else first_ms
    return y, x.shape[0] / ms * 1e3


def torchvision_model(net: str, dtype: torch.dtype) -> torch.nn.Module:
    import torchvision

    kwargs = {"aux_logits": False, "init_weights": True} if net == "googlenet" else {}
    model = getattr(torchvision.models, net)(weights=None, **kwargs).eval()
    return model.to(DEVICE, dtype).to(memory_format=torch.channels_last)


# archc modules measured in part (c), kept for torch.compile at the end of the part.
ARCHC_MODELS: dict[str, torch.nn.Module] = {}


class kernels_mode:
    """``ARCHC_KERNELS`` set to ``mode`` inside the block, restored after. Unset means "auto",
    which is the Triton path on CUDA: the eager measurement must say ``eager``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self.prev = os.environ.get("ARCHC_KERNELS")
        os.environ["ARCHC_KERNELS"] = self.mode

    def __exit__(self, *exc) -> None:
        os.environ.pop("ARCHC_KERNELS", None)
        if self.prev is not None:
            os.environ["ARCHC_KERNELS"] = self.prev


def measure_net(net: str, n: int, dtype: torch.dtype, size: int) -> dict:
    """torchvision eager; archc's plain module (torchvision's weights, loaded strictly); archc's
    fused module (``archc.fuse``) with ``ARCHC_KERNELS=eager`` (cuDNN conv with BN folded in,
    add, ReLU) and with the Triton kernels (``ARCHC_KERNELS=triton``), at batch n. archc's
    errors are recorded in the entry."""
    entry: dict = {"net": net, "batch": n, "dtype": str(dtype).removeprefix("torch.")}
    x = torch.randn(n, 3, size, size, device=DEVICE, dtype=dtype)
    x = x.to(memory_format=torch.channels_last)
    tv = torchvision_model(net, dtype)
    y_tv, entry["torchvision_eager"] = run_and_time(tv, x)
    try:
        import archc

        plain = archc.load(str(ROOT / "specs" / "torchvision" / f"{net}.arch"))
        plain = plain.to(DEVICE, dtype).to(memory_format=torch.channels_last).eval()
        plain.load_state_dict(tv.state_dict(), strict=True)
        y_plain, entry["archc_plain"] = run_and_time(plain, x)
        entry["archc_plain_vs_torchvision_rel"] = rel_err(y_plain, y_tv.double())
        model = archc.fuse(plain)
        entry["fusion_groups"] = model.fusion_groups
        with kernels_mode("eager"):
            y_eager, entry["archc_eager"] = run_and_time(model, x)
        entry["archc_vs_torchvision_rel"] = rel_err(y_eager, y_tv.double())
        with kernels_mode("triton"):
            y_triton, entry["archc_triton"] = run_and_time(model, x)
        entry["archc_triton_vs_eager_rel"] = rel_err(y_triton, y_eager.double())
        ARCHC_MODELS[net] = model
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:
        record_error(f"{net} archc", exc)
        entry["archc_error"] = f"{type(exc).__name__}: {exc}"
    return entry


# Seconds a torch.compile of a network (compilation + timing) is assumed to take before one has
# been measured: resnet50 with Inductor's default mode is about a minute.
COMPILE_ESTIMATE_S = 75.0


def part_c(deadline: float, compile_deadline: float) -> None:
    # The smoke run takes alexnet, the one network the interpreter gets through in seconds.
    nets = ("alexnet",) if ARGS.smoke else ("resnet50",) if ARGS.quick else NETS
    dtype = torch.bfloat16 if CUDA else torch.float32
    size = 64 if ARGS.smoke else 224
    log(f"(c) networks {nets}, {dtype}, channels_last")
    for net in nets:
        if elapsed() > deadline:
            RESULTS["skipped"].append(f"network {net} (time budget)")
            continue
        # The largest batch of 256/128/64 that fits.
        for n in (1,) if ARGS.smoke else (256, 128, 64):
            try:
                entry = measure_net(net, n, dtype, size)
                break
            except torch.cuda.OutOfMemoryError as exc:
                entry = {"net": net, "batch": n, "error": f"out of memory: {exc}"[:300]}
                torch.cuda.empty_cache()
            except Exception as exc:
                record_error(f"{net} network", exc)
                entry = {"net": net, "batch": n, "error": f"{type(exc).__name__}: {exc}"}
                break
        RESULTS["networks"].append(entry)
        log(f"  {net}: {json.dumps({k: v for k, v in entry.items() if k != 'net'}, default=str)}")
        if CUDA:
            torch.cuda.empty_cache()
    # torch.compile last: its compile time is large and varies. Torchvision's module first, then
    # archc's fused module (ARCHC_KERNELS=triton: Inductor keeps archc's op, registered with
    # torch.library, as one node per group); each starts only if its estimated compile time (the
    # previous one's, 75 s at first) still ends before the budget.
    estimate = COMPILE_ESTIMATE_S
    for entry in RESULTS["networks"]:
        if not CUDA or "torchvision_eager" not in entry:
            continue
        net = entry["net"]
        x = torch.randn(entry["batch"], 3, size, size, device=DEVICE, dtype=dtype)
        x = x.to(memory_format=torch.channels_last)
        jobs = [("torch_compile", "torchvision", lambda net=net: torchvision_model(net, dtype))]
        if net in ARCHC_MODELS:
            jobs.append(("torch_compile_archc", "archc fused", lambda net=net: ARCHC_MODELS[net]))
        for key, what, make in jobs:
            if elapsed() > compile_deadline or elapsed() + estimate > BUDGET:
                RESULTS["skipped"].append(f"torch.compile of {what} {net} (time budget)")
                continue
            try:
                t = time.monotonic()
                with kernels_mode("triton" if key == "torch_compile_archc" else "eager"):
                    compiled = torch.compile(make())
                    y, entry[key] = run_and_time(compiled, x)
                entry[f"{key}_s"] = time.monotonic() - t
                estimate = max(estimate, 1.2 * entry[f"{key}_s"])
                if key == "torch_compile_archc" and "archc_eager" in entry:
                    with kernels_mode("eager"), torch.inference_mode():
                        ref = ARCHC_MODELS[net](x).double()
                    entry["torch_compile_archc_vs_eager_rel"] = rel_err(y, ref)
                log(
                    f"  {net}: torch.compile {what} {entry[key]:.0f} img/s "
                    f"({entry[f'{key}_s']:.0f} s with compilation)"
                )
            except Exception as exc:
                record_error(f"{net} torch.compile {what}", exc)
                entry[f"{key}_error"] = f"{type(exc).__name__}: {exc}"
            finally:
                torch.cuda.empty_cache()


# %%
# (d) Report
# ==========


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def summarize() -> None:
    corr = RESULTS["correctness"]
    tim = RESULTS["timing"]
    s = {
        "correctness_passed": sum(e["passed"] for e in corr),
        "correctness_total": len(corr),
        "timed_geometries": len(tim),
        "geomean_speedup_vs_eager": geomean([e["speedup_vs_eager"] for e in tim]),
        "geomean_speedup_vs_conv": geomean([e["speedup_vs_conv"] for e in tim]),
        "frac_fused_ge_eager": (
            sum(e["speedup_vs_eager"] >= 1 for e in tim) / len(tim) if tim else None
        ),
        "frac_fused_ge_conv": sum(e["speedup_vs_conv"] >= 1 for e in tim) / len(tim)
        if tim
        else None,
        "geomean_frac_matmul_ceiling": geomean([e.get("frac_matmul_ceiling", 0) for e in tim]),
        "epilogues_passed": sum(e["passed"] for e in RESULTS["epilogues"]["correctness"]),
        "epilogues_total": len(RESULTS["epilogues"]["correctness"]),
        "epilogues_timed": len(RESULTS["epilogues"]["timing"]),
        "elapsed_s": elapsed(),
    }
    for net in NETS:
        sub = [e for e in tim if net in e["nets"]]
        if sub:
            s[f"geomean_speedup_vs_eager_{net}"] = geomean([e["speedup_vs_eager"] for e in sub])
    RESULTS["summary"] = s


def fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def header_section() -> list[str]:
    env, s, ceil = RESULTS["env"], RESULTS["summary"], RESULTS["ceilings"]
    return [
        "# archc fused-conv GPU check",
        "",
        f"GPU **{env.get('gpu')}**, torch {env.get('torch')}, triton {env.get('triton')}, "
        f"CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}; "
        f"mode {'smoke' if ARGS.smoke else 'quick' if ARGS.quick else 'full'}, "
        f"{s.get('elapsed_s', 0):.0f} s.",
        "",
        f"Ceilings: {ceil.get('matmul_shape', '')} matmul {fmt(ceil.get('matmul_tflops'), '.1f')} "
        f"TFLOP/s, device copy {fmt(ceil.get('copy_gbps'), '.0f')} GB/s.",
        "",
    ]


def summary_section() -> list[str]:
    s = RESULTS["summary"]
    worst: dict[str, float] = {}
    for e in RESULTS["correctness"]:
        if "rel_err" in e:
            worst[e["dtype"]] = max(worst.get(e["dtype"], 0.0), e["rel_err"])
    return [
        "## Summary",
        "",
        f"- correctness: {s.get('correctness_passed')}/{s.get('correctness_total')} passed; "
        "worst relative error: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()),
        f"- timed geometries: {s.get('timed_geometries')}",
        "- geomean speed-up of fused over cuDNN conv+BN+ReLU eager: "
        f"{fmt(s.get('geomean_speedup_vs_eager'))}"
        + "".join(
            f"; {net} {fmt(s[f'geomean_speedup_vs_eager_{net}'])}"
            for net in NETS
            if f"geomean_speedup_vs_eager_{net}" in s
        ),
        "- geomean speed-up of fused over cuDNN conv alone: "
        f"{fmt(s.get('geomean_speedup_vs_conv'))}",
        "- fraction of geometries where fused >= conv+BN+ReLU eager: "
        f"{fmt(s.get('frac_fused_ge_eager'), '.2f')}; "
        f">= conv alone: {fmt(s.get('frac_fused_ge_conv'), '.2f')}",
        "- geomean fraction of the matmul ceiling: "
        f"{fmt(s.get('geomean_frac_matmul_ceiling'), '.2f')}",
        f"- epilogues (ReLU6, leaky ReLU, SiLU, hardswish, hardsigmoid): "
        f"{s.get('epilogues_passed')}/{s.get('epilogues_total')} checks passed, "
        f"{s.get('epilogues_timed')} timed",
        f"- errors: {len(RESULTS['errors'])}; skipped: {len(RESULTS['skipped'])}; "
        "seconds per part: " + ", ".join(f"{k} {v}" for k, v in RESULTS.get("phase_s", {}).items()),
        "",
    ]


def correctness_section() -> list[str]:
    bad = [e for e in RESULTS["correctness"] if not e["passed"]]
    lines = ["## Correctness failures", ""]
    if not bad:
        return lines + [f"none ({len(RESULTS['correctness'])} checks passed)", ""]
    lines += ["| geometry | dtype | rel err | tol | error |", "|---|---|---|---|---|"]
    for e in bad:
        lines.append(
            f"| {e['name']} | {e['dtype']} | {fmt(e.get('rel_err'))} | {fmt(e.get('tol'))} "
            f"| {e.get('error', '')[:120]} |"
        )
    return lines + [""]


def timing_section(compact: bool) -> list[str]:
    lines = ["## Per-geometry timing (bf16, channels_last, median ms)", ""]
    if compact:
        lines += [
            "| geometry | N | fused | conv | conv+BN+ReLU | x eager | x conv | TF/s | ceil |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    else:
        lines += [
            "| geometry | nets | N | MACs | bytes | fused ms | conv ms | conv+BN+ReLU ms | "
            "fused TF/s | x vs eager | x vs conv | frac ceiling | frac roofline | diff vs cuDNN |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for e in RESULTS["timing"]:
        name = f"{e['name']}{' +res' if e['residual'] else ''}"
        if compact:
            lines.append(
                f"| {name} | {e['batch']} | {e['ms_fused']:.3f} | {e['ms_conv']:.3f} "
                f"| {e['ms_eager']:.3f} | {e['speedup_vs_eager']:.2f} | {e['speedup_vs_conv']:.2f} "
                f"| {e['tflops_fused']:.0f} | {fmt(e.get('frac_matmul_ceiling'), '.2f')} |"
            )
            continue
        lines.append(
            f"| {name} | {','.join(e['nets'])} | {e['batch']} "
            f"| {e['macs']:.3g} | {e['bytes']:.3g} | {e['ms_fused']:.3f} | {e['ms_conv']:.3f} "
            f"| {e['ms_eager']:.3f} | {e['tflops_fused']:.0f} | {e['speedup_vs_eager']:.2f} "
            f"| {e['speedup_vs_conv']:.2f} | {fmt(e.get('frac_matmul_ceiling'), '.2f')} "
            f"| {fmt(e.get('frac_roofline'), '.2f')} | {e['rel_diff_vs_cudnn']:.1e} |"
        )
    return lines + [""]


def epilogues_section() -> list[str]:
    lines = [
        "## Epilogues (bf16, channels_last, median ms)",
        "",
        "| activation | geometry | N | fused | fused ReLU | conv+BN+act eager | x eager "
        "| vs ReLU | diff vs cuDNN |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in RESULTS["epilogues"]["timing"]:
        name = f"{e['name']}{' +res' if e['residual'] else ''}"
        lines.append(
            f"| {e['activation']} | {name} | {e['batch']} | {e['ms_fused']:.3f} "
            f"| {e['ms_fused_relu']:.3f} | {e['ms_eager']:.3f} | {e['speedup_vs_eager']:.2f} "
            f"| {e['cost_vs_relu']:.3f} | {e['rel_diff_vs_cudnn']:.1e} |"
        )
    bad = [e for e in RESULTS["epilogues"]["correctness"] if not e["passed"]]
    worst: dict[str, float] = {}
    for e in RESULTS["epilogues"]["correctness"]:
        if "rel_err" in e:
            worst[e["activation"]] = max(worst.get(e["activation"], 0.0), e["rel_err"])
    lines += ["", "Worst relative error per activation (fp32/fp16/bf16): "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())]  # fmt: skip
    for e in bad:
        lines.append(
            f"- FAIL {e['activation']} {e['name']} {e['dtype']}: "
            f"{fmt(e.get('rel_err'))} {e.get('error', '')[:120]}"
        )
    return lines + [""]


def networks_section() -> list[str]:
    lines = [
        "## Networks (images/s)",
        "",
        "| net | N | torchvision eager | archc plain | archc fused, eager (ARCHC_KERNELS=eager) "
        "| archc fused, triton (ARCHC_KERNELS=triton) | torch.compile torchvision "
        "| torch.compile archc fused | triton vs eager rel | archc vs torchvision rel "
        "| compiled archc vs eager rel | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in RESULTS["networks"]:
        notes = "; ".join(str(e[k])[:100] for k in e if k == "error" or k.endswith("_error"))
        lines.append(
            f"| {e['net']} | {e['batch']} | {fmt(e.get('torchvision_eager'), '.0f')} "
            f"| {fmt(e.get('archc_plain'), '.0f')} "
            f"| {fmt(e.get('archc_eager'), '.0f')} | {fmt(e.get('archc_triton'), '.0f')} "
            f"| {fmt(e.get('torch_compile'), '.0f')} "
            f"| {fmt(e.get('torch_compile_archc'), '.0f')} "
            f"| {fmt(e.get('archc_triton_vs_eager_rel'), '.1e')} "
            f"| {fmt(e.get('archc_vs_torchvision_rel'), '.1e')} "
            f"| {fmt(e.get('torch_compile_archc_vs_eager_rel'), '.1e')} | {notes} |"
        )
    return lines + [""]


def problems_section(limit: int) -> list[str]:
    lines = []
    if RESULTS["errors"]:
        lines += ["## Errors", ""]
        lines += [f"- {e['where']}: {e['error'][:200]}" for e in RESULTS["errors"][:limit]]
        lines += [""]
    if RESULTS["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"- {s}" for s in RESULTS["skipped"][:limit]]
        lines += [""]
    return lines


def markdown() -> str:
    """results.md: header and summary first."""
    return "\n".join(
        header_section()
        + summary_section()
        + correctness_section()
        + timing_section(compact=False)
        + epilogues_section()
        + networks_section()
        + problems_section(limit=60)
    )


def stdout_report() -> str:
    """What is printed at the end: only the last 12k characters come back from the GPU machine,
    so the compact per-geometry table goes first and the summary last."""
    return "\n".join(
        timing_section(compact=True)
        + epilogues_section()
        + correctness_section()
        + networks_section()
        + problems_section(limit=12)
        + header_section()
        + summary_section()
    )


def write_results() -> str:
    ARGS.out.mkdir(parents=True, exist_ok=True)
    summarize()
    (ARGS.out / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))
    md = markdown()
    (ARGS.out / "results.md").write_text(md)
    return md


def main() -> int:
    log(f"gpu_check: device {DEVICE}, budget {BUDGET:.0f}s, out {ARGS.out}")
    RESULTS["env"].update(env_info())
    log(json.dumps(RESULTS["env"]))
    geoms: list[dict] = []
    try:
        geoms = enumerate_geometries()
        RESULTS["geometries"] = geoms
        log(f"{len(geoms)} distinct geometries")
    except Exception as exc:
        record_error("enumerate geometries", exc)
    # Deadlines for starting new work in each part, as fractions of the budget; a torch.compile
    # starts only until 100 s before the end and only if its estimated time (75 s, then the last
    # one measured) still fits: the whole run then ends within ~7.5 min on an H100.
    RESULTS["phase_s"] = {}
    for name, part in (
        ("(a) correctness", lambda: part_a(geoms, deadline=0.40 * BUDGET)),
        ("ceilings", part_ceilings),
        ("(e) epilogues", lambda: part_e(geoms, deadline=0.46 * BUDGET)),
        ("(b) timing", lambda: part_b(geoms, deadline=0.66 * BUDGET)),
        ("(c) networks", lambda: part_c(deadline=0.78 * BUDGET, compile_deadline=BUDGET - 100)),
    ):
        t = elapsed()
        try:
            part()
        except Exception as exc:
            record_error(name, exc)
        RESULTS["phase_s"][name] = round(elapsed() - t, 1)
        try:
            write_results()
        except Exception as exc:
            record_error(f"write results after {name}", exc)
    write_results()
    print(stdout_report(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
