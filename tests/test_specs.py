"""The spec library (specs/): every shipped spec reads and checks clean, and says what its source
says. Paper specs are held to the numbers their papers print; the torchvision counterparts to
torchvision itself: the same modules in the same forward order with the same settings, and the
same parameter shapes in the same order, so that weights transfer one to one.

Parameter counts are computed here from the IR, independently of archc's accounting pass:
conv K·C·R·S (+ K bias), linear out·in (+ out), BN 2·C, with the conv's C read from the shape
of its input.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import StochasticDepth as TorchvisionStochasticDepth
from torchvision.ops.misc import Permute as TorchvisionPermute
from torchvision_models import NOT_ON_META, input_size, plain_specs, shipped_names

from archc import ir
from archc.check import Checked, check_file, check_source, check_spec
from archc.frontend import read_spec
from archc.ops.activation import GELU, Hardsigmoid, Hardswish, ReLU6, Sigmoid, SiLU
from archc.ops.layers import LayerScale, Permute, StochasticDepth
from archc.ops.norm import LayerNorm

SPECS = Path(__file__).resolve().parent.parent / "specs"
SHIPPED = sorted(
    p.relative_to(SPECS).as_posix() for p in SPECS.rglob("*.arch") if p.parent.name != "blocks"
)

TORCHVISION_KWARGS: dict[str, dict[str, object]] = {
    "alexnet": {},
    "vgg11": {},
    "vgg13": {},
    "vgg16": {},
    "vgg19": {},
    "vgg11_bn": {},
    "vgg13_bn": {},
    "vgg16_bn": {},
    "vgg19_bn": {},
    # Their defaults (aux classifiers on, no input transform); init_weights only skips the init.
    "googlenet": {"init_weights": False},
    "resnet18": {},
    "resnet34": {},
    "resnet50": {},
    "resnet101": {},
    "resnet152": {},
    "resnext50_32x4d": {},
    "resnext101_32x8d": {},
    "resnext101_64x4d": {},
    "wide_resnet50_2": {},
    "wide_resnet101_2": {},
    "mobilenet_v2": {},
    "densenet121": {},
    "densenet161": {},
    "densenet169": {},
    "densenet201": {},
    "mobilenet_v3_large": {},
    "mobilenet_v3_small": {},
    "mnasnet1_0": {},
    "squeezenet1_0": {},
    "squeezenet1_1": {},
    "inception_v3": {"init_weights": False},
    "shufflenet_v2_x1_0": {},
    "convnext_tiny": {},
    "efficientnet_b0": {},
    "efficientnet_v2_s": {},
    "regnet_y_400mf": {},
}


@cache
def checked(spec: str) -> Checked:
    """A shipped spec by its path (``vgg16.arch``, ``torchvision/alexnet.arch``) or by its name
    (``torchvision/resnet50``, ``torchvision/regnet_y_400mf.arch``): a family spec's builder."""
    if (SPECS / spec).is_file():
        return check_file(SPECS / spec)
    return check_spec(spec.removesuffix(".arch"))


@cache
def torchvision_model(name: str) -> nn.Module:
    # On the meta device: shapes and structure only, no memory and no initialisation cost.
    if name in NOT_ON_META:
        model = getattr(torchvision.models, name)(weights=None, **TORCHVISION_KWARGS[name])
        return model.to("meta").eval()
    with torch.device("meta"):
        return getattr(torchvision.models, name)(weights=None, **TORCHVISION_KWARGS[name]).eval()


def nodes(c: Checked, op: str) -> list[ir.Node]:
    assert c.graph is not None
    return [n for n in c.graph.nodes if n.op == op]


