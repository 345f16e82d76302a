"""Defaults lines and the lecture convention: what follows a layer nobody wrote, and W219 at
the layers those rules leave without an activation."""

from __future__ import annotations

from pathlib import Path

from archc import ir
from archc.frontend import parse_spec


def lint(text: str) -> tuple[ir.Graph, list[tuple[str, int, int]]]:
    result = parse_spec(text, "net.arch")
    assert result.graph is not None, result.diagnostics
    return result.graph, [(d.code, d.line, d.column) for d in result.diagnostics]


def ops(g: ir.Graph) -> list[str]:
    return [n.op for n in g.nodes]


def test_one_relu_turns_the_convention_off_and_each_bare_layer_is_warned() -> None:
    text = (
        "input [32x32x3]\n"
        "CONV 8 3x3 pad 1\n"  # line 2: no ReLU any more
        "relu\n"  # line 3: written by hand, turns the convention off
        "CONV 8 3x3 pad 1\n"  # line 4: reaches the pool bare
        "MAX POOL 2x2\n"
        "FC 64\n"  # line 6: reaches FC 10 bare
        "FC 10\n"  # the last FC: its outputs are the scores
    )
    g, warnings = lint(text)
    assert ops(g) == ["input", "conv", "relu", "conv", "maxpool", "linear", "linear"]
    assert warnings == [("W219", 4, 1), ("W219", 6, 1)]
    (d, _) = parse_spec(text, "net.arch").diagnostics
    assert d.message == (
        "this conv has no activation after it: the `relu` on line 3 turned off the automatic "
        "ReLUs for the whole file"
    )
    (note,) = d.notes
    assert note.span is not None and (note.span.line, note.span.column) == (3, 1)
    assert d.help == "write `relu` after it, or `no relu` to silence this"


def test_bn_between_does_not_hide_a_missing_activation() -> None:
    _, warnings = lint("input [8x8x3]\nCONV 4 3x3\nBN\nCONV 4 3x3\nrelu\nFC 2\n")
    assert warnings == [("W219", 2, 1)]


def test_no_relu_and_the_last_fc_are_left_alone() -> None:
    g, warnings = lint("input [8x8x3]\nCONV 4 3x3 no relu\nCONV 4 3x3\nrelu\nFC 10\nsoftmax\n")
    assert ops(g) == ["input", "conv", "conv", "relu", "linear", "softmax"]
    assert warnings == []


def test_defaults_lines_are_taken_at_their_word() -> None:
    # `conv: bn, relu` turns the convention off too, but says what follows each conv
    text = "input [8x8x3]\nconv: bn, relu\nfc: relu\nCONV 4 3x3\nMAX POOL 2x2\nFC 8\nFC 2\n"
    g, warnings = lint(text)
    assert ops(g) == ["input", "conv", "batchnorm", "relu", "maxpool", "linear", "relu", "linear"]
    assert warnings == []
    # without `fc: relu` the two FCs are one linear map, which no defaults line asked for
    assert lint(text.replace("fc: relu\n", ""))[1] == [("W219", 5, 1)]


def test_conv_bn_conv_without_activation_is_warned_whatever_turned_the_convention_off() -> None:
    g, warnings = lint("input [8x8x3]\nconv: bn\nCONV 4 3x3\nCONV 4 3x3\nMAX POOL 2x2\n")
    assert ops(g) == ["input", "conv", "batchnorm", "conv", "batchnorm", "maxpool"]
    assert warnings == [("W219", 3, 1)]  # the second conv reaches a pool, a non-linearity


def test_warning_in_a_block_called_three_times_is_reported_once() -> None:
    text = "input [8x8x3]\nblock b(c):\n    CONV c 3x3 pad 1\n    relu\n    CONV c 1x1\n"
    text += "layer1: b(4) x3\n"
    result = parse_spec(text, "net.arch")
    (d,) = result.diagnostics
    assert (d.code, d.line, d.column) == ("W219", 5, 5)
    assert [(n.message, n.span.line if n.span else None) for n in d.notes] == [
        ("in block `b`, called here", 6),
        ("the `relu` that turned the lecture convention off", 4),
        ("… and 1 more call", None),  # the last instance's conv is the output: not warned
    ]


