"""The expression language's values (issue 23): exact numbers, floats only from `log`, `sqrt`
and fractional powers, strings, lists, tuples, conditions, indexing, comprehensions, the
functions; and the statements that name values: `let`, `table`, `for`."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from archc import ir
from archc import syntax as S
from archc.elaborate.functions import ListValue
from archc.elaborate.problems import Problem
from archc.elaborate.values import Values
from archc.frontend import parse_spec
from archc.parser import parse


def value(expr: str, **env: object) -> object:
    """The value of ``expr`` with ``env``'s names bound, as `let v = EXPR` computes it."""
    spec, diags = parse(f"let v = {expr}\n", "v.arch")
    assert spec is not None and not diags, diags
    (st,) = spec.body
    assert isinstance(st, S.Let)
    return Values(env, None).value(st.value)  # type: ignore[arg-type]


def problem(expr: str, **env: object) -> tuple[str, str]:
    with pytest.raises(Problem) as info:
        value(expr, **env)
    return info.value.code, info.value.message


def graph(text: str) -> ir.Graph:
    result = parse_spec(text, "net.arch")
    assert result.graph is not None, [(d.code, d.line, d.message) for d in result.diagnostics]
    return result.graph


def errors(text: str) -> list[tuple[str, int, int, str]]:
    result = parse_spec(text, "net.arch")
    return [(d.code, d.line, d.column, d.message) for d in result.diagnostics]


def widths(g: ir.Graph) -> list[int]:
    return [n.out_channels for n in g.nodes if isinstance(n, ir.Conv)]


# --- numbers -----------------------------------------------------------------------------------


def test_arithmetic_stays_exact() -> None:
    assert value("1 / 3 + 1 / 6") == Fraction(1, 2)
    assert value("7 // 2") == 3 and value("-7 // 2") == -4  # floor, as Python
    assert value("7 % 3") == 1 and value("-7 % 3") == 2
    assert value("2 ** 10") == 1024 and value("2 ** -2") == Fraction(1, 4)
    assert value("2.09 ** 3") == Fraction(209, 100) ** 3  # an integer exponent is exact
    assert value("2 ** 3 ** 2") == 512  # right to left, as Python
    assert value("1 + 2 * 3 ** 2 % 5") == 1 + 2 * 3**2 % 5  # Python's precedence
    assert isinstance(value("0.1 + 0.2"), Fraction) and value("0.1 + 0.2") == Fraction(3, 10)


def test_floats_come_only_from_log_sqrt_and_fractional_powers() -> None:
    assert value("log(8, 2)") == math.log(8, 2) and isinstance(value("log(8, 2)"), float)
    assert value("log(10)") == math.log(10)
    assert value("sqrt(2)") == math.sqrt(2)
    assert value("2 ** 0.5") == 2**0.5 and isinstance(value("2 ** 0.5"), float)
    # A value computed from a float stays a float; rounding makes an exact number again.
    assert isinstance(value("sqrt(4) * 3"), float) and value("sqrt(4) * 3") == 6.0
    assert value("round(sqrt(2) * 10)") == 14 and isinstance(value("round(sqrt(2))"), Fraction)


def test_rounding_functions() -> None:
    assert [value(f"round({x})") for x in ("2.5", "3.5", "-2.5")] == [2, 4, -2]  # half to even
    assert value("round(2.5 * sqrt(1))") == 2  # a float's halves too
    assert [value(f"ceil({x})") for x in ("2.1", "-2.1", "sqrt(2)")] == [3, -2, 2]
    assert [value(f"floor({x})") for x in ("2.9", "-2.1")] == [2, -3]
    assert [value(f"int({x})") for x in ("2.9", "-2.9", "7 / 2")] == [2, -2, 3]  # toward 0
    assert value("abs(0 - 5 / 2)") == Fraction(5, 2)
    assert value("make_divisible(36, 8)") == 40


