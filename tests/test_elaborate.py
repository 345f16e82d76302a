"""Elaboration: each construct of docs/language.md, checked on the IR it produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from archc import ir
from archc.check import check_source
from archc.frontend import parse_spec, read_spec


def graph(text: str, file: str = "<string>") -> ir.Graph:
    result = parse_spec(text, file)
    assert result.diagnostics == [], result.diagnostics
    assert result.graph is not None
    return result.graph


def table(g: ir.Graph) -> list[tuple[str, str, list[str]]]:
    return [(n.name, n.op, n.inputs) for n in g.nodes]


def test_lecture_lines_names_and_relu_convention() -> None:
    g = graph(
        "[227x227x3] INPUT\n"
        "[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0\n"
        "[27x27x96] MAX POOL1: 3x3 filters at stride 2\n"
        "[27x27x96] NORM1: Normalization layer\n"
        "[4096] FC6: 4096 neurons\n"
        "[1000] FC8: 1000 neurons (class scores)\n"
    )
    assert table(g) == [
        ("input", "input", []),
        ("CONV1", "conv", ["input"]),
        ("relu1", "relu", ["CONV1"]),
        ("MAX_POOL1", "maxpool", ["relu1"]),
        ("NORM1", "lrn", ["MAX_POOL1"]),
        ("FC6", "linear", ["NORM1"]),
        ("relu2", "relu", ["FC6"]),
        ("FC8", "linear", ["relu2"]),  # the last FC gets no ReLU
    ]
    inp, conv, _, pool, norm, fc6, _, fc8 = g.nodes
    assert isinstance(inp, ir.Input) and inp.shape == (3, 227, 227)
    assert isinstance(conv, ir.Conv)
    assert (conv.out_channels, conv.kernel, conv.stride, conv.padding) == (
        96,
        (11, 11),
        (4, 4),
        (0, 0),
    )
    assert conv.declared is not None and conv.declared.shape == (96, 55, 55)
    assert isinstance(pool, ir.MaxPool) and (pool.kernel, pool.stride) == ((3, 3), (2, 2))
    assert isinstance(norm, ir.LRN) and (norm.size, norm.alpha, norm.beta, norm.k) == (
        5,
        1e-4,
        0.75,
        2.0,
    )
    assert isinstance(fc8, ir.Linear) and fc8.out_features == 1000
    assert fc8.declared is not None and fc8.declared.shape == (1000,)
    assert g.output == "FC8" and g.name == "network"


def test_table_lines_take_sizes_from_label_and_declared_shape() -> None:
    g = graph(
        "INPUT: [224x224x3] memory: 224*224*3=150K params: 0 (not counting biases)\n"
        "    CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728\n"
        "    POOL2: [112x112x64] memory: 112*112*64=800K params: 0\n"
        "    FC: [1x1x10] memory: 10 params: 112*112*64*10 = 8,028,160\n"
    )
    assert [(n.name, n.op) for n in g.nodes] == [
        ("input", "input"),
        ("conv1", "conv"),
        ("relu1", "relu"),
        ("pool1", "maxpool"),
        ("fc1", "linear"),
    ]
    conv = g.node("conv1")
    assert isinstance(conv, ir.Conv) and (conv.out_channels, conv.padding) == (64, (1, 1))
    pool = g.node("pool1")
    assert isinstance(pool, ir.MaxPool) and (pool.kernel, pool.stride) == ((2, 2), (2, 2))
    fc = g.node("fc1")
    assert isinstance(fc, ir.Linear) and fc.out_features == 10
    memory, params = conv.claims
    assert (memory.kind, memory.expression, memory.value, memory.printed) == (
        "memory",
        "224*224*64",
        3211264,
        "3.2M",
    )
    assert (params.expression, params.value, params.printed) == ("(3*3*3)*64", 1728, "1,728")
    zero = g.node("input").claims[1]
    assert (zero.kind, zero.expression, zero.value, zero.printed) == ("params", None, None, "0")


def test_paper_column_notation() -> None:
    g = graph(
        "input (224 × 224 RGB image)\nconv3-64\nconv7-64/2\nmaxpool\nFC-4096\nFC-1000\nsoft-max\n"
    )
    assert [n.name for n in g.nodes] == [
        "input",
        "conv1",
        "relu1",
        "conv2",
        "relu2",
        "pool1",
        "fc1",
        "relu3",
        "fc2",
        "softmax1",
    ]
    conv2 = g.node("conv2")
    assert isinstance(conv2, ir.Conv)
    assert (conv2.kernel, conv2.stride, conv2.padding) == ((7, 7), (2, 2), (3, 3))


def test_block_call_with_arithmetic_and_origin() -> None:
    g = graph(
        "input [8x8x16]\n"
        "block mix(a, b = 2):\n"
        "    CONV (a + b) * 2 1x1\n"
        "    CONV a // b 3x3 pad 1\n"
        "    CONV a-b 1x1 no bias\n"
        "stem: mix(6)\n"
    )
    convs = [n for n in g.nodes if isinstance(n, ir.Conv)]
    assert [(c.name, c.out_channels) for c in convs] == [
        ("stem.conv1", 16),
        ("stem.conv2", 3),
        ("stem.conv3", 4),
    ]
    assert convs[2].bias is False
    (frame,) = convs[0].origin
    assert frame.block == "mix" and (frame.call.line, frame.call.column) == (6, 7)
    assert convs[0].span is not None and convs[0].span.line == 3


def test_repetition_names_instances_by_position() -> None:
    g = graph(
        "input [8x8x4]\nconv: relu\n"
        "block unit(c, stride = 1):\n    CONV c 3x3 stride stride pad 1\n"
        "layer1: unit(4) x2\n"
        "layer2: unit(8, stride 2), unit(8) x2\n"
        "unit(3)\nunit(3)\n"
        "conv3-5 x2\n"
    )
    names = [n.name for n in g.nodes if isinstance(n, ir.Conv)]
    assert names == [
        "layer1.0.conv1",
        "layer1.1.conv1",
        "layer2.0.conv1",
        "layer2.1.conv1",
        "layer2.2.conv1",
        "unit1.conv1",
        "unit2.conv1",
        "conv1",
        "conv2",
    ]
    strided = g.node("layer2.0.conv1")
    assert isinstance(strided, ir.Conv) and strided.stride == (2, 2)
    assert g.node("layer2.1.conv1").inputs == ["layer2.0.relu1"]


BOTTLENECK = (
    "input [56x56x64]\n"
    "conv: bn, relu\n"
    "block bottleneck(width, stride = 1):\n"
    "    residual:\n"
    "        CONV: width 1x1 no bias\n"
    "        CONV: width 3x3 stride stride pad 1 no bias\n"
    "        CONV: 4*width 1x1 no bias, no relu\n"
    "    shortcut: SHORTCUT\n"
    "    add, relu\n"
    "layer1: bottleneck(64)\n"
)


def test_residual_with_auto_shortcut() -> None:
    g = graph(BOTTLENECK.replace("SHORTCUT", "auto"))
    sc = g.node("layer1.downsample")
    assert isinstance(sc, ir.Shortcut) and sc.mode == "auto" and sc.inputs == ["input"]
    assert g.node("layer1.add1").inputs == ["layer1.bn3", "layer1.downsample"]
    assert [n.name for n in g.nodes][1:4] == ["layer1.conv1", "layer1.bn1", "layer1.relu1"]
    assert "layer1.relu3" not in [n.name for n in g.nodes[:10]]  # `no relu` on the third conv
    assert g.output == "layer1.relu3"
    # Shape inference turns it into the torchvision projection.
    checked = check_source(BOTTLENECK.replace("SHORTCUT", "auto"))
    assert checked.ok and checked.graph is not None
    assert checked.shapes["layer1.downsample.1"] == (256, 56, 56)


def test_residual_with_identity_projection_and_no_shortcut() -> None:
    identity = graph(BOTTLENECK.replace("SHORTCUT", "identity"))
    sc = identity.node("layer1.downsample")
    assert isinstance(sc, ir.Shortcut) and sc.mode == "identity"
    projection = graph(BOTTLENECK.replace("SHORTCUT", "projection"))
    assert projection.node("layer1.downsample").mode == "projection"  # type: ignore[union-attr]
    plain = graph(BOTTLENECK.replace("    shortcut: SHORTCUT\n", ""))
    assert plain.node("layer1.add1").inputs == ["layer1.bn3", "input"]


def test_residual_with_explicit_shortcut_body() -> None:
    g = graph(
        BOTTLENECK.replace(
            "    shortcut: SHORTCUT\n",
            "    shortcut:\n        CONV: 4*width 1x1 stride stride no bias, no relu\n",
        )
    )
    conv, bn = g.node("layer1.downsample.0"), g.node("layer1.downsample.1")
    assert isinstance(conv, ir.Conv) and conv.inputs == ["input"] and conv.out_channels == 256
    assert isinstance(bn, ir.BatchNorm) and bn.inputs == ["layer1.downsample.0"]
    assert g.node("layer1.add1").inputs == ["layer1.bn3", "layer1.downsample.1"]


def test_a_shortcut_whose_add_sits_in_a_false_if_is_an_error() -> None:
    # Issue 23: the shortcut's conv and BN were built, run and thrown away (parameters and
    # keys without gradients), with no word.
    text = (
        "input [8x8x4]\n"
        "conv: bn, relu\n"
        "block b(out, use = 0):\n"
        "    residual:\n"
        "        CONV out 3x3 pad 1 no relu\n"
        "    shortcut:\n"  # line 6
        "        CONV out 1x1 no relu\n"
        "    if use:\n"  # line 8
        "        add\n"
        "b(8, use 1)\n"
        "b(8)\n"
        "GAP\n"
        "FC 2\n"
    )
    (d,) = [d for d in parse_spec(text, "net.arch").diagnostics if d.severity == "error"]
    assert (d.code, d.line, d.column) == ("E211", 6, 5)
    assert "never used" in d.message and "line 8" in d.message
    assert [n.span.line for n in d.notes if n.span is not None] == [11]  # the call that skips it
    # Where the `add` holds, the shortcut is joined; with no shortcut the `if` is the plain
    # path (MobileNetV2's inverted residual), as before.
    joined = graph(text.replace("b(8)\n", "")).node("b1.add1")
    assert joined.inputs == ["b1.bn1", "b1.downsample.1"]
    plain = graph(text.replace("    shortcut:\n        CONV out 1x1 no relu\n", ""))
    assert [n.op for n in plain.nodes].count("add") == 1


def test_branches_joined_by_concat() -> None:
    g = graph(
        "input [28x28x192]\n"
        "block inception(a, b):\n"
        "    branch:\n"
        "        CONV a 1x1\n"
        "    branch:\n"
        "        CONV b 1x1\n"
        "        CONV a 3x3 pad 1\n"
        "    branch:\n"
        "        MAX POOL 3x3 stride 1 pad 1\n"
        "    concat\n"
        "inception3a: inception(64, 96)\n"
    )
    assert g.node("inception3a.concat1").inputs == [
        "inception3a.branch1.relu1",
        "inception3a.branch2.relu2",
        "inception3a.branch3.pool1",
    ]
    assert g.node("inception3a.branch2.conv1").inputs == ["input"]
    assert g.node("inception3a.branch3.pool1").inputs == ["input"]


def test_inline_branches_name_their_layers_in_the_enclosing_scope() -> None:
    # SqueezeNet's Fire: torchvision's keys are fire.expand1x1.weight, with no branch scope.
    g = graph(
        "input [8x8x16]\n"
        "conv: relu\n"
        "block fire(s, e):\n"
        "    squeeze: CONV s 1x1\n"
        "    inline branch:\n"
        "        expand1x1: CONV e 1x1\n"
        "    inline branch:\n"
        "        expand3x3: CONV e 3x3 pad 1\n"
        "    concat\n"
        "fire2: fire(4, 8)\n"
    )
    assert table(g)[1:] == [
        ("fire2.squeeze", "conv", ["input"]),
        ("fire2.relu1", "relu", ["fire2.squeeze"]),
        ("fire2.expand1x1", "conv", ["fire2.relu1"]),
        ("fire2.relu2", "relu", ["fire2.expand1x1"]),
        ("fire2.expand3x3", "conv", ["fire2.relu1"]),
        # Generated names count on in the enclosing scope: relu3, not a second relu1.
        ("fire2.relu3", "relu", ["fire2.expand3x3"]),
        ("fire2.concat1", "concat", ["fire2.relu2", "fire2.relu3"]),
    ]


def test_inline_branches_nest_and_keep_the_other_branches_numbers() -> None:
    # Inception-v3's module E: a branch whose end is two convs side by side, concatenated.
    g = graph(
        "input [8x8x16]\n"
        "conv: relu\n"
        "branch:\n"
        "    CONV 4 1x1\n"
        "inline branch:\n"
        "    b3_1: CONV 4 1x1\n"
        "    inline branch:\n"
        "        b3_2a: CONV 4 1x3 pad 0x1\n"
        "    inline branch:\n"
        "        b3_2b: CONV 4 3x1 pad 1x0\n"
        "    concat\n"
        "branch:\n"
        "    CONV 4 1x1\n"
        "concat\n"
    )
    # b3_1's ReLU is relu1 of the top scope, the nested branches' relu2 and relu3.
    assert g.node("b3_2a").inputs == g.node("b3_2b").inputs == ["relu1"]
    assert g.node("concat1").inputs == ["relu2", "relu3"]
    # A scoped branch is named by its place among the branches, inline ones counted.
    assert g.node("concat2").inputs == ["branch1.relu1", "concat1", "branch3.relu1"]


def test_a_scoped_branch_skips_a_branch_name_already_taken() -> None:
    # An inline branch whose own branches are branch1 and branch2 (named in the top scope):
    # the scoped branch after it, second among the top branches, skips to branch3.
    result = parse_spec(
        "input [8x8x16]\n"
        "inline branch:\n"
        "    branch:\n"
        "        CONV 4 1x1\n"
        "    branch:\n"
        "        CONV 4 1x1\n"
        "    concat\n"
        "branch:\n"
        "    CONV 4 1x1\n"
        "concat\n",
        "net.arch",
    )
    assert result.diagnostics == [] and result.graph is not None
    assert result.graph.node("concat2").inputs == ["concat1", "branch3.relu1"]
    # A layer named branch2 before two branches: they are branch1 and branch3.
    result = parse_spec(
        "input [8x8x16]\n"
        "branch2: CONV 4 1x1\n"
        "branch:\n"
        "    CONV 4 1x1\n"
        "branch:\n"
        "    CONV 4 1x1\n"
        "concat\n",
        "net.arch",
    )
    assert result.diagnostics == [] and result.graph is not None
    assert result.graph.node("concat1").inputs == ["branch1.relu1", "branch3.relu1"]


def test_a_name_used_twice_across_inline_branches_is_e210() -> None:
    result = parse_spec(
        "input [8x8x3]\n"
        "conv1: CONV 4 1x1\n"
        "inline branch:\n"
        "    expand: CONV 4 1x1\n"
        "inline branch:\n"
        "    expand: CONV 4 3x3 pad 1\n"
        "    conv1: CONV 4 1x1\n"
        "concat\n",
        "net.arch",
    )
    assert [(d.code, d.span.line, d.message) for d in result.diagnostics] == [
        ("E210", 6, "the name `expand` is used twice"),
        ("E210", 7, "the name `conv1` is used twice"),
    ]


def test_stages_prefix_names() -> None:
    g = graph(
        "input [32x32x3]\nstage features:\n    conv3-8\n    maxpool\nstage classifier:\n    FC 10\n"
    )
    assert [n.name for n in g.nodes] == [
        "input",
        "features.conv1",
        "features.relu1",
        "features.pool1",
        "classifier.fc1",
    ]


def test_defaults_opt_outs_and_scoping() -> None:
    g = graph(
        "input [8x8x3]\n"
        "conv: bn(eps 0.001), relu\n"
        "fc: relu\n"
        "CONV 4 3x3\n"
        "CONV 4 3x3 no bn\n"
        "CONV 4 3x3, no relu\n"
        "block b(c):\n"
        "    conv: none\n"
        "    CONV c 1x1\n"
        "x: b(2)\n"
        "FC 10\n"
        "FC 5\n"
    )
    assert [n.name for n in g.nodes] == [
        "input",
        "conv1",
        "bn1",
        "relu1",
        "conv2",
        "relu2",
        "conv3",
        "bn2",
        "x.conv1",
        "fc1",
        "relu3",
        "fc2",
    ]
    bn = g.node("bn1")
    assert isinstance(bn, ir.BatchNorm) and bn.eps == 0.001


def warned(text: str, file: str = "<string>") -> tuple[ir.Graph, list[tuple[str, int, int]]]:
    """The graph of a spec that has warnings only, and the warnings' codes and places."""
    result = parse_spec(text, file)
    assert result.graph is not None, result.diagnostics
    return result.graph, [(d.code, d.line, d.column) for d in result.diagnostics]


