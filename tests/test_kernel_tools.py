"""The offline kernel tools in benchmarks/: gpu_check's roofline byte count, inspect_kernels'
"no install" loading, and the sm_90 codegen check (benchmarks/codegen_check.py) with its
committed baselines. The codegen check compiles for a GPU target without a GPU, in a subprocess
(the test process runs Triton in its interpreter)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_roofline_counts_the_input_pixels_a_strided_1x1_conv_reads() -> None:
    roofline = _load("roofline")
    n, c, k = 256, 256, 512
    # 1x1 stride 2 on 56x56: every other row and column, 28x28 pixels of the input.
    got = roofline.conv_bytes(n, c, k, (56, 56), (1, 1), 2, 0, residual=False)
    assert got == 2 * (n * c * 28 * 28 + k * c + n * k * 28 * 28)
    # The whole input (what gpu_check counted before) is 4x the sampled one.
    assert 2 * n * c * 56 * 56 == 4 * 2 * n * c * 28 * 28
    # A 3x3 stride-1 pad-1 conv reads all of its input; a residual doubles the output traffic.
    got = roofline.conv_bytes(n, 64, 64, (56, 56), (3, 3), 1, 1, residual=True)
    assert got == 2 * (n * 64 * 56 * 56 + 64 * 64 * 9 + 2 * n * 64 * 56 * 56)
    # AlexNet's 11x11 stride-4 pad-2 stem: windows overlap, so every input pixel is read.
    assert roofline.sampled_extent(224, 11, 4, 2) == 224
    # A 1x1 stride-2 conv on an odd size reads ceil(size / 2) positions.
    assert roofline.sampled_extent(7, 1, 2, 0) == 4


def test_inspect_kernels_loads_the_kernels_without_an_install() -> None:
    """The GPU machine has no install of archc: the by-path fallback must load fused_conv.py,
    whose @dataclass needs its module in sys.modules."""
    code = (
        "import sys, dataclasses; sys.path.insert(0, 'benchmarks'); import inspect_kernels as ik; "
        "fc = ik.load_fused_conv(installed=False); "
        "assert fc.__name__ != 'archc.kernels.fused_conv', fc.__name__; "
        "assert dataclasses.is_dataclass(fc.PackedWeight); "
        "print(type(ik._jit(fc._conv_kernel)).__name__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "JITFunction"


def _codegen_check(*args: str, cache: Path | None = None, env=None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}, **(env or {})}
    if cache is not None:
        env["ARCHC_CODEGEN_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "benchmarks/codegen_check.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_codegen_baselines_are_committed_for_ci_and_gpu_triton() -> None:
    """CI's Triton and the GPU machine's (3.6) each have a baseline of the full sweep."""
    import triton

    names = {p.name for p in (BENCH / "codegen").glob("triton-*.json")}
    assert f"triton-{triton.__version__}.json" in names
    assert "triton-3.6.0.json" in names
    for name in names:
        rows = json.loads((BENCH / "codegen" / name).read_text())["rows"]
        layers = {r["layer"] for r in rows}
        # ResNet-50's 23 distinct convolutions, 24 names: 64->256 1x1 @56 is both a block's
        # last conv (+res) and layer1's projection shortcut. VGG-16's 9 and AlexNet's 5 share
        # none of them (VGG's 512->512 3x3 @14 has stride 1, ResNet's stride 2).
        assert {"3->64 7x7 s2 p3 @224", "3->64 11x11 s4 p2 @224", "3->64 3x3 s1 p1 @224"} <= layers
        assert "512->2048 1x1 s1 p0 @7 +res" in layers and "512->512 3x3 s1 p1 @7" in layers
        assert {"64->256 1x1 s1 p0 @56", "64->256 1x1 s1 p0 @56 +res"} <= layers
        assert len(layers) == 24 + 9 + 5


def test_codegen_baselines_meet_issue_26s_bars() -> None:
    """Both committed baselines: no spill anywhere; the 3x3 main tile at <= 60 % of the integer
    instructions per MMA of the code the H200 ran (h200-runs-triton-3.6.0.json); >= 2 CTAs per
    SM for every tile the autotuner can pick for a 3x3 layer."""
    old = json.loads((BENCH / "codegen" / "h200-runs-triton-3.6.0.json").read_text())["rows"]
    main = ("128->128 3x3 s1 p1 @28", "128x128x64 w4 s3")
    (before,) = [r["int_per_mma"] for r in old if (r["layer"], r["config"]) == main]
    assert before == 36.0  # 288 integer SASS for 8 HGMMA (issue 26)
    for version in ("3.6.0", "3.8.0"):
        rows = json.loads((BENCH / "codegen" / f"triton-{version}.json").read_text())["rows"]
        assert all(r["stack"] == 0 for r in rows), [r for r in rows if r["stack"]]
        (now,) = [r["int_per_mma"] for r in rows if (r["layer"], r["config"]) == main]
        assert now <= 0.6 * before, (version, now)
        three = [r for r in rows if " 3x3 " in r["layer"] and not r["layer"].startswith("3->")]
        assert three and all(r["ctas_per_sm"] >= 2 for r in three)


def test_codegen_check_fast_subset_passes() -> None:
    proc = _codegen_check("--fast")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "3 (layer, config) rows" in out and "codegen check: passed" in out


def test_codegen_check_reports_a_config_forced_to_spill(tmp_path: Path) -> None:
    """A register cap makes ptxas spill the 3x3 conv's main config: the check must fail."""
    args = ["--layers", "128->128 3x3 s1 p1 @28", "--configs", "128x128x64 w4 s3"]
    proc = _codegen_check(*args, "--maxnreg", "128", cache=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "REGRESSION 128->128 3x3 s1 p1 @28 [128x128x64 w4 s3]: spills" in out
    assert "CTAs per SM" not in out  # fewer registers: the other metrics did not get worse


def test_codegen_check_reports_a_kernel_without_wgmma(tmp_path: Path) -> None:
    """Triton's DISABLE_MMA_V3 makes it fall back to Ampere's mma.sync: reported as lost wgmma."""
    args = ["--layers", "128->128 3x3 s1 p1 @28", "--configs", "128x128x64 w4 s3"]
    env = {"DISABLE_MMA_V3": "1", "TRITON_CACHE_DIR": str(tmp_path / "triton")}
    proc = _codegen_check(*args, cache=tmp_path, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "REGRESSION 128->128 3x3 s1 p1 @28 [128x128x64 w4 s3]: no wgmma" in out


@pytest.mark.slow
def test_codegen_check_full_sweep_passes() -> None:
    proc = _codegen_check()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "codegen check: passed" in out


def test_time_model_is_the_slower_of_compute_and_memory() -> None:
    """One (layer, config) row by hand: 64->64 3x3 @56 at batch 256 on a 128x64x64 tile."""
    model = _load("time_model")
    ceil = {"matmul_tflops": 800.0, "copy_gbps": 4000.0}
    row = {"layer": "64->64 3x3 s1 p1 @56", "config": "128x64x64 w4 s4", "ctas_per_sm": 2,
           "sass_loop": 200, "sass_mma": 8}  # fmt: skip
    g = model.parse_layer(row["layer"])
    # M = 256·56·56 = 802,816 rows: 6,272 tiles of 128 rows x 1 of 64 columns; 2 CTAs per SM on
    # 132 SMs: 264 slots, 24 waves (23.8); 9 steps (3x3 windows x one 64-channel block).
    mma = 2 * 128 * 64 * 64 / (800e12 / 132)
    issue = 200 / (0.5 * 1.98e9)
    assert issue > mma
    compute = 24 * 2 * 9 * issue
    memory = 2 * (256 * 64 * 56 * 56 * 2 + 64 * 64 * 9) / 4000e9
    t0 = 10e-6
    got = model.predict_row(row, g, beta=0.5, t0=t0, ceil=ceil)
    assert got == pytest.approx(max(compute, memory) + t0)
    # At twice the issue rate the MMA term binds (the step's MACs at the ceiling), still above
    # the memory floor.
    faster = model.predict_row(row, g, beta=1.0, t0=t0, ceil=ceil)
    assert faster == pytest.approx(max(24 * 2 * 9 * max(mma, issue / 2), memory) + t0)
