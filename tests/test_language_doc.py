"""Every ```arch example in docs/language.md is a complete spec that parses and elaborates
without errors, and the examples whose resulting names the doc states produce those names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc import ir
from archc.frontend import parse_spec

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
EXAMPLES = re.findall(r"```arch\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i + 1}" for i in range(len(EXAMPLES))])
def test_example_parses_without_errors(text: str) -> None:
    result = parse_spec(text, "example.arch")
    assert result.diagnostics == [], result.diagnostics
    assert result.graph is not None


def example(first_line: str) -> ir.Graph:
    (text,) = [t for t in EXAMPLES if first_line in t]
    graph = parse_spec(text).graph
    assert graph is not None
    return graph


def test_names_stated_in_the_doc() -> None:
    names = [n.name for n in example("conv1: CONV 16 3x3 pad 1").nodes]
    assert names == ["input", "conv1", "relu1", "conv2", "relu2", "MAX_POOL1", "classifier"]
    stages = [n.name for n in example("stage classifier:").nodes]
    assert stages == [
        "input",
        "features.conv1",
        "features.relu1",
        "features.pool1",
        "classifier.fc1",
    ]


def test_lecture_convention_example() -> None:
    g = example("[32x32x8] CONV1")
    assert [(n.name, n.inputs) for n in g.nodes if n.op == "relu"] == [
        ("relu1", ["CONV1"]),
        ("relu2", ["FC2"]),
    ]
    assert g.output == "FC3"


def test_defaults_example() -> None:
    g = example("conv: bn(eps 0.001), relu")
    assert [n.op for n in g.nodes] == [
        "input",
        "conv",
        "batchnorm",
        "relu",
        "conv",
        "relu",
        "conv",
        "batchnorm",
        "linear",
        "relu",
        "linear",
    ]


def test_in_shape_and_functions_example() -> None:
    g = example("block expand(ratio, stride = 1, out = in.c):")
    convs = {n.name: n.out_channels for n in g.nodes if isinstance(n, ir.Conv)}
    assert (convs["a.conv1"], convs["a.conv3"], convs["b.conv1"], convs["b.conv3"]) == (
        144,
        24,
        112,
        32,
    )


def test_sequential_block_and_shortcut_first_examples() -> None:
    assert [n.name for n in example("sequential block conv_bn").nodes] == [
        "input",
        "stem.0",
        "stem.1",
        "stem.2",
    ]
    names = [n.name for n in example("block down(width):\n    shortcut:").nodes]
    assert names[1:4] == ["layer2.downsample.0", "layer2.downsample.1", "layer2.conv1"]


def test_conditions_example() -> None:
    g = example("if stride == 1 and in.c == out:")
    adds = [n for n in g.nodes if n.op == "add"]
    assert [(n.name, n.inputs) for n in adds] == [("same.add1", ["same.bn3", "input"])]
    assert g.output == "down.bn3"


def test_unnamed_sequential_example() -> None:
    names = [n.name for n in example("    sequential:\n        unit(24), unit(24)").nodes]
    assert names[1:5] == ["layers.0", "layers.1.0.conv1", "layers.1.0.bn1", "layers.1.0.relu1"]
    assert names[7:9] == ["layers.1.1.relu1", "layers.2.0.conv1"]
    assert names[-1] == "layers.2.1.relu1"


def test_inline_branch_example() -> None:
    g = example("fire2: fire(16, 64)")
    assert [n.name for n in g.nodes] == [
        "input",
        "fire2.squeeze",
        "fire2.squeeze_activation",
        "fire2.expand1x1",
        "fire2.expand1x1_activation",
        "fire2.expand3x3",
        "fire2.expand3x3_activation",
        "fire2.concat1",
    ]
    assert g.node("fire2.expand3x3").inputs == ["fire2.squeeze_activation"]