def test_block_sees_defaults_where_it_is_defined() -> None:
    g, warnings = warned(
        "input [8x8x3]\nconv: bn\nblock b(c):\n    CONV c 1x1\nconv: relu\nx: b(2)\nCONV 2 1x1\n"
    )
    assert [n.op for n in g.nodes] == ["input", "conv", "batchnorm", "conv", "relu"]
    # `conv: bn` gives the block's conv no activation: conv→BN→conv is one linear map
    assert warnings == [("W219", 4, 5)]


def test_explicit_relu_turns_off_the_lecture_convention() -> None:
    g, warnings = warned("input [8x8x3]\nCONV 4 3x3\nCONV 4 3x3\nrelu\nFC 3\n")
    assert [n.op for n in g.nodes] == ["input", "conv", "conv", "relu", "linear"]
    assert warnings == [("W219", 2, 1)]  # the first conv is left without its ReLU


def test_generated_names_skip_explicit_ones() -> None:
    g = graph("input [8x8x3]\nconv2: CONV 4 1x1\nCONV 4 1x1\nstem: FC 3\n")
    assert [n.name for n in g.nodes if n.op != "relu"] == ["input", "conv2", "conv3", "stem"]


def test_import_from_specs_directory_and_relative(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "mine.arch").write_text("conv: bn\nblock tiny(c):\n    CONV c 1x1\n")
    main = tmp_path / "net.arch"
    main.write_text(
        'import "lib/mine.arch"\nimport "blocks/resnet.arch"\n'
        "input [56x56x64]\nconv: bn, relu\n"
        "a: tiny(4)\nb: basic(4)\n"
    )
    result = read_spec(main)
    assert result.graph is not None
    # tiny's conv gets a BN and no activation before basic's first conv (line 5, the call)
    ((code, line, note),) = [(d.code, d.line, d.notes[0].span) for d in result.diagnostics]
    assert (code, line, note.line if note else None) == ("W219", 3, 5)
    g = result.graph
    assert g.name == "net" and g.file == str(main)
    # tiny keeps its file's `conv: bn` (no ReLU); basic is the shipped ResNet block
    assert [n.op for n in g.nodes[:3]] == ["input", "conv", "batchnorm"]
    assert g.node("b.downsample").op == "shortcut"
    assert str(tmp_path / "lib" / "mine.arch") in result.sources


