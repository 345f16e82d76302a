"""The fused module (archc.fuse) under PyTorch's tools, against the plain module it was made from:
torch.compile (inductor, channels_last input), torch.onnx.export(dynamo=True) run by
onnxruntime, and torch.jit.script, for every shipped torchvision counterpart (resnet18 and
mobilenet_v2 in the quick run, the rest marked slow); and torch.library.opcheck on the op
``archc::fused_conv`` itself, in both memory formats.

The plain modules get He-initialised convs and random BN statistics and affine parameters, so
that folding BN changes every weight and the outputs depend on the input (torchvision's
GoogLeNet init leaves them nearly constant). Outputs are compared relative to the plain
output's largest magnitude.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from test_torch_module import LEAKY, assert_close, randomize_bn
from torch import nn
from torch._inductor.utils import run_and_get_code
from torchvision_models import MODELS, plain_specs

import archc
from archc.backends import fuse_onnx
from archc.backends.fuse import FusedConv
from archc.backends.fuse_linear import FusedLinear
from archc.export import export_onnx
from archc.ops import OPS

SPECS_DIR = Path(__file__).parent.parent / "specs" / "torchvision"
# The shipped counterparts by name (torchvision/resnet18: a family spec's builder, or a file).
SPECS = sorted(MODELS)
QUICK = ("resnet18", "mobilenet_v2")
TOLERANCE = 1e-4


def test_every_shipped_torchvision_counterpart_is_checked():
    # Every plain spec; of a family spec, the builders MODELS names (tests/torchvision_models.py).
    assert set(plain_specs()) <= set(SPECS) and len(SPECS) >= 26
    assert set(QUICK) <= set(SPECS)


def he_init(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0, (2 / m.weight[0].numel()) ** 0.5, generator=g)


@dataclass
class Pair:
    plain: nn.Module
    fused: torch.fx.GraphModule
    x: torch.Tensor
    expected: torch.Tensor
    """The plain module's output for ``x``."""


def make_pair(source: str | Path, shape: tuple[int, int, int]) -> Pair:
    plain = archc.load(source).eval()
    he_init(plain)
    randomize_bn(plain)
    # BN scales of 0.25-0.75 keep 40 residual blocks bounded: with randomize_bn's 0.5-1.5,
    # EfficientNet-V2-S's output grows to ~3e6 and its fp32 result differs from fp64's by 0.8
    # (plain or fused alike), so no comparison could be made; halved, both agree with fp64 to 3e-7.
    for m in plain.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.mul_(0.5)
    fused = archc.fuse(plain)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = plain(x)
    return Pair(plain, fused, x, expected)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, id=name, marks=() if name in QUICK else pytest.mark.slow)
        for name in SPECS
    ],
)
def pair(request) -> Pair:
    """One torchvision counterpart, plain and fused (built once for the three tools)."""
    name: str = request.param
    # Each pools adaptively; Inception v3's stem needs 75 pixels.
    size = 80 if name == "inception_v3" else 64
    return make_pair(f"torchvision/{name}", (3, size, size))


# --- torch.compile ---------------------------------------------------------------------------


def test_torch_compile_of_the_fused_module_calls_the_op_per_group_and_agrees(pair: Pair):
    torch._dynamo.reset()  # a fresh cache for each network
    x = pair.x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        actual, (code,) = run_and_get_code(torch.compile(pair.fused, fullgraph=True), x)
    assert_close(actual, pair.expected, rel=TOLERANCE)
    # Inductor keeps each group as one call of the op, which runs on the engine.
    assert code.count("torch.ops.archc.fused_conv.default(") == pair.fused.fusion_groups


# --- ONNX ------------------------------------------------------------------------------------


