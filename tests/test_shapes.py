"""Shape inference and the geometry checks (W301, E302–E307), on hand-built graphs.

Expected shapes are the conv arithmetic out = floor((H + 2P - K) / S) + 1 worked by hand.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archc import ir
from archc.passes.shapes import axis_out, fmt_shape, infer_shapes, shapes_agree, unread_rows
from archc.spans import Span

FILE = "net.arch"


def span(line: int, column: int = 1, width: int = 4) -> Span:
    return Span(file=FILE, line=line, column=column, end_line=line, end_column=column + width)


def declared(shape: ir.Shape, line: int) -> ir.DeclaredShape:
    return ir.DeclaredShape(shape=shape, span=span(line, 1, 10))


def chain(input_shape: ir.Shape, *nodes: ir.Node) -> ir.Graph:
    """A straight chain: each node reads the one before it."""
    built: list[ir.Node] = [ir.Input(name="input", shape=input_shape, span=span(1))]
    for node in nodes:
        built.append(node.model_copy(update={"inputs": [built[-1].name]}))
    return ir.Graph(name="net", file=FILE, nodes=built, output=built[-1].name)


def conv(name: str, k: int, channels: int, stride: int = 1, pad: int = 0, line: int = 2, **kw):
    return ir.Conv(
        name=name,
        out_channels=channels,
        kernel=(k, k),
        stride=(stride, stride),
        padding=(pad, pad),
        span=span(line, 12),
        **kw,
    )


def maxpool(name: str, k: int, stride: int, line: int, **kw) -> ir.MaxPool:
    return ir.MaxPool(name=name, kernel=(k, k), stride=(stride, stride), span=span(line, 12), **kw)


def alexnet_head(size: int) -> ir.Graph:
    """The lecture's first AlexNet layers with their declared shapes (written for 227)."""
    return chain(
        (3, size, size),
        conv("CONV1", 11, 96, stride=4, line=2, declared=declared((96, 55, 55), 2)),
        maxpool("MAX_POOL1", 3, 2, line=3, declared=declared((96, 27, 27), 3)),
        conv("CONV2", 5, 256, pad=2, line=4, declared=declared((256, 27, 27), 4)),
        maxpool("MAX_POOL2", 3, 2, line=5, declared=declared((256, 13, 13), 5)),
    )


def test_alexnet_at_227_tiles_exactly():
    result = infer_shapes(alexnet_head(227))
    assert result.diagnostics == []
    # (227 - 11)/4 + 1 = 55; (55 - 3)/2 + 1 = 27; 27 + 4 - 5 + 1 = 27; (27 - 3)/2 + 1 = 13
    assert result.shapes["CONV1"] == (96, 55, 55)
    assert result.shapes["MAX_POOL1"] == (96, 27, 27)
    assert result.shapes["CONV2"] == (256, 27, 27)
    assert result.shapes["MAX_POOL2"] == (256, 13, 13)


def test_alexnet_at_224_warns_at_conv1_and_every_declared_shape_disagrees():
    result = infer_shapes(alexnet_head(224))
    codes = [(d.code, d.line) for d in result.diagnostics]
    # One W301 for the root cause (the pools downstream inherit it), then E302 on every line.
    assert codes == [("W301", 2), ("E302", 2), ("E302", 3), ("E302", 4), ("E302", 5)]
    w301 = result.diagnostics[0]
    assert w301.severity == "warning"
    assert w301.message == (
        "stride 4 does not tile the input: (224 − 11 + 2·0)/4 + 1 = 54.25 → 54: "
        "the last 1 row and column of the input are never read"
    )
    # 227 and 223 give (H - 11) divisible by 4; so does padding 2 (torchvision's AlexNet).
    assert w301.help == "an input of 227 or 223 tiles exactly, and so does padding 2"
    assert w301.span == span(2, 12)
    # (224 - 11)/4 + 1 = 54.25 -> 54; (54 - 3)/2 + 1 = 26.5 -> 26; 26; (26 - 3)/2 + 1 -> 12
    assert [result.shapes[n] for n in ("CONV1", "MAX_POOL1", "CONV2", "MAX_POOL2")] == [
        (96, 54, 54),
        (96, 26, 26),
        (256, 26, 26),
        (256, 12, 12),
    ]


