"""A paper's table typed in its own columns (archc/table.py): the GoogLeNet paper's Table 1
row by row, a wrong cell of each kind caught at its line and column, the columns line and the
cells that do not fit, and ``# expect`` acknowledging a paper's own wrong numbers.

Reference numbers are the paper's (Szegedy et al. 2014, Table 1) or arithmetic written here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from archc import ir
from archc.check import Checked, check_file, check_source

SPECS = Path(__file__).resolve().parent.parent / "specs"

HEAD = (
    "input [224x224x3]\n"
    'import "blocks/inception.arch"\n'
    "conv: relu\n"
    "columns: type  patch size/stride  output size  depth  #1x1  #3x3 reduce  #3x3  "
    "#5x5 reduce  #5x5  pool proj  params (K = 1024)  ops\n"
)
# The paper's first four rows, and inception (3a) with the numbers its columns give.
ROWS = [
    "convolution     7×7/2  112×112×64  1  -    -    -    -   -    -    9.2K   118M",
    "max pool        3×3/2  56×56×64    0",
    "convolution     3×3/1  56×56×192   2  -    64   192  -   -    -    112K   360M",
    "max pool        3×3/2  28×28×192   0",
    "inception (3a)  -      28×28×256   2  64   96   128  16  32   32   159.5K 128M",
]


def table(*rows: str) -> str:
    return HEAD + "\n".join(rows) + "\n"


def findings(text: str) -> list[tuple[str, int, int]]:
    c = check_source(text, "t.arch")
    return [(d.code, d.line, d.column) for d in c.diagnostics]


def test_rows_become_the_layers_the_paper_means() -> None:
    c = check_source(table(*ROWS), "t.arch")
    assert [d.code for d in c.diagnostics] == []
    assert c.graph is not None
    # 7x7/2 with the paper forms' same padding: (224 - 7 + 2·3)/2 + 1 = 112.
    conv1 = c.graph.nodes[1]
    assert isinstance(conv1, ir.Conv)
    assert (conv1.out_channels, conv1.kernel, conv1.stride, conv1.padding) == (
        64,
        (7, 7),
        (2, 2),
        (3, 3),
    )
    # The pools round up: ceil((112 - 3)/2) + 1 = 56.
    pools = [n for n in c.graph.nodes if isinstance(n, ir.MaxPool) and n.stride == (2, 2)]
    assert [p.ceil_mode for p in pools] == [True, True]
    assert [c.shapes[p.name] for p in pools] == [(64, 56, 56), (192, 28, 28)]
    # `#3x3 reduce 64, #3x3 192`: a 1x1 conv of 64 filters, then the 3x3 of 192.
    convs = [n for n in c.graph.nodes if isinstance(n, ir.Conv) and "." not in n.name]
    assert [(n.out_channels, n.kernel, n.padding) for n in convs[1:]] == [
        (64, (1, 1), (0, 0)),
        (192, (3, 3), (1, 1)),
    ]
    # inception (3a) is a call of the block, named as the paper names it.
    assert c.shapes["inception3a.concat1"] == (256, 28, 28)
    # 11 claims: depth on the five rows, params and ops on the three rows with weights.
    assert (len(c.claims), all(x.ok for x in c.claims)) == (11, True)
    ops = {x.node: x.claim.printed for x in c.claims if x.claim.kind == "ops"}
    assert ops == {"conv1": "118M", "conv3": "360M", "inception3a.concat1": "128M"}


def test_params_with_k_1024_and_ops_in_millions() -> None:
    c = check_source(table(*ROWS), "t.arch")
    assert c.accounting is not None
    inside = [la for la in c.accounting.layers if la.name.startswith("inception3a.")]
    # 192·64 + 192·96 + 9·96·128 + 192·16 + 25·16·32 + 192·32 = 163,328 = 159.5 · 1024
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    assert weights == 163_328 == int(159.5 * 1024)
    assert sum(la.weights for la in inside) == weights
    assert sum(la.macs for la in inside) == weights * 28 * 28 == 128_049_152
    # Read with K = 1000 the same cell is wrong: 159.5K would mean 159,450 to 159,550.
    k1000 = table(*ROWS).replace("params (K = 1024)", "params")
    assert ("E403", 9, 68) in findings(k1000)


# One wrong cell of each kind, in the 3x3/1 convolution row (line 7): the row reads
# "convolution  3×3/1  56×56×192  2  -  64  192  -  -  -  112K  360M".
WRONG_CELLS = [
    ("patch size/stride", "3×3/1  56×56×192", "3×3/2  56×56×192", "E302", 24),
    ("output size", "56×56×192   2", "56×56×128   2", "E302", 24),
    ("depth", "56×56×192   2", "56×56×192   1", "E407", 36),
    ("#3x3 reduce", "2  -    64   192", "2  -    32   192", "E403", 68),
    ("#3x3", "64   192  -", "64   128  -", "E302", 24),
    ("params", "112K   360M", "113K   360M", "E403", 68),
    ("ops", "112K   360M", "112K   350M", "E406", 75),
]


@pytest.mark.parametrize(
    ("old", "new", "code", "column"),
    [w[1:] for w in WRONG_CELLS],
    ids=[w[0] for w in WRONG_CELLS],
)
def test_a_wrong_cell_is_caught_at_its_line_and_column(
    old: str, new: str, code: str, column: int
) -> None:
    rows = list(ROWS)
    assert old in rows[2]
    rows[2] = rows[2].replace(old, new)
    assert findings(table(*rows))[0] == (code, 7, column)


def test_a_wrong_inception_column_changes_the_output_and_the_counts() -> None:
    rows = list(ROWS)
    rows[4] = rows[4].replace("32   32", "32   48")  # pool proj 48: 272 channels
    assert findings(table(*rows)) == [("E302", 9, 24), ("E403", 9, 68), ("E406", 9, 75)]


def test_wrong_type_and_cells_that_do_not_fit_their_columns() -> None:
    def first(row: str) -> tuple[str, int, int]:
        return findings(table(ROWS[0], row))[0]

    assert first("mix pool  3×3/2  56×56×64  0") == ("E105", 6, 1)
    assert first("max pool  3×3/2  56×56×64  0  -  -  -  -  -  -  -  -  7") == ("E114", 6, 55)
    assert first("max pool  56×56×64") == ("E114", 6, 11)  # a shape in the patch column
    assert first("max pool  3×3/2  56×56×64  two") == ("E102", 6, 28)
    assert first("max pool  3×3/2  56×56×64  1.5") == ("E114", 6, 28)
    assert first("max pool  3×3/2  56×56×64  0  64") == ("E114", 6, 31)  # no #1x1 in a pool
    assert first("convolution  3×3/1  56×56×192  2  64") == ("E114", 6, 35)  # #1x1, 3x3 row
    assert first("inception (3a)  3×3/1  28×28×256  2") == ("E114", 6, 17)
    assert first("inception (3a)  -  28×28×256  2  64  96") == ("E114", 6, 1)  # empty columns
    assert first("softmax (50%)") == ("E114", 6, 1)
    assert first("max pool  3×3/2  56×56×" + "6" * 5000) == ("E114", 6, 18)


def test_the_columns_line() -> None:
    def first(columns: str) -> tuple[str, int, int]:
        return findings(f"input [8x8x3]\ncolumns: {columns}\nlinear - 10\n")[0]

    assert first("type  outptu size") == ("E113", 2, 16)
    assert first("output size  type") == ("E113", 2, 10)
    assert first("type  depth  depth") == ("E113", 2, 23)
    assert first("type  #3x3  #3×3") == ("E113", 2, 22)
    assert first("type  #3x5") == ("E113", 2, 16)
    assert first("type  params (K = 1000000)") == ("E113", 2, 22)
    assert first("type  depth (K = 1024)") == ("E113", 2, 21)
    # Commas and bars separate columns too; `# ` starts a comment, `#3x3` is a column.
    text = (
        "input [8x8x3]\n"
        "columns: type | patch size / stride | output size, #3x3 reduce  # the paper's\n"
        "convolution  3x3/1  8×8×4  2\n"
    )
    c = check_source(text, "t.arch")
    assert c.ok and c.graph is not None
    assert [n.kernel for n in c.graph.nodes if isinstance(n, ir.Conv)] == [(1, 1), (3, 3)]


def test_dropout_percentage_and_blank_rows() -> None:
    text = (
        "input [4x4x8]\ncolumns: type  patch size/stride  output size  depth\n"
        "avg pool  4×4/1  1×1×8  0\ndropout (40%)\nlinear  -  1×1×10  1\nsoftmax\n"
    )
    c = check_source(text, "t.arch")
    assert c.ok, c.diagnostics
    assert c.graph is not None
    (dropout,) = [n for n in c.graph.nodes if isinstance(n, ir.Dropout)]
    assert dropout.p == 0.4
    assert c.shapes[c.graph.output] == (10,)


def test_a_table_row_may_carry_a_total_line_and_lines_before_it_are_ordinary() -> None:
    text = (
        "input [8x8x3]\nCONV 4 3x3 pad 1\ncolumns: type  output size\n"
        "max pool  4×4×4\nlinear  10\nTOTAL params: 762\n"
    )
    c = check_source(text, "t.arch")
    # conv 3·3·3·4 + 4 = 112, linear 4·4·4·10 + 10 = 650
    assert c.ok and [x.ok for x in c.claims] == [True]


@pytest.mark.parametrize(
    ("layer", "code"), [("FC 10", "E114"), ("conv3-16", "E105"), ("frobnicate 3", "E114")]
)
def test_a_layer_after_a_table_is_told_it_is_read_as_a_row(layer: str, code: str) -> None:
    text = table(ROWS[0]) + layer + "\n"
    (d,) = check_source(text, "t.arch").diagnostics
    assert (d.code, d.line) == (code, 6)
    (note,) = d.notes
    assert "a row of the table begun on line 4" in note.message and "`stage" in note.message
    assert note.span is not None and (note.span.line, note.span.column) == (4, 1)


# --- # expect --------------------------------------------------------------------------------


def test_expect_acknowledges_a_finding_and_reports_one_that_is_gone() -> None:
    wrong = table(*ROWS).replace("112K   360M", "113K   360M")
    acknowledged = wrong.replace("360M\n", "360M   # expect E403\n")
    c = check_source(acknowledged, "t.arch")
    assert (c.ok, c.diagnostics) == (True, [])
    assert [(d.code, d.line, d.column) for d in c.expected] == [("E403", 7, 68)]
    stale = table(*ROWS).replace("360M\n", "360M   # expect E403\n")
    c = check_source(stale, "t.arch")
    # The caret stands at the code in the comment: the row's 78 characters, `   # expect `, E403.
    assert [(d.code, d.line, d.column) for d in c.diagnostics] == [("E408", 7, 91)]
    assert not c.ok


# A grouped conv whose 6 input channels do not split into 4 groups: the network cannot be built.
UNBUILDABLE = "input [4x4x6]\nCONV 8 3x3 pad 1 groups 4   # expect E308\nGAP\nFC 3\n"


def test_expect_cannot_acknowledge_an_error_that_stops_the_network() -> None:
    c = check_source(UNBUILDABLE, "t.arch")
    assert not c.ok and c.expected == []
    # The finding stays, and the expectation is itself an error at the code in the comment.
    assert [(d.code, d.line, d.column) for d in c.diagnostics] == [
        ("E308", 2, 1),
        ("E409", 2, 38),
    ]
    assert "E308 cannot be acknowledged" in c.diagnostics[1].message
    # A duplicated name (E210) the same: the graph is never built.
    twice = "input [4x4x6]\nc: CONV 8 1x1\nc: CONV 8 1x1  # expect E210\nGAP\n"
    c = check_source(twice, "t.arch")
    assert [(d.code, d.line) for d in c.diagnostics] == [("E210", 3), ("E409", 3)]


def test_archc_load_and_summary_show_the_error_an_expect_cannot_hide(tmp_path: Path) -> None:
    import subprocess
    import sys

    archc = pytest.importorskip("archc")
    pytest.importorskip("torch")
    with pytest.raises(archc.ArchcError) as e:
        archc.load(UNBUILDABLE)
    assert "E308" in str(e.value) and "E409" in str(e.value)
    spec = tmp_path / "t.arch"
    spec.write_text(UNBUILDABLE)
    run = subprocess.run(
        [sys.executable, "-m", "archc", "summary", str(spec)], capture_output=True, text=True
    )
    assert run.returncode == 1 and "error[E308]" in run.stderr and "error[E409]" in run.stderr


def test_expect_reads_codes_in_either_case() -> None:
    # 228 = 2·110 + 8: a 7×7 stride 2 conv leaves the last row unread (W301).
    text = "input [228x228x3]\nCONV 96 7x7 stride 2   # expect w301\nGAP\n"
    c = check_source(text, "t.arch")
    assert c.ok and c.diagnostics == [] and [d.code for d in c.expected] == ["W301"]


@pytest.mark.parametrize(
    ("comment", "line", "column", "words"),
    [
        ("CONV 8 1x1  # expect E999", 2, 22, "E999 is not a code archc has"),
        ("CONV 8 1x1  # expect", 2, 13, "names no code"),
        ("# expect W301", 2, 10, "a line of its own"),
        ("  # EXPECT e403", 2, 12, "a line of its own"),
    ],
)
def test_an_expect_that_acknowledges_nothing_is_reported(
    comment: str, line: int, column: int, words: str
) -> None:
    c = check_source(f"input [8x8x3]\n{comment}\nCONV 8 1x1\nGAP\n", "t.arch")
    assert [(d.code, d.line, d.column) for d in c.diagnostics] == [("E409", line, column)]
    assert words in c.diagnostics[0].message


# --- the shipped spec: the paper's Table 1 ------------------------------------------------------

# The paper's own numbers archc finds wrong, by row: its type (and patch), the codes. Each is
# explained in the spec's comments and acknowledged there with `# expect`.
PAPER_FINDINGS = {
    "convolution 7×7/2": ["E403", "E406"],  # 2.7K, 34M: 9,408 weights, 118.0M MACs
    "inception (3a)": ["E403"],  # 159K: 163,328 = 159.5K
    "inception (4a)": ["E403", "E406"],  # 364K, 73M: 366.75K, 73.6M
    "inception (4b)": ["E403"],  # 437K: 438.0K
    "inception (4c)": ["E403"],  # 463K: 497.5K
    "inception (4d)": ["E403"],  # 580K: 590.5K
    "inception (4e)": ["E403"],  # 840K: 847.0K
    "inception (5a)": ["E403", "E406"],  # 1072K, 54M: 1018.0K, 51.1M
    "inception (5b)": ["E403"],  # 1388K: 1409.0K
}


def weights_and_macs(c: Checked) -> tuple[int, int]:
    """Weights and multiply-accumulates of the convs and linear layers, from the IR's fields."""
    assert c.graph is not None
    weights = total = 0
    for node in c.graph.nodes:
        if isinstance(node, ir.Conv):
            w = node.out_channels * c.shapes[node.inputs[0]][0] * math.prod(node.kernel)
            weights += w
            total += w * math.prod(c.shapes[node.name][1:])
        elif isinstance(node, ir.Linear):
            w = node.out_features * math.prod(c.shapes[node.inputs[0]])
            weights += w
            total += w
    return weights, total


