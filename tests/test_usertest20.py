"""archc.fuse's linear groups tried as a hostile user would (issue usertest20): models where
fusing the way the first version did changes the answer. Each reference is the plain module
itself (or plain torch written out here); the fused module must agree with it in value, shape
and dtype, and must leave the caller's tensors as the plain module would."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archc
from archc.backends.fuse import describe
from archc.backends.fuse_linear import FusedLinear


def linear_groups(fused: nn.Module) -> dict[str, FusedLinear]:
    return {n: m for n, m in fused.named_modules() if isinstance(m, FusedLinear)}


def same_as_plain(model: nn.Module, x: torch.Tensor, atol: float = 1e-5) -> nn.Module:
    """Fuse ``model`` and check that it answers like the plain module on a copy of ``x``
    (both may mutate their input: each gets its own copy, and the copies must end equal)."""
    model.eval()
    fused = archc.fuse(model)
    with torch.no_grad():
        x_plain, x_fused = x.clone(), x.clone()
        expected = model(x_plain)
        got = fused(x_fused)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, atol=atol, rtol=atol)
    torch.testing.assert_close(x_fused, x_plain, atol=atol, rtol=atol)
    return fused


class AddUnderscoreOnResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.gamma = nn.Parameter(torch.rand(8) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x * 2.0
        r.add_(self.fc(x).mul(self.gamma))
        return r * 3.0


def test_an_add_in_place_into_the_residual_keeps_its_write() -> None:
    # r.add_(...) writes into r, which the model reads afterwards; the call's own result is
    # unread, so the graph must keep it for its effect (and no group may take the add).
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    model = AddUnderscoreOnResidual().eval()
    with torch.no_grad():
        by_hand = 3 * (2 * x + F.linear(x, model.fc.weight, model.fc.bias) * model.gamma)
        torch.testing.assert_close(model(x.clone()), by_hand)
    fused = same_as_plain(model, x)
    assert fused.linear_groups == 0


def test_an_add_in_place_into_the_product_is_still_fused() -> None:
    class ProductInPlace(nn.Module):  # torchvision's CNBlock: result += input
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.gamma = nn.Parameter(torch.rand(8) + 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.gamma * self.fc(x)
            y += x
            return y

    torch.manual_seed(1)
    fused = same_as_plain(ProductInPlace(), torch.randn(3, 8))
    assert fused.linear_groups == 1


class LayerScale(nn.Module):
    def __init__(self, gamma: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(gamma.shape[-1], gamma.shape[-1])
        self.gamma = nn.Parameter(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(x) * self.gamma


def test_a_scale_with_more_dimensions_than_the_output_keeps_the_shape() -> None:
    torch.manual_seed(2)
    # (N, C) * (1, 1, C) is (1, N, C); a 1-D input times (1, C) is (1, C).
    same_as_plain(LayerScale(torch.rand(1, 1, 8) + 0.5), torch.randn(3, 8))
    same_as_plain(LayerScale(torch.rand(1, 8) + 0.5), torch.randn(8))


def test_a_float64_scale_promotes_as_in_the_plain_model() -> None:
    torch.manual_seed(3)
    model = LayerScale(torch.rand(8, dtype=torch.float64) + 0.5)
    same_as_plain(model, torch.randn(2, 5, 8))


def test_a_residual_of_another_dtype_is_added_as_the_plain_model_does() -> None:
    class DoubleResidual(LayerScale):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.double() + self.gamma * self.fc(x)

    torch.manual_seed(4)
    same_as_plain(DoubleResidual(torch.rand(8) + 0.5), torch.randn(4, 8))


def test_a_linear_whose_weight_is_also_read_directly_keeps_its_weight() -> None:
    class Tied(LayerScale):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x + self.gamma * self.fc(x)
            return y + F.linear(x, self.fc.weight, self.fc.bias)

    torch.manual_seed(5)
    same_as_plain(Tied(torch.rand(8) + 0.5), torch.randn(2, 8))


def test_autocast_runs_the_linear_in_the_autocast_dtype() -> None:
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval()
    fused = archc.fuse(model)
    x = torch.randn(3, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(x)
        got = fused(x)
    assert expected.dtype == torch.bfloat16
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected)


def test_weights_loaded_in_inference_mode_are_used() -> None:
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval()
    other = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval()
    x = torch.randn(3, 8)
    with torch.inference_mode():
        fused = archc.fuse(model)
        fused(x)  # lays the weight out for oneDNN
        fused.load_state_dict(other.state_dict())
        got = fused(x)
    torch.testing.assert_close(got, F.relu(F.linear(x, other[0].weight, other[0].bias)))


def test_a_model_on_the_meta_device_runs_its_groups_as_plain_ops() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4)).to("meta").eval()
    fused = archc.fuse(model)
    assert fused.linear_groups == 1
    out = fused(torch.empty(3, 8, device="meta"))
    assert out.device.type == "meta" and out.shape == (3, 4) and out.dtype == torch.float32


class ConvWeightReadTwice(nn.Module):
    """A conv -> BN -> ReLU group whose conv weight the model also reads itself."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.conv(x)))
        return y + F.conv2d(x, self.conv.weight, self.conv.bias, padding=1)