def test_declared_shape_mismatch_is_reported_at_the_declared_shape():
    result = infer_shapes(alexnet_head(224))
    e302 = result.diagnostics[1]
    assert e302.code == "E302"
    assert e302.span == span(2, 1, 10)  # the `[55x55x96]`, not the layer
    assert e302.message == "declared shape [55x55x96] does not match the inferred [54x54x96]"
    assert e302.help == "(224 − 11 + 2·0)/4 + 1 = 54.25 → 54"


def test_declared_flat_shape_matches_either_way():
    graph = chain(
        (3, 8, 8),
        ir.GlobalAvgPool(name="gap", declared=declared((3,), 2)),
        ir.Linear(name="fc", out_features=10, declared=declared((10, 1, 1), 3)),
    )
    assert infer_shapes(graph).diagnostics == []
    assert shapes_agree((4096, 1, 1), (4096,))
    assert not shapes_agree((4096, 2, 2), (4096,))
    assert fmt_shape((96, 55, 55)) == "[55x55x96]"
    assert fmt_shape((4096,)) == "[4096]"


def test_rows_only_padding_are_free_and_strided_1x1_skips_by_design():
    # ResNet's 7x7/2 pad 3 on 224: (224 + 6 - 7)/2 + 1 = 112.5 -> 112, the lost row is padding.
    # A 1x1 conv at stride 2 on 56 skips every other row, the last (55th) included: no warning.
    graph = chain(
        (3, 224, 224),
        conv("conv1", 7, 64, stride=2, pad=3),
        conv("down", 1, 64, stride=2),
    )
    result = infer_shapes(graph)
    assert result.diagnostics == []
    assert result.shapes["down"] == (64, 56, 56)


def test_unread_rows_only_along_one_axis():
    graph = chain(
        (1, 10, 9),
        ir.Conv(name="c", out_channels=1, kernel=(3, 3), stride=(2, 2), span=span(2)),
    )
    (d,) = infer_shapes(graph).diagnostics
    # rows: (10 - 3)/2 + 1 = 4.5 -> 4 (row 10 unread); columns: (9 - 3)/2 + 1 = 4 exactly
    assert d.code == "W301"
    assert d.message.endswith("the last 1 row of the input is never read")
    assert "(10 − 3 + 2·0)/2 + 1 = 4.5 → 4" in d.message


