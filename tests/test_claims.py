"""Claims: `memory:` and `params:` numbers on a spec line, checked at the precision printed.

The reference numbers are the CS231n lecture's VGG16 table (tests/data/lecture_vgg16.arch) and
arithmetic written out here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archc import ir
from archc.check import check_graph, check_source
from archc.numbers import read_printed
from archc.spans import Frame, Span

DATA = Path(__file__).parent / "data"
FILE = "vgg16.arch"


def span(line: int, column: int = 1, width: int = 1) -> Span:
    return Span(file=FILE, line=line, column=column, end_line=line, end_column=column + width)


def claim(kind: str, line: int, expression: str | None, value: int | None, printed: str | None):
    return ir.Claim(
        kind=kind, expression=expression, value=value, printed=printed, span=span(line, 30, 20)
    )


# (line, op, size, memory claim (expr, printed), params claim (expr, printed)) — the lecture.
# Values of the arithmetic are computed by the test (eval of the lecture's own expressions).
VGG16 = [
    (4, "conv", 64, ("224*224*64", "3.2M"), ("(3*3*3)*64", "1,728")),
    (5, "conv", 64, ("224*224*64", "3.2M"), ("(3*3*64)*64", "36,864")),
    (6, "pool", 0, ("112*112*64", "800K"), (None, "0")),
    (7, "conv", 128, ("112*112*128", "1.6M"), ("(3*3*64)*128", "73,728")),
    (8, "conv", 128, ("112*112*128", "1.6M"), ("(3*3*128)*128", "147,456")),
    (9, "pool", 0, ("56*56*128", "400K"), (None, "0")),
    (10, "conv", 256, ("56*56*256", "800K"), ("(3*3*128)*256", "294,912")),
    (11, "conv", 256, ("56*56*256", "800K"), ("(3*3*256)*256", "589,824")),
    (12, "conv", 256, ("56*56*256", "800K"), ("(3*3*256)*256", "589,824")),
    (13, "pool", 0, ("28*28*256", "200K"), (None, "0")),
    (14, "conv", 512, ("28*28*512", "400K"), ("(3*3*256)*512", "1,179,648")),
    (15, "conv", 512, ("28*28*512", "400K"), ("(3*3*512)*512", "2,359,296")),
    (16, "conv", 512, ("28*28*512", "400K"), ("(3*3*512)*512", "2,359,296")),
    (17, "pool", 0, ("14*14*512", "100K"), (None, "0")),
    (18, "conv", 512, ("14*14*512", "100K"), ("(3*3*512)*512", "2,359,296")),
    (19, "conv", 512, ("14*14*512", "100K"), ("(3*3*512)*512", "2,359,296")),
    (20, "conv", 512, ("14*14*512", "100K"), ("(3*3*512)*512", "2,359,296")),
    (21, "pool", 0, ("7*7*512", "25K"), (None, "0")),
    (22, "fc", 4096, (None, "4096"), ("7*7*512*4096", "102,760,448")),
    (23, "fc", 4096, (None, "4096"), ("4096*4096", "16,777,216")),
    (24, "fc", 1000, (None, "1000"), ("4096*1000", "4,096,000")),
]


def _value(expression: str | None) -> int | None:
    # The lecture's arithmetic is products of integers in parentheses; evaluate it without eval.
    if expression is None:
        return None
    result = 1
    for factor in expression.replace("(", "").replace(")", "").split("*"):
        result *= int(factor)
    return result


def lecture_vgg16(override: dict[tuple[int, str], tuple[str | None, str | None]] | None = None):
    """The lecture's VGG16 table as an IR graph, built by hand the way the front end would."""
    override = override or {}
    nodes: list[ir.Node] = [
        ir.Input(
            name="input",
            shape=(3, 224, 224),
            span=span(3),
            claims=[
                claim("memory", 3, "224*224*3", 150528, "150K"),
                claim("params", 3, None, None, "0"),
            ],
        )
    ]
    counts = {"conv": 0, "pool": 0, "fc": 0, "relu": 0}
    for line, op, size, memory, params in VGG16:
        memory = override.get((line, "memory"), memory)
        params = override.get((line, "params"), params)
        claims = [
            claim("memory", line, memory[0], _value(memory[0]), memory[1]),
            claim("params", line, params[0], _value(params[0]), params[1]),
        ]
        counts[op] += 1
        name = f"{op}{counts[op]}"
        common = {"name": name, "inputs": [nodes[-1].name], "span": span(line), "claims": claims}
        if op == "conv":
            nodes.append(ir.Conv(out_channels=size, kernel=(3, 3), padding=(1, 1), **common))
        elif op == "pool":
            nodes.append(ir.MaxPool(kernel=(2, 2), stride=(2, 2), **common))
        else:
            nodes.append(ir.Linear(out_features=size, **common))
        if op != "pool" and line != 24:
            counts["relu"] += 1
            relu = f"relu{counts['relu']}"
            nodes.append(ir.ReLU(name=relu, inputs=[name], span=span(line)))
    return ir.Graph(name="VGG16", file=FILE, nodes=nodes, output=nodes[-1].name)