def test_a_conv_whose_weight_is_also_read_directly_keeps_its_weight() -> None:
    torch.manual_seed(8)
    model = ConvWeightReadTwice().eval()
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        c = model.conv
        plain_conv = F.conv2d(x, c.weight, c.bias, padding=1)
        bn = model.bn
        by_hand = F.relu(F.batch_norm(plain_conv, bn.running_mean, bn.running_var, bn.weight,
                                      bn.bias, eps=bn.eps)) + plain_conv  # fmt: skip
        torch.testing.assert_close(model(x), by_hand)
    same_as_plain(model, x)


def test_conv_weights_loaded_in_inference_mode_are_used() -> None:
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()).eval()
    other = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(1, 4, 6, 6)
    with torch.inference_mode():
        fused = archc.fuse(model)
        fused(x)  # lays the weight out for the engine
        fused.load_state_dict(other.state_dict())
        got = fused(x)
    conv = other[0]
    torch.testing.assert_close(got, F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)))


def test_a_weight_replaced_through_data_is_used_from_the_next_call() -> None:
    # `p.data = t` swaps the parameter's storage without touching its version counter.
    torch.manual_seed(10)
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 5), nn.ReLU()
    ).eval()
    fused = archc.fuse(model)
    x = torch.randn(2, 4, 4, 4)
    conv, linear = fused.get_submodule("0"), fused.get_submodule("3")
    with torch.no_grad():
        fused(x)  # lays both weights out for oneDNN
        conv.weight.data = torch.randn(8, 4, 3, 3)
        linear.weight.data = torch.randn(5, 8 * 16)
        hidden = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
        expected = F.relu(F.linear(hidden.flatten(1), linear.weight, linear.bias))
        torch.testing.assert_close(fused(x), expected)


def test_an_input_that_requires_grad_gets_the_plain_models_gradient() -> None:
    # A saliency map through the linear groups: oneDNN's op has no autograd kernel, so the
    # input got no gradient at all (only a warning); the plain ops give the right one.
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 3), nn.ReLU()).eval()
    fused = archc.fuse(model)
    x = torch.randn(4, 8, requires_grad=True)
    first, act, second, _ = model
    h = F.gelu(F.linear(x, first.weight, first.bias))
    expected = torch.autograd.grad(F.relu(F.linear(h, second.weight, second.bias)).sum(), x)[0]
    got = torch.autograd.grad(fused(x).sum(), x)[0]
    torch.testing.assert_close(got, expected)


