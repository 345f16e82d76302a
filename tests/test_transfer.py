"""archc.transfer_weights: pairs tensors by position, checks every shape first, copies all or
nothing."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from test_torch_module import (
    lecture_graph,
    lecture_reference,
    randomize_bn,
    tiny_resnet_graph,
    torchvision_tiny_resnet,
)
from torch import nn

import archc
from archc.backends.torch_module import build_graph


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_copies_parameters_and_buffers_from_a_module():
    torch.manual_seed(0)
    theirs = torchvision_tiny_resnet()
    randomize_bn(theirs)
    theirs.bn1.num_batches_tracked.fill_(7)
    ours = build_graph(tiny_resnet_graph())
    archc.transfer_weights(theirs, ours)
    assert torch.equal(ours.get_submodule("conv1").weight, theirs.conv1.weight)
    bn = ours.get_submodule("layer3.0.downsample.1")
    assert torch.equal(bn.running_var, theirs.layer3[0].downsample[1].running_var)
    assert torch.equal(ours.get_submodule("fc").bias, theirs.fc.bias)
    assert ours.get_submodule("bn1").num_batches_tracked.item() == 7
    # Copies, not shared storage.
    assert ours.get_submodule("fc").weight.data_ptr() != theirs.fc.weight.data_ptr()


def test_copies_from_a_state_dict_in_insertion_order():
    torch.manual_seed(0)
    theirs = lecture_reference()
    randomize_bn(theirs)
    state = OrderedDict((f"w{i}", v) for i, v in enumerate(theirs.state_dict().values()))
    ours = build_graph(lecture_graph())
    archc.transfer_weights(state, ours)
    assert torch.equal(ours.get_submodule("fc7").weight, theirs[11].weight)
    assert torch.equal(ours.get_submodule("bn1").running_mean, theirs[5].running_mean)


def test_converts_dtype_and_ignores_counters_missing_on_one_side():
    theirs = lecture_reference().double()
    state = {k: v for k, v in theirs.state_dict().items() if "num_batches_tracked" not in k}
    ours = build_graph(lecture_graph())
    ours.get_submodule("bn1").num_batches_tracked.fill_(3)
    archc.transfer_weights(state, ours)
    assert ours.get_submodule("conv1").weight.dtype == torch.float32
    torch.testing.assert_close(ours.get_submodule("conv1").weight, theirs[0].weight.float())
    assert ours.get_submodule("bn1").num_batches_tracked.item() == 3


def test_a_shape_mismatch_names_the_first_differing_pair_and_copies_nothing():
    theirs = torchvision_tiny_resnet(classes=1000)
    ours = build_graph(tiny_resnet_graph(classes=10))
    before = snapshot(ours)
    with pytest.raises(ValueError) as info:
        archc.transfer_weights(theirs, ours)
    assert str(info.value) == (
        "cannot transfer weights: entry 60 differs: source 'fc.weight' (1000, 512) "
        "vs destination 'fc.weight' (10, 512); nothing was copied"
    )
    after = ours.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_count_mismatch_is_reported_at_the_first_missing_entry():
    theirs = torchvision_tiny_resnet()
    ours = build_graph(tiny_resnet_graph())
    state = dict(list(theirs.state_dict().items())[:-1])  # drop fc.bias
    before = snapshot(ours)
    with pytest.raises(ValueError, match=r"entry 61 differs: source '<none>' - vs destination "
                       r"'fc.bias' \(10,\) \(source has 61 tensors, destination 62\)"):  # fmt: skip
        archc.transfer_weights(state, ours)
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())


def test_rejects_what_is_not_a_module_or_state_dict():
    ours = build_graph(lecture_graph())
    with pytest.raises(TypeError, match="source must be a module or a state_dict"):
        archc.transfer_weights([torch.zeros(1)], ours)
    with pytest.raises(TypeError, match="'a' is a int, not a tensor"):
        archc.transfer_weights({"a": 1}, ours)
