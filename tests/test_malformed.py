"""Malformed specs: each gives one clear diagnostic with the right code, line and column, and
never a traceback. Sources are written with explicit line ends so that columns can be counted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc.frontend import FrontendResult, parse_spec, read_spec

INPUT = "input [224x224x3]\n"

BLOCK = (
    "block twice(w):\n"  # line 2
    "    CONV: w 3x3 pad 1\n"  # line 3
    "    CONV: w 3x3 pad 1\n"  # line 4
)

BLOCK_CALL_INPUT = INPUT + BLOCK  # the call goes on line 5

# (name, text, code, line, column)
CASES = [
    # syntax (E1xx)
    ("unexpected character", INPUT + "CONV 64 3x3 $\n", "E101", 2, 13),
    ("unbalanced bracket", INPUT + "CONV 64 3x3 ]\n", "E102", 2, 13),
    ("unclosed parenthesis", INPUT + "layer1: foo(64\n", "E102", 2, 15),
    ("unindent to no level", "block b(w):\n        CONV w 3x3\n    relu\n", "E103", 3, 1),
    ("header without body", INPUT + "residual:\n", "E104", 2, 1),
    ("body under a layer", INPUT + "CONV1:\n    CONV 64 3x3\n", "E104", 3, 5),
    ("unknown layer kind", INPUT + "WIBBLE 3x3\n", "E105", 2, 1),
    ("unknown multi-word label", INPUT + "FOO BAR: 64\n", "E105", 2, 1),
    ("keyword without value", INPUT + "CONV 64 3x3 stride\n", "E106", 2, 13),
    ("too many conv values", INPUT + "CONV 64 3 5\n", "E106", 2, 11),
    ("relu with an argument", INPUT + "CONV 64 3x3\nRELU 3\n", "E106", 3, 6),
    ("unknown keyword argument", INPUT + "CONV 64 3x3 spin=2\n", "E106", 2, 13),
    ("no without a flag", INPUT + "CONV 64 3x3 no way\n", "E106", 2, 13),
    (
        "bad shortcut mode",
        INPUT + "residual:\n    relu\nshortcut: sideways\nadd\n",
        "E106",
        4,
        11,
    ),
    ("two-number shape", INPUT + "CONV 64 3x3 -> [224x224]\n", "E107", 2, 16),
    ("conflicting shapes", INPUT + "[5x5x64] CONV 64 3x3 -> [6x6x64]\n", "E107", 2, 25),
    ("input without channels", "input (224 × 224 image)\nCONV 64 3x3\n", "E107", 1, 1),
    ("claim with arithmetic on the right", INPUT + "FC 10 params: 3 = 2*3\n", "E108", 2, 19),
    ("rounded number in arithmetic", INPUT + "FC 10 params: 3.2M*2\n", "E108", 2, 15),
    ("unknown init", INPUT + "init zeros\nFC 10\n", "E109", 2, 6),
    ("network without a name", "network\n" + INPUT + "FC 10\n", "E109", 1, 1),
    ("invalid name", INPUT + "conv-a: CONV 64 3x3\n", "E110", 2, 1),
    ("unknown training setting", INPUT + "train:\n    frobnicate 3\nFC 10\n", "E112", 3, 5),
    ("training setting with a shape", INPUT + "train:\n    lr 0.1 -> [4]\nFC 10\n", "E112", 3, 15),
    # files and emptiness (E0xx)
    ("empty file", "", "E003", 1, 1),
    ("only comments", "# nothing here\n\n", "E003", 1, 1),
    ("input but no layers", "\n" + INPUT, "E003", 2, 1),
    # elaboration (E2xx)
    ("recipe dropout the network lacks", INPUT + "train:\n    dropout 0.5\nFC 10\n", "E221", 3, 5),
    (
        "recipe excludes absent BN",
        INPUT + "train:\n    weight decay 1e-4 except bn\nFC 10\n",
        "E221",
        3,
        30,
    ),
    (
        "momentum out of range",
        INPUT + "train:\n    optimizer sgd momentum 1.5\nFC 10\n",
        "E222",
        3,
        28,
    ),
    (
        "warm-up with plateau",
        INPUT + "train:\n    schedule plateau\n    warmup 5\nFC 10\n",
        "E222",
        4,
        5,
    ),
    (
        "train section in a stage",
        INPUT + "stage s:\n    train:\n        lr 1\n    FC 10\n",
        "E217",
        3,
        5,
    ),
    ("missing input line", "CONV 64 3x3\nrelu\n", "E201", 1, 1),
    ("second input line", INPUT + "FC 10\ninput [4096]\n", "E201", 3, 1),
    ("undefined block", INPUT + "layer1: bottleneck(64)\n", "E202", 2, 9),
    (
        "recursive block",
        INPUT + "block loop(n):\n    CONV n 1x1\n    loop(n)\nx: loop(8)\n",
        "E203",
        4,
        5,
    ),
    (
        "mutually recursive blocks",
        INPUT + "block a(n):\n    b(n)\nblock b(n):\n    a(n)\nx: a(8)\n",
        "E203",
        5,
        5,
    ),
    ("import not found", 'import "no/such/file.arch"\n' + INPUT + "FC 10\n", "E204", 1, 1),
    ("too many block arguments", INPUT + BLOCK + "x: twice(64, 2)\n", "E206", 5, 14),
    ("unknown block keyword", INPUT + BLOCK + "x: twice(64, stride 2)\n", "E206", 5, 14),
    ("missing block argument", INPUT + BLOCK + "x: twice()\n", "E206", 5, 4),
    ("positional after keyword", INPUT + BLOCK + "x: twice(w=64, 3)\n", "E106", 5, 16),
    ("unknown name in block", INPUT + "block b(w):\n    CONV width 3x3\nx: b(64)\n", "E207", 3, 10),
    ("stray word outside a block", INPUT + "CONV 64 3x3 stride s\n", "E207", 2, 20),
    (
        "non-integer arithmetic in a block",
        INPUT + "block b(w):\n    CONV w/3 3x3\nx: b(64)\n",
        "E208",
        3,
        10,
    ),
    (
        "division by zero in a block",
        INPUT + "block b(w):\n    CONV w // (w - w) 3x3\nx: b(64)\n",
        "E208",
        3,
        10,
    ),
    ("zero filters", INPUT + "CONV 0 3x3\n", "E209", 2, 6),
    ("negative filters", INPUT + "CONV -1 3x3\n", "E209", 2, 6),
    ("absurdly large filters", INPUT + "CONV 99999999 3x3\n", "E209", 2, 6),
    ("absurdly large input", "input [224x224x99999999]\nFC 10\n", "E209", 1, 1),
    ("zero-sized pool", INPUT + "MAX POOL 0x0\n", "E209", 2, 10),
    ("same padding with an even kernel", INPUT + "CONV 64 4x4 pad same\n", "E209", 2, 17),
    ("repetition x0", INPUT + "conv3-64 x0\n", "E209", 2, 1),
    ("duplicate names", INPUT + "CONV1: 64 3x3\nCONV1: 64 3x3\n", "E210", 3, 1),
    ("duplicate stage", INPUT + "stage s:\n    relu\nstage s:\n    relu\n", "E210", 4, 1),
    ("add without residual", INPUT + "CONV 64 3x3\nadd\n", "E211", 3, 1),
    ("concat without branches", INPUT + "CONV 64 3x3\nconcat\n", "E211", 3, 1),
    ("reference to no output", INPUT + "stem: CONV 4 1x1\nconcat with stme\n", "E225", 3, 13),
    ("unnamed stage", INPUT + "stage:\n    CONV 4 1x1\n", "E104", 2, 1),
    ("residual without add", INPUT + "residual:\n    CONV 3 3x3 pad 1\nrelu\n", "E211", 2, 1),
    ("branch without concat", INPUT + "branch:\n    relu\nbranch:\n    relu\nFC 3\n", "E211", 2, 1),
    ("conv without filters", INPUT + "CONV 3x3\n", "E213", 2, 1),
    ("in.c outside a block", INPUT + "CONV in.c * 2 3x3\n", "E223", 2, 6),
    (
        "shortcut mode before its residual",
        INPUT + "shortcut: auto\nresidual:\n    CONV 3 1x1\nadd\n",
        "E211",
        2,
        1,
    ),
    ("block defined in an if body", INPUT + "if 1:\n    block b():\n        relu\n", "E217", 3, 5),
    ("unnamed sequential outside one", INPUT + "sequential:\n    relu\n", "E217", 2, 1),
    ("function with too few values", INPUT + "CONV make_divisible(4) 1x1\n", "E106", 2, 6),
    ("a list where a number belongs", INPUT + "let w = [4, 8]\nCONV w 1x1\n", "E226", 3, 6),
    ("index out of range", INPUT + "let w = [4, 8]\nCONV w[2] 1x1\n", "E227", 3, 8),
    ("a name defined twice", INPUT + "let w = 4\nlet w = 8\nCONV w 1x1\n", "E228", 3, 5),
    ("block defined twice", INPUT + BLOCK + BLOCK + "x: twice(3)\n", "E214", 5, 1),
    ("dropout probability of 1.5", INPUT + "FC 10\nDROPOUT 1.5\n", "E215", 3, 1),
    ("pool padding beyond half the window", INPUT + "MAX POOL 3x3 pad 2\n", "E215", 2, 1),
    ("repetition too large", INPUT + "conv3-64 x5000\n", "E216", 2, 1),
    ("block inside a stage", INPUT + "stage s:\n    block b(w):\n        relu\n", "E217", 3, 5),
    ("reserved layer name forward", INPUT + "forward: CONV 64 3x3\n", "E218", 2, 1),
    ("reserved layer name training", INPUT + "FC 10\n[10] training: FC 10\n", "E218", 3, 6),
    ("reserved name on a paper line", INPUT + "half: conv3-64\n", "E218", 2, 1),
    ("reserved stage name", INPUT + "stage eval:\n    CONV 64 3x3\n", "E218", 2, 1),
    ("reserved call name", BLOCK_CALL_INPUT + "state_dict: twice(64) x2\n", "E218", 5, 1),
    (
        "reserved name in a block body",
        BLOCK_CALL_INPUT.replace("    CONV: w", "    parameters: CONV w", 1) + "x: twice(8)\n",
        "E218",
        3,
        5,
    ),
    ("dunder layer name", INPUT + "__init__: CONV 64 3x3\n", "E218", 2, 1),
    ("private module attribute", INPUT + "_modules: FC 10\n", "E218", 2, 1),
    ("unknown table column", INPUT + "columns: type  outptu size\nlinear  10\n", "E113", 2, 16),
    (
        "table cell that does not fit",
        INPUT + "columns: type  patch size/stride  output size  depth  #1x1\n"
        "max pool  3×3/2  112×112×3  0  64\n",
        "E114",
        3,
        32,
    ),
    ("dot in a quoted name", INPUT + '"a.b": CONV 64 3x3\n', "E110", 2, 1),
    ("quoted name starting with a digit", INPUT + '"1-a": CONV 64 3x3\n', "E110", 2, 1),
    ("quoted name naming nothing", INPUT + '"a-b":\n', "E106", 2, 1),
    ("reserved quoted name", INPUT + '"_x-1": FC 10\n', "E218", 2, 1),
    (
        "shortcut name with a hyphen",
        INPUT + "residual:\n    relu\nshortcut a-b: auto\nadd\n",
        "E110",
        4,
        1,
    ),
    # Each of these once built a different network than written, without a word.
    (
        "defaults line with a layer in it",
        INPUT + "conv: bn, relu, dropout\nCONV 4 3x3\n",
        "E106",
        2,
        17,
    ),
    ("none beside followers", INPUT + "conv: bn, relu, none\nCONV 4 3x3\n", "E106", 2, 17),
    ("no relu on an activation", INPUT + "CONV 4 3x3 no relu\nrelu no relu\n", "E106", 3, 6),
    ("no bn on a pool", INPUT + "GAP no bn\n", "E106", 2, 5),
    ("no bias on a BN", INPUT + "CONV 4 3x3\nBN no bias\n", "E106", 3, 4),
    ("no relu after a comma", INPUT + "CONV 8 3x3 no bias, BN, silu, no relu\n", "E106", 2, 31),
    ("sequential gate", INPUT + "sequential gate:\n    GAP\n", "E106", 2, 1),
    ("sequential residual", INPUT + "sequential residual:\n    relu\nadd\n", "E106", 2, 1),
    ("block named like a kind", INPUT + "block gelu:\n    CONV 4 1x1\ngelu\n", "E218", 2, 1),
    ("block named like a function", INPUT + "block max(a):\n    CONV a 1x1\n", "E218", 2, 7),
    ("else", INPUT + "if 1:\n    relu\nelse:\n    relu\n", "E106", 4, 1),
    ("elif", INPUT + "elif 1 == 2:\n    relu\n", "E106", 2, 1),
    ("shortcut with a layer after it", INPUT + "shortcut: CONV 4 1x1\n", "E106", 2, 11),
    ("a kind written as a call", INPUT + "CONV 4 3x3\ndropout(0.5)\n", "E105", 3, 1),
    (
        "a block call with a flag",
        INPUT + "block b(w):\n    CONV w 1x1\nb(8) no relu\n",
        "E106",
        4,
        6,
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_malformed(text: str, code: str, line: int, column: int) -> None:
    result = parse_spec(text, "bad.arch")
    assert result.graph is None
    first = result.diagnostics[0]
    assert (first.code, first.line, first.column) == (code, line, column), first
    assert first.severity == "error"
    assert first.span.file == "bad.arch"


def only(result: FrontendResult) -> tuple[str, int, int]:
    (d,) = result.diagnostics
    return d.code, d.line, d.column


def test_error_in_block_body_points_at_body_and_call() -> None:
    text = INPUT + "block b(w):\n    CONV w/3 3x3\nlayer1: b(64)\n"
    (d,) = parse_spec(text, "bad.arch").diagnostics
    assert (d.code, d.line, d.column) == ("E208", 3, 10)
    assert "64/3" in d.message
    (note,) = d.notes
    assert note.message == "in block `b`, called here"
    assert note.span is not None and (note.span.line, note.span.column) == (4, 9)


def test_nested_block_errors_carry_one_note_per_call() -> None:
    text = INPUT + "block inner(w):\n    CONV w 3x3 stride 0\nblock outer(w):\n    inner(w)\n"
    text += "x: outer(8)\n"
    (d,) = parse_spec(text, "bad.arch").diagnostics
    assert (d.code, d.line) == ("E209", 3)
    assert [(n.message, n.span.line) for n in d.notes if n.span] == [
        ("in block `inner`, called here", 5),
        ("in block `outer`, called here", 6),
    ]


def test_crlf_line_ends_work_and_keep_columns() -> None:
    good = parse_spec("input [224x224x3]\r\nCONV 64 3x3\r\nrelu\r\n")
    assert good.diagnostics == [] and good.graph is not None
    assert [n.op for n in good.graph.nodes] == ["input", "conv", "relu"]
    bad = parse_spec("input [224x224x3]\r\nCONV 64 3x3 stride\r\n")
    assert only(bad) == ("E106", 2, 13)


def test_tabs_indent_bodies_and_count_one_column() -> None:
    text = INPUT + "block b(w):\n\tCONV w 3x3 pad 1 wibble\nx: b(4)\n"
    assert only(parse_spec(text)) == ("E106", 3, 19)
    good = parse_spec(INPUT + "block b(w):\n\tCONV w 3x3\n\trelu\nx: b(4)\n")
    assert good.graph is not None
    assert [n.name for n in good.graph.nodes] == ["input", "x.conv1", "x.relu1"]


def test_utf8_bom_is_ignored() -> None:
    good = parse_spec("\ufeffinput [224x224x3]\nCONV 64 3x3\n")
    assert good.graph is not None
    assert [n.op for n in good.graph.nodes] == ["input", "conv", "relu"]
    assert only(parse_spec("\ufeffCONV1: 64 3x3\n")) == ("E201", 1, 1)


def test_bom_crlf_file(tmp_path: Path) -> None:
    path = tmp_path / "net.arch"
    path.write_bytes(b"\xef\xbb\xbfinput [8x8x3]\r\nCONV 4 3x3\r\n")
    result = read_spec(path)
    assert result.graph is not None
    assert result.graph.name == "net"
    assert result.sources[str(path)].startswith("input")


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "model.arch"
    path.write_bytes(b"input [8x8x3]\nCONV\x00\xff\xfe 4 3x3\n")
    assert only(read_spec(path)) == ("E002", 2, 5)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.arch"
    path.write_bytes("input [8x8x3]\n# caf\xe9\nFC 3\n".encode("latin-1"))
    assert only(read_spec(path)) == ("E002", 2, 6)


def test_unreadable_file(tmp_path: Path) -> None:
    assert only(read_spec(tmp_path / "missing.arch")) == ("E001", 1, 1)
    assert only(read_spec(tmp_path)) == ("E001", 1, 1)


def test_recursive_import(tmp_path: Path) -> None:
    (tmp_path / "a.arch").write_text('import "b.arch"\nblock a(w):\n    CONV w 1x1\n')
    (tmp_path / "b.arch").write_text('import "a.arch"\nblock b(w):\n    CONV w 1x1\n')
    main = tmp_path / "main.arch"
    main.write_text('import "a.arch"\ninput [8x8x3]\nx: a(4)\n')
    d = read_spec(main).diagnostics
    assert [(x.code, Path(x.file).name, x.line, x.column) for x in d] == [("E205", "b.arch", 1, 1)]
    assert "a.arch → b.arch → a.arch" in d[0].message


def test_self_import(tmp_path: Path) -> None:
    main = tmp_path / "main.arch"
    main.write_text('input [8x8x3]\nimport "main.arch"\nFC 3\n')
    assert only(read_spec(main)) == ("E205", 2, 1)


def test_errors_in_imported_file_point_into_it(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("block b(w):\n    CONV w 3x3 $\n")
    main = tmp_path / "main.arch"
    main.write_text('import "lib.arch"\ninput [8x8x3]\nx: b(4)\n')
    result = read_spec(main)
    (d,) = result.diagnostics
    assert (d.code, Path(d.file).name, d.line, d.column) == ("E101", "lib.arch", 2, 16)
    assert str(tmp_path / "lib.arch") in result.sources


def test_several_bad_lines_are_all_reported() -> None:
    text = INPUT + "WIBBLE 3\nCONV 64 3x3 stride\nWOBBLE 4\n"
    codes = [(d.code, d.line) for d in parse_spec(text).diagnostics]
    assert codes == [("E105", 2), ("E106", 3), ("E105", 4)]


def test_lecture_total_line_of_another_number_gets_a_hint() -> None:
    # TOTAL memory: and TOTAL params: are claims (tests/test_totals.py); nothing else is read.
    text = INPUT + "FC 10\nTOTAL flops: 15.5G\n"
    (d,) = parse_spec(text).diagnostics
    assert (d.code, d.line, d.column) == ("E105", 3, 1)
    assert d.help is not None and "comment" in d.help


def test_diagnostics_have_help() -> None:
    d = parse_spec(INPUT + "layer1: bottleneck(64)\n").diagnostics[0]
    assert d.help is not None and "layer kinds" in d.help


def test_every_emitted_code_is_documented() -> None:
    root = Path(__file__).resolve().parent.parent
    emitted = set()
    for module in (root / "archc").rglob("*.py"):
        emitted |= set(re.findall(r'"([EW]\d{3})"', module.read_text()))
    front_end = {c for c in emitted if re.fullmatch(r"[EW][0-2]\d\d", c)}
    assert {"E302", "E403", "W301", "E501"} <= emitted  # the scan finds the later stages
    documented = set(
        re.findall(r"^### ([EW]\d{3})\b", (root / "docs/diagnostics.md").read_text(), re.M)
    )
    assert emitted == documented
    # The list `# expect` checks its codes against (E409) is the documented one, I001 included.
    from archc.diagnostics import CODES

    assert CODES == documented | {"I001"}
    # Tested apart (E004, E005: tests/test_hostile.py; W219, W224: tests/test_defaults.py).
    tested = {c[2] for c in CASES} | {"E001", "E002", "E004", "E005", "E111", "E205"}
    tested |= {"W219", "W220", "W221", "W224"}  # W221: tests/test_review_fixes.py
    tested |= {"W006"}  # tests/test_hostile3.py
    tested |= {"E229"}  # tests/test_language_params.py
    assert front_end <= tested


def test_reserved_names_cover_torch_module_attributes() -> None:
    """The front end cannot import torch, so it keeps its own list of the public names (private
    ones are reserved by their leading `_`); it must cover every attribute of an nn.Module and
    of the compiled network and its parts."""
    torch = pytest.importorskip("torch")
    import archc
    from archc.elaborate import RESERVED_NAMES, reserved

    model = archc.load("input [8x8x3]\nresidual:\n    CONV 3 3x3 pad 1\nadd\nstage s:\n    relu\n")
    attributes = set(dir(torch.nn.Module()))
    containers = [m for m in model.modules() if type(m).__module__.startswith("archc.generated")]
    assert len(containers) == 2  # the network, and the stage with its forward
    for module in containers:
        attributes |= set(dir(module)) - set(module._modules)
    assert {"forward", "training", "eval", "state_dict", "__init__", "__class__"} <= attributes
    assert sorted(a for a in attributes if not reserved(a)) == []
    public = {a for a in attributes if not a.startswith("_")}
    assert public <= RESERVED_NAMES  # the list itself, not only the rule
    assert not any(name.startswith("_") for name in RESERVED_NAMES)
    assert not reserved("Forward") and not reserved("forward1") and not reserved("conv1")
    assert not any(reserved(p) for p in ("conv", "pool", "bn", "relu", "fc", "add", "input"))


def test_several_syntax_errors_are_all_reported() -> None:
    text = INPUT + "CONV 64 3x3 $\nlayer1: foo(64\nCONV 64 3x3 stride\nrelu ]\n"
    codes = [(d.code, d.line, d.column) for d in parse_spec(text).diagnostics]
    assert codes == [("E101", 2, 13), ("E102", 3, 15), ("E106", 4, 13), ("E102", 5, 6)]


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        ("CONV " + "(" * 40 + "1" + ")" * 40 + " 3x3", 2, 38),
        ("CONV " + "+".join(["1"] * 500) + " 3x3", 2, 407),
        ("FC 3 params: " + "+".join(["1"] * 500), 2, 415),
    ],
)
def test_expressions_too_deep_for_the_tree_walk(body: str, line: int, column: int) -> None:
    assert only(parse_spec(INPUT + body + "\n")) == ("E111", line, column)


def test_bodies_nested_too_deep() -> None:
    text = INPUT + "".join(" " * i + f"stage s{i}:\n" for i in range(40)) + " " * 40 + "relu\n"
    assert only(parse_spec(text)) == ("E111", 35, 1)


def test_nested_parentheses_within_the_limit_are_arithmetic() -> None:
    result = parse_spec(INPUT + "CONV " + "(" * 20 + "8" + ")" * 20 + " 3x3\n")
    assert result.graph is not None
    assert result.graph.node("conv1").out_channels == 8  # type: ignore[union-attr]