def conv_then_mlp(seed: int, outputs: int) -> nn.Sequential:
    """A conv group (BN with random variances, ReLU) and two linear groups (ReLU, GELU), on a
    3x5x5 input, in eval mode."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, outputs), nn.GELU(),
    ).eval()  # fmt: skip
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
    return model


def test_layers_with_hooks_are_kept_so_their_hooks_run() -> None:
    # A hook that changes a layer's output, one that records it, and a pre-hook on a BN: a
    # group would replace those layers, and their hooks would silently not run.
    model = conv_then_mlp(seed=12, outputs=8)
    model[1].register_forward_pre_hook(lambda module, args: (args[0] + 1.0,))
    model[4].register_forward_hook(lambda module, args, out: out * 2.0)
    seen: list[torch.Tensor] = []
    model[7].register_forward_hook(lambda module, args, out: seen.append(out))
    x = torch.randn(2, 3, 5, 5)
    conv, bn, lin1, lin2 = model[0], model[1], model[4], model[6]
    with torch.no_grad():
        y = F.conv2d(x, conv.weight, conv.bias) + 1.0
        y = F.relu(F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias))
        y = F.relu(2.0 * F.linear(y.flatten(1), lin1.weight, lin1.bias))
        by_hand = F.gelu(F.linear(y, lin2.weight, lin2.bias))
        torch.testing.assert_close(model(x), by_hand)
    seen.clear()
    same_as_plain(model, x)
    assert len(seen) == 2  # once from the plain model, once from the fused one
    torch.testing.assert_close(seen[1], seen[0])


def test_an_identity_layer_with_a_hook_is_kept() -> None:
    torch.manual_seed(13)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)).eval()
    model[1].register_forward_hook(lambda module, args, out: out - 3.0)
    x = torch.randn(3, 4)
    a, b = model[0], model[2]
    with torch.no_grad():
        by_hand = F.linear(F.linear(x, a.weight, a.bias) - 3.0, b.weight, b.bias)
        torch.testing.assert_close(model(x), by_hand)
    same_as_plain(model, x)


def test_describe_says_a_conv_with_a_hook_was_left_for_its_hook() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU()).eval()
    model[2].register_forward_hook(lambda module, args, out: out + 1.0)
    fused = same_as_plain(model, torch.randn(1, 3, 7, 7))
    lines = describe(fused).splitlines()
    engine = fused.get_submodule("0").engine
    assert lines == [f"0: 0 -> 1 [{engine}]", "2: not fused (it has forward hooks)"]


def test_torch_jit_trace_of_the_fused_module_agrees_after_a_save_and_load(tmp_path) -> None:
    # torch.jit.trace runs the module on real tensors: the groups must hand the tracer ops it
    # can record (oneDNN's pointwise ops take a Scalar?[] list, which the tracer refuses).
    model = conv_then_mlp(seed=14, outputs=3)
    fused = archc.fuse(model)
    assert fused.fusion_groups == 1 and fused.linear_groups == 2
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        traced = torch.jit.trace(fused, x)
        torch.jit.save(traced, str(tmp_path / "fused.pt"))
        loaded = torch.jit.load(str(tmp_path / "fused.pt"))
        other = torch.randn(5, 3, 5, 5)  # another batch size than the one traced
        torch.testing.assert_close(loaded(other), model(other), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(traced(x), model(x), atol=1e-5, rtol=1e-5)


def test_the_torchscript_based_onnx_exporter_gets_plain_ops(tmp_path) -> None:
    # torch.onnx.export(..., dynamo=False) traces with torch.jit: it knows no archc::fused_conv.
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(15)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(36, 8), nn.ReLU()
    ).eval()
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
    fused = archc.fuse(model)
    x = torch.randn(2, 3, 5, 5)
    path = str(tmp_path / "fused.onnx")
    torch.onnx.export(fused, (x,), path, dynamo=False)
    session = ort.InferenceSession(path)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-5, rtol=1e-5)


def test_a_conv_group_gives_the_plain_models_input_gradient() -> None:
    # archc::fused_conv has no autograd kernel: torch.autograd gave the input no gradient (with
    # a warning), torch.func.grad a wrong one. A group whose input wants a gradient runs as
    # plain ops, as the linear groups do.
    torch.manual_seed(16)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
    fused = archc.fuse(model)
    x = torch.randn(1, 3, 6, 6, requires_grad=True)
    conv, bn = model[0], model[1]
    y = F.batch_norm(F.conv2d(x, conv.weight, conv.bias), bn.running_mean, bn.running_var,
                     bn.weight, bn.bias, eps=bn.eps)  # fmt: skip
    expected = torch.autograd.grad(F.relu(y).square().sum(), x)[0]
    got = torch.autograd.grad(fused(x).square().sum(), x)[0]
    torch.testing.assert_close(got, expected)
    by_func = torch.func.grad(lambda t: fused(t).square().sum())(x.detach())
    torch.testing.assert_close(by_func, expected)


def test_a_conv_group_follows_autocast_as_the_plain_model_does() -> None:
    torch.manual_seed(17)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    fused = archc.fuse(model)
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(x)
        got = fused(x)
    conv, bn = model[0], model[1]
    with torch.no_grad():  # in float64: both must be within bfloat16's rounding of it
        y = F.conv2d(x.double(), conv.weight.double(), conv.bias.double())
        exact = F.relu(F.batch_norm(y, bn.running_mean.double(), bn.running_var.double(),
                                    bn.weight.double(), bn.bias.double(), eps=bn.eps))  # fmt: skip
    assert expected.dtype == torch.bfloat16
    assert got.dtype == expected.dtype
    torch.testing.assert_close(got.double(), exact, atol=0.05, rtol=0.02)