def param_shapes(c: Checked) -> list[tuple[int, ...]]:
    """Every parameter tensor's shape, in graph order, as the compiled module would hold them:
    a layer scale, a bare parameter of its block, comes before the parameters of the block's
    layers, as torch lists a module's own parameters before its children's."""
    assert c.graph is not None
    shapes: list[tuple[int, ...]] = []
    owners: list[str] = []  # the node of each shape
    for node in c.graph.nodes:
        if isinstance(node, LayerScale):
            block = node.name.rsplit(".", 1)[0] + "." if "." in node.name else ""
            at = next(i for i, o in enumerate(owners) if o.startswith(block))
            shapes.insert(at, (c.shapes[node.inputs[0]][0], 1, 1))
            owners.insert(at, node.name)
        before = len(shapes)
        match node:
            case ir.Conv():
                in_channels = c.shapes[node.inputs[0]][0]
                groups = in_channels if node.depthwise else node.groups
                shapes.append((node.out_channels, in_channels // groups, *node.kernel))
                if node.bias:
                    shapes.append((node.out_channels,))
            case ir.BatchNorm():
                channels = c.shapes[node.name][0]
                shapes += [(channels,), (channels,)]
            case ir.Linear():
                x = c.shapes[node.inputs[0]]
                shapes.append((node.out_features, x[-1] if node.channels_last else math.prod(x)))
                if node.bias:
                    shapes.append((node.out_features,))
            case LayerNorm():
                x = c.shapes[node.inputs[0]]
                channels = x[-1] if node.channels_last else x[0]
                shapes += [(channels,), (channels,)]
        owners += [node.name] * (len(shapes) - before)
    return shapes


def param_count(c: Checked) -> int:
    return sum(math.prod(s) for s in param_shapes(c))


def macs(c: Checked) -> int:
    """Multiply-accumulates of the convs and linear layers, as the papers count "FLOPs"."""
    assert c.graph is not None
    total = 0
    for node in c.graph.nodes:
        if isinstance(node, ir.Conv):
            k, r, s = node.out_channels, *node.kernel
            _, oh, ow = c.shapes[node.name]
            channels = c.shapes[node.inputs[0]][0]
            per_group = 1 if node.depthwise else channels // node.groups
            total += k * per_group * r * s * oh * ow
        elif isinstance(node, ir.Linear):
            total += node.out_features * math.prod(c.shapes[node.inputs[0]])
    return total


def depth(c: Checked, counted: tuple[str, ...] = ("conv", "linear")) -> int:
    """The papers' depth: the most layers of the counted kinds on any path from input to output."""
    assert c.graph is not None
    on_path: dict[str, int] = {}
    for node in c.graph.nodes:
        before = max((on_path[i] for i in node.inputs), default=0)
        on_path[node.name] = before + (node.op in counted)
    return on_path[c.graph.output]


def output_shape(c: Checked) -> ir.Shape:
    assert c.graph is not None
    return c.shapes[c.graph.output]


# --- every spec -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SHIPPED)
def test_spec_reads_and_checks_clean(spec: str) -> None:
    front = read_spec(SPECS / spec)
    assert front.graph is not None, [str(d) for d in front.diagnostics]
    assert [d.code for d in front.diagnostics if d.severity == "error"] == []

    c = checked(spec)
    assert c.ok
    # Not even a warning: every stride tiles its input (the paper's v1 bottleneck strides a 1x1
    # conv, which skips rows by design and is not a tiling problem), every declared shape holds.
    assert [f"{d.span}: {d.code} {d.message}" for d in c.diagnostics] == []
    assert output_shape(c) == (1000,)


@pytest.mark.parametrize("spec", SHIPPED)
def test_ir_round_trips_through_json(spec: str) -> None:
    front = read_spec(SPECS / spec)
    assert front.graph is not None
    assert ir.Graph.from_json(front.graph.to_json()) == front.graph
    resolved = checked(spec).graph
    assert resolved is not None
    assert ir.Graph.from_json(resolved.to_json()) == resolved


@pytest.mark.parametrize(
    "variant, quotient",
    [("1_0", "(224 − 7 + 2·0)/2 + 1 = 109.5"), ("1_1", "(224 − 3 + 2·0)/2 + 1 = 111.5")],
)
def test_squeezenet_expects_the_one_warning_its_network_has(variant: str, quotient: str) -> None:
    # torchvision's squeezenet1_0 strides its unpadded 7x7 conv by 2 over 224 rows:
    # (224 - 7)/2 + 1 = 109.5, squeezenet1_1 its 3x3 conv: (224 - 3)/2 + 1 = 111.5; so their
    # last row and column are never read (W301).
    path = SPECS / "torchvision" / "squeezenet.arch"
    text = path.read_text(encoding="utf-8")
    assert text.count("# expect") == 1
    line = text[: text.index("# expect")].count("\n") + 1
    params = {"variant": variant}
    assert [d.code for d in check_source(text, str(path), params=params).expected] == ["W301"]
    c = check_source(text.replace("# expect W301", "#"), str(path), params=params)
    assert [(d.code, d.span.line) for d in c.diagnostics] == [("W301", line)]
    assert quotient in c.diagnostics[0].message


def test_every_torchvision_counterpart_is_shipped() -> None:
    # A plain spec is one of them; a family (regnet.arch) holds some of them among its members.
    assert set(plain_specs()) <= set(TORCHVISION_KWARGS) <= set(shipped_names())


# --- the lecture's AlexNet ------------------------------------------------------------------


def test_lecture_alexnet_is_the_lecture_table() -> None:
    c = checked("alexnet.arch")
    assert c.shapes["CONV1"] == (96, 55, 55)  # (227 - 11 + 2·0)/4 + 1 = 55
    assert c.shapes["MAX_POOL1"] == (96, 27, 27)
    assert c.shapes["CONV2"] == (256, 27, 27)
    assert c.shapes["MAX_POOL3"] == (256, 6, 6)
    assert c.shapes["FC8"] == (1000,)
    assert (len(nodes(c, "conv")), len(nodes(c, "linear")), len(nodes(c, "lrn"))) == (5, 3, 2)
    # The lecture convention: a ReLU after each of the 5 convs and FC6, FC7 (not FC8).
    assert len(nodes(c, "relu")) == 7
    assert depth(c) == 8
    lrn = nodes(c, "lrn")[0]
    assert isinstance(lrn, ir.LRN)
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)


def test_lecture_alexnet_parameters() -> None:
    # The one-GPU AlexNet, layer by layer: weights + biases.
    expected = (
        (11 * 11 * 3 * 96 + 96)
        + (5 * 5 * 96 * 256 + 256)
        + (3 * 3 * 256 * 384 + 384)
        + (3 * 3 * 384 * 384 + 384)
        + (3 * 3 * 384 * 256 + 256)
        + (6 * 6 * 256 * 4096 + 4096)
        + (4096 * 4096 + 4096)
        + (4096 * 1000 + 1000)
    )
    assert expected == 62_378_344
    assert param_count(checked("alexnet.arch")) == expected


# --- VGG (Simonyan & Zisserman, Tables 1 and 2) -----------------------------------------------

# spec: (weight layers, convs, 1x1 convs, millions of parameters in Table 2)
VGG_PAPER = {
    "vgg11": (11, 8, 0, 133),
    "vgg13": (13, 10, 0, 133),
    "vgg16c": (16, 13, 3, 134),
    "vgg16": (16, 13, 0, 138),
    "vgg19": (19, 16, 0, 144),
}


@pytest.mark.parametrize("name", VGG_PAPER)
def test_vgg_configurations(name: str) -> None:
    layers, convs, one_by_one, millions = VGG_PAPER[name]
    c = checked(f"{name}.arch")
    conv_nodes = [n for n in c.graph.nodes if isinstance(n, ir.Conv)] if c.graph else []
    assert len(conv_nodes) == convs
    assert sum(n.kernel == (1, 1) for n in conv_nodes) == one_by_one
    assert all(n.stride == (1, 1) and 2 * n.padding[0] + 1 == n.kernel[0] for n in conv_nodes)
    assert len(nodes(c, "linear")) == 3
    assert len(nodes(c, "maxpool")) == 5
    assert depth(c) == layers
    assert c.shapes[nodes(c, "maxpool")[-1].name] == (512, 7, 7)
    assert round(param_count(c) / 1e6) == millions


def test_vgg16_has_138_million_parameters() -> None:
    assert param_count(checked("vgg16.arch")) == 138_357_544


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_vgg_paper_and_torchvision_share_weights(name: str) -> None:
    paper, tv = checked(f"{name}.arch"), checked(f"torchvision/{name}")
    assert param_shapes(paper) == param_shapes(tv)
    assert param_count(paper) == sum(p.numel() for p in torchvision_model(name).parameters())


# --- GoogLeNet (Szegedy et al., Table 1) ------------------------------------------------------

# Table 1's "ops" column for the Inception modules, in millions of multiply-adds.
INCEPTION_OPS = {
    "inception3a": 128,
    "inception3b": 304,
    "inception4a": 73,
    "inception4b": 88,
    "inception4c": 100,
    "inception4d": 119,
    "inception4e": 170,
    "inception5b": 71,
}


def test_googlenet_is_22_layers_deep() -> None:
    c = checked("googlenet.arch")
    # "22 layers deep when counting only layers with parameters (or 27 layers if we also count
    # pooling)" -- section 5.
    assert depth(c) == 22
    assert depth(c, ("conv", "linear", "maxpool", "avgpool")) == 27
    assert len(nodes(c, "conv")) == 3 + 9 * 6
    assert len(nodes(c, "concat")) == 9
    assert (len(nodes(c, "lrn")), len(nodes(c, "batchnorm"))) == (2, 0)
    assert len(nodes(c, "relu")) == len(nodes(c, "conv"))
    assert [n.kernel for n in nodes(c, "conv") if n.kernel == (5, 5)] == [(5, 5)] * 9
    (dropout,) = nodes(c, "dropout")
    assert isinstance(dropout, ir.Dropout) and dropout.p == 0.4


def test_googlenet_inception_costs_match_table_1() -> None:
    c = checked("googlenet.arch")
    assert c.graph is not None
    for module, printed in INCEPTION_OPS.items():
        inside = [n for n in c.graph.nodes if n.name.startswith(module + ".")]
        cost = sum(
            n.out_channels
            * c.shapes[n.inputs[0]][0]
            * math.prod(n.kernel)
            * math.prod(c.shapes[n.name][1:])
            for n in inside
            if isinstance(n, ir.Conv)
        )
        # The table rounds loosely (4a: 73.6M printed as 73M). Its 5a entry (54M) is left out:
        # its own columns give 51M.
        assert abs(cost / 1e6 - printed) < 1, module


# --- ResNet (He et al., Table 1) --------------------------------------------------------------

# depth: (projection shortcuts, Table 1's FLOPs in 10^9 multiply-adds)
RESNET_PAPER = {18: (3, 1.8), 34: (3, 3.6), 50: (4, 3.8), 101: (4, 7.6), 152: (4, 11.3)}


@pytest.mark.parametrize("layers", RESNET_PAPER)
def test_resnet_structure(layers: int) -> None:
    projections, flops = RESNET_PAPER[layers]
    c = checked(f"resnet{layers}.arch")
    convs = nodes(c, "conv")
    assert depth(c) == layers
    assert sum(n.name.endswith(".downsample.0") for n in convs) == projections
    # e.g. ResNet-50: 1 + 16·3 convs on the main path + 4 projections = 53.
    assert len(convs) == layers - 1 + projections
    assert len(nodes(c, "batchnorm")) == len(convs)
    assert not any(isinstance(n, ir.Conv) and n.bias for n in convs)
    assert len(nodes(c, "add")) == (layers - 2) // (2 if layers < 50 else 3)
    # Table 1 prints one decimal and rounds loosely (3.66 as 3.6, 7.57 as 7.6).
    assert abs(macs(c) / 1e9 - flops) < 0.1


def test_resnet50_v1_has_torchvision_parameter_count() -> None:
    assert param_count(checked("resnet50.arch")) == 25_557_032


@pytest.mark.parametrize("layers", RESNET_PAPER)
def test_resnet_paper_and_torchvision_share_weights(layers: int) -> None:
    paper, tv = checked(f"resnet{layers}.arch"), checked(f"torchvision/resnet{layers}")
    assert param_shapes(paper) == param_shapes(tv)


def test_bottleneck_v1_5_moves_the_stride_to_the_3x3() -> None:
    v1, v15 = checked("resnet50.arch"), checked("torchvision/resnet50")
    assert v1.graph is not None and v15.graph is not None
    v1_strided = [n.kernel for n in nodes(v1, "conv") if n.stride == (2, 2)]
    v15_strided = [n.kernel for n in nodes(v15, "conv") if n.stride == (2, 2)]
    # conv1, then per stage 2..4 the strided residual conv and the projection.
    assert v1_strided == [(7, 7)] + [(1, 1), (1, 1)] * 3
    assert v15_strided == [(7, 7)] + [(3, 3), (1, 1)] * 3
    # The same weights do more work: the 3x3 conv now runs at the input's resolution.
    assert macs(v15) > macs(v1)


# --- torchvision counterparts -----------------------------------------------------------------


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def describe_module(m: nn.Module) -> tuple[object, ...] | None:
    match m:
        case nn.Conv2d():
            return (
                "conv",
                m.in_channels,
                m.out_channels,
                _pair(m.kernel_size),
                _pair(m.stride),
                _pair(m.padding),
                m.groups,
                m.bias is not None,
            )
        case nn.BatchNorm2d():
            # MNASNet's momentum is 1 - 0.9997 computed in floats (0.00029999999999996696),
            # the spec's in exact arithmetic (0.0003): equal to 15 decimals.
            return ("batchnorm", m.num_features, m.eps, round(m.momentum, 15))
        case nn.ReLU():
            return ("relu",)
        case nn.ReLU6():
            return ("relu6",)
        case nn.Hardswish():
            return ("hardswish",)
        case nn.Hardsigmoid():
            return ("hardsigmoid",)
        case nn.SiLU():
            return ("silu",)
        case nn.Sigmoid():
            return ("sigmoid",)
        case nn.MaxPool2d():
            k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
            return ("maxpool", k, s, p, m.ceil_mode)
        case nn.AvgPool2d():
            k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
            return ("avgpool", k, s, p, m.ceil_mode)
        case nn.AdaptiveAvgPool2d():
            return ("adaptive_avgpool", _pair(m.output_size))
        case nn.Dropout():
            return ("dropout", m.p)
        case nn.Linear():
            return ("linear", m.in_features, m.out_features, m.bias is not None)
        case nn.LayerNorm():  # LayerNorm2d too
            return ("layernorm", m.normalized_shape[0], m.eps)
        case nn.GELU():
            return ("gelu",)
        case TorchvisionPermute():
            return ("permute", tuple(m.dims))
        case TorchvisionStochasticDepth():
            assert m.mode == "row"
            # torchvision's p is a float product or sum (EfficientNet's 0.037500000000000006),
            # ours a fraction made float (0.0375): equal to 12 places.
            return ("stochastic_depth", round(m.p, 12))
        case nn.Flatten():
            return None  # a module in ConvNeXt's classifier; a function in the others' forward
    raise AssertionError(f"no description for {type(m).__name__}")


def describe_node(node: ir.Node, c: Checked) -> tuple[object, ...] | None:
    match node:
        case ir.Conv():
            c_in = c.shapes[node.inputs[0]][0]
            groups = c_in if node.depthwise else node.groups
            conv = (node.out_channels, node.kernel, node.stride, node.padding, groups, node.bias)
            return ("conv", c_in, *conv)
        case ir.BatchNorm():
            return ("batchnorm", c.shapes[node.name][0], node.eps, round(node.momentum, 15))
        case ir.ReLU():
            return ("relu",)
        case ReLU6():
            return ("relu6",)
        case Hardswish():
            return ("hardswish",)
        case Hardsigmoid():
            return ("hardsigmoid",)
        case SiLU():
            return ("silu",)
        case Sigmoid():
            return ("sigmoid",)
        case ir.MaxPool():
            return ("maxpool", node.kernel, node.stride, node.padding, node.ceil_mode)
        case ir.AvgPool():
            return ("avgpool", node.kernel, node.stride, node.padding, node.ceil_mode)
        case ir.AdaptiveAvgPool():
            return ("adaptive_avgpool", node.output_size)
        case ir.GlobalAvgPool():  # torchvision's SqueezeExcitation pools with a module
            return ("adaptive_avgpool", (1, 1))
        case ir.Dropout():
            return ("dropout", node.p)
        case ir.Linear():
            x = c.shapes[node.inputs[0]]
            features = x[-1] if node.channels_last else math.prod(x)
            return ("linear", features, node.out_features, node.bias)
        case LayerNorm():
            x = c.shapes[node.inputs[0]]
            return ("layernorm", x[-1] if node.channels_last else x[0], node.eps)
        case GELU():
            return ("gelu",)
        case Permute():
            return ("permute", node.dims)
        case StochasticDepth():
            return ("stochastic_depth", round(node.p, 12))
    # flatten, concat, add: functions in torchvision's forward, not modules.
    return None


def torchvision_forward(name: str) -> list[tuple[object, ...]]:
    """The leaf modules torchvision's forward runs, in the order it runs them."""
    model = torchvision_model(name)
    calls: list[tuple[object, ...]] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [
        m.register_forward_hook(lambda m, _a, _o: calls.append(describe_module(m))) for m in leaves
    ]
    size = input_size(name)
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return [d for d in calls if d is not None]


@pytest.mark.parametrize("name", TORCHVISION_KWARGS)
def test_torchvision_counterpart_runs_the_same_modules(name: str) -> None:
    c = checked(f"torchvision/{name}")
    assert c.graph is not None
    assert c.graph.init == "torchvision"
    # torchvision's forward runs in eval mode here: without the auxiliary classifiers.
    aux = {a.split(".")[0] for a in c.graph.aux}
    modules = [n for n in c.graph.nodes if n.name.split(".")[0] not in aux]
    if name == "inception_v3":
        # Its Inception modules pool with F.avg_pool2d(x, 3, stride=1, padding=1) (modules A,
        # C, E: 3 + 4 + 2 of them) and F.max_pool2d(x, 3, stride=2) (B, D), which no hook sees.
        pools = [n for n in modules if "pool" in n.op and n.name.startswith("Mixed_")]
        avg = [("avgpool", (3, 3), (1, 1), (1, 1), False)]
        max_ = [("maxpool", (3, 3), (2, 2), (0, 0), False)]
        assert [describe_node(n, c) for n in pools] == avg * 3 + max_ + avg * 4 + max_ + avg * 2
        modules = [n for n in modules if n not in pools]
    ours = [d for n in modules if (d := describe_node(n, c)) is not None]
    theirs = torchvision_forward(name)
    if name in ("googlenet", "inception_v3"):
        # BasicConv2d calls F.relu, which no hook sees: one per conv.
        assert sum(d == ("relu",) for d in ours) == sum(d[0] == "conv" for d in theirs)
        ours = [d for d in ours if d != ("relu",)]
    densenet = name.startswith("densenet")
    if densenet or name in ("mobilenet_v2", "mnasnet1_0", "shufflenet_v2_x1_0"):
        # Their forwards pool with F.adaptive_avg_pool2d (MNASNet's and ShuffleNet's with
        # x.mean([2, 3])), which no hook sees.
        ours.remove(("adaptive_avgpool", (1, 1)))
    if densenet:
        # ... and DenseNet's ends with F.relu.
        del ours[len(ours) - 1 - ours[::-1].index(("relu",))]
    if name.startswith("efficientnet"):
        # torchvision's probabilities are float sums (0.2 * 3 / 16 = 0.037500000000000006),
        # archc's exact fractions (0.0375).
        ours = [
            (d[0], pytest.approx(d[1], abs=1e-15)) if d[0] == "stochastic_depth" else d
            for d in ours
        ]
    assert ours == theirs


@pytest.mark.parametrize("name", TORCHVISION_KWARGS)
def test_torchvision_counterpart_has_the_same_parameters(name: str) -> None:
    c = checked(f"torchvision/{name}")
    model = torchvision_model(name)
    theirs = [tuple(p.shape) for p in model.parameters()]
    if name == "googlenet":
        # torchvision registers aux1/aux2 after inception5b; the spec has them where they
        # branch off (after inception4a and 4d): the same shapes in another order.
        assert sorted(param_shapes(c)) == sorted(theirs)
    else:
        assert param_shapes(c) == theirs
    assert param_count(c) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("layers", RESNET_PAPER)
def test_torchvision_resnet_names_are_torchvision_keys(layers: int) -> None:
    c = checked(f"torchvision/resnet{layers}")
    assert c.graph is not None
    ours = {n.name for n in c.graph.nodes}
    theirs = {
        k.rsplit(".", 1)[0] for k, _ in torchvision_model(f"resnet{layers}").named_parameters()
    }
    # Every conv, BN and the classifier has torchvision's name (layer3.0.downsample.1, fc).
    assert theirs - ours == set()