def test_conditions_are_one_or_zero() -> None:
    assert value("3 > 2") == 1 and value("3 < 2") == 0
    assert value("1 < 2 and 2 < 1") == 0 and value("1 < 2 or 2 < 1") == 1
    assert value("not 0") == 1 and value("not [1]") == 0 and value('not ""') == 1
    assert value("(3 > 2) * 10 + 1") == 11
    assert value("16 if 3 > 2 else 8") == 16 and value("16 if 0 else 8 if 1 else 4") == 8
    # `and`/`or` do not evaluate what they do not need: no index error here.
    assert value("len(xs) > 5 and xs[5] > 0", xs=ListValue([Fraction(1)])) == 0


# --- strings, lists, tuples --------------------------------------------------------------------


def test_lists_tuples_strings() -> None:
    assert value("[1, 2, 3]") == (1, 2, 3) and isinstance(value("[1, 2]"), ListValue)
    assert value("(1, 2)") == (1, 2) and not isinstance(value("(1, 2)"), ListValue)
    assert value("(1,)") == (1,) and value("(1)") == 1  # `(a)` groups
    assert value("[1, 2] + [3]") == (1, 2, 3) and value("[0] * 3") == (0, 0, 0)
    assert value('"b" + "3"') == "b3" and value("'b3'") == "b3"
    assert value('"b3" == "b3"') == 1 and value('"b3" != "b4"') == 1
    assert value("[]") == () and value("len([])") == 0


def test_indexing_and_slicing() -> None:
    xs = ListValue([Fraction(k) for k in (16, 24, 40, 80)])
    assert value("xs[0]", xs=xs) == 16 and value("xs[-1]", xs=xs) == 80
    assert value("xs[1:3]", xs=xs) == (24, 40) and isinstance(value("xs[1:3]", xs=xs), ListValue)
    assert value("xs[:2]", xs=xs) == (16, 24) and value("xs[2:]", xs=xs) == (40, 80)
    assert value("xs[len(xs) - 1]", xs=xs) == 80 and value("xs[4 / 2]", xs=xs) == 40
    assert value('"stage"[1:3]') == "ta" and value("[[1, 2], [3, 4]][1][0]") == 3
    assert value("[(1, 2), (3, 4)][1][1]") == 4


def test_comprehensions() -> None:
    assert value("[k * k for k in range(5)]") == (0, 1, 4, 9, 16)
    assert value("[k for k in range(10) if k % 3 == 0]") == (0, 3, 6, 9)
    assert value("[a * b for a, b in [(1, 2), (3, 4)]]") == (2, 12)
    assert value("[j + t for j, (t, k) in enumerate([(6, 3), (1, 5)])]") == (6, 2)
    assert value("[a + b for a in [10, 20] for b in [1, 2]]") == (11, 12, 21, 22)
    assert value("[r[1] for r in rows]", rows=ListValue([(1, 2), (3, 4)])) == (2, 4)


def test_sequence_functions() -> None:
    assert value("range(3)") == (0, 1, 2) and value("range(2, 8, 3)") == (2, 5)
    assert value("range(5, 0, -2)") == (5, 3, 1)
    assert value("enumerate([7, 9])") == ((0, 7), (1, 9))
    assert value("distinct([3, 1, 3, 2, 1])") == (3, 1, 2)
    assert value("count([3, 1, 3, 2], 3)") == 2 and value("count([3, 1], 5)") == 0
    assert value("sum([1, 2, 3 / 2])") == Fraction(9, 2) and value("sum([])") == 0
    assert value("len([1, 2, 3])") == 3 and value('len("abc")') == 3
    assert value("max([3, 9, 4])") == 9 and value("min([3, 9, 4])") == 3
    assert value("max(3, 9, 4)") == 9 and value("min(2, 1 / 2)") == Fraction(1, 2)


