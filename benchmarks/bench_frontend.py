"""Front-end speed: parse + elaborate ResNet-152 (about 500 IR nodes from a 20-line spec).

Run: ``python benchmarks/bench_frontend.py``. Prints the median of many runs in milliseconds,
after import and after one warm-up run (which builds the cached Lark parser). The budget is
"well under 100 ms"; docs/language.md records the figure.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from archc.frontend import parse_spec, read_spec

SPEC = Path(__file__).resolve().parent.parent / "specs" / "resnet152.arch"

# Used only while the shipped spec library lacks resnet152.arch.
FALLBACK = """\
network ResNet152
input [224x224x3]
conv: bn, relu

block bottleneck(width, stride = 1):
    residual:
        CONV: width 1x1 no bias
        CONV: width 3x3 stride stride pad 1 no bias
        CONV: 4*width 1x1 no bias, no relu
    shortcut: auto
    add, relu

conv1: CONV 64 7x7 stride 2 pad 3 no bias                       -> [112x112x64]
MAX POOL: 3x3 stride 2 pad 1                                     -> [56x56x64]
layer1: bottleneck(64) x3                                        -> [56x56x256]
layer2: bottleneck(128, stride 2), bottleneck(128) x7            -> [28x28x512]
layer3: bottleneck(256, stride 2), bottleneck(256) x35           -> [14x14x1024]
layer4: bottleneck(512, stride 2), bottleneck(512) x2            -> [7x7x2048]
GLOBAL AVG POOL
FC 1000
"""


def run_once() -> int:
    result = read_spec(SPEC) if SPEC.exists() else parse_spec(FALLBACK, "resnet152.arch")
    assert result.graph is not None, result.diagnostics
    return len(result.graph.nodes)


def main(runs: int = 50) -> float:
    nodes = run_once()  # warm-up: builds the cached Lark parser
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        run_once()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    median = statistics.median(wall)
    source = SPEC.name if SPEC.exists() else "embedded text"
    # CPU time is the steadier figure on a shared machine; wall time is what a user waits.
    print(
        f"parse + elaborate ResNet-152 ({source}, {nodes} nodes): {median:.1f} ms median wall, "
        f"{statistics.median(cpu):.1f} ms median CPU, over {runs} runs"
    )
    return median


if __name__ == "__main__":
    main()