def test_network_name_and_init() -> None:
    assert graph("network VGG16\ninit xavier\ninput [8x8x3]\nFC 2\n").name == "VGG16"
    assert graph("network VGG16\ninit xavier\ninput [8x8x3]\nFC 2\n").init == "xavier"
    assert graph("input [8x8x3]\nFC 2\n", "nets/my-net.v2.arch").name == "my_net_v2"


def test_layer_sizes_from_declared_shape() -> None:
    g = graph("input [8x8x3]\nCONV: 3x3 pad 1 -> [8x8x32]\nFC: [1x1x7]\n")
    conv = g.node("conv1")
    assert isinstance(conv, ir.Conv) and conv.out_channels == 32
    fc = g.node("fc1")
    assert isinstance(fc, ir.Linear) and fc.out_features == 7


def test_ir_round_trips_through_json() -> None:
    g = graph(BOTTLENECK.replace("SHORTCUT", "auto") + "GAP\nFC 10 params: 256*10 = 2,560\n")
    again = ir.Graph.from_json(g.to_json())
    assert again == g
    assert again.node("fc1").claims[0].value == 2560


def test_shipped_resnet152_spec_elaborates() -> None:
    spec = Path(__file__).resolve().parent.parent / "specs" / "resnet152.arch"
    result = read_spec(spec)
    assert result.graph is not None
    convs = [n for n in result.graph.nodes if isinstance(n, ir.Conv)]
    # 1 stem conv + 50 bottlenecks x 3 convs (projections come later, from shape inference)
    assert len(convs) == 151