def test_regnet_widths_computed_in_the_language() -> None:
    """torchvision's RegNet widths (BlockParams.from_init_params) written in the language:
    regnet_y_400mf (depth 16, w_0 48, w_a 27.89, w_m 2.09) has block widths 48, 104 x3,
    208 x6, 440 x6."""
    spec = """\
input [8]
let depth = 16
let w_0 = 48
let w_a = 27.89
let w_m = 2.09
let caps = [round(log((k * w_a + w_0) / w_0) / log(w_m)) for k in range(depth)]
let widths = [round(w_0 * w_m ** c / 8) * 8 for c in caps]
let stage_widths = distinct(widths)
let stage_depths = [count(widths, w) for w in stage_widths]
for w in widths:
    FC w
for w, d in [(stage_widths[j], stage_depths[j]) for j in range(len(stage_widths))]:
    FC w * 1000 + d
"""
    # The same numbers, independently, with Python's math as torchvision computes them.
    caps = [round(math.log((k * 27.89 + 48) / 48) / math.log(2.09)) for k in range(16)]
    expected = [round(48 * 2.09**c / 8) * 8 for c in caps]
    assert expected == [48] + [104] * 3 + [208] * 6 + [440] * 6
    g = graph(spec)
    features = [n.out_features for n in g.nodes if isinstance(n, ir.Linear)]
    assert features[:16] == expected
    assert features[16:] == [48_001, 104_003, 208_006, 440_006]


# --- let, table, for ---------------------------------------------------------------------------


def test_let_at_every_level() -> None:
    g = graph(
        "input [8x8x3]\n"
        "let base = 8\n"
        "block b(ratio):\n"
        "    let mid = make_divisible(in.c * ratio, 8)\n"
        "    CONV mid 1x1\n"
        "    CONV base * 2 1x1\n"
        "stage s:\n"
        "    let w = base * 3\n"
        "    CONV w 1x1\n"
        "x: b(1.5)\n"
    )
    # s.conv1: 24; x: in.c 24 * 1.5 = 36 -> 40; the file's `base` read inside the block: 16.
    assert widths(g) == [24, 40, 16]


def test_a_block_reads_its_files_constants_wherever_they_stand() -> None:
    g = graph("input [8x8x3]\nblock b():\n    CONV width 1x1\nx: b()\nlet width = 12\n")
    assert widths(g) == [12]


def test_table_is_a_list_of_row_tuples() -> None:
    g = graph(
        "input [8x8x3]\n"
        "table stages(expand, out, n):\n"
        "    1, 16, 1\n"
        "    6, 24, 2\n"
        "    6, 32, 3\n"
        "for t, c, n in stages:\n"
        "    CONV c * t 1x1\n"
        "CONV len(stages) 1x1\n"
        "CONV stages[1][2] 1x1\n"
    )
    assert widths(g) == [16, 144, 192, 3, 2]


def test_for_with_nested_tuple_destructuring() -> None:
    g = graph(
        "input [8x8x3]\n"
        "table stages(t, c, n):\n"
        "    1, 16, 1\n"
        "    6, 24, 2\n"
        "sequential features:\n"
        "    for j, (t, c, n) in enumerate(stages):\n"
        "        sequential:\n"
        "            CONV c + j 1x1\n"
    )
    assert [n.name for n in g.nodes if isinstance(n, ir.Conv)] == [
        "features.0.0",
        "features.1.0",
    ]
    assert widths(g) == [16, 25]


def test_for_writes_the_body_out_once_per_element() -> None:
    looped = graph("input [8x8x3]\nfor k in range(3):\n    CONV 4 * (k + 1) 1x1\n    relu\n")
    written = graph("input [8x8x3]\nCONV 4 1x1\nrelu\nCONV 8 1x1\nrelu\nCONV 12 1x1\nrelu\n")
    assert [(n.name, n.op) for n in looped.nodes] == [(n.name, n.op) for n in written.nodes]
    assert widths(looped) == widths(written) == [4, 8, 12]


