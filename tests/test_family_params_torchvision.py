"""The spec params of torchvision's families beyond `variant` are torchvision's keyword arguments:
mobilenet_v2's `width_mult` and the `dropout` of alexnet, vgg, squeezenet and mobilenet_v2. With
a param set, the network is torchvision's builder called with that argument: the same parameter
count under the same keys (strict load), the same dropout probabilities, the same outputs. With
the defaults, the rewritten specs (alexnet, mobilenet_v2) are the networks they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from test_replaced_specs import comparable
from torch import nn

import archc
from archc.frontend import read_spec


def _dropouts(model: nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize("width_mult", ["0.35", "0.5", "0.75", "1.3", "1.4"])
def test_mobilenet_v2_width_mult_is_torchvisions(width_mult: str) -> None:
    with torch.device("meta"):
        theirs = torchvision.models.mobilenet_v2(width_mult=float(width_mult))
    ours = archc.load("torchvision/mobilenet_v2", width_mult=width_mult, device="meta")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    # The last conv widens with width_mult above 1 only: make_divisible(1280 * max(1, w), 8).
    last = 1280 if float(width_mult) <= 1 else {"1.3": 1664, "1.4": 1792}[width_mult]
    assert ours.classifier[1].in_features == theirs.classifier[1].in_features == last


def test_mobilenet_v2_at_half_width_computes_what_torchvision_does() -> None:
    torch.manual_seed(0)
    theirs = torchvision.models.mobilenet_v2(width_mult=0.5).eval()
    for m in theirs.modules():  # running statistics that make eval-mode BN do something
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours = archc.load("torchvision/mobilenet_v2", width_mult=0.5, device="meta")
    ours = ours.to_empty(device="cpu").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, actual = theirs(x), ours(x)
    assert ((actual - expected).abs().max() / expected.abs().max()).item() <= 1e-5


@pytest.mark.parametrize(
    "name, default",
    [("alexnet", 0.5), ("vgg11_bn", 0.5), ("squeezenet1_1", 0.5), ("mobilenet_v2", 0.2)],
)
def test_dropout_is_torchvisions_dropout_argument(name: str, default: float) -> None:
    with torch.device("meta"):
        theirs = torchvision.models.get_model(name, weights=None, dropout=0.3)
        plain = torchvision.models.get_model(name, weights=None)
    assert _dropouts(archc.load(f"torchvision/{name}", device="meta")) == _dropouts(plain)
    assert set(_dropouts(plain)) == {default}
    ours = archc.load(f"torchvision/{name}", dropout=0.3, device="meta")
    assert _dropouts(ours) == _dropouts(theirs) and set(_dropouts(ours)) == {0.3}


# alexnet.arch and mobilenet_v2.arch were rewritten with params (and mobilenet_v2's table 2 as a
# `table` with a `for`); tests/golden/rewritten/ holds their golden IR from before (minus spans,
# origins and file names). With the params' defaults they are the same network, node for node.
REWRITTEN = sorted((Path(__file__).parent / "golden" / "rewritten").glob("*.json"))


@pytest.mark.parametrize("path", REWRITTEN, ids=[p.stem for p in REWRITTEN])
def test_rewritten_spec_with_default_params_has_its_old_ir(path: Path) -> None:
    old = json.loads(path.read_text())
    assert old["family"] == old["spec"] == f"specs/torchvision/{path.stem}.arch"
    result = read_spec(Path(__file__).parents[1] / old["spec"])
    assert result.graph is not None
    now = comparable(json.loads(result.graph.to_json()))
    assert [n["name"] for n in now["nodes"]] == [n["name"] for n in comparable(old["ir"])["nodes"]]
    assert now == comparable(old["ir"])
