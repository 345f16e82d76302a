"""Scale figures for issue 24: hostile sizes that used to take minutes or hours.

Each case runs the real ``archc`` command (or ``archc.load``) in a fresh process and reports
its wall time and peak resident memory (``ru_maxrss`` of the child):

- ``lint`` of 10 MB files: 2 million lines of ``relu``, 600,000 lines of ``CONV 4 3x3 pad 1``
  (both refused at the statement limit, E216), and 19,990 lines of that conv and 19,990 lines
  each different (just under the statement limit: parsed and checked in full), and 960 lines
  of 150 additions each (just under the token limit);
- ``compile`` and ``archc.load`` of a spec of 50,000 block instances (about 600 bytes);
- ``graph`` (Mermaid) of a network of about 100,000 nodes.

Usage: python benchmarks/bench_scale.py [--out DIR] [--only NAME...]
Figures go to docs/usage.md ("Scale"); the targets are the issue's: lint under 30 s and 1 GB,
compile/load of 50,000 instances under 60 s, graph of 100k nodes under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSTANCES = """input [8x8x4]
block b():
    CONV 4 3x3 pad 1, no relu
block c():
    x: b() x1000
s: c() x50
FC 2
"""

NODES_100K = """input [8x8x4]
block b():
    relu
block c():
    x: b() x1000
s: c() x99
FC 2
"""

LOAD = "import sys, archc; archc.load(sys.argv[1])"


def files(where: Path) -> dict[str, Path]:
    made = {
        "relu_2m_lines.arch": "input [8x8x3]\n" + "relu\n" * 2_000_000,
        "conv_600k_lines.arch": "input [8x8x3]\n" + "CONV 4 3x3 pad 1\n" * 600_000,
        "conv_19990_lines.arch": "input [8x8x3]\n" + "CONV 4 3x3 pad 1\n" * 19_990,
        # Long lines just under the token limit: 960 convs of 150 additions each.
        "heavy_960_lines.arch": "input [8x8x3]\nconv: bn\n"
        + "".join(
            f"c{i}: CONV {'+'.join(['1'] * 150)}+{i % 7} 3x3 pad 1, no relu\n" for i in range(960)
        ),
        # Every line different (no line parsed once for many), each a conv and its BN.
        "distinct_19990_lines.arch": "input [8x8x3]\nconv: bn\n"
        + "".join(
            f"c{i}: CONV {i % 997 + 1} 3x3 pad 1, no relu  # layer {i}\n" for i in range(19_990)
        ),
        "instances_50k.arch": INSTANCES,
        "nodes_100k.arch": NODES_100K,
    }
    paths = {}
    for name, text in made.items():
        path = where / name
        path.write_text(text)
        paths[name] = path
    return paths


def measure(argv: list[str]) -> dict[str, object]:
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        tail = (out.read().strip().splitlines() or [""])[-1][:120]
    return {
        "argv": [Path(a).name if os.sep in a else a for a in argv[1:]],
        "seconds": round(seconds, 2),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": child.returncode,
        "last_line": tail,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="benchmarks/results", help="where the JSON goes")
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()
    archc = [sys.executable, "-m", "archc"]
    with tempfile.TemporaryDirectory() as tmp:
        p = files(Path(tmp))
        cases = {
            "lint_conv_600k_lines": [*archc, "lint", str(p["conv_600k_lines.arch"])],
            "lint_relu_2m_lines": [*archc, "lint", str(p["relu_2m_lines.arch"])],
            "compile_50k_instances": [
                *archc,
                "compile",
                str(p["instances_50k.arch"]),
                "-o",
                f"{tmp}/i.py",
            ],
            "load_50k_instances": [sys.executable, "-c", LOAD, str(p["instances_50k.arch"])],
            "graph_100k_nodes": [*archc, "graph", str(p["nodes_100k.arch"]), "-o", f"{tmp}/g.mmd"],
            "lint_conv_19990_lines": [*archc, "lint", str(p["conv_19990_lines.arch"])],
            "lint_distinct_19990_lines": [*archc, "lint", str(p["distinct_19990_lines.arch"])],
            "lint_heavy_960_lines": [*archc, "lint", str(p["heavy_960_lines.arch"])],
        }
        results = {}
        for name, argv in cases.items():
            if args.only and name not in args.only:
                continue
            results[name] = measure(argv)
            print(name, json.dumps(results[name]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (out / f"scale-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
