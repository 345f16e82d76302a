"""Every spec in specs/torchvision/ (of a family spec: the variants MODELS names) is its
torchvision model: the same parameter count, the same
state_dict keys (torchvision's weights load strictly), the same outputs (fp32, CPU, eval, batch 1
at 224, inception_v3 at 299) and the same gradients after a training step (train mode, batch 2 at
64, or the smallest input the network takes where that is more: 75 for inception_v3)."""

from __future__ import annotations

import pytest
import torch
from torchvision_models import MODELS, build, check_directory_covered, input_size, min_size

import archc

PARAMETERS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg16_bn": 138_365_992,
    "googlenet": 6_624_904,
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
    "inception_v3": 23_834_568,
    "shufflenet_v2_x1_0": 2_278_604,
    "convnext_tiny": 28_589_128,
    "efficientnet_b0": 5_288_548,
    "efficientnet_v2_s": 21_458_488,
    "regnet_y_400mf": 4_344_144,
}


def torchvision_model(name: str) -> torch.nn.Module:
    return build(name)


def test_every_spec_in_the_directory_is_checked_here():
    check_directory_covered(MODELS)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_spec_matches_torchvision(name):
    # By its builder name: a file of specs/torchvision/, or a variant of a family spec there.
    spec = f"torchvision/{name}"
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
    size = max(64, min_size(name))
    x = torch.randn(2, 3, size, size)
    y = torch.tensor([3, 7])
    for model in (theirs, ours):
        model.train()
        torch.manual_seed(1)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        torch.optim.SGD(model.parameters(), lr=0.01).step()
    for (key, a), b in zip(theirs.named_parameters(), ours.parameters()):
        assert a.grad is not None and b.grad is not None
        scale = a.grad.abs().max().clamp_min(1e-12)
        assert ((a.grad - b.grad).abs().max() / scale).item() <= 1e-5, key
    for (key, a), b in zip(theirs.state_dict().items(), ours.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=key)


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
