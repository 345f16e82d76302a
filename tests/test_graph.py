"""archc graph: Mermaid and DOT pictures whose nodes are the layers and whose edges are the
real DAG, residuals included."""

from __future__ import annotations

import re
import shutil

import pydot
import pytest

from archc.check import check_spec
from archc.cli import main

# pydot's DOT parser uses pyparsing names that pyparsing now deprecates: not archc's to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")

RESNET18 = "torchvision/resnet18"
# Each residual join of ResNet-18: the block's last BN and its shortcut (the block's input, or
# the downsample's BN) feed the add.
RESIDUALS = [
    ("maxpool", "layer1.0.add1"),
    ("layer1.0.relu2", "layer1.1.add1"),
    ("layer2.0.downsample.1", "layer2.0.add1"),
    ("layer1.1.relu2", "layer2.0.downsample.0"),
    ("layer3.0.relu2", "layer3.1.add1"),
]

_NODE = re.compile(r'(n_\w+)\["([^"]*)"\]')
_EDGE = re.compile(r"(n_\w+) --> (n_\w+)")
_SUBGRAPH = re.compile(r'subgraph (n_\w+)\["[^"]*"\]')
_CLASS = re.compile(r"classDef \w+ [\w:#,-]+|class (n_\w+)(,n_\w+)* \w+")


def mermaid_syntax(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Check Mermaid flowchart syntax (the subset archc writes): a header, node definitions,
    balanced subgraph/end, edges between defined nodes, class lines. Returns nodes and edges."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    depth = 0
    for line in lines[1:]:
        s = line.strip()
        if m := _SUBGRAPH.fullmatch(s):
            depth += 1
        elif s == "end":
            depth -= 1
            assert depth >= 0
        elif m := _NODE.fullmatch(s):
            assert m.group(1) not in nodes, f"node defined twice: {s}"
            nodes[m.group(1)] = m.group(2)
        elif m := _EDGE.fullmatch(s):
            edges.append((m.group(1), m.group(2)))
        else:
            assert _CLASS.fullmatch(s), f"not Mermaid: {line!r}"
    assert depth == 0
    assert all(a in nodes and b in nodes for a, b in edges)
    return nodes, edges


def ident(name: str) -> str:
    return "n_" + name.replace(".", "_")


def test_mermaid_of_resnet18_has_a_node_per_layer_and_its_residual_edges(capsys):
    assert main(["graph", RESNET18, "--depth", "all"]) == 0
    nodes, edges = mermaid_syntax(capsys.readouterr().out)
    layers = check_spec(RESNET18).graph.nodes
    assert len(nodes) == len(layers) == 70
    assert (
        nodes[ident("layer2.0.conv1")]
        == "layer2.0.conv1<br/>conv 128 3x3 s2 p1 no bias<br/>[28x28x128]"
    )
    for a, b in RESIDUALS:
        assert (ident(a), ident(b)) in edges


def _dot_nodes(graph: pydot.Dot) -> list[pydot.Node]:
    found = [n for n in graph.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in graph.get_subgraphs():
        found += _dot_nodes(sub)
    return found


def test_dot_of_resnet18_parses_with_clusters_and_shaded_fused_groups(capsys):
    assert main(["graph", RESNET18, "--format", "dot", "--depth", "all"]) == 0
    (graph,) = pydot.graph_from_dot_data(capsys.readouterr().out)
    nodes = _dot_nodes(graph)
    assert len(nodes) == 70
    edges = {(e.get_source(), e.get_destination()) for e in graph.get_edges()}
    for a, b in RESIDUALS:
        assert (ident(a), ident(b)) in edges
    assert [s.get_name() for s in graph.get_subgraphs()] == [
        f"cluster_n_layer{i}" for i in range(1, 5)
    ]
    fills = {n.get_name(): n.get("fillcolor") for n in nodes}
    assert fills[ident("layer1.0.conv1")] == '"#dbeafe"'  # fused conv → BN → ReLU
    assert fills.get(ident("pool1")) is None


def test_depth_collapses_stages_into_one_node_each(capsys):
    assert main(["graph", RESNET18, "--depth", "1", "--costs"]) == 0
    nodes, edges = mermaid_syntax(capsys.readouterr().out)
    assert len(nodes) == 12
    assert (
        nodes[ident("layer3")]
        == "layer3<br/>16 layers<br/>[14x14x256]<br/>2,099,712 params, 411.0M MACs"
    )
    assert (ident("layer2"), ident("layer3")) in edges


def test_svg_without_graphviz_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", RESNET18, "--format", "svg"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "needs Graphviz's `dot` program" in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_svg_is_drawn_by_graphviz(tmp_path):
    out = tmp_path / "alexnet.svg"
    assert main(["graph", "alexnet", "--format", "svg", "-o", str(out)]) == 0
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "CONV1" in svg and "[55x55x96]" in svg


def test_a_failed_claim_still_draws(capsys, tmp_path):
    path = tmp_path / "a.arch"
    path.write_text("input [224x224x3]\n[55x55x96] CONV1: 96 11x11 stride 4\nFC: 10\n")
    assert main(["graph", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "[54x54x96]" in out and "error[E302]" in err


# --- issue 25: a readable overview by default, branches in concat order --------------------------


def test_a_deep_network_is_drawn_as_an_overview_by_default_and_says_so(capsys):
    assert main(["graph", RESNET18]) == 0
    out, err = capsys.readouterr()
    nodes, _ = mermaid_syntax(out)
    # ResNet-18 at depth 2: input, conv1, bn1, relu, maxpool, 4 stages x 2 blocks, avgpool,
    # flatten, fc.
    assert len(nodes) == 5 + 4 * 2 + 3
    assert err == (
        f"archc graph: 70 layers drawn as {len(nodes)} boxes (--depth 2); "
        "--depth all draws every layer\n"
    )


def test_a_small_network_is_drawn_whole_without_a_word(capsys):
    assert main(["graph", "alexnet"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert len(mermaid_syntax(out)[0]) == len(check_spec("alexnet").graph.nodes)


def test_an_explicit_depth_is_kept_silently(capsys):
    assert main(["graph", RESNET18, "--depth", "1"]) == 0
    out, err = capsys.readouterr()
    # input, conv1, bn1, relu, maxpool, the 4 stages, avgpool, flatten, fc.
    assert err == "" and len(mermaid_syntax(out)[0]) == 12


INCEPTION = (
    'import "blocks/inception.arch"\ninput [28x28x192]\n'
    "i3a: inception(64, 96, 128, 16, 32, 32)\ni3b: inception(128, 128, 192, 32, 96, 64)\n"
)


def test_inception_branches_are_drawn_in_concat_order(capsys, tmp_path):
    spec = tmp_path / "inception.arch"
    spec.write_text(INCEPTION)
    assert main(["graph", str(spec), "--format", "dot"]) == 0
    (graph,) = pydot.graph_from_dot_data(capsys.readouterr().out)
    assert graph.get("newrank") == "true"
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed: the drawing itself is not checked")
    out = tmp_path / "inception.svg"
    assert main(["graph", str(spec), "--format", "svg", "-o", str(out)]) == 0
    svg = out.read_text()
    for block in ("i3a", "i3b"):
        left = {}
        for m in re.finditer(
            rf"<title>n_{block}_branch(\d)_\w+</title>.*?<text [^>]*x=\"([\d.-]+)\"", svg, re.S
        ):
            left[int(m.group(1))] = min(left.get(int(m.group(1)), 1e9), float(m.group(2)))
        assert sorted(left, key=left.get) == [1, 2, 3, 4], (block, left)