def test_printed_numbers_are_read_at_their_precision():
    # Suffixed: rounding to the last significant digit; trailing zeros of a whole mantissa are
    # not significant, so 800K is 8e5 ± 0.5e5 and the lecture's 802,816 passes.
    assert read_printed("3.2M").admits(224 * 224 * 64)
    assert read_printed("3.2M").admits(3_150_000)
    assert not read_printed("3.2M").admits(3_250_000)
    assert not read_printed("3.2M").admits(3_149_999)
    assert read_printed("150K").admits(224 * 224 * 3)
    assert read_printed("800K").admits(112 * 112 * 64)
    assert read_printed("25K").admits(7 * 7 * 512)
    assert not read_printed("25K").admits(25_500)
    assert read_printed("1.60M").admits(1_604_999)
    assert not read_printed("1.60M").admits(1_605_000)
    # Without a suffix: exact, with or without thousands separators.
    assert read_printed("1,728").admits(1728)
    assert not read_printed("1,728").admits(1729)
    assert read_printed("4096").admits(4096)
    assert read_printed("0").admits(0)
    assert not read_printed("0").admits(1)
    assert read_printed("1,72") is None
    assert read_printed("lots") is None


def test_lecture_vgg16_claims_all_hold():
    checked = check_graph(lecture_vgg16())
    assert checked.diagnostics == []
    assert len(checked.claims) == 2 * 22
    assert all(c.ok for c in checked.claims)
    matched = {(c.node, c.claim.kind): c.matched for c in checked.claims}
    # The lecture leaves biases out: 3*3*3*64 = 1,728 is the conv's weights without its 64 biases.
    assert matched[("conv1", "params")] == "without biases"
    assert matched[("fc3", "params")] == "without biases"
    assert matched[("pool1", "params")] == "no biases to leave out"


@pytest.mark.parametrize(
    ("line", "kind", "wrong", "code"),
    [
        # arithmetic right, printed value wrong at its precision: 3*3*64*64 = 36,864
        (5, "params", ("(3*3*64)*64", "36,865"), "E401"),
        # 224*224*64 = 3,211,264 is not 3.3M (3,250,000 <= v < 3,350,000)
        (4, "memory", ("224*224*64", "3.3M"), "E401"),
        # consistent claim, but not this layer: the conv's input has 64 channels, not 128
        (8, "params", ("(3*3*64)*128", "73,728"), "E403"),
        # a printed value alone, compared at its precision to 56*56*128 = 401,408
        (9, "memory", (None, "500K"), "E402"),
        # only arithmetic: compared exactly
        (24, "params", ("4096*1001", None), "E403"),
    ],
)
def test_one_wrong_claim_is_reported_alone_at_its_line(line, kind, wrong, code):
    checked = check_graph(lecture_vgg16({(line, kind): wrong}))
    assert [(d.code, d.line) for d in checked.diagnostics] == [(code, line)]
    d = checked.diagnostics[0]
    assert d.severity == "error"
    assert d.span.column == 30
    assert [c.ok for c in checked.claims].count(False) == 1


