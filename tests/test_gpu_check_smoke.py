"""benchmarks/gpu_check.py end to end at tiny sizes on the CPU (Triton interpreter), the way the
GPU run is started: a subprocess from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_smoke_writes_passing_results(tmp_path: Path) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("ARCHC_KERNELS", None)
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "results.md").read_text()

    # (a) every geometry in every dtype, plus the strict-fp32 checks, all passing.
    corr = results["correctness"]
    geoms = results["geometries"]
    assert len(geoms) >= 8
    assert len(corr) == 3 * len(geoms) + 3
    assert all(e["passed"] and e["nan_free"] for e in corr), [e for e in corr if not e["passed"]]
    worst = {e["dtype"]: e["rel_err"] for e in corr}
    assert worst["float16"] < 1e-2 and worst["bfloat16"] < 1e-2
    assert worst["float32-ieee"] < 1e-5

    # (b) every geometry timed, agreeing with the eager conv+BN+ReLU it is compared with.
    timing = results["timing"]
    assert len(timing) == len(geoms)
    for e in timing:
        assert e["ms_fused"] > 0 and e["ms_eager"] > 0 and e["ms_conv"] > 0
        assert e["agrees_with_cudnn"], e
        assert e["macs"] > 0 and e["bytes"] > 0
        assert "config" in e  # the autotuner's pick (None here: tiny problems skip it)

    # (e) every other epilogue on a 1x1 (+residual) and a 3x3 layer, in three dtypes, passing,
    # with pre-activations on both sides of the knees; each timed against its eager counterpart.
    epi = results["epilogues"]
    acts = {"relu6", "leaky_relu", "silu", "hardswish", "hardsigmoid"}
    assert len(epi["correctness"]) == len(acts) * 2 * 3
    assert {e["activation"] for e in epi["correctness"]} == acts
    assert all(e["passed"] and e["nan_free"] for e in epi["correctness"]), epi["correctness"]
    assert all(e["frac_above_6"] > 0 and e["frac_below_minus_3"] > 0 for e in epi["correctness"])
    assert len(epi["timing"]) == len(acts) * 2
    for e in epi["timing"]:
        assert e["ms_fused"] > 0 and e["ms_fused_relu"] > 0 and e["ms_eager"] > 0
        assert e["agrees_with_cudnn"], e
    assert "## Epilogues" in proc.stdout

    # (d) the report: environment, summary, tables, printed at the end.
    assert results["env"]["interpreter"] is True
    assert results["summary"]["correctness_passed"] == len(corr)
    assert "| geometry | nets | N |" in md
    assert "## Networks (images/s)" in md
    # (c) the network: the plain module, and the fused one on both of its paths, all agreeing.
    (net,) = results["networks"]
    assert net["archc_plain"] > 0 and net["archc_eager"] > 0 and net["archc_triton"] > 0, net
    assert net["fusion_groups"] == 5  # AlexNet's five convs, each with its ReLU
    assert net["archc_plain_vs_torchvision_rel"] < 1e-5
    assert net["archc_triton_vs_eager_rel"] < 1e-3
    assert md.strip().splitlines()[0] in proc.stdout
    # Only the tail of stdout comes back from the GPU machine: the summary must be in it.
    assert "## Summary" in proc.stdout[-2000:]
    assert "## Per-geometry timing" in proc.stdout
