"""archc.editor's answers in the details the issue 25 review found wrong: instance order in a
block body's hover, each statement of `add, relu` by its own name, the outline's shape being
the hover's (the first instance's), and `gate:` sections in the outline."""

from __future__ import annotations

from archc.editor import SpecView, Symbol

SPEC = """\
input [8x8x16]
conv: bn, relu

block res(w, stride = 1):
    residual:
        CONV: w 3x3 stride stride pad 1
        CONV: w 3x3 pad 1, no relu
    shortcut: auto
    add, relu
    gate:
        GAP
        CONV: 4 1x1
        CONV: w 1x1, no relu
        sigmoid

a: res(16), res(32, stride 2)
"""


def view() -> SpecView:
    v = SpecView(SPEC, "/tmp/res.arch")
    assert v.checked.ok, v.checked.diagnostics
    return v


def flat(symbols: list[Symbol]) -> list[Symbol]:
    out = []
    for s in symbols:
        out += [s, *flat(s.children)]
    return out


def test_hover_lists_the_instances_outputs_in_network_order():
    # a.0 keeps 8x8x16; a.1 (32 filters at stride 2) makes 4x4x32: in that order, not sorted.
    text = view().hover(6, 9)
    assert text is not None
    assert text.endswith("2 instances; outputs [8x8x16], [4x4x32]")


def test_the_outline_names_each_statement_of_add_relu_and_shows_the_first_instance():
    symbols = {(s.span.line, s.span.column): s for s in flat(view().symbols())}
    add, relu = symbols[(9, 5)], symbols[(9, 10)]
    assert (add.name, add.detail) == ("add1", "add [8x8x16]")
    assert (relu.name, relu.detail) == ("relu2", "relu [8x8x16]")
    # The hover of line 6 says [8x8x16] first: so does the outline.
    assert symbols[(6, 9)].detail == "conv [8x8x16]"


def test_the_outline_has_gate_sections():
    (block,) = [s for s in view().symbols() if s.kind == "block"]
    gate = [c for c in block.children if c.name == "gate"]
    assert len(gate) == 1 and gate[0].kind == "section"
    assert [c.detail for c in gate[0].children] == [
        "global_avgpool [1x1x16]",
        "conv [1x1x4]",
        "conv [1x1x16]",
        "sigmoid [1x1x16]",
    ]


FAMILY = """\
network net{variant}
param variant = "s"
param width = 8
variants(depth):
    s: 1
    m: 2
let widths = [width * 2 ** k for k in range(depth)]
table stages(out, n):
    16, 1
    32, 2
input [8x8x3]
CONV width 3x3 pad 1
"""


def test_the_outline_lists_a_familys_params_variants_lets_and_tables():
    v = SpecView(FAMILY, "/tmp/family.arch")
    assert v.checked.ok, v.checked.diagnostics
    constants = [(s.span.line, s.name, s.detail) for s in v.symbols() if s.kind == "constant"]
    assert constants == [
        (2, "variant", "param"),
        (3, "width", "param"),
        (4, "variants", "s, m"),
        (7, "widths", "let"),
        (8, "stages", "table (out, n), 2 rows"),
    ]