def test_for_passes_share_open_branches() -> None:
    g = graph("input [8x8x3]\nfor w in [4, 8, 16]:\n    branch:\n        CONV w 1x1\nconcat\n")
    concat = next(n for n in g.nodes if n.op == "concat")
    # (the lecture convention's ReLU follows each conv)
    assert concat.inputs == ["branch1.relu1", "branch2.relu1", "branch3.relu1"]
    assert widths(g) == [4, 8, 16]


def test_an_empty_loop_emits_nothing() -> None:
    g = graph("input [8x8x3]\nfor k in []:\n    CONV 4 1x1\nCONV 2 1x1\n")
    assert widths(g) == [2]


# --- diagnostics -------------------------------------------------------------------------------


def test_value_errors() -> None:
    assert problem("xs[2]", xs=ListValue([1, 2]))[0] == "E227"
    assert problem("xs[-3]", xs=ListValue([1, 2]))[0] == "E227"
    assert problem("xs[0.5]", xs=ListValue([1, 2])) == (
        "E208",
        "an index must be a whole number, not 1/2",
    )
    assert problem("4[0]") == (
        "E226",
        "indexing needs a list, a tuple or a string, not a number (4)",
    )
    assert problem("len(4)")[0] == "E226"
    assert problem('"a" + 1')[0] == "E226"
    assert problem('"a" < 1')[0] == "E226"
    assert problem("1 / 0") == ("E208", "division by zero in `1 / 0`")
    assert problem("5 % (2 - 2)")[0] == "E208"
    assert problem("log(0)")[0] == "E208" and problem("sqrt(0 - 1)")[0] == "E208"
    assert problem("(0 - 8) ** 0.5")[0] == "E208"
    assert problem("range(2.5)")[0] == "E208"
    assert problem("range(10 ** 9)")[0] == "E209"
    assert problem("10 ** 100")[0] == "E209"
    assert problem("max([])")[0] == "E227" and problem("max(4)")[0] == "E226"
    assert problem("[a for a, b in [1, 2]]")[0] == "E226"
    assert problem("[x for x in 3]")[0] == "E226"
    assert problem("[x for x in [1] if y]")[0] == "E207"


def test_unknown_name_suggests_the_near_one() -> None:
    assert errors("input [8x8x3]\nlet width = 16\nCONV widht 3x3\n") == [
        ("E207", 3, 6, "unknown name `widht`: did you mean `width`?")
    ]
    ((code, line, column, message),) = errors(
        "input [8x8x3]\nblock b(width):\n    CONV widht 3x3\nx: b(4)\n"
    )
    assert (code, line, column) == ("E207", 3, 10) and "did you mean `width`?" in message


def test_names_are_defined_once() -> None:
    assert errors("input [8x8x3]\nlet w = 16\nlet w = 32\nCONV w 3x3\n")[0] == (
        "E228",
        3,
        5,
        "`w` is already defined on line 2",
    )
    # Shadowing in an inner body, a `for` target, a table, a block parameter: all E228.
    shadow = errors("input [8x8x3]\nlet w = 1\nstage s:\n    let w = 2\n    CONV w 3x3\n")
    assert shadow[0][:3] == ("E228", 4, 9)
    target = errors("input [8x8x3]\nlet k = 1\nfor k in range(2):\n    CONV 4 3x3\n")
    assert target[0][:3] == ("E228", 3, 5) and "line 2" in target[0][3]
    table = errors("input [8x8x3]\nlet t = 1\ntable t(a):\n    1\nCONV 4 3x3\n")
    assert table[0][:2] == ("E228", 3)
    param = errors("input [8x8x3]\nlet w = 1\nblock b(w):\n    CONV w 3x3\nx: b(2)\n")
    assert param[0][:3] == ("E228", 3, 9) and "line 2" in param[0][3]
    twice = errors("input [8x8x3]\nfor k, k in [(1, 2)]:\n    CONV 4 3x3\n")
    assert twice[0][:3] == ("E228", 2, 8)


