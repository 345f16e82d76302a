"""The modules archc builds are plain PyTorch to the tools around them: FX and the feature
extractor, TorchScript (script and trace), torch.export, torch.compile, FLOP counters and safe
checkpoints — for ``archc.load`` and for the file ``archc compile`` writes, alike."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import archc
from archc.backends.source import compile_file
from archc.check import check_spec

SPECS = "torchvision"
# Small inputs the networks accept (each pools adaptively before its classifier).
SIZES = {"resnet18": 64, "resnet50": 64, "alexnet": 64, "googlenet": 64, "vgg16": 32}
QUICK = {"resnet18"}  # the rest of the matrix is slow: full-width models, TorchScript, export


def from_load(name: str, tmp_path: Path) -> nn.Module:
    torch.manual_seed(0)
    return archc.load(f"{SPECS}/{name}").eval()


def from_compile(name: str, tmp_path: Path) -> nn.Module:
    """The generated file, imported as a user would, with archc.load's weights."""
    path = tmp_path / f"{name}_generated.py"
    compile_file(f"{SPECS}/{name}", path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    model = getattr(module, name)()
    model.load_state_dict(from_load(name, tmp_path).state_dict(), strict=True)
    return model.eval()


def randomize(model: nn.Module) -> None:
    """He-initialised convs and non-trivial BN statistics: outputs that depend on the input
    (GoogLeNet's torchvision init, std 0.01, leaves them nearly constant)."""
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0, (2 / m.weight[0].numel()) ** 0.5, generator=g)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item())


CASES = [
    pytest.param(name, source, marks=() if name in QUICK and source == "load" else pytest.mark.slow)
    for name in SIZES
    for source in ("load", "compile")
]


@pytest.mark.parametrize(("name", "source"), CASES)
def test_fx_script_trace_and_export(name: str, source: str, tmp_path: Path) -> None:
    model = (from_load if source == "load" else from_compile)(name, tmp_path)
    randomize(model)
    x = torch.randn(2, 3, SIZES[name], SIZES[name])
    with torch.no_grad():
        expected = model(x)
        close(torch.fx.symbolic_trace(model)(x), expected)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit is deprecated, still used
            close(torch.jit.script(model)(x), expected)
            traced = torch.jit.trace(model, x)
        close(traced(x), expected)
        # Nothing is baked in: a BN statistic (a conv bias where there is no BN) changed after
        # tracing is seen when re-traced.
        tensor = next(
            (m.running_mean for m in model.modules() if isinstance(m, nn.BatchNorm2d)),
            next(m.bias for m in model.modules() if isinstance(m, nn.Conv2d)),
        )
        tensor.add_(1.0)
        changed = model(x)
        assert not torch.allclose(changed, expected)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            close(torch.jit.trace(model, x)(x), changed)
        close(torch.export.export(model, (x,)).module()(x), changed)
    if name.startswith("resnet"):
        features = create_feature_extractor(model, {"layer4": "feat"})
        with torch.no_grad():
            feat = features(x)["feat"]
            close(feat, model.layer4(model.layer3(model.layer2(model.layer1(
                model.maxpool(model.relu1(model.bn1(model.conv1(x))))
            )))))  # fmt: skip
        width = 512 if name == "resnet18" else 2048
        assert feat.shape == (2, width, SIZES[name] // 32, SIZES[name] // 32)


def test_torch_compile_of_the_plain_module() -> None:
    model = from_load("resnet18", Path())
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        close(compiled(x), model(x))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) for n in SIZES])
def test_torchinfo_counts_archcs_mult_adds(name: str) -> None:
    torchinfo = pytest.importorskip("torchinfo")
    model = archc.load(f"{SPECS}/{name}", device="meta").to_empty(device="cpu").eval()
    stats = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0, device="cpu")
    macs = check_spec(f"{SPECS}/{name}").accounting.totals.macs
    assert abs(stats.total_mult_adds - macs) <= 0.01 * macs, (stats.total_mult_adds, macs)
    assert stats.total_params == sum(p.numel() for p in model.parameters())


def test_thop_counts_archcs_mult_adds() -> None:
    thop = pytest.importorskip("thop")
    model = archc.load(f"{SPECS}/resnet18").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, params = thop.profile(model, inputs=(torch.randn(1, 3, 224, 224),), verbose=False)
    expected = check_spec(f"{SPECS}/resnet18").accounting.totals.macs
    assert abs(macs - expected) <= 0.01 * expected, (macs, expected)
    assert params == sum(p.numel() for p in model.parameters())


def test_checkpoints_load_safely(tmp_path: Path) -> None:
    model = from_load("resnet18", tmp_path)
    # A state_dict needs nothing beyond torch's own safe types.
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    again = from_load("resnet18", tmp_path)
    again.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True), strict=True)
    # A whole pickled module (of the compiled file, importable as a module) needs its classes.
    compiled = from_compile("resnet18", tmp_path)
    torch.save(compiled, tmp_path / "whole.pt")
    with pytest.raises(Exception, match="weights_only"):
        torch.load(tmp_path / "whole.pt", weights_only=True)
    with torch.serialization.safe_globals(archc.safe_globals(compiled)):
        loaded = torch.load(tmp_path / "whole.pt", weights_only=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        close(loaded(x), compiled(x))
