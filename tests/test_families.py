"""Every one of torchvision's 68 CNN builders is a shipped family spec with a variant.

The reference for each name is ``torchvision.models.get_model(name, weights=None)`` with its
default arguments (GoogLeNet and Inception v3 with their auxiliary classifiers). For every
builder, ``archc.load("torchvision/<name>")`` builds the same parameters under the same keys:
the parameter count equals torchvision's and its state_dict loads strictly (both built on the
meta device, so that a 644 M-parameter RegNet costs nothing). For one variant of every family and
every variant under 100 M parameters, the eval outputs equal torchvision's after its weights are
loaded, with randomised BN statistics (slow).
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
import torchvision
from torchvision.models import regnet

import archc

# The transformer builders are not CNNs; every other classification builder is.
NOT_CNN = re.compile(r"^(vit_|swin_|maxvit_)")
BUILDERS = sorted(
    n for n in torchvision.models.list_models(module=torchvision.models) if not NOT_CNN.match(n)
)
# A builder's family: its name up to the variant (resnet18 -> resnet, regnet_y_8gf -> regnet_y).
FAMILY = re.compile(
    r"^(resnet|resnext|wide_resnet|vgg|densenet|efficientnet_b|efficientnet_v2|mobilenet_v3"
    r"|mobilenet_v2|mnasnet|shufflenet_v2|regnet_x|regnet_y|convnext|squeezenet|alexnet"
    r"|googlenet|inception_v3)"
)


def test_there_are_68_cnn_builders():
    assert len(BUILDERS) == 68
    assert all(FAMILY.match(n) for n in BUILDERS), [n for n in BUILDERS if not FAMILY.match(n)]


def _cpu_block_params(original):
    """RegNet's constructor computes its widths with tensors (``.tolist()``), which the meta
    device cannot: that one computation runs on the CPU, the model is still built on meta."""

    def compute(*args, **kwargs):
        with torch.device("cpu"):
            return original(*args, **kwargs)

    return compute


def torchvision_model(name: str, device: str) -> torch.nn.Module:
    original = regnet.BlockParams.from_init_params
    regnet.BlockParams.from_init_params = staticmethod(_cpu_block_params(original))
    try:
        with torch.device(device), warnings.catch_warnings():
            # GoogLeNet and Inception v3 warn that their default init will change.
            warnings.simplefilter("ignore", FutureWarning)
            return torchvision.models.get_model(name, weights=None)
    finally:
        regnet.BlockParams.from_init_params = original


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_has_torchvisions_parameters_under_its_keys(name):
    theirs = torchvision_model(name, "meta")
    ours = archc.load(f"torchvision/{name}", device="meta")
    assert count(ours) == count(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert mine == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


def _output_builders() -> list[str]:
    """Every builder under 100 M parameters, and the smallest of each family where none is."""
    sizes = {n: count(torchvision_model(n, "meta")) for n in BUILDERS}
    chosen = {n for n in BUILDERS if sizes[n] < 100_000_000}
    for family in {FAMILY.match(n).group(1) for n in BUILDERS}:
        members = [n for n in BUILDERS if FAMILY.match(n).group(1) == family]
        if not chosen.intersection(members):
            chosen.add(min(members, key=sizes.__getitem__))
    return sorted(chosen)


def _input_side(name: str) -> int:
    """64, or the smallest input the network takes where that is more (its weights' metadata)."""
    height, width = torchvision.models.get_model_weights(name).DEFAULT.meta["min_size"]
    return max(64, height, width)


@pytest.mark.slow
@pytest.mark.parametrize("name", _output_builders())
def test_builder_outputs_equal_torchvisions(name):
    torch.manual_seed(0)
    theirs = torchvision_model(name, "cpu").eval()
    for m in theirs.modules():  # running statistics that make eval-mode BN do something
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # Every tensor of ours is overwritten by the transfer: skip initialising it.
    ours = archc.load(f"torchvision/{name}", device="meta").to_empty(device="cpu").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    side = _input_side(name)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        expected = theirs(x)
        actual = ours(x)
    assert actual.shape == expected.shape == (2, 1000)
    err = ((actual - expected).abs().max() / expected.abs().max()).item()
    assert err <= 1e-5, f"relative error {err:.2e}"
