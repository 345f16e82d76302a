"""Joins and references (issue 23, point 5): an n-way `add` of branches (RepVGG), references to
earlier named outputs (`concat with` / `add with` / `concat of`: DLA), `slice channels A:B` and
`pad channels N` (ReXNet's partial residual), numeric labels (`0: CONV …`), and an unnamed
`stage:`. Outputs are checked against the same computation written in torch here; parameter
counts are worked out by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archc
from archc import ir
from archc.check import check_source
from archc.cli import main
from archc.frontend import parse_spec


def _randomise_bn(model: torch.nn.Module) -> None:
    """BN statistics and affine parameters away from their initial values, so a BN that is
    left out or applied twice changes the output."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _bn(x: torch.Tensor, sd: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[f"{key}.running_mean"],
        sd[f"{key}.running_var"],
        sd[f"{key}.weight"],
        sd[f"{key}.bias"],
        training=False,
        eps=1e-5,
    )


def _errors(text: str) -> list[tuple[str, int, int, str]]:
    checked = check_source(text)
    return [
        (d.code, d.span.line, d.span.column, d.message)
        for d in checked.diagnostics
        if d.severity == "error"
    ]


# --- n-way add (RepVGG) ----------------------------------------------------------------------

REPVGG = """\
input [8x8x4]
block repvgg(out, stride = 1):
    branch:
        CONV out 3x3 stride stride pad 1 no bias no relu
        BN
    branch:
        CONV out 1x1 stride stride no bias no relu
        BN
    if out == in.c and stride == 1:
        branch:
            BN
    add
    relu
stage0: repvgg(8, stride 2)
stage1: repvgg(8)
"""


