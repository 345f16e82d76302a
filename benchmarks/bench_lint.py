"""How fast is `archc lint`? Median wall time of a whole process, against the floor set by its
two dependencies.

`archc lint` runs in editors and pre-commit hooks, once per save, so what matters is the
start-up of a fresh process: importing pydantic and lark, building the grammar, checking one
large spec (ResNet-152, ~500 layers after expansion). The baseline `python -c "import pydantic,
lark"` is the least any process that parses with lark into pydantic models can cost; the target is
a ratio of at most 3.

    .venv/bin/python benchmarks/bench_lint.py [--runs 30] [SPEC]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "specs" / "torchvision" / "resnet152.arch"


def median_seconds(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC))
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    baseline = median_seconds([sys.executable, "-c", "import pydantic, lark"], args.runs)
    lint = median_seconds([sys.executable, "-m", "archc", "lint", args.spec], args.runs)
    print(f"python -c 'import pydantic, lark'   {baseline * 1000:7.1f} ms (median of {args.runs})")
    print(f"archc lint {Path(args.spec).name:<24} {lint * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio                               {lint / baseline:7.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
