"""The torch backend on graphs built by hand from the IR, against torch/torchvision modules built
the usual way: names and keys, parameter order, outputs, training, initialisation; and
``archc.fuse``, the inference module whose conv -> BN -> (+ residual) -> activation groups are one
op, on the CPU and through the Triton kernel."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

import archc
from archc import ir
from archc.backends.fuse import FusedConv
from archc.backends.torch_module import build_graph
from archc.diagnostics import ArchcError

torchvision_googlenet = sys.modules["torchvision.models.googlenet"]


# --- hand-built graphs (the specs' shapes, without the front end) ---------------------------


class Net:
    """Appends nodes in order; each new node reads the previous one unless told otherwise."""

    def __init__(self, shape: tuple[int, ...], name: str = "Net", init: str = "kaiming"):
        self.name, self.init = name, init
        self.nodes: list[ir.Node] = [ir.Input(name="input", shape=shape)]

    @property
    def last(self) -> str:
        return self.nodes[-1].name

    def add(self, cls: type, name: str, inputs: list[str] | None = None, **fields) -> str:
        self.nodes.append(cls(name=name, inputs=inputs or [self.last], **fields))
        return name

    def conv(self, name: str, c: int, k: int, s: int = 1, p: int = 0, *, src=None, **kw) -> str:
        return self.add(
            ir.Conv, name, src and [src], out_channels=c, kernel=(k, k), stride=(s, s),
            padding=(p, p), **kw,
        )  # fmt: skip

    def conv_bn_relu(self, prefix: str, c: int, k: int, s=1, p=0, *, src=None, eps=1e-5, relu=True):
        self.conv(f"{prefix}conv", c, k, s, p, src=src, bias=False)
        self.add(ir.BatchNorm, f"{prefix}bn", eps=eps)
        if relu:
            self.add(ir.ReLU, f"{prefix}relu")
        return self.last

    def graph(self) -> ir.Graph:
        return ir.Graph(name=self.name, init=self.init, nodes=self.nodes, output=self.last)


def basic_block(net: Net, prefix: str, c: int, stride: int) -> None:
    src = net.last
    net.conv(f"{prefix}.conv1", c, 3, stride, 1, bias=False)
    net.add(ir.BatchNorm, f"{prefix}.bn1")
    net.add(ir.ReLU, f"{prefix}.relu1")
    net.conv(f"{prefix}.conv2", c, 3, 1, 1, bias=False)
    bn2 = net.add(ir.BatchNorm, f"{prefix}.bn2")
    shortcut = net.add(ir.Shortcut, f"{prefix}.downsample", [src])
    net.add(ir.Add, f"{prefix}.add", [bn2, shortcut])
    net.add(ir.ReLU, f"{prefix}.relu2")


def tiny_resnet_graph(size=32, classes=10, widths=(64, 128, 256, 512)) -> ir.Graph:
    """torchvision's ResNet(BasicBlock, [1, 1, 1, 1]) with ``classes`` outputs."""
    net = Net((3, size, size), "TinyResNet")
    net.conv("conv1", widths[0], 7, 2, 3, bias=False)
    net.add(ir.BatchNorm, "bn1")
    net.add(ir.ReLU, "relu")
    net.add(ir.MaxPool, "maxpool", kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    for i, c in enumerate(widths):
        basic_block(net, f"layer{i + 1}.0", c, 1 if i == 0 else 2)
    net.add(ir.AdaptiveAvgPool, "avgpool", output_size=(1, 1))
    net.add(ir.Linear, "fc", out_features=classes)
    return net.graph()


def torchvision_tiny_resnet(classes: int = 10) -> nn.Module:
    return tv_resnet.ResNet(tv_resnet.BasicBlock, [1, 1, 1, 1], num_classes=classes)


def inception_graph() -> ir.Graph:
    """torchvision's Inception(192, 64, 96, 128, 16, 32, 32) on a 12x12 map."""
    net = Net((192, 12, 12), "Inception")
    x = net.last
    ends = []
    net.conv_bn_relu("branch1.", 64, 1, src=x, eps=1e-3)
    ends.append(net.last)
    net.conv_bn_relu("branch2.0.", 96, 1, src=x, eps=1e-3)
    ends.append(net.conv_bn_relu("branch2.1.", 128, 3, p=1, eps=1e-3))
    net.conv_bn_relu("branch3.0.", 16, 1, src=x, eps=1e-3)
    ends.append(net.conv_bn_relu("branch3.1.", 32, 3, p=1, eps=1e-3))
    pool = (3, 3), (1, 1), (1, 1)
    net.add(ir.MaxPool, "branch4.0", [x], kernel=pool[0], stride=pool[1], padding=pool[2],
            ceil_mode=True)  # fmt: skip
    ends.append(net.conv_bn_relu("branch4.1.", 32, 1, eps=1e-3))
    net.add(ir.Concat, "concat", ends)
    return net.graph()


def lecture_graph(init: str = "kaiming") -> ir.Graph:
    """An AlexNet-flavoured stack: LRN, overlapping ceil-mode pools, FC on a map, dropout,
    softmax -- every op the backend has besides conv/BN/add/concat."""
    net = Net((3, 35, 35), "Lecture", init)
    net.conv("conv1", 16, 5, 2, 0)
    net.add(ir.ReLU, "relu1")
    net.add(ir.LRN, "norm1", size=5, alpha=1e-4, beta=0.75, k=2.0)
    net.add(ir.MaxPool, "pool1", kernel=(3, 3), stride=(2, 2), ceil_mode=True)
    net.add(ir.AvgPool, "pool2", kernel=(3, 3), stride=(1, 1), padding=(1, 1),
            count_include_pad=False)  # fmt: skip
    net.add(ir.BatchNorm, "bn1")
    net.add(ir.ReLU, "relu2")
    net.add(ir.Linear, "fc6", out_features=32)
    net.add(ir.ReLU, "relu6")
    net.add(ir.Dropout, "drop6", p=0.5)
    net.add(ir.Linear, "fc7", out_features=10)
    net.add(ir.Softmax, "prob")
    return net.graph()


def lecture_reference() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, 2),
        nn.ReLU(),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.AvgPool2d(3, 1, 1, count_include_pad=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 32),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(32, 10),
        nn.Softmax(dim=1),
    )