def test_an_add_after_branches_sums_them_all_as_repvgg_trains() -> None:
    checked = check_source(REPVGG)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None and checked.accounting is not None
    nodes = {n.name: n for n in checked.graph.nodes}
    # stage0 changes the shape: two branches; stage1 keeps it: a third, BN-only branch.
    assert nodes["stage0.add1"].inputs == ["stage0.branch1.bn1", "stage0.branch2.bn1"]
    assert nodes["stage1.add1"].inputs == [
        "stage1.branch1.bn1",
        "stage1.branch2.bn1",
        "stage1.branch3.bn1",
    ]
    stage0 = (3 * 3 * 4 * 8 + 2 * 8) + (1 * 1 * 4 * 8 + 2 * 8)
    stage1 = (3 * 3 * 8 * 8 + 2 * 8) + (1 * 1 * 8 * 8 + 2 * 8) + 2 * 8
    assert checked.accounting.totals.params == stage0 + stage1 == 1040

    model = archc.load(REPVGG).eval()
    _randomise_bn(model)
    sd = model.state_dict()
    x = torch.randn(2, 4, 8, 8)

    def branches(x: torch.Tensor, stage: str, stride: int, identity: bool) -> torch.Tensor:
        a = _bn(F.conv2d(x, sd[f"{stage}.branch1.conv1.weight"], stride=stride, padding=1),
                sd, f"{stage}.branch1.bn1")  # fmt: skip
        b = _bn(F.conv2d(x, sd[f"{stage}.branch2.conv1.weight"], stride=stride),
                sd, f"{stage}.branch2.bn1")  # fmt: skip
        c = _bn(x, sd, f"{stage}.branch3.bn1") if identity else 0
        return F.relu(a + b + c)

    expected = branches(branches(x, "stage0", 2, False), "stage1", 1, True)
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_an_identity_branch_is_written_identity_and_holds_no_weights() -> None:
    text = (
        "input [8x8x4]\n"
        "branch:\n    CONV 4 3x3 pad 1 no bias no relu\n    BN\n"
        "branch:\n    identity\n"
        "add\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    add = checked.graph.node(checked.graph.output)
    assert add.inputs == ["branch1.bn1", "branch2.identity1"]
    model = archc.load(text).eval()
    _randomise_bn(model)
    sd = model.state_dict()
    assert not any(k.startswith("branch2") for k in sd)
    x = torch.randn(1, 4, 8, 8)
    expected = _bn(F.conv2d(x, sd["branch1.conv1.weight"], padding=1), sd, "branch1.bn1") + x
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_an_add_of_branches_of_different_shapes_names_them_all() -> None:
    text = (
        "input [8x8x4]\n"
        "branch:\n    CONV 4 1x1\n"
        "branch:\n    CONV 4 1x1\n"
        "branch:\n    CONV 6 1x1\n"
        "add\n"
    )
    ((code, line, column, message),) = _errors(text)
    assert (code, line, column) == ("E305", 8, 1)
    assert message == "cannot add [8x8x4] and [8x8x4] and [8x8x6]: shapes differ"


def test_an_add_after_one_branch_says_it_needs_two() -> None:
    ((code, line, column, message),) = _errors("input [8x8x4]\nbranch:\n    CONV 4 1x1\nadd\n")
    assert (code, line, column) == ("E211", 4, 1)
    assert message == "`add` needs two or more `branch:` sections before it"


# --- references (DLA) --------------------------------------------------------------------------

DLA = """\
input [8x8x4]
block unit(c):
    CONV c 3x3 pad 1 no bias no relu
    BN
    relu
stem: CONV 4 1x1 no bias no relu
tree1: unit(4)
tree2: unit(4)
root: concat with tree1, stem
proj: CONV 8 1x1 no bias no relu
0: concat of tree2, stem
add with proj
"""


def test_references_join_earlier_named_outputs_in_order() -> None:
    checked = check_source(DLA)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    nodes = {n.name: n for n in checked.graph.nodes}
    # `with`: the current output first, then the named ones; `of`: the named ones only.
    assert nodes["root"].inputs == ["tree2.relu1", "tree1.relu1", "stem"]
    assert nodes["proj"].inputs == ["root"]
    assert nodes["0"].inputs == ["tree2.relu1", "stem"]
    assert nodes["add1"].inputs == ["0", "proj"]
    assert checked.shapes["root"] == (12, 8, 8)
    assert checked.shapes["0"] == (8, 8, 8)


def test_referenced_outputs_compute_what_torch_computes() -> None:
    model = archc.load(DLA).eval()
    _randomise_bn(model)
    sd = model.state_dict()
    x = torch.randn(2, 4, 8, 8)
    stem = F.conv2d(x, sd["stem.weight"])

    def unit(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.relu(_bn(F.conv2d(x, sd[f"{name}.conv1.weight"], padding=1), sd, f"{name}.bn1"))

    tree1 = unit(stem, "tree1")
    tree2 = unit(tree1, "tree2")
    root = torch.cat([tree2, tree1, stem], 1)
    proj = F.conv2d(root, sd["proj.weight"])
    expected = torch.cat([tree2, stem], 1) + proj  # `0: concat of tree2, stem`, `add with proj`
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_stages_instances_and_numbers_are_referred_to_by_name() -> None:
    text = (
        "input [8x8x4]\nblock unit:\n    CONV 4 1x1 no relu\n"
        "stage s1:\n    CONV 4 1x1 no relu\n    relu\n"
        "unit\n"  # an unlabelled instance: `unit1`
        "sequential seq:\n    unit\n    unit\n    concat of 0, 1\n"
        "concat with s1, unit1\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    nodes = {n.name: n for n in checked.graph.nodes}
    assert nodes["seq.2"].inputs == ["seq.0.conv1", "seq.1.conv1"]
    assert nodes["concat1"].inputs == ["seq.2", "s1.relu1", "unit1.conv1"]
    assert checked.shapes["concat1"] == (16, 8, 8)


@pytest.mark.parametrize(
    ("tail", "column", "message"),
    [
        (
            "concat with stme\n",
            13,
            "`stme` names no earlier output in this scope (the network's top level): "
            "did you mean `stem`?",
        ),
        (
            "concat with later\nlater: CONV 4 1x1\n",
            13,
            "`later` is defined later, on line 4: a reference joins an earlier output",
        ),
        (
            "CONV 4 1x1\nconcat with conv2\n",
            13,
            "`conv2` is a generated name or a section's, not the label of an output",
        ),
        (
            "stage s:\n    x: CONV 4 1x1\nconcat with x\n",
            13,
            "`x` is not in this scope (the network's top level): it is `s.x`",
        ),
    ],
)
def test_a_reference_to_no_earlier_output_is_e225(tail: str, column: int, message: str) -> None:
    text = "input [8x8x4]\nstem: CONV 4 1x1\n" + tail
    errors = _errors(text)
    assert [(c, col, m) for c, _, col, m in errors] == [("E225", column, message)]


def test_a_block_body_cannot_reach_outside_its_instance() -> None:
    text = (
        "input [8x8x4]\nblock b:\n    CONV 4 1x1\n    concat with stem\n"
        "stem: CONV 4 1x1\nlayer1: b\n"
    )
    checked = check_source(text)
    (d,) = [d for d in checked.diagnostics if d.severity == "error"]
    assert (d.code, d.span.line, d.span.column) == ("E225", 4, 17)
    assert d.message == "`stem` is not in this scope (`layer1`): it is at the network's top level"
    assert "in block `b`" in d.notes[0].message


def test_concat_of_one_name_and_add_with_in_an_open_residual_are_e211() -> None:
    base = "input [8x8x4]\nstem: CONV 4 1x1\n"
    ((code, line, _, message),) = _errors(base + "concat of stem\n")
    assert (code, line, message) == ("E211", 3, "`concat of` joins two or more named outputs")
    text = base + "residual:\n    CONV 4 1x1\nadd with stem\n"
    assert ("E211", 5) in [(c, ln) for c, ln, _, _ in _errors(text)]


def test_a_reference_list_takes_names_only() -> None:
    (d,) = parse_spec("input [8x8x4]\nconcat with 3x3\n").diagnostics
    assert (d.code, d.line, d.column) == ("E106", 2, 13)
    assert d.message == "a size is no name of an earlier output"


# --- slice and pad channels (ReXNet) ---------------------------------------------------------

REXNET = """\
input [8x8x16]
block rexblock(out, expand = 6):
    residual:
        CONV in.c * expand 1x1 no bias, BN, silu
        CONV in.c * expand 3x3 pad 1 depthwise no bias, BN
        relu6
        CONV out 1x1 no bias, BN
    shortcut:
        pad channels out - in.c
    add
block1: rexblock(27)
"""


def test_a_rexnet_block_adds_its_input_to_the_first_channels() -> None:
    checked = check_source(REXNET)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None and checked.accounting is not None
    assert checked.shapes["block1.downsample.0"] == (27, 8, 8)
    pad = checked.accounting.layer("block1.downsample.0")
    assert (pad.params, pad.macs, pad.activations) == (0, 0, 27 * 8 * 8)
    assert checked.accounting.totals.params == (16 * 96 + 2 * 96) + (9 * 96 + 2 * 96) + (
        96 * 27 + 2 * 27
    )

    model = archc.load(REXNET).eval()
    _randomise_bn(model)
    sd = model.state_dict()
    x = torch.randn(2, 16, 8, 8)
    y = F.silu(_bn(F.conv2d(x, sd["block1.conv1.weight"]), sd, "block1.bn1"))
    y = _bn(F.conv2d(y, sd["block1.conv2.weight"], padding=1, groups=96), sd, "block1.bn2")
    y = _bn(F.conv2d(F.relu6(y), sd["block1.conv3.weight"]), sd, "block1.bn3")
    expected = y.clone()
    expected[:, 0:16] += x  # timm's ReXNet: out[:, 0:self.in_channels] += shortcut
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_slice_takes_the_channels_of_its_range() -> None:
    text = "input [8x8x6]\na: slice channels 2:5\nb: pad channels 3\n"
    checked = check_source(text)
    assert checked.ok and checked.accounting is not None
    assert checked.shapes["a"] == (3, 8, 8) and checked.shapes["b"] == (6, 8, 8)
    assert checked.accounting.layer("a").activations == 0  # a view
    model = archc.load(text).eval()
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        out = model(x)
    assert torch.equal(out, torch.cat([x[:, 2:5], torch.zeros(2, 3, 8, 8)], 1))


def test_a_slice_range_may_be_computed_in_a_block() -> None:
    text = "input [8x8x6]\nblock half:\n    slice channels in.c // 2:in.c\nb: half\n"
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.shapes["b.slice1"] == (3, 8, 8)


def test_a_slice_past_the_channels_is_e313() -> None:
    ((code, line, column, message),) = _errors("input [8x8x6]\nslice channels 2:8\n")
    assert (code, line, column) == ("E313", 2, 1)
    assert message == "channels 2:8 do not exist in an input of 6 channels"


def test_a_slice_needs_a_range() -> None:
    ((code, line, _, _),) = _errors("input [8x8x6]\nslice channels 2\n")
    assert (code, line) == ("E213", 2)


def test_slice_and_pad_draw_and_read_back(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    spec = tmp_path / "rex.arch"
    spec.write_text(REXNET)
    assert main(["graph", str(spec), "--depth", "all"]) == 0
    out = capsys.readouterr().out
    assert "pad channels 11<br/>[8x8x27]" in out
    reread = check_source("input [8x8x6]\nslice channels 2:5\npad channels 3\n")
    assert reread.ok


def test_a_rexnet_block_exports_to_onnx_that_onnxruntime_runs(tmp_path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from archc.export import export_onnx

    spec = tmp_path / "rex.arch"
    spec.write_text(REXNET.replace("input [8x8x16]", "input [8x8x16]\nCONV 16 1x1 no relu"))
    result = export_onnx(spec, tmp_path / "rex.onnx", [])
    assert result.difference is not None and result.difference <= 1e-5


def test_an_n_way_add_exports_as_one_add_per_further_input(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from archc.export import export_onnx

    spec = tmp_path / "repvgg.arch"
    spec.write_text(REPVGG)
    result = export_onnx(spec, tmp_path / "repvgg.onnx", [])
    assert result.difference is not None and result.difference <= 1e-5
    names = [n.name for n in onnx.load(str(tmp_path / "repvgg.onnx")).graph.node]
    # Three branches: two Adds, both named after the spec's add.
    assert [n for n in names if n.startswith("stage1.add1")] == ["stage1.add1", "stage1.add1/Add_1"]


# --- numeric labels, unnamed stages ------------------------------------------------------------


def test_numeric_labels_name_layers_as_torchvision_numbers_them() -> None:
    text = (
        "input [8x8x4]\nsequential features:\n    0: CONV 8 3x3 pad 1 no bias no relu\n"
        "    1: BN\n    2: relu\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    assert [n.name for n in checked.graph.nodes] == [
        "input",
        "features.0",
        "features.1",
        "features.2",
    ]
    keys = set(archc.load(text).state_dict())
    assert {"features.0.weight", "features.1.running_var"} <= keys


def test_a_numeric_label_twice_is_e210_and_leading_zeros_e110() -> None:
    ((code, line, column, _),) = _errors("input [8x8x4]\n0: CONV 4 1x1 no relu\n0: BN\n")
    assert (code, line, column) == ("E210", 3, 1)
    (d,) = parse_spec("input [8x8x4]\n01: BN\n").diagnostics
    assert (d.code, d.line, d.column) == ("E110", 2, 1)


def test_an_unnamed_stage_says_a_stage_needs_a_name() -> None:
    (d,) = parse_spec("input [8x8x4]\nstage:\n    CONV 4 1x1\n").diagnostics
    assert (d.code, d.line, d.column) == ("E104", 2, 1)
    assert d.message == "a stage needs a name: `stage NAME:`"


# --- the doc's examples say what they make -----------------------------------------------------


def example(first_line: str) -> ir.Graph:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text("utf-8")
    (text,) = [t for t in re.findall(r"```arch\n(.*?)```", doc, re.S) if first_line in t]
    graph = parse_spec(text).graph
    assert graph is not None
    return graph


def test_the_docs_join_examples_make_the_nodes_they_name() -> None:
    adds = [(n.name, n.inputs) for n in example("block repvgg(").nodes if n.op == "add"]
    assert adds == [
        ("stage1.0.add1", ["stage1.0.branch1.bn1", "stage1.0.branch2.bn1", "stage1.0.branch3.bn1"]),
        ("stage1.1.add1", ["stage1.1.branch1.bn1", "stage1.1.branch2.bn1"]),
    ]
    joins = {n.name: n.inputs for n in example("root: concat with").nodes if n.op != "conv"}
    assert joins["root"] == ["tree2.relu1", "tree1.relu1", "stem"]
    assert joins["0"] == ["tree2.relu1", "stem"]
    assert joins["add1"] == ["0", "proj"]
    rex = example("block rexblock(")
    assert [n.name for n in rex.nodes][-3:] == ["block1.downsample.0", "block1.add1", "first"]
    numbered = [n.name for n in example("0: CONV 16 3x3").nodes]
    assert numbered == ["input", "features.0", "features.1", "features.2"]


def test_a_slice_range_and_list_slicing_read_their_colons_apart() -> None:
    # `A:B` of `slice channels` and `xs[a:b]` of an expression: LALR reads a `:` after a value
    # either way; both must come out right on one line.
    text = (
        "input [8x8x6]\nlet xs = [1, 4, 9]\n"
        "slice channels xs[0:2][0]:xs[-2:][0]\n"
        "pad channels len(xs[1:])\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    assert [(n.start, n.stop) for n in checked.graph.nodes if n.op == "slice"] == [(1, 4)]
    assert checked.shapes[checked.graph.output] == (3 + 2, 8, 8)


def test_names_made_by_a_template_are_referred_to_by_the_name_they_make() -> None:
    text = (
        "input [8x8x4]\nblock unit:\n    CONV 4 1x1 no relu\n"
        '"c{i}": CONV 4 1x1 no relu x2\n'
        '"t{i + 1}": unit x2\n'
        "concat of c0, c1, t2\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    assert checked.graph.node(checked.graph.output).inputs == ["c0", "c1", "t2.conv1"]
