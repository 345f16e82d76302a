"""The op registry: every layer kind answers for every facet, in every stage.

Each kind has an example below; the test walks the registry, so a kind added without an example
fails here, and a kind whose shape rule, costs, module or notation is missing or wrong fails at
the facet concerned. Expected numbers are arithmetic in the test or torch's own modules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import archc
from archc import ir
from archc.backends.source import generate_source
from archc.check import check_source
from archc.ops import OPS, WORDS, by_word, kind_table, name_table
from archc.ops.base import REQUIRED, Op
from archc.report import describe

INPUT = "input [8x8x4]\n"

# Each kind in a spec (input [8x8x4]), the node's expected output shape (C, H, W) or (F,) and
# parameter count, worked out by hand.
EXAMPLES: dict[str, tuple[str, tuple[int, ...], int]] = {
    "conv": ("CONV 6 3x3 pad 1\n", (6, 8, 8), 3 * 3 * 4 * 6 + 6),
    "maxpool": ("MAX POOL 2x2\n", (4, 4, 4), 0),
    "avgpool": ("AVG POOL 3x3 stride 1\n", (4, 6, 6), 0),
    "global_avgpool": ("GAP\n", (4, 1, 1), 0),
    "adaptive_avgpool": ("ADAPTIVE AVG POOL 2x2\n", (4, 2, 2), 0),
    "lrn": ("LRN size 3\n", (4, 8, 8), 0),
    "batchnorm": ("BN\n", (4, 8, 8), 4 + 4),
    "relu": ("relu\n", (4, 8, 8), 0),
    "silu": ("silu\n", (4, 8, 8), 0),
    "relu6": ("relu6\n", (4, 8, 8), 0),
    "leaky_relu": ("leaky relu 0.2\n", (4, 8, 8), 0),
    "hardswish": ("hardswish\n", (4, 8, 8), 0),
    "hardsigmoid": ("hardsigmoid\n", (4, 8, 8), 0),
    "sigmoid": ("sigmoid\n", (4, 8, 8), 0),
    "tanh": ("tanh\n", (4, 8, 8), 0),
    "gelu": ("gelu\n", (4, 8, 8), 0),
    "identity": ("identity\n", (4, 8, 8), 0),
    "channel_shuffle": ("channel shuffle 2\n", (4, 8, 8), 0),
    "layernorm": ("layer norm eps 1e-6\n", (4, 8, 8), 4 + 4),
    "layerscale": ("layer scale 0.5\n", (4, 8, 8), 4),
    "stochastic_depth": (
        "stochastic depth 0.2  # expect W221: off a residual branch\n",
        (4, 8, 8),
        0,
    ),
    "split": ("split 2 part 2\n", (2, 8, 8), 0),
    "permute": ("permute 0 2 3 1\n", (8, 8, 4), 0),
    "slice": ("slice channels 1:3\n", (2, 8, 8), 0),
    "pad": ("pad channels 3\n", (7, 8, 8), 0),
    "multiply": ("gate:\n    GAP\n    CONV 4 1x1 no relu\n    sigmoid\n", (4, 8, 8), 0),
    "linear": ("FC 5\n", (5,), 8 * 8 * 4 * 5 + 5),
    "dropout": ("FC 5 no relu\ndropout 0.3\n", (5,), 0),
    "flatten": ("flatten\n", (256,), 0),
    "softmax": ("FC 5 no relu\nsoftmax\n", (5,), 0),
    "concat": (
        "branch:\n    CONV 2 1x1\nbranch:\n    CONV 3 1x1\nconcat\n",
        (5, 8, 8),
        0,
    ),
    "add": ("residual:\n    CONV 4 3x3 pad 1\nadd\n", (4, 8, 8), 0),
}


def test_every_kind_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(OPS)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_every_facet_is_the_kinds_own(kind: str) -> None:
    op = OPS[kind]
    for facet in REQUIRED:
        assert getattr(op, facet, None) is not None, facet
    assert op.model.model_fields["op"].default == kind
    assert op.words and all(by_word(w.lower()) is op for w in op.words)
    assert re.fullmatch(r"[a-z][a-z0-9_]*", op.prefix)
    assert op.help and op.docs_args and op.title and op.article


def test_a_kind_missing_a_facet_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="does not define .*shape"):

        class Broken(Op):  # noqa: F841 -- defining it is the test
            model = ir.ReLU
            title = article = help = docs_args = prefix = "x"
            words = ("BROKEN",)
            followed = activation = in_place = keeps_positions = False

            def fields(self, layer, ev):  # type: ignore[no-untyped-def]
                return {}


def test_words_name_one_kind_each() -> None:
    assert len(WORDS) == sum(len(op.words) for op in OPS.values())


@pytest.mark.parametrize("kind", sorted(OPS))
def test_each_stage_asks_the_registry(kind: str) -> None:
    text, shape, params = EXAMPLES[kind]
    checked = check_source(INPUT + text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None and checked.accounting is not None
    (node,) = [n for n in checked.graph.nodes if n.op == kind]
    # shape rule and costs
    assert checked.shapes[node.name] == shape
    assert checked.accounting.layer(node.name).params == params
    # the summary's notation reads back as the same layer
    if OPS[kind].ctor(node, checked.shapes[node.inputs[0]], shape) is not None:
        reread = check_source(INPUT + "".join(text.splitlines(True)[:-1]) + describe(node) + "\n")
        assert reread.ok, (describe(node), reread.diagnostics)
        assert reread.graph is not None
        (back,) = [n for n in reread.graph.nodes if n.op == kind]
        assert reread.shapes[back.name] == shape
    # the torch module computes that shape, and the generated source names the same modules
    model = archc.load(INPUT + text).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, 8, 8))
    assert out.shape[1:] == torch.Size(checked.shapes[checked.graph.output])
    network = generate_source(checked).split("class network(nn.Module):")[1]
    assert set(re.findall(r"self\.(\w+) = nn\.(\w+)", network)) <= {
        (name, type(m).__name__) for name, m in model.named_children()
    } | {(name, "Conv2d") for name, _ in model.named_children()} | {
        (name, "Parameter") for name, _ in model.named_parameters(recurse=False)
    }


def test_an_identity_branch_concatenates_the_input_itself() -> None:
    # DenseNet's layer: its input, concatenated with what a conv makes of it.
    checked = check_source(INPUT + "branch:\n    identity\nbranch:\n    CONV 2 1x1\nconcat\n")
    assert checked.graph is not None
    assert checked.shapes[checked.graph.output] == (4 + 2, 8, 8)
    model = archc.load(INPUT + "branch:\n    identity\nbranch:\n    CONV 2 1x1\nconcat\n")
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x)[:, :4], x)


def test_grouped_depthwise_and_dilated_convs() -> None:
    text = "input [16x16x32]\nCONV 64 3x3 pad 1 groups 4\nCONV 64 3x3 pad 2 depthwise dilation 2\n"
    checked = check_source(text + "CONV 64 1x1 g8 no relu\n")
    assert checked.ok and checked.accounting is not None
    acc = checked.accounting
    # weights K·(C/G)·R·S (+ K biases); MACs weights·OH·OW
    assert acc.layer("conv1").params == 64 * (32 // 4) * 3 * 3 + 64
    assert acc.layer("conv1").macs == 64 * 8 * 9 * 16 * 16
    assert acc.layer("conv2").params == 64 * 1 * 3 * 3 + 64  # depthwise: one channel per group
    assert checked.shapes["conv2"] == (64, 16, 16)  # dilation 2 spans 5x5; pad 2 keeps 16
    assert acc.layer("conv3").params == 64 * 8 + 64
    model = archc.load(text)
    assert (model.conv1.groups, model.conv2.groups, model.conv2.dilation) == (4, 64, (2, 2))
    assert sum(p.numel() for p in model.parameters()) == acc.totals.params - (64 * 8 + 64)
    assert checked.fusion == []  # the kernel computes dense convs only
    (bad,) = check_source("input [16x16x30]\nCONV 64 3x3 groups 4\n").diagnostics
    assert (bad.code, bad.span.line) == ("E308", 2)


def test_convnext_layers_match_torchvisions() -> None:
    from torchvision.models.convnext import LayerNorm2d
    from torchvision.ops import StochasticDepth

    model = archc.load(
        INPUT + "layer norm eps 1e-6\nlayer scale 0.5\nstochastic depth 0.3  # expect W221\n"
    )
    x = torch.randn(64, 4, 8, 8)
    reference = LayerNorm2d(4, eps=1e-6)
    reference.load_state_dict(model.norm1.state_dict())
    torch.testing.assert_close(model.norm1(x), reference(x))
    # A bare parameter of shape (C, 1, 1) under the layer's name, starting at its value.
    assert isinstance(model.layer_scale1, torch.nn.Parameter)
    assert model.layer_scale1.shape == (4, 1, 1) and bool((model.layer_scale1 == 0.5).all())
    # torch lists a module's own parameters before its children's
    assert list(model.state_dict()) == ["layer_scale1", "norm1.weight", "norm1.bias"]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model.norm1(x) * 0.5)
    assert model.stochastic_depth1(x) is x  # the identity at inference
    model.train()
    torch.manual_seed(0)
    ours = model.stochastic_depth1(x)
    torch.manual_seed(0)
    torch.testing.assert_close(ours, StochasticDepth(0.3, "row")(x))
    kept = (ours.flatten(1).abs().sum(1) > 0).float().mean().item()
    assert 0.5 < kept < 0.9  # about 70 % of the samples kept


def test_a_shuffle_must_split_the_channels() -> None:
    (d,) = check_source("input [8x8x6]\nchannel shuffle 4\n").diagnostics
    assert (d.code, d.span.line) == ("E309", 2)
    model = archc.load("input [8x8x4]\nchannel shuffle 2\n")
    x = torch.arange(4.0).reshape(1, 4, 1, 1).expand(1, 4, 8, 8)
    assert model(x)[0, :, 0, 0].tolist() == [0.0, 2.0, 1.0, 3.0]


def test_silu_is_one_registry_entry_with_torchs_semantics() -> None:
    model = archc.load(INPUT + "CONV 6 3x3 pad 1\nsilu\nFC 3\n").eval()
    assert isinstance(model.silu1, torch.nn.SiLU)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        conv = model.conv1(x)
        expected = model.fc1(torch.flatten(torch.nn.functional.silu(conv), 1))
        assert torch.allclose(model(x), expected)


def test_an_explicit_activation_replaces_the_lecture_convention() -> None:
    # CONV then silu is conv -> SiLU: the convention's ReLU steps aside for any activation.
    graph = check_source(INPUT + "CONV 6 3x3\nsilu\nFC 3\n").graph
    assert graph is not None
    assert [n.op for n in graph.nodes] == ["input", "conv", "silu", "linear"]


def test_defaults_take_any_activation() -> None:
    graph = check_source(INPUT + "conv: bn, silu\nCONV 6 3x3\nCONV 6 3x3\n").graph
    assert graph is not None
    assert [n.op for n in graph.nodes] == [
        "input", "conv", "batchnorm", "silu", "conv", "batchnorm", "silu"
    ]  # fmt: skip


def test_only_kernel_activations_fuse() -> None:
    # GELU has no epilogue in the kernel: the group ends at the BN (and the ReLU after the GELU
    # reads no conv).
    checked = check_source(INPUT + "conv: bn, gelu\nCONV 6 3x3\nrelu\n")
    (group,) = checked.fusion
    assert (group.conv, group.bn, group.activation) == ("conv1", "bn1", None)
    relu = check_source(INPUT + "conv: bn, relu\nCONV 6 3x3\n").fusion
    assert relu[0].activation == "relu1"
    silu = check_source(INPUT + "conv: bn, silu\nCONV 6 3x3\n").fusion
    assert silu[0].members == ["conv1", "bn1", "silu1"]


def test_silu_counts_as_activation_memory_relu_does_not() -> None:
    # SiLU's backward reads its input, so its output is a new tensor; ReLU runs in place.
    acc = check_source(INPUT + "CONV 6 3x3 pad 1 no relu\nsilu\nrelu\n").accounting
    assert acc is not None
    assert acc.layer("silu1").activations == 6 * 8 * 8
    assert acc.layer("relu1").activations == 0


def test_the_docs_tables_are_the_registrys() -> None:
    # Regenerated from the registry by tools/regenerate.py.
    doc = (Path(__file__).resolve().parent.parent / "docs/language.md").read_text()
    assert kind_table() in doc
    assert name_table() in doc


def test_activation_trait_drives_the_accounting_rules() -> None:
    activations = {"relu", "silu", "relu6", "leaky_relu", "hardswish", "hardsigmoid"}
    assert {k for k, op in OPS.items() if op.activation} == activations | {
        "sigmoid",
        "tanh",
        "gelu",
    }


def test_the_se_block_is_torchvisions_squeeze_excitation() -> None:
    from torchvision.ops import SqueezeExcitation

    model = archc.load('import "blocks/se.arch"\ninput [8x8x16]\nse: se(16, 4)\n').eval()
    reference = SqueezeExcitation(16, 4).eval()
    assert list(model.state_dict()) == [f"se.{k}" for k in reference.state_dict()]
    model.se.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    # The gate's MACs: two 1x1 convs on a 1x1 map; its parameters: theirs.
    acc = check_source('import "blocks/se.arch"\ninput [8x8x16]\nse: se(16, 4)\n').accounting
    assert acc is not None
    assert acc.totals.macs == 16 * 4 + 4 * 16
    assert acc.totals.params == sum(p.numel() for p in reference.parameters())


def test_a_gate_must_end_in_one_value_per_channel() -> None:
    (d,) = check_source(INPUT + "gate:\n    GAP\n    CONV 8 1x1\n").diagnostics
    assert (d.code, d.span.line) == ("E310", 2)
    (d,) = check_source(INPUT + "multiply\n").diagnostics
    assert d.code == "E211"


def test_concat_input_joins_the_bodys_input_first() -> None:
    text = INPUT + "block dense(g):\n    CONV g 3x3 pad 1 no relu\n    concat input\nx: dense(2)\n"
    checked = check_source(text)
    assert checked.graph is not None
    concat = checked.graph.node("x.concat1")
    assert concat.inputs == ["input", "x.conv1"]
    assert checked.shapes["x.concat1"] == (4 + 2, 8, 8)
    model = archc.load(text)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x)[:, :4], x)


SHUFFLE_UNIT = """\
block unit:
    split 2
    branch:
        identity
    sequential branch:
        CONV 2 1x1 no bias
        relu
    concat
    channel shuffle 2
