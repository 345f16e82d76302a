"""`archc export`: ONNX that onnxruntime runs to the module's output, at any batch size."""

from __future__ import annotations

import sys

import pytest

from archc.cli import main


def test_export_without_onnx_says_which_extra_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    assert main(["export", "torchvision/resnet18", "-o", str(tmp_path / "r.onnx")]) == 2
    assert "pip install 'archc[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "r.onnx").exists()


@pytest.mark.slow
def test_resnet18_exports_and_onnxruntime_agrees_within_1e_5(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from archc.export import CHECK_BATCH, export_onnx

    target = tmp_path / "resnet18.onnx"
    assert main(["export", "torchvision/resnet18", "-o", str(target)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"wrote {target}: 49 nodes (49 named after spec layers)")
    assert out[0].endswith("dynamic batch, exported with torch.onnx.export(dynamo=True)")
    assert out[1].startswith(f"onnxruntime's output equals the module's at batch {CHECK_BATCH}")

    model = onnx.load(str(target))
    names = [n.name for n in model.graph.node]
    # torchvision's names, as the spec gives them; the conv keeps its name with BN folded in.
    assert names[:4] == ["conv1", "relu1", "maxpool", "layer1.0.conv1"]
    assert {"layer1.0.add1", "layer2.0.downsample.0", "fc"} <= set(names)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": np.zeros((5, 3, 224, 224), np.float32)})
    assert logits.shape == (5, 1000)

    result = export_onnx("torchvision/resnet18", tmp_path / "again.onnx", [])
    assert result.exporter == "dynamo"
    assert result.difference is not None and result.difference <= 1e-5
