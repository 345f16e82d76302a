"""What a strict state_dict load and eval outputs cannot see, for every builder of the
EfficientNet (B0-B7, V2), ConvNeXt, MobileNetV3, MNASNet and ShuffleNetV2 family specs: each
BN's eps and momentum (B5-B7's eps 0.001 and momentum 0.01, V2's eps 0.001, MobileNetV3's,
MNASNet's momentum 1 - 0.9997), each dropout's rate, each layer norm's eps, and each stochastic
depth rate (0.2 * index / total in EfficientNet, p * index / (total - 1) in ConvNeXt: the
variant's own block count), module by module against ``torchvision.models.get_model(name,
weights=None)``. Both are built on the meta device."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import archc

BUILDERS = [
    *(f"efficientnet_b{k}" for k in range(8)),
    *(f"efficientnet_v2_{v}" for v in "sml"),
    *(f"convnext_{v}" for v in ("tiny", "small", "base", "large")),
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    *(f"mnasnet{v}" for v in ("0_5", "0_75", "1_0", "1_3")),
    *(f"shufflenet_v2_x{v}" for v in ("0_5", "1_0", "1_5", "2_0")),
]


def settings(model: nn.Module) -> dict[str, tuple[str, float, ...]]:
    found: dict[str, tuple[str, float, ...]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            found[name] = ("bn", m.eps, m.momentum)
        elif isinstance(m, nn.Dropout):
            found[name] = ("dropout", m.p)
        elif isinstance(m, nn.LayerNorm) or type(m).__name__ == "LayerNorm":
            found[name] = ("layer norm", m.eps)
    return found


def stochastic_depth(model: nn.Module) -> dict[str, float]:
    return {n: m.p for n, m in model.named_modules() if type(m).__name__ == "StochasticDepth"}


def used_stochastic_depth(model: nn.Module) -> dict[str, float]:
    """torchvision's rates of the blocks that apply theirs: every CNBlock, and the MBConv and
    FusedMBConv blocks with a residual (the others keep a module they never call)."""
    return {
        f"{n}.stochastic_depth": m.stochastic_depth.p
        for n, m in model.named_modules()
        if hasattr(m, "stochastic_depth") and getattr(m, "use_res_connect", True)
    }


def close(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and all(math.isclose(x, y, rel_tol=1e-12) for x, y in zip(a[1:], b[1:]))


@pytest.mark.parametrize("name", BUILDERS)
def test_family_variant_has_torchvisions_settings(name: str) -> None:
    with torch.device("meta"):
        theirs = torchvision.models.get_model(name, weights=None)
    ours = archc.load(f"torchvision/{name}", device="meta")
    mine, reference = settings(ours), settings(theirs)
    assert sorted(mine) == sorted(reference)
    for key, value in reference.items():
        assert close(mine[key], value), (key, mine[key], value)
    rates, expected = stochastic_depth(ours), used_stochastic_depth(theirs)
    assert sorted(rates) == sorted(expected)
    for key, p in expected.items():
        assert math.isclose(rates[key], p, rel_tol=1e-12, abs_tol=1e-15), (key, rates[key], p)


def test_the_settings_differ_between_variants() -> None:
    """The checks above can fail: the variants really differ in what they compare."""
    with torch.device("meta"):
        b4, b5 = (
            torchvision.models.get_model(n, weights=None)
            for n in ("efficientnet_b4", "efficientnet_b5")
        )
    assert settings(b4)["features.0.1"] == ("bn", 1e-5, 0.1)
    assert settings(b5)["features.0.1"] == ("bn", 1e-3, 0.01)
    ours = archc.load("torchvision/efficientnet_b1", device="meta")
    # B1 has 23 blocks: its last block's rate is 0.2 * 22 / 23, not B0's 0.2 * 22 / 16.
    assert math.isclose(stochastic_depth(ours)["features.7.1.stochastic_depth"], 0.2 * 22 / 23)
    assert settings(ours)["classifier.0"] == ("dropout", 0.2)
    assert settings(archc.load("torchvision/efficientnet_b7", device="meta"))["classifier.0"] == (
        "dropout",
        0.5,
    )
