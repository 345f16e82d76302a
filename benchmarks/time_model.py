"""Per-layer time model of the fused conv on an H200: roofline plus issue rate, from the machine
code that ``codegen_check.py`` measures, calibrated on a committed ``gpu_check`` run.

    python3 benchmarks/time_model.py                        # fit, then predict today's kernels
    python3 benchmarks/time_model.py --before OLD.json --after NEW.json

``--before`` (default ``codegen/h200-runs-triton-3.6.0.json``: the kernels of the calibration run,
compiled by its Triton) fits the model; ``--after`` (default: today's Triton 3.6 baseline) is
predicted with it.

For one (layer, config) at batch 256:

* tiles ``T = ⌈M/BM⌉·⌈K/BN⌉``, ``c`` CTAs per SM, ``W = ⌈T / (132·c)⌉`` waves, each SM running
  ``c`` CTAs of ``steps`` main-loop steps per wave;
* a step costs ``max(MMA, issue)``: the MMA term is the step's MACs at the measured matmul
  ceiling (per SM), the issue term the loop's SASS instructions at ``β`` instructions per cycle
  per scheduler (each of a CTA's 4 warps runs on its own scheduler; CTAs sharing an SM share
  both the tensor cores and the schedulers);
* compute ``W·c·steps·max(MMA, issue)``, memory the least bytes (``roofline.conv_bytes``) at the
  measured copy bandwidth; the layer takes ``max(compute, memory) + t0``.

The autotuner keeps the fastest config it measures, so the model takes the fastest config it
predicts. The prediction for a layer is its measured time scaled by the model's after/before
ratio (the model's own error cancels to first order). ``β`` and ``t0`` are fitted (least
squares on log time) to the fused times of the ResNet-50 layers of the calibration run, with
the code of the Triton that run used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CALIBRATION = HERE / "results" / "h200-quick-after-change-7" / "results.json"
# The code of that run (before issue 26's changes) as Triton 3.6 compiles it, and today's.
CALIBRATION_CODE = HERE / "codegen" / "h200-runs-triton-3.6.0.json"
TODAY = HERE / "codegen" / "triton-3.6.0.json"
SMS, CLOCK_HZ, BATCH = 132, 1.98e9, 256  # H200 SXM: 132 SMs, 1.98 GHz boost


def _roofline():
    spec = importlib.util.spec_from_file_location("roofline", HERE / "roofline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


roofline = _roofline()


def parse_layer(name: str) -> dict:
    """``"128->128 3x3 s1 p1 @28 +res"`` → sizes."""
    m = re.fullmatch(r"(\d+)->(\d+) (\d+)x(\d+) s(\d+) p(\d+) @(\d+)( \+res)?", name)
    c, k, r, s, stride, pad, h = map(int, m.groups()[:7])
    return dict(C=c, K=k, R=r, S=s, stride=stride, pad=pad, H=h, residual=bool(m[8]))


def gpu_check_name(g: dict) -> tuple[str, bool]:
    """The same layer as gpu_check names it, and whether it adds a residual."""
    return f"{g['C']}->{g['K']} {g['R']}x{g['S']}/s{g['stride']}p{g['pad']} @{g['H']}", g[
        "residual"
    ]


def predict_row(row: dict, g: dict, beta: float, t0: float, ceil: dict) -> float:
    bm, bn, bk = map(int, row["config"].split()[0].split("x"))
    oh = (g["H"] + 2 * g["pad"] - g["R"]) // g["stride"] + 1
    m = BATCH * oh * oh
    tiles = -(-m // bm) * -(-g["K"] // bn)
    c = max(row["ctas_per_sm"], 1)
    waves = -(-tiles // (SMS * c))
    steps = row.get("k_steps") or _steps(g, bk)
    mma = 2 * bm * bn * bk / (ceil["matmul_tflops"] * 1e12 / SMS)
    # No loop found (a one-step reduction, unrolled): the MMA term alone.
    issue = (row["sass_loop"] or 0) / (beta * CLOCK_HZ)
    compute = waves * c * steps * max(mma, issue)
    nbytes = roofline.conv_bytes(BATCH, g["C"], g["K"], (g["H"], g["H"]), (g["R"], g["S"]),
                                 g["stride"], g["pad"], g["residual"])  # fmt: skip
    memory = nbytes / (ceil["copy_gbps"] * 1e9)
    return max(compute, memory) + t0


def _steps(g: dict, bk: int) -> int:
    if g["C"] < 32:
        return -(-g["C"] * g["R"] * g["S"] // bk)
    return g["R"] * g["S"] * -(-g["C"] // bk)


def predict(rows: list[dict], beta: float, t0: float, ceil: dict) -> dict[str, tuple]:
    """Layer → (predicted seconds, config) of the fastest predicted config."""
    best: dict[str, tuple] = {}
    for row in rows:
        g = parse_layer(row["layer"])
        t = predict_row(row, g, beta, t0, ceil)
        if row["layer"] not in best or t < best[row["layer"]][0]:
            best[row["layer"]] = (t, row["config"])
    return best


def measured(path: Path = CALIBRATION) -> tuple[dict, dict]:
    run = json.loads(path.read_text())
    times = {(e["name"], e["residual"]): e["ms_fused"] * 1e-3 for e in run["timing"]}
    return times, run["ceilings"]


def fit(rows: list[dict], times: dict, ceil: dict) -> tuple[float, float, float]:
    """(β, t0, rms log error) over the layers both sides have."""
    best = (math.inf, 1.0, 0.0)
    for beta in [x / 100 for x in range(10, 101, 2)]:
        for t0 in [x * 1e-6 for x in range(0, 101, 2)]:
            pred = predict(rows, beta, t0, ceil)
            errs = [
                math.log(p[0] / times[gpu_check_name(parse_layer(k))])
                for k, p in pred.items()
                if gpu_check_name(parse_layer(k)) in times
            ]
            rms = math.sqrt(sum(e * e for e in errs) / len(errs))
            if rms < best[0]:
                best = (rms, beta, t0)
    return best[1], best[2], best[0]


def report(before: list[dict], after: list[dict], path: Path = CALIBRATION) -> list[str]:
    times, ceil = measured(path)
    beta, t0, rms = fit(before, times, ceil)
    pb, pa = predict(before, beta, t0, ceil), predict(after, beta, t0, ceil)
    lines = [
        f"fit on {path.parent.name}: beta {beta:.2f} instr/cycle/scheduler, t0 {t0 * 1e6:.0f} us, "
        f"rms log error {rms:.2f} (x{math.exp(rms):.2f})",
        "",
        "| layer | measured ms | model before ms (config) | model after ms (config) "
        "| after/before | predicted ms |",
        "|---|---|---|---|---|---|",
    ]
    for layer, (tb, cb) in pb.items():
        name = gpu_check_name(parse_layer(layer))
        if name not in times or layer not in pa:
            continue
        ta, ca = pa[layer]
        lines.append(
            f"| {layer} | {times[name] * 1e3:.3f} | {tb * 1e3:.3f} ({cb}) | {ta * 1e3:.3f} ({ca}) "
            f"| {ta / tb:.2f} | {times[name] * ta / tb * 1e3:.3f} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--before",
        type=Path,
        default=CALIBRATION_CODE,
        help="codegen_check JSON of the calibration run's code (fits the model)",
    )
    p.add_argument("--after", type=Path, default=TODAY, help="codegen_check JSON to predict")
    p.add_argument("--calibration", type=Path, default=CALIBRATION, help="a gpu_check results.json")
    a = p.parse_args(argv)
    before = json.loads(a.before.read_text())["rows"]
    after = json.loads(a.after.read_text())["rows"]
    print("\n".join(report(before, after, a.calibration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
