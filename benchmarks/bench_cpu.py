"""CPU inference speed of archc's fused module against what users would run instead, in one run.

For each network (torchvision's resnet50, mobilenet_v2, efficientnet_b0 and convnext_tiny by
default) and batch size (1 and 8), fp32 at 224x224, four paths compute the same function:

- ``torchvision``: torchvision's model, eager, on the NCHW input, as users run it;
- ``archc``: ``archc.fuse(archc.load("torchvision/<name>"), example_input=x)`` with torchvision's
  weights loaded strictly, called on the same NCHW input (it converts to channels_last itself);
- ``compile``: ``torch.compile`` of torchvision's model in channels_last, with
  ``torch._inductor.config.freezing`` (weights folded in as constants, BN into the convs);
  static shapes, one compilation per batch size. The NCHW input is converted to channels_last
  *inside* the timed call, as a user feeding it ordinary images pays for it;
- ``onednn_graph``: torchvision's model traced and frozen by TorchScript with
  ``torch.jit.enable_onednn_fusion(True)``: oneDNN Graph compiles its conv/BN/add/activation
  partitions once, so a call pays no per-convolution set-up (PyTorch's lowest-overhead way to
  run oneDNN; TorchScript is deprecated, so this is an anchor, not something archc builds on).
  The profiling executor fuses on the second call; setting up runs three calls;
- ``onnxruntime``: an ``onnxruntime.InferenceSession`` on the CPU provider, graph optimisations at
  ORT_ENABLE_ALL (the default), ``intra_op_num_threads`` = torch's thread count, on the model
  exported with ``torch.onnx.export(model, (x,), dynamo=True)`` (static shapes, one file per
  batch size, in a temporary directory); the numpy input is made outside the timed call.

Every path sees the same weights (random, with random BN running statistics so that eval-mode BN
does something; fixed seeds) and the same input; archc's output must be within 1e-4 of
torchvision's relative to the output's scale (max abs difference / max abs of torchvision's), and
each path's error is recorded. Timing runs under ``torch.inference_mode()``: warm-up rounds, then
rounds in which every path runs once, in an order that rotates by one each round (so none always
follows the same neighbour), with a short pause before each call so that the previous engine's
spin-waiting threads (ORT's pool, OpenMP's) have gone idle, as they would for a user running one
engine. The figures are medians; a ratio is the other path's median over archc's (above 1: archc
is faster), and beside it the median of the per-round ratios, steadier when the load drifts.

All paths share one process, hence one allocator; glibc may serve a path more or fewer fresh
pages depending on what ran before it, so the median minor page faults per call are recorded for
each path, to make such a skew visible. Networks run one at a time and are freed before the next.

    python benchmarks/bench_cpu.py --json bench.json          # the full comparison
    python benchmarks/bench_cpu.py --models resnet50 --batches 1 --rounds 2
    python benchmarks/bench_cpu.py --models resnet18 --size 64 --skip compile

Setting up costs far more than timing: torch.compile takes tens of seconds per network and
batch size on a small machine, the ONNX export several; both are recorded under ``setup_s``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch._dynamo
import torch._inductor.config
import torchvision

import archc
from archc.progress import counted

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

MODELS = ("resnet50", "mobilenet_v2", "efficientnet_b0", "convnext_tiny")
PATHS = ("torchvision", "archc", "compile", "onednn_graph", "onnxruntime")
# The paths that may be left out (the smoke test leaves out torch.compile, tens of seconds).
OPTIONAL = ("compile", "onednn_graph", "onnxruntime")
TOLERANCE = 1e-4
ROOT = Path(__file__).resolve().parents[1]


def _minor_faults() -> int:
    """Page faults served without I/O so far (fresh memory being mapped in); 0 off Unix."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def _cpuinfo() -> tuple[str, int | None, list[str]]:
    """The CPU's model name, its physical cores and the SIMD extensions that matter to conv
    kernels, from /proc/cpuinfo (the name from platform elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), None, []
    model, cores, flags = "", set(), set()
    physical = core = ""
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not model:
            model = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
        elif key == "flags" and not flags:
            flags = set(value.split())
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    return model, len(cores) or None, [f for f in wanted if f in flags]


def _archc_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def describe_machine() -> dict[str, Any]:
    model, cores, isa = _cpuinfo()
    return {
        "cpu": model,
        "physical_cores": cores,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "isa": isa,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "archc_commit": _archc_commit(),
        # What changes the allocator or the thread pools' waiting, if the runner set any of it.
        "environment": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("MALLOC_", "OMP_", "KMP_", "GOMP_")) or k == "LD_PRELOAD"
        },
    }


def torchvision_model(name: str) -> torch.nn.Module:
    """torchvision's ``name`` in eval mode with random weights and random BN running statistics
    (eval-mode BN with mean 0 and variance 1 would be nearly the identity)."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def relative_error(out: torch.Tensor | np.ndarray, reference: torch.Tensor) -> float:
    """Max absolute difference over the max absolute value of ``reference``: the fused paths fold
    BN into the convs, so their rounding differs from torchvision's by the output's scale."""
    diff = (torch.as_tensor(out).double() - reference.double()).abs().max()
    return float(diff / reference.double().abs().max())


