"""PyTorch's tools treat archc's modules as they treat torchvision's: TorchScript compiles an FX
trace of one. The reference for every number is the torchvision model with the same weights."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import fx, nn
from torchvision_models import MODELS, build, min_size

import archc

QUICK = {"resnet18", "mobilenet_v3_small"}
"""The fast run's representatives: a residual network, and one with squeeze-and-excitation
gates, hard-swish and dropout."""


def models(name: str) -> tuple[nn.Module, nn.Module]:
    """torchvision's model with eval-mode BN statistics that do something, and archc's with
    its weights (loaded strictly), both in eval mode."""
    torch.manual_seed(0)
    theirs = build(name).eval()
    g = torch.Generator().manual_seed(2)
    for m in theirs.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    ours = archc.load(f"torchvision/{name}", device="meta").to_empty(device="cpu").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def side(name: str) -> int:
    """A small input side the network takes (64, or its weights' minimum where that is more)."""
    return max(64, min_size(name))


@pytest.fixture(
    scope="module",
    params=[pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in MODELS],
)
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    """(name, torchvision's model, archc's): module-scoped, so pytest runs every test of one
    network before it builds the next (neither test changes the models)."""
    return (request.param, *models(request.param))


# --- TorchScript of an FX trace -----------------------------------------------------------------


def test_torchscript_compiles_the_fx_trace(pair: tuple[str, nn.Module, nn.Module]) -> None:
    # The generated classes' annotations are types, not strings (the source is compiled without
    # torch_module.py's `from __future__ import annotations`), so the trace's code names them.
    name, theirs, ours = pair
    x = torch.randn(1, 3, side(name), side(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit is deprecated, still used
        # FX's GraphModule annotates an empty dict in its __init__ (torchvision's trace too).
        warnings.filterwarnings("ignore", "The TorchScript type system", UserWarning)
        scripted = torch.jit.script(fx.symbolic_trace(ours))
    with torch.no_grad():
        expected = theirs(x)
        actual = scripted(x)
    assert actual.shape == expected.shape == (1, 1000)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max())
