"""How long does `archc train` take to list its data? Against torchvision's ImageFolder scan.

Start-up of a training run on a large ImageFolder tree is the listing of its files, once per
process (every rank under torchrun). archc lists each folder with one ``scandir`` and opens no
image before it is used (an undecodable one is skipped when it is read); the target is at most
1.5x the time of ``torchvision.datasets.ImageFolder`` building its sample list of the same tree.
The earlier archc opened and verified every image at start-up; ``--verify`` times that too.

The tree is FILES small PNGs (one encoded image written under every name: listing does not read
them) in 100 classes, 90% under train/ and 10% under val/, made once in DIR. Each measurement
runs in a fresh process after a warm-up listing (the directory entries are in the page cache,
as on the second start of a run), alternating the two so that load from other processes falls
on both alike; the median and the minimum are printed.

    .venv/bin/python benchmarks/bench_train_start.py [--files 100000] [--runs 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TORCHVISION = """
import sys, time
from torchvision import datasets
began = time.perf_counter()
n = sum(len(datasets.ImageFolder(sys.argv[1] + "/" + part).samples) for part in ("train", "val"))
print(time.perf_counter() - began, n)
"""

ARCHC = """
import gc, sys, time
from pathlib import Path
from archc.recipe_ir import Recipe
from archc.training import data
gc.disable()  # as archc's main() does for the length of a command (archc/cli.py)
began = time.perf_counter()
sets = data.folders(Path(sys.argv[1]), Recipe(augment="none"), (3, 8, 8), 100, ("train", "val"))
print(time.perf_counter() - began, sum(len(s) for s in sets.values()))
"""

VERIFY = """
import sys, time
from PIL import Image
from torchvision import datasets
def readable(path):
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:
        return False
began = time.perf_counter()
n = sum(len(datasets.ImageFolder(sys.argv[1] + "/" + part, is_valid_file=readable).samples)
        for part in ("train", "val"))
print(time.perf_counter() - began, n)
"""


def make_tree(root: Path, files: int) -> None:
    from PIL import Image

    if (root / "done").exists():
        return
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buffer, "PNG")
    png = buffer.getvalue()
    for i in range(files):
        part = "val" if i % 10 == 9 else "train"
        folder = root / part / f"class{i // 10 % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:07d}.png").write_bytes(png)
    (root / "done").write_text(str(files))


def seconds(script: str, root: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(root)], check=True, capture_output=True, text=True,
        env=env,
    )  # fmt: skip
    took, count = done.stdout.split()
    return float(took), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the tree is made (kept)")
    parser.add_argument("--verify", action="store_true", help="also time per-file verification")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.gettempdir()) / f"archc-train-start-{args.files}"
    began = time.perf_counter()
    make_tree(root, args.files)
    print(f"tree of {args.files:,} files in {root} ({time.perf_counter() - began:.1f} s)")
    scripts = {"torchvision ImageFolder": TORCHVISION, "archc train": ARCHC}
    if args.verify:
        scripts["verify every image (archc before)"] = VERIFY
    times: dict[str, list[float]] = {name: [] for name in scripts}
    for script in scripts.values():
        seconds(script, root)  # warm-up: the directory entries into the page cache
    for _ in range(args.runs):
        for name, script in scripts.items():
            took, count = seconds(script, root)
            assert count == args.files, (name, count)
            times[name].append(took)
    base = statistics.median(times["torchvision ImageFolder"])
    figures = {}
    for name, values in times.items():
        median = statistics.median(values)
        figures[name] = {"median_s": median, "min_s": min(values), "ratio": median / base}
        print(f"{name:36s} median {median:.3f} s, min {min(values):.3f} s, {median / base:.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps({"files": args.files, "runs": args.runs, **figures}))


if __name__ == "__main__":
    main()