def test_ceil_mode_pool_rounds_up_like_torch():
    # GoogLeNet's 3x3/2 ceil-mode pools: (112 - 3)/2 + 1 = 55.5 -> 56; then 28, 14, 7.
    graph = chain(
        (64, 112, 112),
        maxpool("p1", 3, 2, 2, ceil_mode=True),
        maxpool("p2", 3, 2, 3, ceil_mode=True),
    )
    result = infer_shapes(graph)
    assert result.diagnostics == []
    assert result.shapes["p1"] == (64, 56, 56)
    assert result.shapes["p2"] == (64, 28, 28)
    # torch drops a last window that would start in the padding: 5x5, k2 s2 p1 ceil -> 3
    graph = chain(
        (1, 5, 5),
        ir.MaxPool(name="p", kernel=(2, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True),
    )
    assert infer_shapes(graph).shapes["p"] == (1, 3, 3)


def test_declared_shape_help_rounds_the_way_the_layer_does():
    graph = chain(
        (64, 112, 112), maxpool("p", 3, 2, 2, ceil_mode=True, declared=declared((64, 55, 55), 2))
    )
    (d,) = infer_shapes(graph).diagnostics
    assert d.code == "E302"
    assert d.help == "(112 − 3 + 2·0)/2 + 1 = 55.5 → 56 (ceil mode)"
    graph = chain((3, 10, 9), conv("c", 3, 8, stride=2, declared=declared((8, 4, 3), 2)))
    (w, e) = sorted(infer_shapes(graph).diagnostics, key=lambda d: d.code, reverse=True)
    assert e.code == "E302"
    assert e.help == "rows: (10 − 3 + 2·0)/2 + 1 = 4.5 → 4; columns: (9 − 3 + 2·0)/2 + 1 = 4"


def test_window_larger_than_the_padded_input_is_impossible():
    graph = chain((3, 4, 4), conv("big", 7, 8, pad=1, line=2), ir.ReLU(name="r"))
    result = infer_shapes(graph)
    assert [(d.code, d.line) for d in result.diagnostics] == [("E303", 2)]
    assert result.diagnostics[0].message == "a 7x7 window does not fit in the padded input of 6"
    assert "big" not in result.shapes and "r" not in result.shapes


def test_map_op_on_a_vector_is_a_rank_error():
    graph = chain((3, 4, 4), ir.Linear(name="fc", out_features=10), conv("c", 3, 8, line=3))
    (d,) = infer_shapes(graph).diagnostics
    assert (d.code, d.line) == ("E306", 3)
    assert "[10]" in d.message


def branches(a: ir.Node, b: ir.Node, join: ir.Node) -> ir.Graph:
    nodes = [
        ir.Input(name="input", shape=(16, 28, 28), span=span(1)),
        a.model_copy(update={"inputs": ["input"]}),
        b.model_copy(update={"inputs": ["input"]}),
        join.model_copy(update={"inputs": [a.name, b.name]}),
    ]
    return ir.Graph(name="net", file=FILE, nodes=nodes, output=join.name)


def test_concat_adds_channels_and_rejects_spatial_mismatch():
    ok = branches(conv("b1", 1, 64), conv("b2", 3, 32, pad=1), ir.Concat(name="cat", span=span(5)))
    result = infer_shapes(ok)
    assert result.diagnostics == []
    assert result.shapes["cat"] == (96, 28, 28)

    bad = branches(conv("b1", 1, 64), conv("b2", 3, 32), ir.Concat(name="cat", span=span(5)))
    (d,) = infer_shapes(bad).diagnostics
    assert (d.code, d.line) == ("E304", 5)
    assert d.message == "cannot concatenate [28x28x64], [26x26x32]: their spatial sizes differ"


def test_add_rejects_different_shapes():
    bad = branches(conv("a", 1, 64), conv("b", 1, 32), ir.Add(name="add", span=span(6)))
    (d,) = infer_shapes(bad).diagnostics
    assert (d.code, d.line) == ("E305", 6)
    assert d.message == "cannot add [28x28x64] and [28x28x32]: shapes differ"


def residual(stride: int, channels: int, mode: str = "auto") -> ir.Graph:
    nodes = [
        ir.Input(name="input", shape=(64, 56, 56), span=span(1)),
        conv("block.conv1", 3, channels, stride=stride, pad=1).model_copy(
            update={"inputs": ["input"]}
        ),
        ir.Shortcut(name="block.downsample", inputs=["input"], mode=mode, span=span(4)),
        ir.Add(name="block.add", inputs=["block.conv1", "block.downsample"], span=span(5)),
        ir.ReLU(name="block.relu", inputs=["block.add"]),
    ]
    return ir.Graph(name="net", file=FILE, nodes=nodes, output="block.relu")


def test_auto_shortcut_becomes_identity_when_shapes_agree():
    result = infer_shapes(residual(1, 64))
    assert result.diagnostics == []
    names = [n.name for n in result.graph.nodes]
    assert "block.downsample" not in names
    assert result.graph.node("block.add").inputs == ["block.conv1", "input"]
    assert result.shapes["block.relu"] == (64, 56, 56)


def test_auto_shortcut_becomes_a_projection_when_shapes_differ():
    result = infer_shapes(residual(2, 128))
    assert result.diagnostics == []
    proj = result.graph.node("block.downsample.0")
    bn = result.graph.node("block.downsample.1")
    assert isinstance(proj, ir.Conv) and isinstance(bn, ir.BatchNorm)
    # torchvision's downsample: 1x1 conv, stride 2, no bias, 64 -> 128 channels; then BN
    assert (proj.kernel, proj.stride, proj.out_channels, proj.bias) == ((1, 1), (2, 2), 128, False)
    assert bn.inputs == ["block.downsample.0"]
    assert result.graph.node("block.add").inputs == ["block.conv1", "block.downsample.1"]
    assert result.shapes["block.downsample.1"] == (128, 28, 28)


def test_identity_shortcut_that_cannot_match_is_an_error():
    (d,) = infer_shapes(residual(2, 128, mode="identity")).diagnostics
    assert (d.code, d.line) == ("E305", 4)
    assert "identity shortcut carries [56x56x64]" in d.message


def test_projection_that_no_stride_can_make_is_an_error():
    # 56 -> 54 (3x3 conv without padding) is not an integer-stride reduction of a 1x1 conv.
    nodes = [
        ir.Input(name="input", shape=(64, 56, 56), span=span(1)),
        conv("c", 3, 64).model_copy(update={"inputs": ["input"]}),
        ir.Shortcut(name="sc", inputs=["input"], span=span(4)),
        ir.Add(name="add", inputs=["c", "sc"], span=span(5)),
    ]
    graph = ir.Graph(name="net", file=FILE, nodes=nodes, output="add")
    (d,) = infer_shapes(graph).diagnostics
    assert (d.code, d.line) == ("E307", 4)
    assert d.message == "no 1x1 projection turns [56x56x64] into [54x54x64]"


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    ceil=st.booleans(),
)
def test_window_arithmetic_agrees_with_torch(size, k, s, p, ceil):
    assume(2 * p <= k and size + 2 * p >= k)  # torch's own limits for pools
    x = torch.empty(1, 1, size, size, device="meta")
    pooled = torch.nn.functional.max_pool2d(x, k, s, p, ceil_mode=ceil)
    assert axis_out(size, k, s, p, ceil) == pooled.shape[-1]


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3))
def test_unread_rows_match_the_windows_read(size, k, s, p):
    assume(size + 2 * p >= k)
    out = axis_out(size, k, s, p, False)
    read = {i * s - p + j for i in range(out) for j in range(k)} & set(range(size))
    trailing = size - 1 - max(read) if read else size
    # Trailing rows never read, less the gap a window smaller than its stride leaves anyway.
    assert unread_rows(size, k, s, p) == max(0, trailing - max(0, s - k))


