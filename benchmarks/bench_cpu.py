"""CPU inference speed of a spec's module against its torchvision model: the fused inference
module (``archc.fuse(archc.load(spec))``, the default) or the plain one (``--variant plain``).

Both run in one process, timed alternately round by round (so that a noisy neighbour or a
thermal change hits both alike), after warm-up; the figure is the ratio of the medians, and
beside it the median of the per-round ratios, which is steadier on a shared machine. One variant
per process: glibc's allocator serves the same op sequence with more or fewer fresh pages
depending on what ran before in the process (reported as minor page faults), which skews a
third model timed alongside. The plain module has torchvision's keys, so it takes torchvision's
weights strictly.

    python benchmarks/bench_cpu.py                       # ResNet-50, batch 4, 224x224, fp32
    python benchmarks/bench_cpu.py --variant plain
    python benchmarks/bench_cpu.py --model resnet18 --rounds 50 --json out.json

Target: archc within 5% of torchvision (ratio <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

import archc
from archc.progress import counted

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"


def _minor_faults() -> int:
    """Page faults served without I/O so far (fresh memory being mapped in); 0 off Unix."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def time_once(model: torch.nn.Module, x: torch.Tensor, faults: list[int]) -> float:
    before = _minor_faults()
    start = time.perf_counter()
    model(x)
    elapsed = time.perf_counter() - start
    faults.append(_minor_faults() - before)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--variant", choices=("fused", "plain"), default="fused")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    theirs = getattr(torchvision.models, args.model)(weights=None).eval()
    for m in theirs.modules():  # running statistics that make eval-mode BN do something
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    plain = archc.load(SPECS / f"{args.model}.arch").eval()
    plain.load_state_dict(theirs.state_dict(), strict=True)
    ours = archc.fuse(plain) if args.variant == "fused" else plain
    del plain
    x = torch.randn(args.batch, 3, args.size, args.size)

    models = {"archc": ours, "torchvision": theirs}
    times: dict[str, list[float]] = {k: [] for k in models}
    faults: dict[str, list[int]] = {k: [] for k in models}
    with torch.no_grad():
        # The fused module folds BN into the convs, so its rounding differs from torchvision's
        # separate BN; the acceptance measure is the error relative to the output's scale.
        expected = theirs(x)
        rel_err = ((ours(x) - expected).abs().max() / expected.abs().max()).item()
        assert rel_err <= 1e-5, f"archc and torchvision disagree: relative error {rel_err:.1e}"
        for _ in range(args.warmup):
            for model in models.values():
                time_once(model, x, [])
        pair = list(models.items())
        for i in counted(range(args.rounds), "rounds"):
            # Alternate which goes first, so neither always runs on a warmer cache.
            for name, model in pair if i % 2 == 0 else pair[::-1]:
                times[name].append(time_once(model, x, faults[name]))

    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["archc"] / medians["torchvision"]
    # Each round's two runs are neighbours in time: their ratio cancels slow drifts in load.
    paired = statistics.median(a / b for a, b in zip(times["archc"], times["torchvision"]))
    result = {
        "model": args.model,
        "batch": args.batch,
        "size": args.size,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cpu": platform.processor() or platform.machine(),
        "median_ms": {k: round(v * 1e3, 2) for k, v in medians.items()},
        "min_ms": {k: round(min(v) * 1e3, 2) for k, v in times.items()},
        # Allocations the allocator could not serve from memory it already held.
        "median_minor_page_faults": {k: statistics.median(v) for k, v in faults.items()},
        "relative_error": float(f"{rel_err:.2e}"),
        "ratio": round(ratio, 4),
        "paired_ratio": round(paired, 4),
        "variant": args.variant,
        "fusion_groups": getattr(ours, "fusion_groups", 0),
    }
    print(
        f"{args.model} ({args.variant}) batch {args.batch} {args.size}x{args.size} fp32 eval, "
        f"{args.rounds} rounds, {result['threads']} threads: "
        f"archc {result['median_ms']['archc']:.1f} ms, "
        f"torchvision {result['median_ms']['torchvision']:.1f} ms (medians), "
        f"ratio {ratio:.3f} ({'within' if ratio <= 1.05 else 'NOT within'} 5%), "
        f"median of per-round ratios {paired:.3f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