def test_statement_errors() -> None:
    assert errors("input [8x8x3]\ntable t(a, b):\n    1, 2\n    3\nCONV 4 3x3\n")[0][:3] == (
        "E106",
        4,
        5,
    )
    assert errors("input [8x8x3]\ntable t(a, 2):\n    1, 2\nCONV 4 3x3\n")[0][:2] == ("E106", 2)
    assert errors("input [8x8x3]\ntable t(a):\nCONV 4 3x3\n")[0][:2] == ("E104", 2)
    assert errors("input [8x8x3]\nfor k in range(2):\nCONV 4 3x3\n")[0][:2] == ("E104", 2)
    assert errors("input [8x8x3]\nfor k in 3:\n    CONV 4 3x3\n")[0][:3] == ("E226", 2, 10)
    unpack = errors("input [8x8x3]\nfor a, b in [1, 2]:\n    CONV 4 3x3\n")
    assert unpack[0][:2] == ("E226", 2) and "cannot unpack 1 into 2 names" in unpack[0][3]
    assert errors("input [8x8x3]\nCONV [4, 8] 3x3\n")[0][0] in ("E226", "E106")
    assert errors("input [8x8x3]\nlet w = 16.5\nCONV w 3x3\n")[0][:2] == ("E208", 3)
    assert errors("input [8x8x3]\nlet w = sqrt(2)\nCONV w 3x3\n")[0][:2] == ("E208", 3)
    assert errors("input [8x8x3]\nlet w = sqrt(16)\nCONV w 3x3\n") == []  # 4.0 is whole


def test_shapes_and_lists_keep_their_places() -> None:
    """`[4096]` where a declared shape may stand is a shape; after `=` or in call arguments
    it is a list; right after a value, indexing."""
    g = graph("input [8x8x3]\nlet xs = [4]\nCONV xs[0] 1x1 -> [8x8x4]\nFC 10\n[10] softmax\n")
    assert widths(g) == [4]
    g = graph("input [8x8x3]\nblock b(ws):\n    CONV ws[1] 1x1\nx: b([2, 6])\n")
    assert widths(g) == [6]


def test_strings_lists_and_tuples_pass_to_blocks() -> None:
    g = graph(
        "input [8x8x3]\n"
        "block b(kind, ws, pair = (1, 2)):\n"
        '    if kind == "basic":\n'
        "        CONV ws[0] 3x3 pad 1\n"
        '    if kind != "basic" and len(ws) > 1:\n'
        "        CONV ws[1] * pair[1] 1x1\n"
        'x: b("basic", [4])\n'
        "y: b('bottleneck', [4, 8], pair (3, 5))\n"
    )
    assert widths(g) == [4, 40]


# --- act(NAME): an activation chosen by a string -----------------------------------------------


def test_act_builds_the_activation_a_string_names() -> None:
    g = graph(
        "input [8x8x3]\n"
        'let a = "silu"\n'
        "conv: bn, act(a)\n"
        "block b(kind):\n"
        "    CONV 4 1x1\n"
        "    act(kind)\n"
        "CONV 4 3x3\n"
        'x: act("hard swish")\n'
        'y: b("relu6")\n'
    )
    assert [(n.name, n.op) for n in g.nodes] == [
        ("input", "input"),
        ("conv1", "conv"),
        ("bn1", "batchnorm"),
        ("silu1", "silu"),
        ("x", "hardswish"),
        ("y.conv1", "conv"),
        ("y.bn1", "batchnorm"),
        ("y.silu1", "silu"),
        ("y.relu1", "relu6"),
    ]


def test_act_turns_the_lecture_convention_off() -> None:
    g = graph('input [8x8x3]\nCONV 4 3x3\nact("tanh")\nFC 2\n')
    assert [n.op for n in g.nodes] == ["input", "conv", "tanh", "linear"]