def test_wrong_claim_help_shows_the_arithmetic():
    checked = check_graph(lecture_vgg16({(5, "params"): ("(3*3*64)*64", "36,865")}))
    (d,) = checked.diagnostics
    assert d.message == "(3*3*64)*64 is 36,864, not 36,865"
    assert "(3*3*64)*64 = 36,864; 36,865 means exactly 36,865" in d.help
    assert "conv2: 3·3·64·64 = 36,864 weights + 64 biases" in d.help

    checked = check_graph(lecture_vgg16({(4, "memory"): ("224*224*64", "3.3M")}))
    (d,) = checked.diagnostics
    assert "3.3M means 3,250,000 ≤ v < 3,350,000" in d.help


def test_layer_mismatch_names_both_readings():
    checked = check_graph(lecture_vgg16({(8, "params"): ("(3*3*64)*128", "73,728")}))
    (d,) = checked.diagnostics
    assert d.code == "E403"
    assert "147,584 (with biases) or 147,456 (without biases)" in d.message


def test_unreadable_printed_value():
    checked = check_graph(lecture_vgg16({(5, "params"): (None, "36.864.0")}))
    assert [(d.code, d.line) for d in checked.diagnostics] == [("E404", 5)]


def test_claim_on_a_block_call_line_counts_the_whole_block():
    # Two convs expanded from `stem: double(8)` on line 2 carry the origin of that call.
    frame = Frame(block="double", call=span(2))
    params = 3 * 3 * 3 * 8 + 8 + 3 * 3 * 8 * 8 + 8  # 808
    nodes = [
        ir.Input(name="input", shape=(3, 8, 8), span=span(1)),
        ir.Conv(
            name="stem.conv1",
            inputs=["input"],
            out_channels=8,
            kernel=(3, 3),
            padding=(1, 1),
            span=span(10),
            origin=[frame],
            claims=[claim("params", 2, None, params, None)],
        ),
        ir.Conv(
            name="stem.conv2",
            inputs=["stem.conv1"],
            out_channels=8,
            kernel=(3, 3),
            padding=(1, 1),
            span=span(11),
            origin=[frame],
        ),
    ]
    graph = ir.Graph(name="t", file=FILE, nodes=nodes, output="stem.conv2")
    checked = check_graph(graph)
    assert checked.diagnostics == []
    assert checked.claims[0].matched == "with biases"


SPEC_WITH_BLOCKS = """\
network T
input [32x32x3]
conv: bn, relu
block pair(w):
    CONV: w 3x3 pad 1
    CONV: w 3x3 pad 1

CONV1: 16 3x3 pad 1   memory: 32*32*16=16K  params: 3*3*3*16 = 432
stage1: pair(16) x2   params: 4*(3*3*16*16 + 2*16) + 4*16 = {stage1}
FC: 10                params: 16*32*32*10
"""


def test_claims_in_spec_text_with_defaults_and_block_calls():
    # stage1 = 2 calls x 2 convs (3*3*16*16 weights + 16 biases) + 4 BNs (16 gamma + 16 beta)
    stage1 = 4 * (3 * 3 * 16 * 16 + 16) + 4 * 32
    assert stage1 == 9_408
    checked = check_source(SPEC_WITH_BLOCKS.format(stage1="9,408"), "t.arch")
    assert checked.diagnostics == []
    matched = [c.matched for c in checked.claims]
    # memory of CONV1's line; CONV1 without its BN and biases (as tables count a conv);
    # stage1 with everything; the FC without its 10 biases
    assert matched == [
        "output values",
        "CONV1 alone, without biases",
        "with biases",
        "without biases",
    ]

    # Consistent arithmetic, but it forgets the four BNs' gamma (4*16): E403 names the line.
    wrong = SPEC_WITH_BLOCKS.replace(" + 4*16", "").format(stage1="9,344")
    (d,) = check_source(wrong, "t.arch").diagnostics
    assert (d.code, d.line) == ("E403", 9)
    assert d.message == (
        "params claim 4*(3*3*16*16+2*16) = 9,344 does not match stage1: "
        "archc counts 9,408 (with biases) or 9,280 (without biases) parameters"
    )
    assert d.help.endswith("8 layers with parameters: 9,280 weights + 128 biases = 9,408")