def test_the_convention_is_per_file_for_imported_blocks(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("block tiny(c):\n    CONV c 1x1\n")
    main = tmp_path / "net.arch"
    main.write_text('import "lib.arch"\ninput [8x8x3]\nrelu\na: tiny(4)\nFC 2\n')
    result = parse_spec(main.read_text(), str(main))
    # lib.arch is a block library, no lecture table: its own lines (no input, no activation)
    # do not turn the convention on, so tiny's conv gets no ReLU nobody wrote
    assert result.graph is not None and result.diagnostics == []
    assert ops(result.graph) == ["input", "relu", "conv", "linear"]


def test_a_library_without_activations_does_not_put_relus_in_its_blocks(tmp_path: Path) -> None:
    # Issue 23: a library writing no activation and no defaults line made its convs
    # conv -> ReLU -> BN, although the importing spec writes its activations.
    (tmp_path / "lib.arch").write_text("block cbr(c):\n    CONV c 3x3 pad 1 no bias\n    BN\n")
    main = tmp_path / "net.arch"
    main.write_text('import "lib.arch"\ninput [8x8x3]\na: cbr(4)\nrelu\nGAP\nFC 2\n')
    result = parse_spec(main.read_text(), str(main))
    assert result.graph is not None and result.diagnostics == []
    assert ops(result.graph) == ["input", "conv", "batchnorm", "relu", "global_avgpool", "linear"]
    # A lecture table keeps its convention, for its own blocks too.
    g, warnings = lint("block two(c):\n    CONV c 3x3 pad 1\ninput [8x8x3]\ntwo(4)\nFC 2\n")
    assert ops(g) == ["input", "conv", "relu", "linear"] and warnings == []


def test_a_follower_may_be_an_activation_of_several_words_with_arguments() -> None:
    # `conv: bn, leaky relu 0.1` is a defaults line: every conv is followed by BN and a leaky
    # ReLU of slope 0.1 (it was once read as a layer named `conv`, a BN and a leaky ReLU).
    text = "input [8x8x3]\nconv: bn, leaky relu 0.1\nCONV 4 3x3\nCONV 4 3x3\n"
    g, warnings = lint(text)
    assert ops(g) == ["input", "conv", "batchnorm", "leaky_relu", "conv", "batchnorm", "leaky_relu"]
    assert [n.negative_slope for n in g.nodes if n.op == "leaky_relu"] == [0.1, 0.1]
    assert warnings == []
    g, _ = lint(text.replace("leaky relu 0.1", "leaky relu slope 0.25"))
    assert {n.negative_slope for n in g.nodes if n.op == "leaky_relu"} == {0.25}
    g, _ = lint(text.replace("leaky relu 0.1", "leaky relu"))  # torch's default slope
    assert {n.negative_slope for n in g.nodes if n.op == "leaky_relu"} == {0.01}
    # A kind that is not an activation keeps the line a labelled layer.
    g, _ = lint("input [8x8x3]\nconv: CONV 4 3x3\nrelu\n")
    assert [n.name for n in g.nodes] == ["input", "conv", "relu1"]


def test_a_follower_may_be_spelled_in_several_words() -> None:
    # `conv: batch norm` was read as a BN layer named `conv`, and the automatic ReLUs stayed on.
    g, warnings = lint("input [8x8x3]\nconv: batch norm, relu\nCONV 4 3x3\nGAP\nFC 10\n")
    assert ops(g) == ["input", "conv", "batchnorm", "relu", "global_avgpool", "linear"]
    assert warnings == []
    g, _ = lint("input [8x8x3]\nconv: batch norm(eps 0.001), relu6\nCONV 4 3x3\n")
    assert ops(g) == ["input", "conv", "batchnorm", "relu6"]
    assert [n.eps for n in g.nodes if n.op == "batchnorm"] == [0.001]


def test_a_follower_written_again_after_the_defaults_is_warned() -> None:
    # `conv: bn, relu` and then `CONV …, BN, relu` builds BN, ReLU, BN, ReLU.
    text = "input [8x8x3]\nconv: bn, relu\nCONV 4 3x3 pad 1, BN, relu\nGAP\nFC 3\n"
    g, warnings = lint(text)
    assert ops(g)[1:6] == ["conv", "batchnorm", "relu", "batchnorm", "relu"]
    assert warnings == [("W224", 3, 19)]
    assert lint(text.replace(", BN, relu", ", relu"))[1] == [("W224", 3, 19)]
    # What the defaults do not put there is the author's.
    assert lint(text.replace("conv: bn, relu", "conv: bn").replace(", BN", ""))[1] == []
    # Issue 23: a BN on a line of its own after the defaults' BN built two BNs without a word.
    g, warnings = lint(text.replace(", BN, relu", "\nBN"))
    assert ops(g)[1:5] == ["conv", "batchnorm", "relu", "batchnorm"]
    assert warnings == [("W224", 4, 1)]
    # ... also after a pool, no more: the BN then follows a layer the defaults did not touch.
    assert lint(text.replace(", BN, relu", "\nMAX POOL 2x2\nBN"))[1] == []