def test_googlenet_table_lints_clean_but_for_the_papers_documented_numbers() -> None:
    c = check_file(SPECS / "googlenet_table.arch")
    assert c.ok and c.diagnostics == []
    lines = (SPECS / "googlenet_table.arch").read_text(encoding="utf-8").splitlines()
    made: dict[str, list[str]] = {}
    for d in c.expected:
        row = lines[d.line - 1]
        key = "convolution 7×7/2" if row.startswith("convolution     7×7/2") else row[:14]
        made.setdefault(key, []).append(d.code)
        column = 68 if d.code == "E403" else 75
        assert d.column == column and row[column - 1 :].split()[0][-1] in "KM"
    assert made == PAPER_FINDINGS
    # Every other claim holds: 19 depths, 3 params, 9 ops.
    held = [x for x in c.claims if x.ok]
    assert len(held) == len(c.claims) - 12 == 31
    assert sorted({x.claim.kind for x in held}) == ["depth", "ops", "params"]


def test_googlenet_table_is_the_network_of_googlenet_arch_without_its_lrns() -> None:
    table_, paper = check_file(SPECS / "googlenet_table.arch"), check_file(SPECS / "googlenet.arch")
    assert table_.graph is not None and paper.graph is not None

    def convs(c: Checked) -> list[tuple[object, ...]]:
        assert c.graph is not None
        return [
            (n.name, n.out_channels, n.kernel, n.stride, n.padding)
            for n in c.graph.nodes
            if isinstance(n, ir.Conv) and "." in n.name
        ]

    assert convs(table_) == convs(paper)  # the 54 convs of the nine Inception modules
    assert [n.op for n in table_.graph.nodes].count("lrn") == 0
    assert [n.op for n in paper.graph.nodes].count("lrn") == 2
    weights, total = weights_and_macs(table_)
    assert (weights, total) == weights_and_macs(paper)
    # Row by row, the weights the structural columns give (9,408 for the 7x7 conv; the nine
    # modules as in the spec's comments; 1024·1000 for the linear layer), and their MACs.
    modules = [163_328, 388_096, 375_552, 448_512, 509_440, 604_672, 867_328, 1_042_432, 1_442_816]
    sides = [28, 28, 14, 14, 14, 14, 14, 7, 7]
    assert weights == 9_408 + 64 * 64 + 9 * 64 * 192 + sum(modules) + 1024 * 1000 == 6_990_272
    stem = 9_408 * 112 * 112 + (64 * 64 + 9 * 64 * 192) * 56 * 56
    assert total == stem + sum(m * s * s for m, s in zip(modules, sides)) + 1024 * 1000
    assert table_.shapes[table_.graph.output] == (1000,)


def test_binary_suffixes_in_any_claim() -> None:
    from archc.numbers import read_printed

    printed = read_printed("159Ki")
    assert printed is not None
    assert (printed.low, printed.high) == (158.5 * 1024, 159.5 * 1024)
    # An FC from 1024 to 1000: 1,024,000 weights = 1000Ki exactly, 1000K only at K = 1000.
    text = "input [1024]\nFC 1000 params: 1000Ki\nFC 10 params: 1024*1000 = 1000Ki\n"
    c = check_source(text, "t.arch")
    assert [d.code for d in c.diagnostics] == ["E403"]  # the second FC has 10,010
    assert [x.ok for x in c.claims] == [True, False]
