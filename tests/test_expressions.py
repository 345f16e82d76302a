"""Arithmetic that reads the block's input (`in.c`, `in.h`, `in.w`) and calls functions, `if`
conditions, a shortcut written before its residual, and sequential blocks."""

from __future__ import annotations

from fractions import Fraction

import pytest

from archc import ir
from archc.elaborate.values import make_divisible
from archc.frontend import parse_spec


def graph(text: str) -> ir.Graph:
    result = parse_spec(text, "net.arch")
    assert result.graph is not None, result.diagnostics
    return result.graph


def filters(g: ir.Graph) -> dict[str, int]:
    return {n.name: n.out_channels for n in g.nodes if isinstance(n, ir.Conv)}


def first_error(text: str) -> tuple[str, int, int, str]:
    d = parse_spec(text, "net.arch").diagnostics[0]
    return d.code, d.line, d.column, d.message


@pytest.mark.parametrize(
    ("v", "d", "expected"),
    [(24, 8, 24), (10, 8, 16), (36, 8, 40), (3, 8, 8), (Fraction(243, 2), 8, 120), (92, 8, 96)],
)
def test_make_divisible_is_torchvisions(v: Fraction, d: int, expected: int) -> None:
    # torchvision.models._utils._make_divisible(121.5, 8) == 120, (92, 8) == 96, (10, 8) == 16.
    assert make_divisible(Fraction(v), Fraction(d)) == expected


def test_functions_in_layer_arguments() -> None:
    g = graph(
        "input [8x8x3]\n"
        "CONV max(4, 2 * 3) 1x1\n"
        "CONV min(4, 2 * 3, 5) 1x1\n"
        "CONV round(2.5) 1x1\n"
        "CONV round(3.5) + 1 1x1\n"
        "CONV make_divisible(10, 8) 1x1\n"
    )
    assert list(filters(g).values()) == [6, 4, 2, 5, 16]


def test_in_c_h_w_are_the_shape_entering_each_call() -> None:
    g = graph(
        "input [32x16x3]\n"
        "block b(k = 1):\n"
        "    CONV in.c * 4 1x1\n"
        "    CONV in.h + in.w kernel k\n"
        "x: b() x2\n"
        "y: b(k = 3)\n"
    )
    # x.0 enters with 3 channels at 32x16; x.1 with 48 (= 32 + 16); y with 48 at 32x16 again.
    assert filters(g) == {
        "x.0.conv1": 12,
        "x.0.conv2": 48,
        "x.1.conv1": 192,
        "x.1.conv2": 48,
        "y.conv1": 192,
        "y.conv2": 48,
    }


def test_in_c_after_a_residual_and_in_a_default() -> None:
    g = graph(
        "input [8x8x16]\n"
        "block r(out = in.c):\n"
        "    residual:\n"
        "        CONV out 3x3 pad 1\n"
        "    shortcut: auto\n"
        "    add\n"
        "a: r(32)\n"
        "b: r()\n"
    )
    # b's default `out = in.c` reads the add of a, whose shortcut is a projection to 32.
    assert filters(g) == {"a.conv1": 32, "b.conv1": 32}


def test_in_c_outside_a_block_is_e223() -> None:
    code, line, column, message = first_error("input [8x8x3]\nCONV in.c * 2 3x3\n")
    assert (code, line, column) == ("E223", 2, 6)
    assert message == "`in.c` is only known inside a block"


def test_in_h_of_a_vector_is_e223() -> None:
    text = "input [8x8x3]\nblock b():\n    FC in.h\nflatten\nb()\n"
    code, line, column, message = first_error(text)
    assert (code, line, column) == ("E223", 3, 8)
    assert message == "the value entering block `b` is the vector [192]: it has no height"


def test_in_c_after_a_shape_error_reports_the_cause() -> None:
    text = "input [4x4x3]\nblock b():\n    CONV in.c 1x1\nCONV 8 7x7\nb()\n"
    result = parse_spec(text, "net.arch")
    assert [(d.code, d.line) for d in result.diagnostics] == [("E303", 4)]


@pytest.mark.parametrize(
    ("line", "code", "column", "message"),
    [
        ("CONV max(4) 1x1", "E226", 10, "`max` of one value needs a list"),
        ("CONV round(1, 2) 1x1", "E106", 6, "`round` takes 1 value, not 2"),
        ("CONV foo(4) * 2 1x1", "E102", 6, "`foo(…)` is not a function"),
        ("CONV abs(4, 2) 1x1", "E106", 6, "`abs` takes 1 value, not 2"),
        ("CONV make_divisible(10, 0) 1x1", "E208", 25, "`make_divisible` needs a whole divisor"),
    ],
)
def test_bad_function_calls(line: str, code: str, column: int, message: str) -> None:
    got = first_error("input [8x8x3]\n" + line + "\n")
    assert got[:3] == (code, 2, column)
    assert got[3].startswith(message)


INVERTED = (
    "input [56x56x24]\n"
    "block inverted(out, stride = 1, expand = 6):\n"
    "    residual:\n"
    "        if expand != 1:\n"
    "            CONV in.c * expand 1x1 no bias, BN, relu6\n"
    "        CONV in.c * expand 3x3 stride stride pad 1 depthwise no bias, BN, relu6\n"
    "        CONV out 1x1 no bias no relu, BN\n"
    "    if stride == 1 and in.c == out:\n"
    "        add\n"
)


