"""archc.fuse's linear groups (archc.backends.fuse_linear): ``Linear -> activation`` and
``Linear -> [permute] -> * layer scale -> + residual`` as one oneDNN matmul each on the CPU.

The reference modules are written out here in plain torch; every fused output is compared with
the unfused module's in float64 (the fused module's float32 must be within rounding of it)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archc
from archc.backends.fuse import describe
from archc.backends.fuse_linear import FusedLinear

ONEDNN = torch.backends.mkldnn.is_available()


class MixerBlock(nn.Module):
    """A ConvNeXt block as torchvision writes it: 7x7 depthwise conv, channels last for a layer
    norm and a 4x MLP with GELU, channels first again, a per-channel layer scale, the add."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.rand(dim, 1, 1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(self.norm(y))))
        return self.layer_scale * y.permute(0, 3, 1, 2) + x


def relative_error(out: torch.Tensor, reference: torch.Tensor) -> float:
    diff = (out.double() - reference.double()).abs().max()
    return float(diff / reference.double().abs().max())


def float64_reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import copy

    with torch.no_grad():
        return copy.deepcopy(model).double()(x.double())


def linear_groups(fused: nn.Module) -> dict[str, FusedLinear]:
    return {n: m for n, m in fused.named_modules() if isinstance(m, FusedLinear)}


def test_a_convnext_block_becomes_two_matmuls_with_post_ops_and_agrees() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(MixerBlock(16), MixerBlock(16)).eval()
    x = torch.randn(2, 16, 9, 9)
    fused = archc.fuse(model, example_input=x)
    groups = linear_groups(fused)
    assert fused.linear_groups == len(groups) == 4
    assert sorted(groups) == ["0.fc1", "0.fc2", "1.fc1", "1.fc2"]
    fc1, fc2 = groups["0.fc1"], groups["0.fc2"]
    assert (fc1.activation, fc1.scaled, fc1.channels_first) == ("gelu", False, False)
    assert (fc2.activation, fc2.scaled, fc2.channels_first) == (None, True, True)
    # The scale is folded into the weight and bias: the model's layers times the scale.
    scale = model[0].layer_scale.detach().reshape(-1, 1)
    torch.testing.assert_close(fc2.weight, model[0].fc2.weight * scale)
    torch.testing.assert_close(fc2.bias, model[0].fc2.bias * scale.reshape(-1))
    assert fc1.members == ["0.fc1", "0.act"]
    assert fc2.members[0] == "0.fc2" and len(fc2.members) == 5  # permute, scale, mul, add
    engine = "onednn" if ONEDNN else "eager"
    assert "0.fc2: 0.fc2 -> " in describe(fused) and f"[{engine}]" in describe(fused)
    assert "4 linear -> (scale, + residual | activation) groups" in fused.fusion_summary
    assert "scale folded, output permuted (0, 3, 1, 2)" in repr(fc2)

    reference = float64_reference(model, x)
    with torch.inference_mode():
        out = fused(x)
        plain = model(x)
    assert out.shape == reference.shape
    assert relative_error(out, reference) < 2e-6
    assert relative_error(plain, reference) < 2e-6  # the same rounding level as the plain module


def test_the_eager_fallback_computes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    model = MixerBlock(8).eval()
    x = torch.randn(1, 8, 5, 5)
    fused = archc.fuse(model)
    reference = float64_reference(model, x)
    with torch.inference_mode():
        fast = fused(x)
        monkeypatch.setenv("ARCHC_KERNELS", "eager")
        assert {m.engine for m in linear_groups(fused).values()} == {"eager"}
        slow = fused(x)
    assert relative_error(fast, reference) < 2e-6
    assert relative_error(slow, reference) < 2e-6


ACTIVATIONS = [
    (nn.ReLU(), "relu", lambda y: F.relu(y)),
    (nn.ReLU6(), "relu6", lambda y: F.relu6(y)),
    (nn.LeakyReLU(0.2), "leaky_relu", lambda y: F.leaky_relu(y, 0.2)),
    (nn.SiLU(), "silu", lambda y: y * torch.sigmoid(y)),
    (nn.Hardswish(), "hardswish", lambda y: y * (y + 3).clamp(0, 6) / 6),
    (nn.Hardsigmoid(), "hardsigmoid", lambda y: (y + 3).clamp(0, 6) / 6),
    (nn.GELU(), "gelu", lambda y: 0.5 * y * (1 + torch.erf(y / 2**0.5))),
    (
        nn.GELU(approximate="tanh"),
        "gelu_tanh",
        lambda y: 0.5 * y * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (y + 0.044715 * y**3))),
    ),
]