SPECS = Path(__file__).resolve().parent.parent / "specs"


def test_every_shipped_spec_elaborates_cleanly() -> None:
    files = sorted(SPECS.rglob("*.arch"))
    assert len(files) >= 10
    for path in files:
        result = read_spec(path)
        assert result.diagnostics == [], (path, result.diagnostics)
        assert (result.graph is None) == ("blocks" in path.parts), path


def test_a_file_of_blocks_only_is_a_library() -> None:
    result = parse_spec("conv: bn\nblock b(c):\n    CONV c 1x1\n")
    assert (result.graph, result.diagnostics) == (None, [])
    empty = parse_spec("conv: bn\n")
    assert [d.code for d in empty.diagnostics] == ["E003"]


def test_the_front_end_does_not_import_torch() -> None:
    code = (
        "import sys; from archc.frontend import read_spec; "
        "assert read_spec(sys.argv[1]).graph is not None; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code, str(SPECS / "resnet50.arch")], check=True)


def diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    return [(d.code, d.line, d.column, d.message) for d in parse_spec(text, "net.arch").diagnostics]


def test_an_error_in_a_block_called_three_times_is_reported_once_with_a_count() -> None:
    text = "input [8x8x3]\nblock b(w):\n    CONV w/3 3x3\nlayer1: b(64) x3\n"
    (d,) = parse_spec(text, "net.arch").diagnostics
    assert (d.code, d.line, d.column) == ("E208", 3, 10)
    assert [(n.message, n.span.line if n.span else None) for n in d.notes] == [
        ("in block `b`, called here", 4),
        ("… and 2 more calls", None),
    ]


def test_shape_errors_in_a_block_body_point_at_the_call_once() -> None:
    text = "input [8x8x3]\nblock b(c):\n    CONV c 3x3 pad 1 -> [9x9x4]\nlayer1: b(4) x3\nFC 2\n"
    (d,) = check_source(text, "net.arch").diagnostics
    assert (d.code, d.line, d.column) == ("E302", 3, 25)
    assert [(n.message, n.span.line if n.span else None) for n in d.notes] == [
        ("in block `b`, called here", 4),
        ("… and 2 more calls", None),
    ]


def test_channels_first_input_is_warned_with_the_fix() -> None:
    result = parse_spec("input [3x32x32]\nCONV 4 3x3\nFC 2\n", "net.arch")
    (d,) = result.diagnostics
    assert (d.code, d.severity, d.line, d.column) == ("W220", "warning", 1, 1)
    assert d.help == "archc writes height x width x channels: `input [32x32x3]`"
    assert result.graph is not None and result.graph.nodes[0].shape == (32, 3, 32)  # type: ignore[union-attr]
    for fine in ("input [32x32x3]", "input [1x1x4096]", "input [3x3x8]", "input [28x28x1]"):
        assert parse_spec(f"{fine}\nFC 2\n").diagnostics == [], fine


def test_every_arithmetic_result_is_bounded() -> None:
    tiny = "/1e-20" * 8
    text = f"input [8x8x3]\nblock b(w):\n    CONV w 3x3\nx: b(1{tiny})\n"
    assert diagnostics(text) == [("E209", 4, 6, "this arithmetic gives an absurdly large number")]
    thirds = "/3" * 80
    text = f"input [8x8x3]\nblock b(w):\n    BN eps w\nx: b(1{thirds})\n"
    assert diagnostics(text) == [("E209", 4, 6, "this arithmetic gives an absurdly fine fraction")]


def test_a_failing_block_called_a_billion_times_stops_at_the_node_limit() -> None:
    text = (
        "input [8x8x3]\n"
        "block b0():\n    CONV 0 3x3\n"
        "block b1():\n    b0() x1000\n"
        "block b2():\n    b1() x1000\n"
        "block b3():\n    b2() x1000\n"
        "x: b3()\n"
    )
    found = parse_spec(text, "net.arch").diagnostics
    assert [(d.code, d.line, d.column) for d in found] == [("E209", 3, 10), ("E216", 5, 5)]
    # each failed call counts as a node (its line, its empty instance): the limit comes after
    # about 50,000 of them, not after a billion
    more = found[0].notes[-1].message
    assert more.startswith("… and ") and 40_000 < int(more.split()[2]) < 100_000, more


def test_a_rejected_input_line_is_the_only_error() -> None:
    text = "input [0x8x3]\nCONV 4 3x3\nFC 2\n"
    assert diagnostics(text) == [("E209", 1, 1, "input size must be at least 1, got 0")]


def test_a_single_branch_before_concat_is_one_error() -> None:
    (d,) = parse_spec("input [8x8x3]\nbranch:\n    CONV 4 1x1\nconcat\n", "net.arch").diagnostics
    assert (d.code, d.line, d.column) == ("E211", 4, 1)
    assert d.message == "`concat` needs two or more `branch:` sections before it"


def test_an_unnamed_sequential_takes_the_next_position() -> None:
    # EfficientNet's features: a stem, then stages that are Sequentials of blocks.
    g = graph(
        "input [8x8x3]\nblock b(w):\n    CONV w 1x1\n    relu\n"
        "sequential features:\n    CONV 4 1x1\n    relu\n"
        "    sequential:\n        b(4)\n        b(8)\n"
        "    sequential:\n        b(8)\n    relu\n"
    )
    assert [n.name for n in g.nodes if n.op == "conv"] == [
        "features.0",
        "features.2.0.conv1",
        "features.2.1.conv1",
        "features.3.0.conv1",
    ]
    assert g.nodes[-1].name == "features.4"


def test_a_quoted_label_names_a_layer_or_call_with_hyphens() -> None:
    # torchvision's RegNet names its blocks block1-0, block2-0, ...
    g = graph(
        "input [8x8x3]\nblock b(w):\n    CONV w 1x1\n    relu\n"
        'stage block1:\n    "block1-0": b(4)\n    "block1-1": b(4)\n"last-fc": FC 10\n'
    )
    assert [n.name for n in g.nodes if n.op in ("conv", "linear")] == [
        "block1.block1-0.conv1",
        "block1.block1-1.conv1",
        "last-fc",
    ]


def test_a_named_shortcut_written_first() -> None:
    # torchvision's RegNet: the block's `proj` is registered (and written) before `f`.
    g = graph(
        "input [8x8x4]\nblock y(w):\n    shortcut proj:\n        CONV w 1x1 stride 2 no bias\n"
        "        BN\n    residual:\n        stage f:\n            a: CONV w 3x3 stride 2 pad 1\n"
        "            relu\n    add\n    activation: relu\nb: y(8)\nc: y(16)\n"
        "residual:\n    CONV 16 1x1\n    relu\nshortcut skip: auto\nadd\n"
    )
    assert table(g)[1:7] == [
        ("b.proj.0", "conv", ["input"]),
        ("b.proj.1", "batchnorm", ["b.proj.0"]),
        ("b.f.a", "conv", ["input"]),
        ("b.f.relu1", "relu", ["b.f.a"]),
        ("b.add1", "add", ["b.f.relu1", "b.proj.1"]),
        ("b.activation", "relu", ["b.add1"]),
    ]
    assert [n.name for n in g.nodes if n.op == "shortcut"] == ["skip"]


def test_a_library_default_that_sets_a_rate_is_named_in_the_summary(tmp_path: Path) -> None:
    # Issue 23: mbconv's `total = 16` silently gave EfficientNet-B1 (23 blocks) stochastic
    # depth rates up to 0.2 * 22 / 16 = 0.275 instead of torchvision's 0.2 * 22 / 23 = 0.191.
    from archc.report import render_markdown, render_text, summary_dict

    (tmp_path / "lib.arch").write_text(
        "block head(classes, drop = 0.2, stride = 1):\n"
        "    CONV 8 3x3 stride stride pad 1\n"
        "    relu\n"
        "    GAP\n"
        "    dropout drop\n"
        "    FC classes\n"
    )
    main = tmp_path / "net.arch"
    text = 'import "lib.arch"\ninput [8x8x3]\nhead(10)\n'
    main.write_text(text)
    checked = check_source(text, str(main))
    assert checked.diagnostics == []  # a note in the summary, not a finding of lint
    (noted,) = checked.library_defaults
    assert (noted.code, noted.line) == ("I002", 3)
    assert "`head` leaves `drop` at its library default 0.2 (lib.arch line 1)" in noted.message
    assert "line 3: `head` leaves `drop`" in render_text(checked)
    assert "- line 3: `head` leaves `drop`" in render_markdown(checked)
    assert [d["line"] for d in summary_dict(checked)["library_defaults"]] == [3]  # type: ignore[index]
    # `stride` sets no rate; `drop` passed by the call is the caller's choice.
    for given in ("head(10, 0.5)", "head(10, drop 0.5)"):
        checked = check_source(text.replace("head(10)", given), str(main))
        assert checked.library_defaults == [] and checked.diagnostics == []
        assert "library_defaults" not in summary_dict(checked)
    # A block of the spec's own file is the author's: nothing to name.
    own = "block head(p = 0.2):\n    dropout p\n    FC 2\ninput [8]\nhead()\n"
    assert check_source(own).library_defaults == []


def test_efficientnet_family_passes_every_rate_to_its_blocks() -> None:
    # Issue 23: the family spec passes each variant's block count (mbconv has no default
    # `total` any more) and ConvNeXt's stage passes `total` and `p` on: no rate is left to a
    # library default, for any variant.
    from archc.check import check_spec

    for name in ("efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s", "convnext_small"):
        checked = check_spec(f"torchvision/{name}")
        assert checked.ok and checked.library_defaults == [], name


def test_a_rate_default_left_inside_a_library_is_named_at_the_specs_call(tmp_path: Path) -> None:
    # ConvNeXt's `cnstage` once called `cnblock` without `total` and `p`: no spec could set them.
    (tmp_path / "lib.arch").write_text(
        "block inner(rate = 0.3):\n    dropout rate\n\n"
        "block outer(c):\n    CONV c 1x1\n    relu\n    inner()\n"
    )
    main = tmp_path / "net.arch"
    text = 'import "lib.arch"\ninput [8x8x3]\nrelu\nouter(4) x2\nGAP\nFC 2\n'
    main.write_text(text)
    checked = check_source(text, str(main))
    assert checked.diagnostics == []
    (noted,) = checked.library_defaults  # once, although called twice
    assert (noted.line, noted.span.file) == (4, str(main))
    assert noted.message.startswith(
        "`inner`, called by `outer`, leaves `rate` at its library default"
    )