def op_types(proto: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(node.op_type for node in proto.graph.node)


def run_onnxruntime(proto: onnx.ModelProto, x: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (name,) = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def export(module: nn.Module, x: torch.Tensor, **options) -> onnx.ModelProto:
    return torch.onnx.export(module, (x,), dynamo=True, verbose=False, **options).model_proto


def test_onnx_export_of_the_fused_module_has_the_plain_modules_ops_and_agrees(pair: Pair):
    # The user's call, with nothing extra (no custom_translation_table); the plain module's file
    # made alike, since the ops depend on the input's size (adaptive pooling).
    fused = export(pair.fused, pair.x)
    # A layer scale after a linear (ConvNeXt's) is folded into the linear's weight: one Mul
    # fewer for each such group, counted from the layers the model has.
    folded = count_layer_scales(pair.plain)
    assert folded == sum(m.scaled for m in pair.fused.modules() if isinstance(m, FusedLinear))
    assert op_types(fused) == op_types(export(pair.plain, pair.x)) - collections.Counter(Mul=folded)
    # A Conv for each group, with BN folded in, and for each conv left as the model's own layer.
    assert op_types(fused)["Conv"] == pair.fused.fusion_groups + count_unfused_convs(pair.fused)
    assert {node.domain for node in fused.graph.node} == {""}  # standard ONNX ops only
    assert not fused.functions
    assert_close(run_onnxruntime(fused, pair.x), pair.expected, rel=TOLERANCE)


def count_layer_scales(module: nn.Module) -> int:
    """The per-channel scale parameters that multiply a linear's result (ConvNeXt's
    ``layer_scale``, one per block), from the model's own parameter names."""
    return sum(name.endswith("layer_scale") for name, _ in module.named_parameters())


def count_unfused_convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())


def test_the_fused_resnet18_exports_the_ops_of_archc_exports_file(tmp_path: Path):
    # archc export's way: the spec's input size, a dynamic batch.
    spec = "torchvision/resnet18"
    written = export_onnx(spec, tmp_path / "plain.onnx", [str(SPECS_DIR / "resnet.arch")])
    pair = make_pair(spec, (3, 224, 224))
    fused = export(pair.fused, pair.x, dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert op_types(fused) == op_types(onnx.load(written.path))
    assert_close(run_onnxruntime(fused, pair.x), pair.expected, rel=TOLERANCE)


def test_onnx_export_of_a_fused_leaky_relu_keeps_its_slope_and_a_dynamic_batch():
    # No torchvision network has leaky ReLU; here it ends a plain group and a residual one.
    pair = make_pair(LEAKY, (8, 8, 8))
    batch = ({0: torch.export.Dim("batch")},)
    fused = export(pair.fused, pair.x, dynamic_shapes=batch)
    assert op_types(fused) == op_types(export(pair.plain, pair.x, dynamic_shapes=batch))
    slopes = [a.f for n in fused.graph.node if n.op_type == "LeakyRelu" for a in n.attribute]
    assert slopes == pytest.approx([0.1] * 3)
    x = torch.randn(3, 8, 8, 8, generator=torch.Generator().manual_seed(1))  # another batch
    with torch.no_grad():
        expected = pair.plain(x)
    assert_close(run_onnxruntime(fused, x), expected, rel=TOLERANCE)


KERNEL_ACTIVATIONS = sorted({op.kernel_activation for op in OPS.values()} - {None})


@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_what_the_onnx_exporter_gets_computes_what_the_op_computes(activation: str):
    # Every epilogue the registry names, with a residual, on a folded conv -> BN.
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8).eval()
    randomize_bn(bn)
    group = FusedConv(conv, bn, activation, 0.1 if activation == "leaky_relu" else 0.0)
    # Wide enough to reach past ReLU6's and hardswish's bends on both sides.
    x, residual = 8 * torch.randn(2, 4, 6, 6), 8 * torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        assert_close(fuse_onnx.unfused(group, x, residual), group(x, residual), rel=1e-5)


# --- TorchScript -----------------------------------------------------------------------------


def test_torch_jit_script_of_the_fused_module_calls_the_op_per_group_and_agrees(pair: Pair):
    scripted = torch.jit.script(pair.fused)
    groups = [m for _, m in scripted.named_modules() if m.original_name == "FusedConv"]
    assert len(groups) == pair.fused.fusion_groups
    assert all("ops.archc.fused_conv(" in group.code for group in groups)
    with torch.no_grad():
        assert_close(scripted(pair.x), pair.expected, rel=TOLERANCE)
        channels_last = pair.x.contiguous(memory_format=torch.channels_last)
        assert_close(scripted(channels_last), pair.expected, rel=TOLERANCE)


# --- the op under torch.library.opcheck ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call of the op: a conv's geometry, then what the group adds to it."""

    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = True
    residual: bool = False
    activation: str | None = None
    size: int = 9


CASES = {
    "3x3+residual+relu": Case(4, 8, 3, padding=1, residual=True, activation="relu"),
    "strided, no bias, no epilogue": Case(4, 8, 3, stride=2, padding=1, bias=False),
    "depthwise+relu6": Case(8, 8, 3, padding=1, groups=8, activation="relu6"),
    "grouped dilated+residual+leaky": Case(
        8, 8, 3, padding=2, dilation=2, groups=2, residual=True, activation="leaky_relu"
    ),
    "1x1+silu": Case(4, 6, 1, activation="silu"),
    "strided+residual+hardswish": Case(
        4, 8, 3, stride=2, padding=1, bias=False, residual=True, activation="hardswish"
    ),
    "1x1 map+hardsigmoid": Case(4, 8, 1, activation="hardsigmoid", size=1),
}
# The CUDA cases exist only where a device does (the GPU machine): on the CPU they are not
# generated rather than counted as skipped.
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def op_arguments(case: Case, device: str, channels_last: bool) -> tuple:
    g = torch.Generator().manual_seed(0)
    out = (case.size + 2 * case.padding - case.dilation * (case.kernel - 1) - 1) // case.stride + 1
    x = torch.randn(2, case.c_in, case.size, case.size, generator=g)
    k = case.kernel
    weight = torch.randn(case.c_out, case.c_in // case.groups, k, k, generator=g)
    bias = torch.randn(case.c_out, generator=g) if case.bias else None
    residual = torch.randn(2, case.c_out, out, out, generator=g) if case.residual else None
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = x.to(device).contiguous(memory_format=layout)
    residual = None if residual is None else residual.to(device).contiguous(memory_format=layout)
    bias = None if bias is None else bias.to(device)
    slope = 0.1 if case.activation == "leaky_relu" else 0.0
    spec = ([case.stride] * 2, [case.padding] * 2, [case.dilation] * 2, case.groups)
    return (x, weight.to(device), bias, *spec, residual, case.activation, slope)


REFERENCE_ACTIVATIONS = {
    None: lambda y: y,
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky_relu": lambda y: F.leaky_relu(y, 0.1),
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
}


def reference(args: tuple) -> torch.Tensor:
    """The op's meaning in float64 with torch's own functions."""
    x, weight, bias, stride, padding, dilation, groups, residual, activation, _ = args
    y = F.conv2d(
        x.double(), weight.double(), None if bias is None else bias.double(),
        stride, padding, dilation, groups,
    )  # fmt: skip
    if residual is not None:
        y = y + residual.double()
    return REFERENCE_ACTIVATIONS[activation](y)


@pytest.fixture
def strict_fp32():
    """On a GPU the Triton engine follows cuDNN's TF32 switch; the tolerance is for strict fp32."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = previous


@pytest.mark.usefixtures("strict_fp32")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_opcheck_passes_and_the_op_computes_its_group(case: Case, channels_last: bool, device):
    args = op_arguments(case, device, channels_last)
    # Schema, autograd registration, the fake kernel against the real op (strides included),
    # and AOT dispatch with dynamic shapes.
    torch.library.opcheck(torch.ops.archc.fused_conv.default, args)
    y = torch.ops.archc.fused_conv(*args)
    canonical = torch.empty(y.shape, memory_format=torch.channels_last).stride()
    assert y.stride() == canonical
    assert_close(y.double().cpu(), reference(args).cpu(), rel=1e-5)