u: unit
"""


def test_a_split_gives_each_branch_one_part_of_the_channels() -> None:
    # ShuffleNetV2's unit: the first half passes on, the second goes through a branch.
    checked = check_source(INPUT + SHUFFLE_UNIT)
    assert checked.ok, checked.diagnostics
    graph = checked.graph
    assert graph is not None
    assert graph.node("u.branch1.identity1").inputs == ["u.split1"]
    assert graph.node("u.branch2.0").inputs == ["u.split2"]
    assert (graph.node("u.split1").part, graph.node("u.split2").part) == (1, 2)
    assert checked.shapes["u.split2"] == (2, 8, 8)
    assert checked.shapes["u.concat1"] == (4, 8, 8)
    model = archc.load(INPUT + SHUFFLE_UNIT)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        x1, x2 = x.chunk(2, dim=1)
        branch = torch.relu(torch.nn.functional.conv2d(x2, model.u.branch2[0].weight))
        joined = torch.cat([x1, branch], 1)
        # channel shuffle 2 of [a0, a1, b0, b1] is [a0, b0, a1, b1]
        expected = joined[:, [0, 2, 1, 3]]
        assert torch.equal(model(x), expected)
    assert [k for k, _ in model.state_dict().items()] == ["u.branch2.0.weight"]


def test_a_split_must_split_the_channels() -> None:
    (d,) = check_source("input [8x8x6]\nsplit 4 part 1\n").diagnostics
    assert (d.code, d.span.line) == ("E311", 2)
    text = "input [8x8x6]\nsplit 4\n" + "branch:\n    identity\n" * 4 + "concat\n"
    assert "E311" in {d.code for d in check_source(text).diagnostics}
    (d,) = check_source("input [8x8x6]\nsplit 2 part 3\n").diagnostics
    assert d.code == "E215" and "part 3" in d.message


def test_a_split_needs_one_branch_per_part() -> None:
    one = INPUT + "split 2\nbranch:\n    identity\nconcat\n"
    (d,) = check_source(one).diagnostics
    assert (d.code, d.span.line) == ("E211", 5)
    assert "makes 2 parts, but 1" in d.message
    three = INPUT + "split 2\n" + "branch:\n    identity\n" * 3 + "concat\n"
    (d,) = check_source(three).diagnostics
    assert (d.code, d.span.line) == ("E211", 7)
    (d,) = check_source(INPUT + "split 2\nrelu\n").diagnostics
    assert (d.code, d.span.line) == ("E211", 2)
    assert "followed by its `branch:` sections" in d.message


BRANCHES = "branch:\n    identity\nbranch:\n    identity\nconcat\n"


@pytest.mark.parametrize(
    ("line", "column", "words"),
    [
        ("split 2 -> [8x8x99]", 12, "this shape declares nothing"),
        ("split 2    memory: 999", 12, "this memory claim counts nothing"),
        ("split 2  params: 5", 10, "this params claim counts nothing"),
        ("s: split 2", 1, "named `split1`, `split2`, …, not `s`"),
    ],
)
def test_a_split_opening_branches_refuses_what_it_cannot_carry(
    line: str, column: int, words: str
) -> None:
    # It makes one part per branch: no one output for a shape or a claim, no one node to name.
    (d,) = check_source(INPUT + line + "\n" + BRANCHES).diagnostics
    assert (d.code, d.line, d.column) == ("E211", 2, column)
    assert words in d.message


def test_a_split_opening_branches_makes_two_or_more_parts() -> None:
    # One error, at the number: no `concat` complaint after it.
    (d,) = check_source(INPUT + "split 1\nbranch:\n    identity\nconcat\n").diagnostics
    assert (d.code, d.line, d.column) == ("E209", 2, 7)
    assert "at least 2, got 1" in d.message
    # One part alone is still a layer of its own (the input itself).
    assert check_source(INPUT + "split 1 part 1\n").diagnostics == []


@pytest.mark.parametrize(
    ("layer", "words"),
    [("channel shuffle 2", "a channel shuffle needs"), ("layer scale 0.1", "a layer scale needs")],
)
def test_a_map_op_on_a_vector_says_its_kind_in_the_docs_words(layer: str, words: str) -> None:
    (d,) = check_source(INPUT + "flatten\n" + layer + "\n").diagnostics
    assert d.code == "E306" and d.message.startswith(words)


def test_convnext_channels_last_layers_match_torchvisions_block() -> None:
    # CNBlock's `block`: depthwise conv, channels last, layer norm and two FCs over the channels
    # at each position, channels first again; torchvision's own Sequential as the reference.
    from torchvision.models.convnext import CNBlock

    text = """\
