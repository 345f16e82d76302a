"""Layouts (E312): a value is channels first, or channels last between `permute 0 2 3 1` and
`permute 0 3 1 2`, and a layer given the layout it does not read is an error instead of a
layer acting on the wrong axis (docs/language.md, layouts; docs/diagnostics.md, E312).

What each kind needs is written here by hand from what its torch module reads (axis 1 for
the channels, the last axis for the channels-last FC and layer norm, nothing for elementwise
ones), not read from the registry; the registry walk below fails for a kind added without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.check import check_source
from archc.diagnostics import Diagnostic
from archc.ops import OPS
from archc.ops.layout import CHANNELS_FIRST, CHANNELS_LAST

ROOT = Path(__file__).resolve().parent.parent


def errors(text: str) -> list[Diagnostic]:
    return [d for d in check_source(text).diagnostics if d.severity == "error"]


def one_e312(text: str) -> Diagnostic:
    found = errors(text)
    assert [d.code for d in found] == ["E312"], found
    return found[0]


# --- the reported cases -----------------------------------------------------------------------


def test_a_default_bn_after_a_channels_last_fc() -> None:
    # The BN that `fc: bn, relu` puts after `fc1` would be BatchNorm2d(4) over the heights of
    # the (4, 6, 8) tensor, not over the FC's 8 features. It is reported at the FC's line.
    text = (
        "input [4x4x6]\n"
        "fc: bn, relu\n"
        "permute 0 2 3 1\n"
        "FC 8 channels last\n"
        "FC 6 channels last\n"
        "permute 0 3 1 2\n"
    )
    d = one_e312(text)
    assert (d.span.line, d.span.column) == (4, 1)
    assert "batch norm" in d.message
    assert "channels-first" in d.message and "channels last" in d.message
    assert d.help is not None
    assert "`no bn`" in d.help and "`fc1`" in d.help and "`permute 0 3 1 2`" in d.help
    # With `no bn` on the channels-last FCs, the spec is clean.
    fixed = text.replace("channels last\n", "channels last no bn\n")
    assert check_source(fixed).ok


def test_a_layer_scale_of_a_channels_last_map() -> None:
    # On [5x7x6] after `permute 0 2 3 1` the tensor is (5, 7, 6): the parameter would be
    # (5, 1, 1), one per row.
    d = one_e312("input [5x7x6]\npermute 0 2 3 1\nlayer scale 1e-6\npermute 0 3 1 2\n")
    assert (d.span.line, d.span.column, d.code) == (3, 1, "E312")
    assert "layer scale" in d.message and "height" in d.message
    assert d.help is not None and "`permute 0 3 1 2`" in d.help
    # After the permute back it scales the 6 channels: 6 parameters.
    checked = check_source("input [5x7x6]\npermute 0 2 3 1\npermute 0 3 1 2\nlayer scale 1e-6\n")
    assert checked.ok and checked.accounting is not None
    assert checked.accounting.totals.params == 6


@pytest.mark.parametrize("layer", ["FC 12 channels last", "layer norm channels last"])
def test_a_channels_last_layer_of_a_channels_first_map(layer: str) -> None:
    # Without a permute before it, it would act on the last axis of (6, 8, 8): the width
    # (a layer norm with 2·8 parameters instead of 2·6).
    d = one_e312(f"input [8x8x6]\n{layer}\n")
    assert (d.span.line, d.span.column) == (2, 1)
    assert "channels-last" in d.message and "channels first" in d.message
    assert "width" in d.message
    assert d.help is not None
    assert "`permute 0 2 3 1`" in d.help and "leave out `channels last`" in d.help
    checked = check_source(f"input [8x8x6]\npermute 0 2 3 1\n{layer}\n")
    assert checked.ok, checked.diagnostics


def test_a_layer_norm_over_the_channels_when_channels_last() -> None:
    checked = check_source("input [8x8x6]\npermute 0 2 3 1\nlayer norm channels last\n")
    assert checked.accounting is not None
    assert checked.accounting.totals.params == 2 * 6


def test_a_channels_first_fc_suggests_channels_last() -> None:
    d = one_e312("input [8x8x6]\npermute 0 2 3 1\nFC 10\n")
    assert d.help is not None
    assert "`permute 0 3 1 2`" in d.help and "write `channels last`" in d.help


# --- every kind, on either layout ---------------------------------------------------------------

FIRST, LAST, ANY = "channels first", "channels last", "any"

# kind -> (lines that end in it, the layout it reads). Input [8x6x4]: a (4, 8, 6) map, or the
# tensor (8, 6, 4) after `permute 0 2 3 1`; every size differs, so no axis passes for another.
KINDS: dict[str, list[tuple[str, str]]] = {
    "conv": [("CONV 6 3x3\n", FIRST)],
    "maxpool": [("MAX POOL 2x2\n", FIRST)],
    "avgpool": [("AVG POOL 2x2\n", FIRST)],
    "global_avgpool": [("GAP\n", FIRST)],
    "adaptive_avgpool": [("ADAPTIVE AVG POOL 2x2\n", FIRST)],
    "lrn": [("LRN size 3\n", FIRST)],
    "batchnorm": [("BN\n", FIRST)],
    "relu": [("relu\n", ANY)],
    "silu": [("silu\n", ANY)],
    "relu6": [("relu6\n", ANY)],
    "leaky_relu": [("leaky relu 0.2\n", ANY)],
    "hardswish": [("hardswish\n", ANY)],
    "hardsigmoid": [("hardsigmoid\n", ANY)],
    "sigmoid": [("sigmoid\n", ANY)],
    "tanh": [("tanh\n", ANY)],
    "gelu": [("gelu\n", ANY)],
    "identity": [("identity\n", ANY)],
    "channel_shuffle": [("channel shuffle 2\n", FIRST)],
    "layernorm": [("layer norm\n", FIRST), ("layer norm channels last\n", LAST)],
    "layerscale": [("layer scale 0.5\n", FIRST)],
    "stochastic_depth": [("stochastic depth 0.2\n", ANY)],
    "split": [("split 2 part 1\n", FIRST)],
    "permute": [("permute 0 1 3 2\n", ANY)],
    "slice": [("slice channels 0:2\n", FIRST)],
    "pad": [("pad channels 2\n", FIRST)],
    "multiply": [("gate:\n    relu\n", ANY)],
    "linear": [("FC 5\n", FIRST), ("FC 5 channels last\n", LAST)],
    "dropout": [("dropout 0.3\n", ANY)],
    "flatten": [("flatten\n", FIRST)],
    "softmax": [("softmax\n", FIRST)],
    "concat": [("branch:\n    identity\nbranch:\n    identity\nconcat\n", FIRST)],
    "add": [("residual:\n    relu\nadd\n", ANY)],
}
CASES = [(kind, text, reads) for kind, cases in KINDS.items() for text, reads in cases]


def test_every_kind_says_which_layout_it_reads() -> None:
    assert sorted(KINDS) == sorted(OPS)


@pytest.mark.parametrize("kind,text,reads", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_each_kind_reads_its_layout(kind: str, text: str, reads: str) -> None:
    for permute, layout in (("", FIRST), ("permute 0 2 3 1\n", LAST)):
        spec = "input [8x6x4]\n" + permute + text
        found = errors(spec)
        if reads in (ANY, layout):
            assert found == [], (layout, found)
            continue
        (d,) = found
        assert d.code == "E312"
        # At the kind's own line (the last one of its lines), naming both layouts.
        assert d.span.line == spec.count("\n")
        assert f"{reads.replace(' ', '-')} input" in d.message
        assert f"its input is {layout}" in d.message


def test_elementwise_layers_keep_the_layout() -> None:
    text = (
        "input [8x6x4]\n"
        "permute 0 2 3 1\n"
        "gelu\n"
        "dropout 0.1\n"
        "stochastic depth 0.1\n"
        "identity\n"
        "residual:\n"
        "    FC 4 channels last no relu\n"
        "add\n"
        "FC 10 channels last\n"
        "permute 0 3 1 2\n"
        "CONV 3 1x1\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    layouts = {n.op: checked.layouts[n.name] for n in checked.graph.nodes}
    assert layouts["add"] == layouts["stochastic_depth"] == CHANNELS_LAST
    assert layouts["conv"] == CHANNELS_FIRST
    assert checked.shapes["fc2"] == (8, 6, 10)


def test_an_add_of_two_layouts() -> None:
    d = one_e312("input [8x8x6]\nresidual:\n    permute 0 2 3 1\n    FC 6 channels last\nadd\n")
    assert d.span.line == 5
    assert "channels last and channels first" in d.message


def test_a_projection_of_a_channels_last_map() -> None:
    # The residual widens 6 to 12 channels at each position: no 1x1 conv projects a
    # channels-last map.
    text = (
        "input [8x8x6]\npermute 0 2 3 1\nresidual:\n    FC 12 channels last\nshortcut: auto\nadd\n"
    )
    d = one_e312(text)
    assert d.span.line == 5
    assert "projection shortcut" in d.message and "channels last" in d.message


def test_two_permutes_that_do_not_undo_each_other() -> None:
    # (C, H, W) -> (H, W, C) -> (W, C, H): neither layout.
    d = one_e312("input [8x8x6]\npermute 0 2 3 1\npermute 0 2 3 1\ngelu\nFC 3 channels last\n")
    assert d.span.line == 5
    assert "permuted to W, C, H" in d.message
    # (W, C, H) -> (H, W, C) takes the tensor's axes 3, 1, 2.
    assert d.help is not None and "`permute 0 3 1 2`" in d.help
    # A third one is a full turn: channels first again.
    assert check_source("input [8x8x6]\n" + "permute 0 2 3 1\n" * 3 + "CONV 4 3x3\n").ok


def test_in_c_is_the_channels_of_a_channels_last_value() -> None:
    # After `permute 0 2 3 1` on [8x5x6] the tensor is (8, 5, 6); the block's in.c is 6.
    text = (
        "block wider:\n"
        "    FC 2 * in.c channels last no relu\n"
        "input [8x5x6]\n"
        "permute 0 2 3 1\n"
        "w: wider\n"
    )
    checked = check_source(text)
    assert checked.ok, checked.diagnostics
    assert checked.shapes["w.fc1"] == (8, 5, 12)


def test_in_c_behind_a_layout_error_reports_it_once() -> None:
    text = "block same:\n    CONV in.c 1x1 no relu\ninput [8x5x6]\npermute 0 2 3 1\nBN\ns: same\n"
    d = one_e312(text)
    assert d.span.line == 5


# --- the shipped ConvNeXt ---------------------------------------------------------------------


def test_convnext_still_lints_clean() -> None:
    for spec in ("specs/torchvision/convnext.arch", "specs/blocks/convnext.arch"):
        path = ROOT / spec
        checked = check_source(path.read_text(), str(path))
        assert checked.diagnostics == [], (spec, checked.diagnostics)
    path = ROOT / "specs/torchvision/convnext.arch"  # its default variant: ConvNeXt-T
    checked = check_source(path.read_text(), str(path))
    # Inside a block: channels last between the permutes, channels first after.
    assert checked.layouts["features.1.0.block.3"] == CHANNELS_LAST
    assert checked.layouts["features.1.0.block.6"] == CHANNELS_FIRST
    assert checked.layouts["features.1.0.layer_scale"] == CHANNELS_FIRST
