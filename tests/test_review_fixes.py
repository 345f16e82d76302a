"""A reviewer's findings, each held here: `pad same` under dilation, conflicting and repeated
conv options, stochastic depth off a residual branch (W221), a kernel given twice, `=` in a
condition, and the docs and help texts that had fallen behind the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc.check import check_source
from archc.frontend import parse_spec
from archc.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = (ROOT / "docs/language.md").read_text(encoding="utf-8")
INPUT = "input [9x9x4]\n"


# --- 1. `pad same` follows the dilation ----------------------------------------------------------

# (line, the padding PyTorch's padding='same' gives it: dilation·(K − 1)/2 per axis, worked out)
SAME = [
    ("CONV 4 3x3 dilation 2 pad same", (2, 2)),  # 2·2/2
    ("CONV 4 3x3 pad same", (1, 1)),
    ("CONV 4 5x5 dilation 3 pad same", (6, 6)),  # 3·4/2
    ("CONV 4 4x4 dilation 2 pad same", (3, 3)),  # an even kernel spanning 7: symmetric
    ("CONV 4 2x2 dilation 2 pad same", (1, 1)),  # spans 3
    ("CONV 4 3x3 dilation 2x1 pad same", (2, 1)),
    ("conv3-4 dilation 2", (2, 2)),  # the paper form's implicit `same`
    ("CONV3-4: dilation 3", (3, 3)),
]


@pytest.mark.parametrize(("line", "padding"), SAME, ids=[s[0] for s in SAME])
def test_same_padding_spans_the_dilated_window(line: str, padding: tuple[int, int]) -> None:
    checked = check_source(INPUT + line + "\n")
    assert checked.ok, checked.diagnostics
    assert checked.graph is not None
    assert checked.graph.node("conv1").padding == padding
    assert checked.shapes["conv1"] == (4, 9, 9)  # `same`: the size is kept


def test_a_dilated_conv_sees_its_span_as_docs_accounting_says() -> None:
    checked = check_source(INPUT + "CONV 4 3x3 dilation 2 pad same\n")
    assert checked.accounting is not None
    # size_out = 1 + (K − 1)·1 with K the span 2·(3 − 1) + 1 = 5
    assert checked.accounting.layer("conv1").rf_size == 5


def test_same_padding_is_pytorchs() -> None:
    torch = pytest.importorskip("torch")
    import archc

    for line, _ in SAME:
        model = archc.load(INPUT + line + "\n")
        conv = model.conv1
        reference = torch.nn.Conv2d(4, 4, conv.kernel_size, dilation=conv.dilation, padding="same")
        x = torch.randn(1, 4, 9, 9)
        reference.load_state_dict(conv.state_dict())
        with torch.no_grad():
            assert torch.equal(conv(x), reference(x)), line


@pytest.mark.parametrize(
    "line",
    [
        "CONV 4 2x2 dilation 3 pad same",  # spans 4: PyTorch pads 1 before, 2 after
        "CONV 4 4x4 pad same",
        "CONV 4 2x2 dilation 2x1 pad same",  # spans 3 high, 2 wide
    ],
)
def test_same_padding_of_an_even_span_is_an_error(line: str) -> None:
    d = parse_spec(INPUT + line + "\n", "bad.arch").diagnostics[0]
    assert (d.code, d.line, d.column) == ("E209", 2, line.index("same") + 1)
    assert "one more row or column" in d.message and d.help == "write the padding as a number"


def test_same_padding_of_an_even_span_in_a_paper_form() -> None:
    d = parse_spec(INPUT + "conv4-4 dilation 3\n", "bad.arch").diagnostics[0]
    assert (d.code, d.line, d.column) == ("E209", 2, 1)
    assert "4x4 at dilation 3 (it spans 10x10)" in d.message


# --- 2. groups and depthwise, repeated flags ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ("CONV 4 3x3 pad 1 depthwise groups 2", 35),  # the second of the two: `groups`'s value
        ("CONV 4 3x3 pad 1 groups 2 depthwise", 27),
        ("CONV 4 3x3 pad 1 g2 depthwise", 21),
        ("CONV 4 3x3 pad 1 depthwise g2", 28),
    ],
)
def test_depthwise_with_groups_is_an_error(line: str, column: int) -> None:
    d = parse_spec(INPUT + line + "\n", "bad.arch").diagnostics[0]
    assert (d.code, d.line, d.column) == ("E106", 2, column)
    assert "`depthwise`" in d.message and "`groups`" in d.message


@pytest.mark.parametrize(
    ("line", "column", "word"),
    [
        ("CONV 4 3x3 pad 1 depthwise depthwise", 28, "depthwise"),
        ("CONV 4 3x3 no bias no bias", 20, "no bias"),
        ("MAX POOL 3x3 ceil ceil", 19, "ceil"),
        ("FC 4 channels last channels last", 20, "channels last"),
        ("CONV 4 3x3 groups 2 groups 4", 28, "groups"),  # a keyword: as it was
    ],
)
def test_a_flag_given_twice_is_an_error_like_a_keyword(line: str, column: int, word: str) -> None:
    d = parse_spec(INPUT + line + "\n", "bad.arch").diagnostics[0]
    assert (d.code, d.line, d.column) == ("E106", 2, column)
    assert d.message == f"`{word}` is given twice"


# --- 3. stochastic depth off a residual branch (W221) ------------------------------------------

ON_A_BRANCH = [
    "residual:\n    CONV 4 3x3 pad 1\n    stochastic depth 0.1\nadd\n",
    "residual:\n    stochastic depth 0.1\n    CONV 4 3x3 pad 1\nadd\n",
    "block b(drop):\n    residual:\n        CONV 4 3x3 pad 1\n"
    "        stochastic depth drop\n    add\nx: b(0.1) x2\n",
]
OFF_A_BRANCH = [
    ("CONV 4 3x3 pad 1\nstochastic depth 0.1\n", 3),
    ("stochastic depth 0.1\nresidual:\n    CONV 4 3x3 pad 1\nadd\n", 2),
    ("residual:\n    CONV 4 3x3 pad 1\nadd\nstochastic depth 0.1\nFC 10\n", 5),
]


@pytest.mark.parametrize("body", ON_A_BRANCH)
def test_stochastic_depth_on_a_residual_branch_is_quiet(body: str) -> None:
    checked = check_source(INPUT + body)
    assert checked.ok and checked.diagnostics == []


@pytest.mark.parametrize(("body", "line"), OFF_A_BRANCH)
def test_stochastic_depth_off_a_residual_branch_warns(body: str, line: int) -> None:
    checked = check_source(INPUT + body)
    (d,) = checked.diagnostics
    assert (d.severity, d.code, d.line, d.column) == ("warning", "W221", line, 1)
    assert d.help is not None and "residual" in d.help
    assert checked.ok  # a warning: the network still builds


def test_w221_in_a_block_is_reported_once_with_its_calls() -> None:
    text = INPUT + "block b:\n    CONV 4 3x3 pad 1\n    stochastic depth 0.1\nx: b x3\n"
    (d,) = check_source(text).diagnostics
    assert (d.code, d.line) == ("W221", 4)
    assert d.notes and d.notes[0].message == "in block `b`, called here"


def test_w221_can_be_acknowledged() -> None:
    text = INPUT + "CONV 4 3x3 pad 1\nstochastic depth 0.1  # expect W221\n"
    assert check_source(text).diagnostics == []


# --- 4. a kernel given twice --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ("CONV 4 3x3 kernel 5", 19),  # the caret on the second: `5`
        ("CONV 4 kernel 5 3x3", 17),
        ("CONV 4 3x3 3x3", 12),
        ("MAX POOL 3x3 kernel 2", 21),
    ],
)
def test_a_kernel_given_twice(line: str, column: int) -> None:
    d = parse_spec(INPUT + line + "\n", "bad.arch").diagnostics[0]
    assert (d.code, d.line, d.column) == ("E106", 2, column)
    assert d.message == "`kernel` is given twice"
    assert d.help is not None and "kernel K" in d.help


def test_every_kind_with_a_kernel_keyword_says_so_in_its_help() -> None:
    with_kernel = [op for op in OPS.values() if "kernel" in op.keywords]
    assert {op.kind for op in with_kernel} >= {"conv", "maxpool", "avgpool"}
    for op in with_kernel:
        assert "kernel K" in op.help, op.kind


# --- 5. `=` in a condition ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "column", "name"),
    [("a = 1", 8, "a"), ("a=1", 8, "a"), ("a == 1 and b = 2", 19, "b"), ("(a = 1)", 9, "a")],
)
def test_an_assignment_in_a_condition_says_compare_with_double_equals(
    condition: str, column: int, name: str
) -> None:
    text = INPUT + f"block b(a, b):\n    if {condition}:\n        relu\n    relu\nx: b(1, 2)\n"
    d = parse_spec(text, "bad.arch").diagnostics[0]
    assert (d.code, d.line, d.column) == ("E106", 3, column)
    assert d.help == f"compare with `==`: `{name} == …`"


# --- 6. docs and help that had fallen behind ---------------------------------------------------

KERNEL_ACTIVATIONS = [op.title for op in OPS.values() if op.kernel_activation]


def test_the_kernel_activations_are_at_least_the_six_of_docs_kernels() -> None:
    # docs/kernels.md: ReLU6, leaky ReLU, SiLU, hardswish, hardsigmoid besides ReLU
    assert set(KERNEL_ACTIVATIONS) >= {
        "ReLU",
        "ReLU6",
        "leaky ReLU",
        "SiLU",
        "hardswish",
        "hardsigmoid",
    }


def _listed(text: str) -> list[str]:
    """The activations a sentence lists: `A, B, … and Z`."""
    return [t.strip() for t in re.split(r",|\band\b", text) if t.strip()]


def test_language_docs_name_the_fused_activations() -> None:
    m = re.search(
        r"and the activations with a kernel epilogue: ([^(]*?) \(docs/kernels\.md\)", LANGUAGE
    )
    assert m is not None
    listed = _listed(" ".join(m[1].split()))
    assert sorted(listed) == sorted(KERNEL_ACTIVATIONS)


def test_compile_help_names_the_fused_activations(capsys) -> None:
    from archc.cli import main

    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    m = re.search(r"activation groups are one op each, for (.*?) \(archc\.fuse", out)
    assert m is not None, out
    assert sorted(_listed(m[1])) == sorted(KERNEL_ACTIVATIONS)
    assert "-> ReLU groups" not in out


HEADERS = [
    "block b:",
    "sequential block b:",
    "stage s:",
    "sequential s:",
    "sequential:",
    "residual:",
    "shortcut:",
    "gate:",
    "branch:",
    "inline branch:",
    "sequential branch:",
    "train:",
]


def test_the_indentation_docs_name_every_body_opener() -> None:
    start = LANGUAGE.index("### Indentation")
    section = LANGUAGE[start : LANGUAGE.index("\n## ", start)]
    section = " ".join(section.split())
    for header in ["block …:", "stage NAME:", "if …:", "`columns:`"] + [
        h
        for h in HEADERS
        if h not in ("block b:", "sequential block b:", "stage s:", "sequential s:")
    ]:
        assert header in section, header
    assert "`sequential NAME:`" in section and "`sequential block …:`" in section


@pytest.mark.parametrize("header", HEADERS)
def test_every_body_opener_named_in_e104_opens_a_body(header: str) -> None:
    # The header takes a body (no E104 for it) ...
    taken = parse_spec(INPUT + header + "\n    relu\n", "ok.arch").diagnostics
    assert not [d for d in taken if d.code in ("E102", "E104")], taken
    # ... and E104's message, for a line that takes none, names it among those that do.
    (d,) = [
        d
        for d in parse_spec(INPUT + "CONV1:\n    CONV 4 3x3\n", "bad.arch").diagnostics
        if d.code == "E104"
    ]
    words = header.rstrip(":").split()
    first = "block" if words[:2] == ["sequential", "block"] else words[0]
    assert f"`{first}`" in d.message, (header, d.message)
    if words[-1] == "branch":
        assert "`branch`" in d.message and f"`{words[0]}`" in d.message


def test_a_gate_may_end_in_a_map_of_the_inputs_shape_as_the_docs_say() -> None:
    checked = check_source("input [8x8x4]\ngate:\n    CONV 4 3x3 pad 1 no relu\n    sigmoid\n")
    assert checked.ok, checked.diagnostics
    assert checked.shapes["multiply1"] == (4, 8, 8)
    assert "in a map of the input's own shape (`[HxWxC]`" in " ".join(LANGUAGE.split())
    (d,) = check_source("input [8x8x4]\ngate:\n    CONV 4 3x3 no relu\n").diagnostics
    assert d.code == "E310" and d.help is not None and "map of the input's shape" in d.help