input [8x8x4]
block cn:
    residual:
        sequential block:
            CONV 4 7x7 pad 3 depthwise no relu
            permute 0 2 3 1
            layer norm eps 1e-6 channels last
            FC 16 channels last
            gelu
            FC 4 channels last no relu
            permute 0 3 1 2
        layer_scale: layer scale 0.5
        stochastic_depth: stochastic depth 0.2
    add
b: cn
"""
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.shapes["b.block.3"] == (8, 8, 16)  # the tensor's shape: (H, W, C)
    acc = checked.accounting
    assert acc is not None
    # 4·16 weights + 16 biases; a multiply-accumulate per weight at each of the 8·8 positions
    assert (acc.layer("b.block.3").params, acc.layer("b.block.3").macs) == (
        4 * 16 + 16,
        4 * 16 * 64,
    )
    assert acc.layer("b.block.2").params == 4 + 4
    model = archc.load(text)
    reference = CNBlock(4, layer_scale=0.5, stochastic_depth_prob=0.2)
    assert list(model.b.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(model.b.state_dict(), strict=True)
    x = torch.randn(16, 4, 8, 8)
    for train in (False, True):
        model.train(train)
        reference.train(train)
        torch.manual_seed(0)
        ours = model(x)
        torch.manual_seed(0)
        torch.testing.assert_close(ours, reference(x), rtol=0, atol=0)
    # In training some samples lost their residual branch (this seed drops some of the 16 at
    # p = 0.2), the same ones in both: the draws are torchvision's.
    dropped = [i for i in range(16) if torch.equal(ours[i], x[i])]
    assert 0 < len(dropped) < 16


def test_permute_and_channels_last_need_what_they_say() -> None:
    (d,) = check_source(INPUT + "permute 0 2 1\n").diagnostics
    assert d.code == "E213"
    (d,) = check_source(INPUT + "permute 1 0 2 3\n").diagnostics
    assert d.code == "E215" and "batch (0) first" in d.message
    (d,) = check_source(INPUT + "flatten\npermute 0 2 3 1\n").diagnostics
    assert d.code == "E306"
    # `channels last` is two words: anything else after `channels` is not the flag
    (d,) = check_source(INPUT + "FC 4 channels first\n").diagnostics
    assert d.code == "E106"