@pytest.mark.parametrize("module,name,formula", ACTIVATIONS, ids=[a[1] for a in ACTIVATIONS])
def test_a_classifier_linear_takes_its_activation(module, name, formula) -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), module, nn.Linear(32, 10)).eval()
    x = torch.randn(3, 3, 4, 4) * 2
    fused = archc.fuse(model)
    (group,) = linear_groups(fused).values()
    assert (group.activation, group.members) == (name, ["1", "2"])
    if name == "leaky_relu":
        assert group.negative_slope == pytest.approx(0.2)
    # The activation by its formula (float64), not by torch's module.
    with torch.no_grad():
        w1, b1 = model[1].weight.double(), model[1].bias.double()
        hidden = formula(x.double().flatten(1) @ w1.t() + b1)
        reference = hidden @ model[3].weight.double().t() + model[3].bias.double()
    with torch.inference_mode():
        assert relative_error(fused(x), reference) < 2e-6


def test_relu_as_a_function_is_fused_too() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(self.fc(x))

    model = Head().eval()
    fused = archc.fuse(model)
    assert [g.activation for g in linear_groups(fused).values()] == ["relu"]
    x = torch.randn(4, 6)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), F.relu(model.fc(x)))


class Unfusable(nn.Module):
    """Linears that are no group: one called twice, one read twice, one scaled by a computed
    tensor, one scaled by a constant of the wrong shape; and a scale that does fold with a
    residual that broadcasts."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.read_twice = nn.Linear(4, 4)
        self.by_input = nn.Linear(4, 4)
        self.wrong_shape = nn.Linear(4, 4)
        self.scale_wrong = nn.Parameter(torch.rand(2, 4) + 0.5)
        self.broadcast = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.rand(4) + 0.5)
        self.offset = nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.shared(self.shared(x)))
        b = self.read_twice(a)
        b = torch.relu(b) + b
        c = self.by_input(b) * b + b
        d = self.wrong_shape(c) * self.scale_wrong + c
        return self.broadcast(d) * self.scale + self.offset


def test_linears_that_are_no_group_are_left_alone_and_the_broadcast_one_agrees() -> None:
    torch.manual_seed(3)
    model = Unfusable().eval()
    x = torch.randn(2, 4)
    fused = archc.fuse(model)
    groups = linear_groups(fused)
    assert list(groups) == ["broadcast"]
    assert groups["broadcast"].scaled and not groups["broadcast"].channels_first
    for name in ("shared", "read_twice", "by_input", "wrong_shape"):
        assert type(fused.get_submodule(name)) is nn.Linear
    with torch.inference_mode():
        assert relative_error(fused(x), float64_reference(model, x)) < 2e-6


def test_a_weight_changed_in_place_is_used_from_the_next_call() -> None:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval()
    fused = archc.fuse(model)
    x = torch.randn(5, 8)
    (group,) = linear_groups(fused).values()
    with torch.inference_mode():
        before = fused(x)
    with torch.no_grad():
        group.weight.mul_(-1)
    with torch.inference_mode():
        after = fused(x)
        torch.testing.assert_close(after, F.relu(F.linear(x, group.weight, group.bias)))
    assert not torch.equal(before, after)


def test_torchscript_and_fx_see_plain_ops_that_agree() -> None:
    torch.manual_seed(5)
    model = nn.Sequential(MixerBlock(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 6), nn.GELU()).eval()
    x = torch.randn(2, 8, 4, 4)
    fused = archc.fuse(model)
    assert fused.linear_groups == 3
    reference = float64_reference(model, x)
    scripted = torch.jit.script(fused)
    retraced = torch.fx.symbolic_trace(fused)
    code = retraced.code
    assert "mkldnn" not in code
    with torch.inference_mode():
        assert relative_error(scripted(x), reference) < 2e-6
        assert relative_error(retraced(x), reference) < 2e-6


def test_torchvision_convnext_stochastic_depth_is_dropped_in_eval() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(6)
    model = torchvision.models.convnext_tiny(weights=None, stochastic_depth_prob=0.3).eval()
    fused = archc.fuse(model)
    # 18 blocks: the MLP's first linear with GELU, the second with the layer scale and the add.
    assert fused.linear_groups == 36
    assert "stochastic_depth" not in fused.code
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert relative_error(fused(x), model(x)) < 1e-5
