"""The torchvision specs against torchvision itself: parameter count, layer shapes, MACs.

For every model of tests/torchvision_models.py (its specs/torchvision/ file, or the family spec
that holds its name): archc's parameter total equals torchvision's
``sum(p.numel())``; the output shapes of the conv, pool and linear layers, in order, equal what
forward hooks on torchvision's model record at 224x224 (299x299 for inception_v3); and archc's
MAC total is within 1% of a count made here from those hooks (conv: output elements x
in_channels/groups x kh x kw; linear: output elements x in, which is in x out for a vector and
counts every position of ConvNeXt's channels-last linears). A name no spec builds fails the test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision_models import MODELS, NOT_ON_META, build, input_size

from archc.check import check_spec

HOOKED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Linear)
# Models whose forward pools with a function before the classifier (F.adaptive_avg_pool2d;
# MNASNet's and ShuffleNet's x.mean([2, 3])), not a module.
FUNCTIONAL_POOL = {"mobilenet_v2", "densenet121", "mnasnet1_0", "shufflenet_v2_x1_0"}
# Models whose blocks pool with F.avg_pool2d / F.max_pool2d: the names those blocks start with.
FUNCTIONAL_BLOCK_POOLS = {"inception_v3": "Mixed_"}
ARCHC_OPS = {"conv", "maxpool", "avgpool", "adaptive_avgpool", "global_avgpool", "linear"}


def torchvision_model(name: str) -> nn.Module:
    # On the meta device tensors have shapes but no storage: building VGG and running it at
    # 224x224 costs nothing, and shapes and parameter counts are all this test reads.
    if name in NOT_ON_META:
        return build(name).to("meta").eval()
    with torch.device("meta"):
        return build(name).eval()


def hooked_forward(model: nn.Module, size: int) -> tuple[list[tuple[int, ...]], int]:
    """Output shapes (batch dropped) of conv/pool/linear modules in call order, and their MACs."""
    shapes: list[tuple[int, ...]] = []
    macs = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        shapes.append(tuple(out.shape[1:]))
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += out[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            macs += out[0].numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, HOOKED)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    for h in handles:
        h.remove()
    return shapes, macs


@pytest.fixture(scope="module", params=MODELS)
def pair(request):
    name = request.param
    checked = check_spec(f"torchvision/{name}")  # its file, or the family that holds the name
    assert checked.ok, [f"{d.span}: {d.code} {d.message}" for d in checked.diagnostics]
    assert checked.accounting is not None
    model = torchvision_model(name)
    return name, checked, model, hooked_forward(model, input_size(name))


def test_parameter_count_equals_torchvision(pair):
    name, checked, model, _ = pair
    expected = sum(p.numel() for p in model.parameters())
    assert checked.accounting.totals.params == expected, name


def test_buffer_count_equals_torchvision_running_stats(pair):
    name, checked, model, _ = pair
    # BN running mean and var; torch's num_batches_tracked counters are not activations' stats.
    expected = sum(
        b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")
    )
    assert checked.accounting.totals.buffers == expected, name


def test_layer_shapes_equal_torchvision_hooks(pair):
    name, checked, _, (expected, _) = pair
    # Eval mode, as the hooks ran: the auxiliary classifiers (GoogLeNet's aux1/aux2,
    # Inception-v3's AuxLogits) do not run.
    aux = {a.split(".")[0] for a in checked.graph.aux}
    layers = [
        la
        for la in checked.accounting.layers
        if la.op in ARCHC_OPS and la.name.split(".")[0] not in aux
    ]
    if name in FUNCTIONAL_POOL:
        assert layers[-2].op in ("adaptive_avgpool", "global_avgpool")
        assert layers[-1].op == "linear"
        del layers[-2]  # the pool before the classifier, which the hooks cannot see
    if name in FUNCTIONAL_BLOCK_POOLS:
        block = FUNCTIONAL_BLOCK_POOLS[name]
        layers = [la for la in layers if "pool" not in la.op or not la.name.startswith(block)]
    assert [la.output_shape for la in layers] == expected, name


def test_mac_total_within_one_percent_of_torchvision_hooks(pair):
    name, checked, _, (_, expected) = pair
    assert checked.accounting.totals.macs == pytest.approx(expected, rel=0.01), name
