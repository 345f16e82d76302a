"""How fast is `archc lint`? Median wall time of a whole process, against the floor set by its
two dependencies.

`archc lint` runs in editors and pre-commit hooks, once per save, so what matters is the
start-up of a fresh process: importing pydantic and lark, loading the grammar tables (cached
after the first run), checking one large spec (ResNet-152, ~500 layers after expansion). The
baseline `python -c "import pydantic, lark"` is the least any process that parses with lark
into pydantic models can cost; the target is a ratio of at most 3.

Both commands run as an installed program runs: with bytecode caching on (in a private
PYTHONPYCACHEPREFIX, even when the caller sets PYTHONDONTWRITEBYTECODE, so that archc's own
modules are not recompiled from source on every run while the dependencies' are cached), after
one warm-up run each. The runs alternate, baseline then lint, so that load from other processes
falls on both alike; the minimum is printed beside the median as the figure least disturbed by
that load.

    .venv/bin/python benchmarks/bench_lint.py [--runs 30] [SPEC]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "specs" / "torchvision" / "resnet152.arch"


def seconds(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC))
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    baseline_cmd = [sys.executable, "-c", "import pydantic, lark"]
    lint_cmd = [sys.executable, "-m", "archc", "lint", args.spec]
    with tempfile.TemporaryDirectory(prefix="archc-bench-pyc-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for cmd in (baseline_cmd, lint_cmd):  # warm: bytecode, file cache, grammar cache
            seconds(cmd, env)
        baseline, lint = [], []
        for _ in range(args.runs):
            baseline.append(seconds(baseline_cmd, env))
            lint.append(seconds(lint_cmd, env))

    b, li = statistics.median(baseline), statistics.median(lint)
    name = Path(args.spec).name
    for label, times, median in (
        ("python -c 'import pydantic, lark'", baseline, b),
        (f"archc lint {name}", lint, li),
    ):
        print(f"{label:<35} {median * 1000:7.1f} ms median, {min(times) * 1000:6.1f} min")
    print(f"ratio of medians                    {li / b:7.2f}x (target <= 3x)")
    print(f"ratio of minimums                   {min(lint) / min(baseline):7.2f}x")
    print(f"({args.runs} runs each, alternating)")


if __name__ == "__main__":
    main()