def test_if_holds_splices_its_body() -> None:
    g = graph(INVERTED + "same: inverted(24)\n")
    assert [n.name for n in g.nodes][1:] == [
        "same.conv1",
        "same.bn1",
        "same.relu1",
        "same.conv2",
        "same.bn2",
        "same.relu2",
        "same.conv3",
        "same.bn3",
        "same.add1",
    ]
    assert g.nodes[-1].inputs == ["same.bn3", "input"]
    assert filters(g) == {"same.conv1": 144, "same.conv2": 144, "same.conv3": 24}


def test_if_that_fails_leaves_the_residual_a_plain_path() -> None:
    g = graph(INVERTED + "down: inverted(32, stride 2, expand 1)\n")
    assert [n.name for n in g.nodes][1:] == [
        "down.conv1",
        "down.bn1",
        "down.relu1",
        "down.conv2",
        "down.bn2",
    ]
    assert g.output == "down.bn2"


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("1 < 2", True),
        ("2 <= 1", False),
        ("3 >= 3 and 2 > 1", True),
        ("1 == 2 or 2 != 3", True),
        ("1 == 2 or 2 == 2 and 1 == 2", False),  # `and` first: 1 == 2 or (False)
        ("(1 == 2 or 2 == 2) and 1 == 1", True),
        ("0", False),
        ("2 - 1", True),
    ],
)
def test_conditions(condition: str, holds: bool) -> None:
    g = graph(f"input [8x8x3]\nif {condition}:\n    CONV 4 1x1\nFC 2\n")
    assert ("conv1" in {n.name for n in g.nodes}) is holds


def test_if_with_one_word_reads_the_parameter() -> None:
    text = "input [8x8x3]\nblock b(se):\n    CONV 4 1x1\n    if se:\n        sigmoid\nb(1)\nb(0)\n"
    ops = [n.op for n in graph(text).nodes]
    # (the sigmoid written in the file turns the lecture convention's ReLUs off)
    assert ops == ["input", "conv", "sigmoid", "conv"]


def test_a_block_definition_cannot_be_conditional() -> None:
    text = "input [8x8x3]\nif 1:\n    block b():\n        relu\nFC 2\n"
    assert first_error(text)[:3] == ("E217", 3, 5)


def test_if_without_a_condition() -> None:
    code, line, column, message = first_error("input [8x8x3]\nif 1 and:\n    relu\n")
    assert (code, line, column, message) == ("E102", 2, 9, "unexpected `:`")


def test_shortcut_before_residual_defines_its_layers_first() -> None:
    g = graph(
        "input [8x8x16]\n"
        "block down(w):\n"
        "    shortcut:\n"
        "        CONV w 1x1 stride 2 no bias no relu, BN\n"
        "    residual:\n"
        "        CONV w 3x3 stride 2 pad 1 no bias no relu, BN\n"
        "    add, relu\n"
        "d: down(32)\n"
    )
    assert [(n.name, n.inputs) for n in g.nodes][1:] == [
        ("d.downsample.0", ["input"]),
        ("d.downsample.1", ["d.downsample.0"]),
        ("d.conv1", ["input"]),
        ("d.bn1", ["d.conv1"]),
        ("d.add1", ["d.bn1", "d.downsample.1"]),
        ("d.relu1", ["d.add1"]),
    ]


def test_a_shortcut_mode_before_its_residual_is_e211() -> None:
    text = "input [8x8x3]\nshortcut: auto\nresidual:\n    CONV 3 1x1\nadd\n"
    code, line, column, message = first_error(text)
    assert (code, line, column) == ("E211", 2, 1)
    assert message == "`shortcut: auto` must follow its `residual:` section"


def test_sequential_block_numbers_its_layers() -> None:
    g = graph(
        "input [32x32x3]\n"
        "sequential block conv_bn(out, stride = 1):\n"
        "    conv: bn, relu6\n"
        "    CONV out 3x3 stride stride pad 1 no bias\n"
        "sequential features:\n"
        "    conv_bn(16, stride 2)\n"
        "    conv_bn(24)\n"
    )
    assert [n.name for n in g.nodes][1:] == [
        "features.0.0",
        "features.0.1",
        "features.0.2",
        "features.1.0",
        "features.1.1",
        "features.1.2",
    ]


def test_unnamed_sequential_takes_the_next_position() -> None:
    g = graph(
        "input [8x8x4]\n"
        "block unit(out):\n"
        "    CONV out 1x1 no bias, no relu\n"
        "    relu\n"
        "sequential layers:\n"
        "    CONV 4 1x1 no relu\n"
        "    sequential:\n"
        "        unit(6), unit(6)\n"
        "    sequential:\n"
        "        unit(8) x2\n"
        "    relu\n"
    )
    assert [n.name for n in g.nodes][1:] == [
        "layers.0",
        "layers.1.0.conv1",
        "layers.1.0.relu1",
        "layers.1.1.conv1",
        "layers.1.1.relu1",
        "layers.2.0.conv1",
        "layers.2.0.relu1",
        "layers.2.1.conv1",
        "layers.2.1.relu1",
        "layers.3",
    ]


def test_unnamed_sequential_outside_a_sequential_body_is_e217() -> None:
    code, line, column, message = first_error(
        "input [8x8x4]\nstage s:\n    sequential:\n        relu\n"
    )
    assert (code, line, column) == ("E217", 3, 5)
    assert message == "an unnamed `sequential:` stands only in a sequential body"
    code, line, column, _ = first_error("input [8x8x4]\nsequential:\n    relu\n")
    assert (code, line, column) == ("E217", 2, 1)