def test_act_errors() -> None:
    assert errors('input [8x8x3]\nCONV 4 3x3\nact("rleu")\n')[0] == (
        "E226",
        3,
        5,
        "`act` builds an activation: `rleu` is not one: did you mean `relu`?",
    )
    assert errors("input [8x8x3]\nCONV 4 3x3\nact(3)\n")[0][:3] == ("E226", 3, 5)
    assert errors('input [8x8x3]\nCONV 4 3x3\nact("conv")\n')[0][0] == "E226"
    assert errors('input [8x8x3]\nCONV 4 3x3\nact("relu", 2)\n')[0][:2] == ("E206", 3)
    assert errors("input [8x8x3]\nblock act(w):\n    relu\nCONV 4 3x3\n")[0][:2] == ("E218", 2)


# --- limits ------------------------------------------------------------------------------------


def test_nested_comprehensions_and_loops_are_bounded() -> None:
    nested = "[[a for a in range(100000)] for b in range(100000)]"
    assert problem(nested) == ("E209", "this expression takes more than 200,000 steps to compute")
    loops = errors(
        "input [8x8x3]\nfor a in range(100000):\n    for b in range(100000):\n"
        "        let x = 1\nCONV 4 3x3\n"
    )
    assert loops == [("E216", 3, 5, "the `for` loops of this spec make more than 100,000 passes")]
    assert value("sum([a for a in range(100000)])") == 4_999_950_000  # within the bounds


@pytest.mark.parametrize(
    ("line", "code", "column", "message", "help"),
    [
        ("let = 3", "E106", 1, "a `let` line is `let NAME = VALUE`", "write e.g. `let width = 64`"),
        ("let x 3", "E106", 1, "a `let` line is `let NAME = VALUE`", "write e.g. `let width = 64`"),
        ("table t:", "E106", 1, "a `table` line is `table NAME(columns):`", None),
        ("let y = 2 if 1", "E102", 15, "unexpected end of line", "expected `else`"),
        ("for k in xs", "E102", 12, "unexpected end of line", "expected `:`"),
        ("for k xs:", "E102", 7, "unexpected `xs:`", None),
        ("let y = 0 - * x", "E102", 13, "unexpected `*`", None),  # `0 - -x` is now -(-x)
        ("let y = range()", "E106", 9, "`range` takes 1 to 3 values, not 0", None),
        ("let y = xs[1:2:3]", "E102", 15, "unexpected `:`", "expected `]`"),
        (
            "let y = rnage(3)",
            "E102",
            9,
            "`rnage(…)` is not a function: did you mean `range`?",
            None,
        ),
    ],
)
def test_syntax_errors_of_the_new_forms(
    line: str, code: str, column: int, message: str, help: str | None
) -> None:
    result = parse_spec(f"input [8x8x3]\nlet xs = [1, 2]\n{line}\nCONV 4 3x3\n", "net.arch")
    d = result.diagnostics[0]
    assert (d.code, d.line, d.column, d.message) == (code, 3, column, message)
    if help is not None:
        assert d.help == help
    else:
        assert d.help  # every one says what to write


def test_a_let_in_an_if_body_defines_its_name_below_the_if() -> None:
    g = graph("input [8x8x3]\nlet a = 2\nif a > 1:\n    let b = a * 8\nCONV b 3x3\n")
    assert widths(g) == [16]
    assert errors("input [8x8x3]\nif 0:\n    let b = 8\nCONV b 3x3\n")[0][:3] == ("E207", 4, 6)


def test_the_grammar_has_no_lalr_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    """Lark resolves a shift/reduce conflict silently as a shift; built with ``debug`` it logs
    each one. The expressions' precedence and the three readings of `[` must need none."""
    import logging
    from pathlib import Path

    import lark

    from archc.parsing.lines import _paper_pattern

    grammar = (Path(__file__).parent.parent / "archc" / "grammar.lark").read_text()
    with caplog.at_level(logging.DEBUG, logger="lark"):
        lark.Lark(
            grammar.replace("@PAPER@", _paper_pattern()),
            parser="lalr",
            lexer="contextual",
            maybe_placeholders=True,
            start=["start", "row", "valuerow"],
            debug=True,
        )
    assert [r.getMessage() for r in caplog.records if "onflict" in r.getMessage()] == []