def onnx_session(
    model: torch.nn.Module, x: torch.Tensor, path: Path, threads: int
) -> ort.InferenceSession:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on torch internals
        program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    program.save(str(path))
    del program
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onednn_graph(model: torch.nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], Any]:
    """``model`` traced, frozen and run through oneDNN Graph's fuser (TorchScript's LLGA), after
    the calls the profiling executor needs before it fuses. The fuser stays enabled: TorchScript
    checks the flag when it optimises, and no other path runs TorchScript."""
    torch.jit.enable_onednn_fusion(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notes
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(model, x))
    with torch.inference_mode():
        for _ in range(3):
            traced(x)
    return traced


def time_rounds(
    paths: dict[str, Callable[[], object]], rounds: int, warmup: int, pause: float
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Seconds and minor page faults of each path's calls, round by round; each round runs every
    path once, starting one further along the list than the round before."""
    names = list(paths)
    times: dict[str, list[float]] = {k: [] for k in names}
    faults: dict[str, list[int]] = {k: [] for k in names}
    gc.collect()
    gc.disable()  # a collection would land on whichever path happened to be running
    try:
        for i in counted(range(-warmup, rounds), "rounds"):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                time.sleep(pause)
                before = _minor_faults()
                start = time.perf_counter()
                paths[name]()
                elapsed = time.perf_counter() - start
                if i >= 0:
                    times[name].append(elapsed)
                    faults[name].append(_minor_faults() - before)
    finally:
        gc.enable()
    return times, faults


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 4)


def _figure(ratio: float) -> float:
    """Five significant digits: a fixed number of decimals would lose the small ratios."""
    return float(f"{ratio:.5g}")


def bench_case(
    name: str,
    theirs: torch.nn.Module,
    plain: torch.nn.Module,
    batch: int,
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    """Every path on one network at one batch size: set up, checked, timed."""
    threads = torch.get_num_threads()
    torch.manual_seed(batch)
    x = torch.randn(batch, 3, args.size, args.size)
    setup: dict[str, float] = {}

    start = time.perf_counter()
    fused = archc.fuse(plain, example_input=x)
    setup["fuse"] = time.perf_counter() - start
    groups = fused.fusion_groups
    paths: dict[str, Callable[[], object]] = {
        "torchvision": lambda: theirs(x),
        "archc": lambda: fused(x),
    }
    if "onnxruntime" not in args.skip:
        start = time.perf_counter()
        session = onnx_session(theirs, x, tmp / f"{name}-b{batch}.onnx", threads)
        setup["onnx_export_and_session"] = time.perf_counter() - start
        feed = {session.get_inputs()[0].name: x.numpy()}
        paths["onnxruntime"] = lambda: session.run(None, feed)[0]

    outputs: dict[str, Any] = {}
    with torch.inference_mode(), torch._inductor.config.patch(freezing=True):
        if "compile" not in args.skip:
            compiled = torch.compile(
                copy.deepcopy(theirs).to(memory_format=torch.channels_last), dynamic=False
            )
            paths["compile"] = lambda: compiled(x.contiguous(memory_format=torch.channels_last))
            start = time.perf_counter()
            outputs["compile"] = paths["compile"]()  # the compilation happens here
            setup["compile_first_call"] = time.perf_counter() - start
        if "onednn_graph" not in args.skip:
            start = time.perf_counter()
            graph = onednn_graph(theirs, x)
            paths["onednn_graph"] = lambda: graph(x)
            setup["onednn_graph_trace_and_first_calls"] = time.perf_counter() - start
        paths = {k: paths[k] for k in PATHS if k in paths}
        expected = theirs(x)
        for k, run in paths.items():
            if k not in outputs:
                outputs[k] = run()
        errors = {
            k: relative_error(out, expected) for k, out in outputs.items() if k != "torchvision"
        }
        times, faults = time_rounds(paths, args.rounds, args.warmup, args.pause_ms / 1e3)

    medians = {k: statistics.median(v) for k, v in times.items()}
    others = [k for k in medians if k != "archc"]
    return {
        "model": name,
        "spec": f"torchvision/{name}",
        "batch": batch,
        "size": args.size,
        "fusion_groups": groups,
        "setup_s": {k: round(v, 3) for k, v in setup.items()},
        "relative_error": {k: float(f"{v:.3e}") for k, v in errors.items()},
        "archc_within_tolerance": errors["archc"] <= TOLERANCE,
        "median_ms": {k: _ms(v) for k, v in medians.items()},
        "min_ms": {k: _ms(min(v)) for k, v in times.items()},
        "times_ms": {k: [_ms(t) for t in v] for k, v in times.items()},
        "median_minor_page_faults": {k: statistics.median(v) for k, v in faults.items()},
        # Above 1: archc is faster than that path.
        "ratios": {f"{k}/archc": _figure(medians[k] / medians["archc"]) for k in others},
        "per_round_ratios": {
            f"{k}/archc": _figure(
                statistics.median(a / b for a, b in zip(times[k], times["archc"]))
            )
            for k in others
        },
    }


def bench_network(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    theirs = torchvision_model(name)
    plain = archc.load(f"torchvision/{name}").eval()
    plain.load_state_dict(theirs.state_dict(), strict=True)
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench_cpu-") as tmp:
        for batch in args.batches:
            cases.append(bench_case(name, theirs, plain, batch, args, Path(tmp)))
            print(_line(cases[-1]), flush=True)
            torch._dynamo.reset()  # drops the compiled graph and its frozen weights
            gc.collect()
    return cases


def _line(case: dict[str, Any]) -> str:
    med, ratios = case["median_ms"], case["ratios"]
    timings = ", ".join(f"{k} {v:.1f} ms" for k, v in med.items())
    shown = ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
    return (
        f"{case['model']} batch {case['batch']} {case['size']}x{case['size']}: {timings} "
        f"(medians); {shown}; archc's relative error {case['relative_error']['archc']:.1e}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8], metavar="N")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    parser.add_argument(
        "--pause-ms", type=float, default=20.0, help="idle time before each timed call"
    )
    parser.add_argument("--skip", nargs="+", choices=OPTIONAL, default=[], metavar="PATH")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the comparison and returns (and writes, with ``--json``) its figures."""
    args = parse_args(argv)
    threads_before = torch.get_num_threads()
    onednn_fusion_before = torch.jit.onednn_fusion_enabled()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        result: dict[str, Any] = {
            "machine": describe_machine(),
            "settings": {
                "models": args.models,
                "batches": args.batches,
                "size": args.size,
                "dtype": "float32",
                "rounds": args.rounds,
                "warmup": args.warmup,
                "pause_ms": args.pause_ms,
                "paths": [p for p in PATHS if p not in args.skip],
                "tolerance": TOLERANCE,
                "grad_mode": "torch.inference_mode",
                "compile": "torch.compile(dynamic=False), inductor freezing, model channels_last, "
                "input converted to channels_last inside the timed call",
                "onednn_graph": "torch.jit.trace + torch.jit.freeze with "
                "torch.jit.enable_onednn_fusion(True), NCHW input, three calls before timing",
                "onnxruntime": "CPUExecutionProvider, ORT_ENABLE_ALL, intra_op_num_threads = "
                "torch's threads, torch.onnx.export(dynamo=True), numpy input made outside",
            },
            "results": [],
        }
        for name in args.models:
            result["results"] += bench_network(name, args)
            gc.collect()
            if args.json:  # what a long run has measured survives a later network's failure
                args.json.write_text(json.dumps(result, indent=2) + "\n")
        result["machine"]["load_average_after"] = (
            [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
        )
        result["total_s"] = round(time.perf_counter() - started, 1)
    finally:
        torch.set_num_threads(threads_before)
        torch.jit.enable_onednn_fusion(onednn_fusion_before)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    figures = main()
    failed = [c for c in figures["results"] if not c["archc_within_tolerance"]]
    for c in failed:
        print(
            f"archc disagrees with torchvision on {c['model']} batch {c['batch']}: relative "
            f"error {c['relative_error']['archc']:.1e} > {TOLERANCE:g}",
            file=sys.stderr,
        )
    sys.exit(1 if failed else 0)