def randomize_bn(model: nn.Module) -> None:
    """Non-trivial running statistics, so that eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    err = ((actual - expected).abs().max() / expected.abs().max()).item()
    assert err <= rel, f"relative error {err:.2e} > {rel:.0e}"


# --- structure -------------------------------------------------------------------------------


def test_state_dict_keys_are_the_node_names_and_torchvisions():
    model = build_graph(tiny_resnet_graph())
    keys = list(model.state_dict())
    assert keys[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert "layer2.0.downsample.1.running_var" in keys
    assert "layer1.0.downsample.0.weight" not in keys  # an identity shortcut has no module
    assert keys == list(torchvision_tiny_resnet().state_dict())
    assert type(model.get_submodule("layer2.0.conv2")) is nn.Conv2d
    assert type(model.get_submodule("layer2.0.downsample")) is nn.Sequential


def test_parameters_pair_with_torchvision_in_order_and_shape():
    ours = build_graph(tiny_resnet_graph())
    theirs = torchvision_tiny_resnet()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert sum(p.numel() for p in ours.parameters()) == 4_910_922


def test_print_reads_like_the_spec():
    text = str(build_graph(lecture_graph()))
    assert text.startswith("Lecture(\n  (conv1): Conv2d(3, 16, kernel_size=(5, 5), stride=(2, 2))")
    assert "(norm1): LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=2.0)" in text
    assert "(relu2): ReLU(inplace=True)" in text  # after a BN nobody else reads
    assert "(prob): Softmax(dim=1)" in text


def test_a_layer_name_that_shadows_a_module_attribute_is_a_diagnostic():
    net = Net((3, 8, 8))
    net.conv("forward", 4, 3)
    with pytest.raises(ArchcError) as info:
        build_graph(net.graph())
    (d,) = info.value.diagnostics
    assert d.code == "E501"
    assert "'forward'" in d.message


# --- outputs against torch -------------------------------------------------------------------


def test_tiny_resnet_matches_torchvision_resnet_after_transfer():
    torch.manual_seed(0)
    theirs = torchvision_tiny_resnet().eval()
    randomize_bn(theirs)
    ours = build_graph(tiny_resnet_graph()).eval()
    archc.transfer_weights(theirs, ours)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert_close(ours(x), theirs(x))


def test_inception_matches_torchvision_inception():
    torch.manual_seed(0)
    theirs = torchvision_googlenet.Inception(192, 64, 96, 128, 16, 32, 32).eval()
    randomize_bn(theirs)
    ours = build_graph(inception_graph()).eval()
    archc.transfer_weights(theirs, ours)
    x = torch.randn(2, 192, 12, 12)
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (2, 256, 12, 12)
        assert_close(out, theirs(x))


def test_lecture_ops_match_torch_layers():
    torch.manual_seed(0)
    theirs = lecture_reference().eval()
    randomize_bn(theirs)
    ours = build_graph(lecture_graph()).eval()
    archc.transfer_weights(theirs, ours)
    x = torch.randn(3, 3, 35, 35)
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (3, 10)
        assert_close(out, theirs(x))
        torch.testing.assert_close(out.sum(1), torch.ones(3))


def test_device_and_dtype_reach_every_parameter():
    model = build_graph(lecture_graph(), dtype=torch.float64)
    assert {p.dtype for p in model.state_dict().values() if p.is_floating_point()} == {
        torch.float64
    }
    assert model(torch.randn(1, 3, 35, 35, dtype=torch.float64)).dtype == torch.float64


def test_forward_is_straight_line_plain_pytorch():
    # Every module is a torch.nn layer or a container of them; FX sees one call per layer.
    model = build_graph(tiny_resnet_graph())
    own = {type(m).__module__ for m in model.modules()}
    assert all(m.startswith(("torch.nn.modules", "archc.generated")) for m in own)
    traced = torch.fx.symbolic_trace(model)
    calls = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    assert calls[:4] == ["conv1", "bn1", "relu", "maxpool"]
    # 12 convs, 12 BNs, 9 ReLUs (the stem's, two per block), max pool, avg pool, fc.
    assert "layer2.0.downsample.0" in calls and len(calls) == 12 + 12 + 9 + 3


# --- training --------------------------------------------------------------------------------


def test_train_mode_uses_batch_statistics_dropout_and_backward():
    torch.manual_seed(0)
    model = build_graph(lecture_graph())
    bn = model.get_submodule("bn1")
    x = torch.randn(8, 3, 35, 35)
    out = model(x)
    assert bn.num_batches_tracked.item() == 1
    assert bn.running_mean.abs().sum() > 0
    out[:, 0].sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert model.get_submodule("conv1").weight.grad.abs().sum() > 0
    # Dropout is active: two training passes differ, eval passes agree.
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_the_plain_module_trains_like_torchvision():
    torch.manual_seed(0)
    theirs = torchvision_tiny_resnet()
    ours = build_graph(tiny_resnet_graph())
    archc.transfer_weights(theirs, ours)
    x = torch.randn(4, 3, 32, 32)
    ours(x).square().mean().backward()
    theirs(x).square().mean().backward()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    for a, b in zip(ours.buffers(), theirs.buffers()):
        torch.testing.assert_close(a, b.to(a.dtype))


# --- initialisation --------------------------------------------------------------------------


def _weights(model: nn.Module, kind: type) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if type(m) is kind or isinstance(m, kind)]


def test_kaiming_init_is_he_normal_fan_out_and_deterministic():
    torch.manual_seed(0)
    a = build_graph(tiny_resnet_graph())
    torch.manual_seed(0)
    b = build_graph(tiny_resnet_graph())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    w = a.get_submodule("layer4.0.conv2").weight  # 512 x 512 x 3 x 3
    expected = (2 / (512 * 9)) ** 0.5
    assert abs(w.std().item() / expected - 1) < 0.02
    bn = a.get_submodule("layer4.0.bn2")
    assert torch.equal(bn.weight, torch.ones(512)) and torch.equal(bn.bias, torch.zeros(512))
    fc = a.get_submodule("fc")
    assert abs(fc.weight.std().item() / 0.01 - 1) < 0.05
    assert torch.equal(fc.bias, torch.zeros(10))


def test_xavier_init_is_uniform_in_the_glorot_bound():
    torch.manual_seed(0)
    model = build_graph(lecture_graph("xavier"))
    fc6 = model.get_submodule("fc6")
    bound = (6 / (1024 + 32)) ** 0.5
    assert fc6.weight.abs().max().item() <= bound
    assert fc6.weight.abs().max().item() > 0.95 * bound
    assert torch.equal(fc6.bias, torch.zeros(32))
    assert torch.equal(model.get_submodule("conv1").bias, torch.zeros(16))


def test_torchvision_init_follows_the_family():
    torch.manual_seed(0)
    graph = tiny_resnet_graph().model_copy(update={"init": "torchvision"})
    resnet = build_graph(graph)
    # ResNet keeps nn.Linear's default init: uniform within 1/sqrt(fan_in), bias nonzero.
    fc = resnet.get_submodule("fc")
    assert fc.weight.abs().max().item() <= 512**-0.5
    assert fc.bias.abs().sum() > 0
    inception = build_graph(inception_graph().model_copy(update={"init": "torchvision"}))
    w = inception.get_submodule("branch2.1.conv").weight
    assert abs(w.std().item() / 0.01 - 1) < 0.05
    # ConvNeXt: convs and linears truncated normal with std 0.02, biases 0 (torchvision's
    # ConvNeXt.__init__); ShuffleNetV2: PyTorch's defaults, uniform within 1/sqrt(fan_in).
    convnext = archc.load("torchvision/convnext_tiny")
    fc1 = convnext.get_submodule("features.5.0.block.3")
    assert abs(fc1.weight.std().item() / 0.02 - 1) < 0.05
    assert torch.equal(fc1.bias, torch.zeros(1536))
    assert bool((convnext.get_parameter("features.5.0.layer_scale") == 1e-6).all())
    shufflenet = archc.load("torchvision/shufflenet_v2_x1_0")
    conv = shufflenet.get_submodule("stage3.0.branch2.0")  # 1x1, 116 -> 116
    bound = 116**-0.5
    assert conv.weight.abs().max().item() <= bound
    assert abs(conv.weight.std().item() / (bound / 3**0.5) - 1) < 0.05


# --- archc.fuse: the inference module ----------------------------------------------------------

needs_kernels = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed"
)
under_triton = pytest.mark.skipif(
    torch.cuda.is_available() is False and os.environ.get("TRITON_INTERPRET") != "1",
    reason="no GPU and not under the Triton interpreter",
)


def test_fuse_folds_each_group_once_and_agrees_with_the_plain_module():
    torch.manual_seed(0)
    model = build_graph(tiny_resnet_graph(), dtype=torch.float64).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    # The stem, 4 blocks of 2 convs, 3 projections; each block's second conv takes the add.
    assert fused.fusion_groups == 1 + 4 * 2 + 3
    summary = "archc.fuse: 12 conv -> BN -> (+ residual) -> activation groups"
    assert fused.fusion_summary.startswith(summary)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    groups = {n: m for n, m in fused.named_modules() if isinstance(m, FusedConv)}
    assert groups["layer1.0.conv2"].activation == "relu"
    assert groups["layer2.0.downsample.0"].activation is None
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert_close(fused(x), model(x), rel=1e-12)  # float64: the fold is exact up to rounding
    # fp32 as the GPU benchmark runs it
    model32 = build_graph(tiny_resnet_graph()).eval()
    model32.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert_close(archc.fuse(model32)(x.float()), model32(x.float()), rel=1e-5)


def test_fuse_leaves_the_model_alone_and_refuses_training_mode():
    model = build_graph(tiny_resnet_graph(16, 10, (8, 8, 8, 8)))
    with pytest.raises(ValueError, match="eval mode"):
        archc.fuse(model)
    model.eval()
    archc.fuse(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # unchanged


def test_the_fused_module_traces_exports_and_compiles_with_one_op_per_group():
    torch.manual_seed(0)
    model = build_graph(tiny_resnet_graph(16, 10, (8, 8, 8, 8))).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    x = torch.randn(2, 3, 16, 16)
    expected = fused(x)
    traced = torch.fx.symbolic_trace(fused)
    assert_close(traced(x), expected)
    exported = torch.export.export(fused, (x,))
    ops = [n.target for n in exported.graph.nodes if n.op == "call_function"]
    # The stem, 4 blocks of 2 convs, and 2 projections: at this size layer4 maps 1x1 to 1x1 with
    # equal widths, so its shortcut is the identity.
    assert ops.count(torch.ops.archc.fused_conv.default) == fused.fusion_groups == 1 + 8 + 2
    assert not [op for op in ops if "batch_norm" in str(op) or "convolution" in str(op)]
    assert_close(exported.module()(x), expected)


# --- archc.fuse on the CPU: oneDNN, layouts, in-place residuals ------------------------------


def tiny_fused(dtype=torch.float32):
    torch.manual_seed(0)
    model = build_graph(tiny_resnet_graph(16, 10, (8, 16, 32, 32)), dtype=dtype).eval()
    randomize_bn(model)
    return model, archc.fuse(model)


def test_on_the_cpu_every_fp32_group_runs_on_onednn_and_agrees_with_the_plain_module():
    from archc.backends.fuse import describe

    model, fused = tiny_fused()
    groups = [m for m in fused.modules() if isinstance(m, FusedConv)]
    assert len(groups) == 11 and {g.engine for g in groups} == {"onednn"}
    assert "(engines: 11 onednn)" in fused.fusion_summary
    assert "engine=onednn" in repr(fused.get_submodule("layer2.0.conv2"))
    lines = describe(fused).splitlines()
    assert len(lines) == 11
    assert "layer1.0.conv2: layer1.0.conv2 -> layer1.0.bn2 -> add" in lines[2]
    assert lines[2].endswith("-> layer1.0.relu2 [onednn]")
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        assert_close(fused(x), expected, rel=1e-5)
        # the op itself (what tracers and compilers call) takes the same engine
        assert_close(torch.fx.symbolic_trace(fused)(x), expected, rel=1e-5)
    # float64 has no oneDNN convolution: the same groups run the folded conv2d
    _, fused64 = tiny_fused(torch.float64)
    assert {g.engine for g in fused64.modules() if isinstance(g, FusedConv)} == {"eager"}


def test_the_fused_module_takes_either_layout_and_gives_back_the_callers(monkeypatch):
    from archc.backends.fuse import _in_callers_layout, _to_channels_last

    x = torch.randn(2, 4, 5, 6)
    assert _to_channels_last(x).is_contiguous(memory_format=torch.channels_last)
    y = _to_channels_last(torch.randn(2, 4, 3, 3))
    assert _in_callers_layout(y, x).is_contiguous()  # a feature map back in NCHW
    cl = x.contiguous(memory_format=torch.channels_last)
    assert _in_callers_layout(y, cl) is y  # a channels_last caller keeps channels_last
    logits = torch.randn(2, 10)
    assert _in_callers_layout(logits, x) is logits
    # The whole module, on a feature extractor (no pooling head), on every engine.
    spec = "input [16x16x3]\nconv: bn, relu\nCONV 8 3x3 pad 1\nCONV 8 3x3 stride 2 pad 1\n"
    model = archc.load(spec).eval()
    randomize_bn(model)
    for mode in ("auto", "eager"):
        monkeypatch.setenv("ARCHC_KERNELS", mode)
        fused = archc.fuse(model)
        with torch.no_grad():
            for inp in (torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16).to(
                memory_format=torch.channels_last
            )):  # fmt: skip
                out = fused(inp)
                assert out.shape == (2, 8, 8, 8)
                channels_last = inp.is_contiguous(memory_format=torch.channels_last)
                assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
                assert out.is_contiguous() != channels_last
                assert_close(out, model(inp), rel=1e-5)


class SharedResidual(nn.Module):
    """Two groups add the same tensor ``s``: the first must leave it alone for the second."""

    def __init__(self) -> None:
        super().__init__()
        for i in range(1, 5):
            self.add_module(f"conv{i}", nn.Conv2d(8, 8, 3, padding=1, bias=False))
            self.add_module(f"bn{i}", nn.BatchNorm2d(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.bn1(self.conv1(x)))
        t = torch.relu(self.bn4(self.conv4(x)))
        a = self.bn2(self.conv2(t)) + s
        return self.bn3(self.conv3(a)) + s


def test_a_group_writes_into_its_residual_only_when_no_one_reads_it_later():
    model, fused = tiny_fused()
    accumulating = {n for n, m in fused.named_modules() if getattr(m, "accumulate", False)}
    # layer2-4's first blocks add their projection's output, read by no one else; layer1.0 adds
    # the max pool's output (not a group's, so not archc's to overwrite).
    assert accumulating == {"layer2.0.conv2", "layer3.0.conv2", "layer4.0.conv2"}
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert_close(fused(x), model(x), rel=1e-5)
        assert_close(fused(x), model(x), rel=1e-5)  # twice: nothing kept from the first call
    # s is added twice: only its last reader may write into it.
    torch.manual_seed(0)
    plain = SharedResidual().eval()
    randomize_bn(plain)
    f = archc.fuse(plain)
    assert f.fusion_groups == 4
    assert [n for n, m in f.named_modules() if getattr(m, "accumulate", False)] == ["conv3"]
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        assert_close(f(x), plain(x), rel=1e-5)
        f.get_submodule("conv2").accumulate = True  # what the rule prevents: s overwritten early
        assert ((f(x) - plain(x)).abs().max() / plain(x).abs().max()).item() > 1e-2


def test_fuse_drops_layers_that_are_the_identity_in_eval_mode():
    spec = "input [8x8x3]\nconv: bn, relu\nCONV 8 3x3 pad 1\nGAP\ndropout 0.5\nFC 4\n"
    torch.manual_seed(0)
    model = archc.load(spec).eval()
    randomize_bn(model)
    assert any(isinstance(m, nn.Dropout) for m in model.modules())
    fused = archc.fuse(model)
    assert not any(isinstance(m, nn.Dropout) for m in fused.modules())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert_close(fused(x), model(x), rel=1e-5)


@pytest.mark.parametrize("activation", [None, "silu", "hardsigmoid"])
def test_a_1x1_conv_on_a_1x1_map_runs_as_a_gemm_and_agrees(activation, monkeypatch):
    """Squeeze-excite convs: the CPU engine does them as one matrix product (not a convolution
    call, which costs ~30 us whatever the size), bias, residual and activation included."""
    from archc.backends import fuse as engine

    torch.manual_seed(0)
    conv, bn = nn.Conv2d(24, 40, 1), nn.BatchNorm2d(40)
    randomize_bn(bn)
    group = FusedConv(conv, bn.eval(), activation)
    x = torch.randn(3, 24, 1, 1)
    residual = torch.randn(3, 40, 1, 1)
    reference = bn(conv(x)) + residual
    if activation is not None:
        reference = engine._EAGER_ACTIVATIONS[activation](reference, 0.0)
    calls = []
    real = engine._run_gemm
    monkeypatch.setattr(engine, "_run_gemm", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        y = group(x, residual)
    assert calls == [1] and y.shape == (3, 40, 1, 1)
    assert_close(y, reference.detach(), rel=1e-5)


def test_fuse_leaves_the_callers_layers_trainable():
    model, fused = tiny_fused()
    assert all(p.requires_grad for p in model.parameters())  # fc too, which fuse does not fold
    assert not any(p.requires_grad for p in fused.parameters())
    assert fused.fc is not model.fc


def test_kernel_choice_follows_the_environment(monkeypatch):
    from archc.backends.fuse import engine

    x = torch.randn(1, 3, 8, 8)
    monkeypatch.setenv("ARCHC_KERNELS", "eager")
    assert engine(x) == "eager"
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    assert engine(x) == "triton"
    assert engine(x, groups=3) == engine(x, dilation=[2, 2]) == "eager"  # no grouped kernel
    monkeypatch.setenv("ARCHC_KERNELS", "auto")
    assert engine(x) == "onednn"  # a CPU input
    assert engine(x.double()) == "eager"  # oneDNN has no float64 convolution
    monkeypatch.setenv("ARCHC_KERNELS", "fast")
    with pytest.raises(ValueError, match="ARCHC_KERNELS"):
        engine(x)


@needs_kernels
@under_triton
def test_triton_path_matches_eager_on_a_small_resnet(monkeypatch):
    from archc import kernels

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tol = 1e-4 if device == "cpu" else 1e-3
    # Full fp32 products: with TF32 (cuDNN's default) the kernel rounds operands (~3e-4 off).
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    # Narrow, so that the interpreter is quick; 32 channels reach the channel-blocked kernel.
    model = build_graph(tiny_resnet_graph(16, 10, (8, 16, 32, 32)), device=device).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    calls = []
    real = kernels.fused_conv2d

    def counting(*args, **kwargs):
        calls.append(kwargs.get("residual") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "fused_conv2d", counting)
    x = torch.randn(1, 3, 16, 16, device=device)
    with torch.no_grad():
        monkeypatch.setenv("ARCHC_KERNELS", "eager")
        expected = fused(x)
        assert calls == []
        monkeypatch.setenv("ARCHC_KERNELS", "triton")
        actual = fused(x)
    # The stem, 4 blocks of 2 convs, 2 projections (layer4's 1x1 map and equal widths keep the
    # identity); each block's second conv takes the residual.
    assert len(calls) == 1 + 8 + 2 and sum(calls) == 4
    assert_close(actual, expected, rel=tol)
    assert_close(actual, model(x), rel=tol)


def run_fused_counting_kernels(monkeypatch, spec: str, shape: tuple[int, ...], scale=1.0):
    """A spec (a shipped spec's name or text), loaded with random BN statistics and fused; both
    run with the Triton kernels on one random input of ``shape`` times ``scale``. Returns (plain
    output, fused output, the fused module, (residual?, activation) of every kernel call)."""
    from archc import kernels

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = archc.load(spec, device=device).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    calls = []
    real = kernels.fused_conv2d

    def counting(*args, **kwargs):
        calls.append((kwargs.get("residual") is not None, kwargs.get("activation")))
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "fused_conv2d", counting)
    x = torch.randn(*shape, device=device) * scale
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    with torch.no_grad():
        return model(x), fused(x), fused, calls


@needs_kernels
@pytest.mark.slow
@under_triton
def test_fused_resnet18_runs_every_conv_as_one_kernel_and_matches_the_plain_model(monkeypatch):
    # The interpreter's cost is per program and loop step, not per pixel: a small input keeps
    # every layer (down to layer4's 1x1 maps) and the test's time in check.
    expected, actual, _, calls = run_fused_counting_kernels(
        monkeypatch, "torchvision/resnet18", (1, 3, 16, 16)
    )
    # ResNet-18: the stem, 8 basic blocks of 2 convs, 3 projection shortcuts; each block's
    # second conv takes the residual add.
    assert len(calls) == 1 + 8 * 2 + 3
    assert sum(residual for residual, _ in calls) == 8
    assert_close(actual, expected, rel=1e-4 if actual.device.type == "cpu" else 1e-3)


# --- archc.load --------------------------------------------------------------------------------

SPEC = """network Small
input [16x16x3]
conv: bn, relu
conv1: 8 3x3 pad 1 no bias
MAX POOL: 2x2
GAP
FC: 4
"""


def test_load_takes_spec_text_or_a_path(tmp_path):
    torch.manual_seed(0)
    from_text = archc.load(SPEC)
    path = tmp_path / "small.arch"
    path.write_text(SPEC)
    torch.manual_seed(0)
    from_path = archc.load(str(path))
    for (k1, v1), (k2, v2) in zip(from_text.state_dict().items(), from_path.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert list(from_text.state_dict())[:2] == ["conv1.weight", "bn1.weight"]
    assert from_text(torch.randn(2, 3, 16, 16)).shape == (2, 4)
    assert str(from_text).startswith("Small(")


def test_load_raises_the_diagnostics_of_a_broken_spec(tmp_path):
    with pytest.raises(ArchcError) as info:
        archc.load(SPEC.replace("MAX POOL: 2x2", "MAX POOL: 2x2 -> [7x7x8]"))
    assert [d.code for d in info.value.diagnostics] == ["E302"]
    assert "<string>:5:" in str(info.value)
    with pytest.raises(ArchcError) as info:
        archc.load(tmp_path / "missing.arch")
    assert info.value.diagnostics[0].severity == "error"


@needs_kernels
@pytest.mark.slow
@under_triton
def test_fused_resnet50_under_the_kernels_equals_the_plain_model(monkeypatch):
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = archc.load("torchvision/resnet50", device=device).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    assert fused.fusion_groups == 53  # every conv: 1 + 16 blocks x 3 + 4 projections
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    x = torch.randn(1, 3, 32, 32, device=device)
    with torch.no_grad():
        assert_close(fused(x), model(x), rel=1e-4)


# --- archc.fuse with the kernel's other epilogues, and depthwise convs left to PyTorch ----------

# A MobileNetV2-like spec: a stem, an inverted residual (1x1 expansion, 3x3 depthwise, linear 1x1
# projection, add) and a basic block whose add is followed by the activation, torchvision's
# act(bn(conv(x)) + identity), then a 1x1 conv and the head.
MINI_MOBILENET = """network mini
input [12x12x8]
conv: bn, {act}
CONV 16 3x3 stride 2 pad 1
residual:
    CONV 48 1x1
    CONV 48 3x3 pad 1 depthwise
    CONV 16 1x1 no relu
add
residual:
    CONV 16 3x3 pad 1
    CONV 16 3x3 pad 1 no relu
add, {act}
CONV 24 1x1
GAP
FC 4
"""
# spec word -> (the kernel's epilogue or None, the generated names' prefix, torch.nn class)
EPILOGUE_SPECS = {
    "relu": ("relu", "relu", nn.ReLU),
    "relu6": ("relu6", "relu", nn.ReLU6),
    "silu": ("silu", "silu", nn.SiLU),
    "hardswish": ("hardswish", "hardswish", nn.Hardswish),
    "hardsigmoid": ("hardsigmoid", "hardsigmoid", nn.Hardsigmoid),
    "gelu": (None, "gelu", nn.GELU),  # no epilogue: the groups stop before it
}


def mini_mobilenet_groups(word: str) -> dict[str, list[str]]:
    kernel, p, _ = EPILOGUE_SPECS[word]
    act = (lambda i: [f"{p}{i}"]) if kernel else (lambda i: [])
    # conv3 is the depthwise conv: no group; activations count 1 (stem), 2, 3 (depthwise), 4, 5,
    # 6 (after add2), 7.
    return {
        "conv1": ["conv1", "bn1", *act(1)],
        "conv2": ["conv2", "bn2", *act(2)],
        "conv4": ["conv4", "bn4", "add1"],
        "conv5": ["conv5", "bn5", *act(4)],
        "conv6": ["conv6", "bn6", "add2", *act(5)],
        "conv7": ["conv7", "bn7", *act(6)],
    }


@pytest.mark.parametrize("word", list(EPILOGUE_SPECS))
def test_the_fusion_plan_fuses_the_kernels_activations_and_skips_depthwise_convs(word):
    from archc.check import check_source

    checked = check_source(MINI_MOBILENET.format(act=word))
    assert checked.ok
    assert {g.name: g.members for g in checked.fusion} == mini_mobilenet_groups(word)
    # The stem's output is add1's other operand, add1 add2's.
    assert [g.residual for g in checked.fusion if g.add] == [f"{EPILOGUE_SPECS[word][1]}1", "add1"]


@pytest.mark.parametrize("word", list(EPILOGUE_SPECS))
def test_fuse_runs_each_activation_in_its_group_depthwise_convs_included(word):
    kernel, p, cls = EPILOGUE_SPECS[word]
    torch.manual_seed(0)
    model = archc.load(MINI_MOBILENET.format(act=word), dtype=torch.float64).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    groups = {n: m for n, m in fused.named_modules() if isinstance(m, FusedConv)}
    # The Triton kernel's plan, and the depthwise conv with its BN and activation, which the
    # op runs itself (oneDNN on the CPU; a folded conv2d elsewhere).
    expected = mini_mobilenet_groups(word)
    expected["conv3"] = ["conv3", "bn3", *([f"{p}3"] if kernel else [])]
    assert fused.fusion_groups == len(groups) == 7

    # The plan names an add by its spec name; the traced module by torch.fx's (add_, add__1).
    def layers(members):
        return [m if not m.startswith("add") else "add" for m in members]

    assert {n: layers(g.members) for n, g in groups.items()} == {
        n: layers(m) for n, m in expected.items()
    }
    for name, group in groups.items():
        assert group.activation == (kernel if expected[name][-1].startswith(p) else None), name
    assert groups["conv3"].groups == 48
    left = {n: type(m) for n, m in fused.named_modules() if n and not isinstance(m, FusedConv)}
    unfused_acts = {f"{p}{i}": cls for i in range(1, 8) if f"{p}{i}" in left}
    assert left == {"avgpool1": nn.AdaptiveAvgPool2d, "fc1": nn.Linear, **unfused_acts}
    assert set(unfused_acts) == (set() if kernel else {f"{p}{i}" for i in range(1, 7)})
    x = torch.randn(2, 8, 12, 12, dtype=torch.float64) * 3
    with torch.no_grad():
        assert_close(fused(x), model(x), rel=1e-12)  # float64: the fold is exact up to rounding
        # fp32 runs on oneDNN on the CPU, depthwise group included
        model32 = archc.load(MINI_MOBILENET.format(act=word)).eval()
        model32.load_state_dict(model.state_dict())
        fused32 = archc.fuse(model32)
        assert_close(fused32(x.float()), model32(x.float()), rel=1e-5)


@needs_kernels
@under_triton
@pytest.mark.parametrize("word", [w for w, (k, _, _) in EPILOGUE_SPECS.items() if k != "relu"])
def test_fused_mini_mobilenet_under_the_kernels_matches_the_plain_model(word, monkeypatch):
    spec = MINI_MOBILENET.format(act=word)
    expected, actual, _, calls = run_fused_counting_kernels(monkeypatch, spec, (2, 8, 12, 12), 3)
    kernel = EPILOGUE_SPECS[word][0]
    # conv1, conv2, conv4 (+ add1), conv5, conv6 (+ add2, act), conv7; conv3 is cuDNN's/torch's.
    assert calls == [
        (False, kernel), (False, kernel), (True, None), (False, kernel), (True, kernel),
        (False, kernel),
    ]  # fmt: skip
    assert_close(actual, expected, rel=1e-4 if actual.device.type == "cpu" else 1e-3)


# Leaky ReLU with its slope, written after each conv (a defaults line `conv: bn, leaky relu 0.1`
# does not parse as one: it makes a layer named `conv`); the depthwise conv's group is left alone
# even though BN, add and the activation follow it.
LEAKY = """input [8x8x8]
conv: bn
CONV 16 3x3 pad 1
leaky relu 0.1
residual:
    CONV 16 1x1
    leaky relu 0.1
    CONV 16 3x3 pad 1 depthwise
add
leaky relu 0.1
"""


def test_leaky_relu_fuses_with_its_slope(monkeypatch):
    from archc.check import check_source

    checked = check_source(LEAKY)
    assert {g.name: g.members for g in checked.fusion} == {
        "conv1": ["conv1", "bn1", "relu1"],
        "conv2": ["conv2", "bn2", "relu2"],
    }
    torch.manual_seed(0)
    model = archc.load(LEAKY, dtype=torch.float64).eval()
    randomize_bn(model)
    fused = archc.fuse(model)
    groups = {n: m for n, m in fused.named_modules() if isinstance(m, FusedConv)}
    # The depthwise conv3 is a group of archc.fuse's too (BN, the add and the activation).
    assert sorted(groups) == ["conv1", "conv2", "conv3"]
    assert all(g.activation == "leaky_relu" and g.negative_slope == 0.1 for g in groups.values())
    assert "negative_slope=0.1" in repr(groups["conv1"])
    assert groups["conv3"].groups == 16 and groups["conv3"].members[:2] == ["conv3", "bn3"]
    assert [n for n, _ in fused.named_modules() if n and n not in groups] == []
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64) * 3
    with torch.no_grad():
        assert_close(fused(x), model(x), rel=1e-12)
        # fp32 on oneDNN, whose post-op carries the slope
        model32 = archc.load(LEAKY).eval()
        model32.load_state_dict(model.state_dict())
        fused32 = archc.fuse(model32)
        assert {g.engine for g in fused32.modules() if isinstance(g, FusedConv)} == {"onednn"}
        assert_close(fused32(x.float()), model32(x.float()), rel=1e-5)
    if importlib.util.find_spec("triton") is None or (
        not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
    ):
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model32 = archc.load(LEAKY, device=device).eval()
    model32.load_state_dict(model.state_dict())
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    with torch.no_grad():
        x32 = x.float().to(device)
        assert_close(archc.fuse(model32)(x32), model32(x32), rel=1e-4)


@needs_kernels
def test_the_registry_the_eager_path_and_the_kernel_name_the_same_epilogues():
    from archc import kernels
    from archc.backends.fuse import _EAGER_ACTIVATIONS, _activation_modules
    from archc.ops import OPS

    registry = {op.kernel_activation for op in OPS.values()} - {None}
    assert registry == set(kernels.ACTIVATIONS) == set(_EAGER_ACTIVATIONS)
    assert _activation_modules() == {
        nn.LeakyReLU: "leaky_relu",
        **{cls: kernel for kernel, _, cls in EPILOGUE_SPECS.values() if kernel is not None},
    }


@needs_kernels
@pytest.mark.slow
@under_triton
def test_fused_mobilenet_v2_runs_its_dense_convs_as_kernels_and_matches_the_plain_model(
    monkeypatch,
):
    expected, actual, fused, calls = run_fused_counting_kernels(
        monkeypatch, "torchvision/mobilenet_v2", (1, 3, 32, 32)
    )
    # The stem, 16 expansions and the last 1x1 with their ReLU6; 17 projections, 10 of them with
    # the identity added (all but the first block of each row of the paper's table, for the rows
    # of widths 24, 32, 64, 96, 160: 1 + 2 + 3 + 2 + 2). The 17 depthwise convs are groups too,
    # which the op runs without the kernel (groups > 1): a folded conv2d, then ReLU6.
    assert sorted(calls, key=str) == sorted(
        [(False, "relu6")] * 18 + [(False, None)] * 7 + [(True, None)] * 10, key=str
    )
    groups = [m for m in fused.modules() if isinstance(m, FusedConv)]
    depthwise = [m for m in groups if m.groups > 1]
    assert len(groups) == 35 + 17 and len(depthwise) == 17
    assert {m.activation for m in depthwise} == {"relu6"}
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in fused.modules())
    assert_close(actual, expected, rel=1e-4 if actual.device.type == "cpu" else 1e-3)
