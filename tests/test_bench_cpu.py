"""benchmarks/bench_cpu.py end to end on a tiny configuration: ResNet-18 at 64x64, batch 1, one
round, oneDNN Graph (TorchScript's fuser) included. torch.compile is left out (``--skip
compile``): compiling even ResNet-18 takes 15-30 s on a 2-core CI machine, more than the rest of
the run; the full benchmark exercises that path."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench_cpu():
    pytest.importorskip("onnxruntime")
    spec = importlib.util.spec_from_file_location("bench_cpu", ROOT / "benchmarks" / "bench_cpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_cpu_writes_every_figure_and_ratio(bench_cpu, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["--models", "resnet18", "--batches", "1", "--size", "64"]
    argv += ["--rounds", "1", "--warmup", "1", "--pause-ms", "0", "--skip", "compile"]
    returned = bench_cpu.main([*argv, "--json", str(out)])
    figures = json.loads(out.read_text())
    assert figures == returned

    machine = figures["machine"]
    for key in ("cpu", "logical_cpus", "threads", "python", "torch", "torchvision", "onnxruntime"):
        assert machine[key], key
    assert machine["threads"] >= 1
    settings = figures["settings"]
    assert settings["paths"] == ["torchvision", "archc", "onednn_graph", "onnxruntime"]
    assert (settings["size"], settings["rounds"], settings["tolerance"]) == (64, 1, 1e-4)

    (case,) = figures["results"]
    assert (case["model"], case["spec"], case["batch"]) == ("resnet18", "torchvision/resnet18", 1)
    paths = ["torchvision", "archc", "onednn_graph", "onnxruntime"]
    assert list(case["median_ms"]) == paths
    assert all(len(case["times_ms"][p]) == 1 for p in paths)
    # The medians are those of the per-round times, the ratios those of the medians.
    for p in paths:
        assert case["median_ms"][p] == statistics.median(case["times_ms"][p]) > 0
    med = case["median_ms"]
    assert set(case["ratios"]) == {"torchvision/archc", "onednn_graph/archc", "onnxruntime/archc"}
    for p in ("torchvision", "onednn_graph", "onnxruntime"):
        assert case["ratios"][f"{p}/archc"] == pytest.approx(med[p] / med["archc"], rel=1e-3)
        assert case["per_round_ratios"][f"{p}/archc"] == pytest.approx(
            case["times_ms"][p][0] / case["times_ms"]["archc"][0], rel=1e-3
        )

    # archc's fused module and ORT's graph both fold BN: rounding-level differences only.
    assert case["relative_error"]["archc"] < 1e-5
    assert case["relative_error"]["onnxruntime"] < 1e-4
    assert case["relative_error"]["onednn_graph"] < 1e-4
    assert case["archc_within_tolerance"] is True
    assert set(case["setup_s"]) == {
        "fuse",
        "onnx_export_and_session",
        "onednn_graph_trace_and_first_calls",
    }
    # The benchmark turns TorchScript's oneDNN fuser back off for whatever runs after it.
    assert torch.jit.onednn_fusion_enabled() is False
    assert case["fusion_groups"] == 20  # ResNet-18's convs: the stem, 16 in blocks, 3 shortcuts
