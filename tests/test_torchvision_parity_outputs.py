"""Every spec in specs/torchvision/ (of a family spec: the variants MODELS names) is its
torchvision model: the same parameter count, the same
state_dict keys (torchvision's weights load strictly), the same outputs (fp32, CPU, eval, batch 1
at 224, inception_v3 at 299) and the same gradients after a training step (train mode, batch 2 at
64, or the smallest input the network takes where that is more: 75 for inception_v3)."""

from __future__ import annotations

import pytest
import torch
from torchvision_models import MODELS, build, input_size, min_size, plain_specs, shipped_names

import archc

PARAMETERS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg16_bn": 138_365_992,
    "googlenet": 13_004_888,  # with its auxiliary classifiers (6,624,904 without)
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240,
    "mobilenet_v2": 3_504_872,
    "densenet121": 7_978_856,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "mnasnet1_0": 4_383_312,
    "squeezenet1_0": 1_248_424,
    "inception_v3": 27_161_264,  # with AuxLogits (23,834,568 without)
    "shufflenet_v2_x1_0": 2_278_604,
    "convnext_tiny": 28_589_128,
    "efficientnet_b0": 5_288_548,
    "efficientnet_v2_s": 21_458_488,
    "regnet_y_400mf": 4_344_144,
}


def torchvision_model(name: str) -> torch.nn.Module:
    return build(name)


def test_every_spec_in_the_directory_is_checked_here():
    # A family's members (regnet.arch's fifteen) are tests/test_families.py's; those MODELS
    # names that a family holds now (regnet_y_400mf) are checked here by their builder name.
    assert set(plain_specs()) <= set(MODELS) <= set(shipped_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_spec_matches_torchvision(name):
    spec = f"torchvision/{name}"  # a file of that name, or the family that holds the name
    torch.manual_seed(0)
    theirs = torchvision_model(name).eval()
    # Every tensor of ours is overwritten by the transfer: skip initialising it.
    ours = archc.load(spec, device="meta").to_empty(device="cpu").eval()
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in theirs.parameters()) == PARAMETERS[name]
    for m in theirs.modules():  # running statistics that make eval-mode BN do something
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    size = input_size(name)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = theirs(x)
        actual = ours(x)
    assert actual.shape == expected.shape == (1, 1000)
    err = ((actual - expected).abs().max() / expected.abs().max()).item()
    assert err <= 1e-5, f"relative error {err:.2e}"
    # Training: batch statistics, the same dropout draws (same seed, same order), one SGD step.
    # Inception-v3's auxiliary classifier needs its 299x299 input (a 17x17 map at Mixed_6e).
    size = input_size(name) if name == "inception_v3" else max(64, min_size(name))
    x = torch.randn(2, 3, size, size)
    y = torch.tensor([3, 7])
    for model in (theirs, ours):
        model.train()
        torch.manual_seed(1)
        training_loss(model(x), y).backward()
        torch.optim.SGD(model.parameters(), lr=0.01).step()
    # By name: GoogLeNet's aux classifiers come where they branch off in ours, after
    # inception5b in torchvision's registration order.
    mine = dict(ours.named_parameters())
    for key, a in theirs.named_parameters():
        b = mine[key]
        assert a.grad is not None and b.grad is not None
        scale = a.grad.abs().max().clamp_min(1e-12)
        assert ((a.grad - b.grad).abs().max() / scale).item() <= 1e-5, key
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict()) or name == "googlenet"
    for key, a in theirs.state_dict().items():
        torch.testing.assert_close(state[key], a, rtol=1e-4, atol=1e-6, msg=key)


def training_loss(out: object, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a training-mode output; with auxiliary classifiers (a tuple, main
    first) the main loss + 0.3 x each aux loss, as `archc train` weights them."""
    if isinstance(out, tuple):
        main, *aux = out
        loss = torch.nn.functional.cross_entropy(main, y)
        return loss + sum(0.3 * torch.nn.functional.cross_entropy(a, y) for a in aux)
    assert isinstance(out, torch.Tensor)
    return torch.nn.functional.cross_entropy(out, y)


@pytest.mark.slow
def test_efficientnet_b0_drops_the_same_samples_as_torchvision():
    """Stochastic depth on: with the same seed, the same samples of the same blocks are dropped
    (archc's StochasticDepth draws as torchvision's does, in the same order), so the gradients
    agree. Batch 8 and seed 3 make some blocks drop a sample; the test says so."""
    torch.manual_seed(0)
    theirs = torchvision_model("efficientnet_b0")
    ours = archc.load("torchvision/efficientnet_b0", device="meta").to_empty(device="cpu")
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(8, 3, 32, 32)
    y = torch.arange(8)
    dropped: dict[str, list[int]] = {}
    for tag, model in (("theirs", theirs), ("ours", ours)):
        counts = dropped[tag] = []
        for name, module in model.named_modules():
            if name.endswith("stochastic_depth"):
                module.register_forward_hook(
                    lambda _m, _i, out, c=counts: c.append(int((out.flatten(1) == 0).all(1).sum()))
                )
        model.train()
        torch.manual_seed(3)
        torch.nn.functional.cross_entropy(model(x), y).backward()
    assert dropped["ours"] == dropped["theirs"]
    assert len(dropped["ours"]) == 9 and sum(dropped["ours"]) > 0
    for (key, a), b in zip(theirs.named_parameters(), ours.parameters()):
        scale = a.grad.abs().max().clamp_min(1e-12)
        assert ((a.grad - b.grad).abs().max() / scale).item() <= 1e-5, key