# --- E302's help: how the inferred shape follows, from each kind's own shape rule --------------

E302_HELP = [
    # Before each kind answered for itself, only conv and the max/avg pools had a help here.
    (
        "ADAPTIVE AVG POOL 2x2 -> [3x3x4]\n",
        "an adaptive avg pool gives the output size written, 2x2, whatever its input's 8x8; the "
        "4 channels stay",
    ),
    ("GAP -> [2x2x4]\n", "a global avg pool averages each of the 4 channels' 8x8 to 1x1"),
    ("FC 5 -> [6]\n", "an FC layer of 5 outputs from [8x8x4]: [5]"),
    ("flatten -> [255]\n", "a flatten of [8x8x4] gives 8·8·4 = 256 values"),
    ("relu -> [8x8x5]\n", "a ReLU keeps its input's shape, [8x8x4]"),
    ("gelu -> [8x8x5]\n", "a GELU keeps its input's shape, [8x8x4]"),
    # (8 - 3 + 0)/2 + 1 = 3.5, floored: unchanged from before.
    ("MAX POOL 3x3 stride 2 -> [4x4x4]\n", "(8 − 3 + 2·0)/2 + 1 = 3.5 → 3"),
]


@pytest.mark.parametrize("line,help", E302_HELP, ids=[c[0].split()[0] for c in E302_HELP])
def test_a_wrong_declared_shape_says_how_the_shape_follows(line: str, help: str) -> None:
    from archc.check import check_source

    checked = check_source("input [8x8x4]\n" + line, "t.arch")
    [d] = [d for d in checked.diagnostics if d.code == "E302"]
    assert d.help == help
