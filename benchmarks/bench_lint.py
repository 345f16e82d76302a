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

    .venv/bin/python benchmarks/bench_lint.py [--runs 30] [SPEC ...]

By default it measures both ResNet-152 specs: torchvision's counterpart (named layers, `init
torchvision`, the v1.5 bottleneck) and the paper's; each gets its own ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPECS = [
    "torchvision/resnet152",  # the family spec specs/torchvision/resnet.arch, variant 152
    ROOT / "specs" / "resnet152.arch",
]


CPU: dict[tuple[str, ...], list[float]] = {}
"""Each command's CPU seconds (user + system) per run: on a machine shared with other jobs the
wall time of a run includes waiting for a core, its CPU time much less so."""


def seconds(cmd: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(tuple(cmd), []).append(cpu)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=[str(p) for p in DEFAULT_SPECS])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    baseline_cmd = [sys.executable, "-c", "import pydantic, lark"]
    lint_cmds = [[sys.executable, "-m", "archc", "lint", spec] for spec in args.specs]
    with tempfile.TemporaryDirectory(prefix="archc-bench-pyc-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for cmd in (baseline_cmd, *lint_cmds):  # warm: bytecode, file cache, grammar cache
            seconds(cmd, env)
        baseline: list[float] = []
        lints: list[list[float]] = [[] for _ in lint_cmds]
        for _ in range(args.runs):
            for cmd, times in zip(lint_cmds, lints):
                baseline.append(seconds(baseline_cmd, env))
                times.append(seconds(cmd, env))

    for cmd in (baseline_cmd, *lint_cmds):
        del CPU[tuple(cmd)][0]  # the warm-up run
    b = statistics.median(baseline)
    b_cpu = statistics.median(CPU[tuple(baseline_cmd)])
    print(
        f"{'python -c import pydantic, lark':<45} {b * 1000:7.1f} ms median, "
        f"{min(baseline) * 1000:6.1f} min"
    )
    for spec, cmd, times in zip(args.specs, lint_cmds, lints):
        li = statistics.median(times)
        cpu = statistics.median(CPU[tuple(cmd)])
        name = "/".join(Path(spec).parts[-2:])
        print(
            f"{'archc lint ' + name:<45} {li * 1000:7.1f} ms median, {min(times) * 1000:6.1f} min"
            f"  {li / b:5.2f}x of medians (target <= 3x), {min(times) / min(baseline):5.2f}x "
            f"of minimums; CPU time {cpu / b_cpu:5.2f}x ({cpu * 1000:.0f} against "
            f"{b_cpu * 1000:.0f} ms)"
        )
    print(f"({args.runs} runs of each lint, each after a baseline run)")


if __name__ == "__main__":
    main()
