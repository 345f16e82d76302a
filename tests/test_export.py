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


def test_the_check_is_relative_to_the_output_even_when_it_is_tiny(tmp_path):
    # A freshly initialised MobileNetV3 outputs values near 1e-9: against a floor of 1, a file
    # that outputs zeros would have passed. The tolerance follows the output's own magnitude.
    pytest.importorskip("onnxruntime")
    import warnings

    import torch

    from archc.export import Exported, _check, report

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)).eval()
    with torch.no_grad():
        model[1].weight.mul_(1e-9)
        model[1].bias.zero_()
    zeros = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)).eval()
    with torch.no_grad():
        zeros[1].weight.zero_()
        zeros[1].bias.zero_()
    verdicts = []
    for name, exported in (("same", model), ("zeros", zeros)):
        path = tmp_path / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                exported,
                (torch.zeros(1, 3, 2, 2),),
                str(path),
                input_names=["input"],
                dynamic_axes={"input": {0: "batch"}},
                dynamo=False,
            )
        result = _check(
            Exported(path=path, exporter="torchscript", nodes=1, named=0), model, (3, 2, 2)
        )
        assert result.scale < 1e-6  # the output's own magnitude, not 1
        verdicts.append(report(result)[1])
    assert verdicts == [True, False]
