"""Three limits of the last release, removed: a unary minus before a name or a parenthesis
(`-x`, `-(a + b)`, `2 * -k`, `xs[-k]`) with Python's precedence, `zip(a, b, …)`, and
`archc specs DIR` listing a directory of the user's own specs."""

from __future__ import annotations

from fractions import Fraction

import pytest

from archc import ir
from archc import syntax as S
from archc.elaborate.functions import ListValue
from archc.elaborate.problems import Problem
from archc.elaborate.values import Values, expr_text
from archc.frontend import parse_spec
from archc.parser import parse

X, K, A, B = Fraction(3), Fraction(1), Fraction(2), Fraction(5)
XS = ListValue([Fraction(1), Fraction(2), Fraction(3)])
ENV = {"x": X, "k": K, "a": A, "b": B, "xs": XS, "s": "ab"}


def parsed(expr: str) -> S.Expr:
    spec, diags = parse(f"let v = {expr}\n", "v.arch")
    assert spec is not None and not diags, [(d.code, d.column, d.message) for d in diags]
    (st,) = spec.body
    assert isinstance(st, S.Let)
    return st.value


def value(expr: str) -> object:
    return Values(dict(ENV), None).value(parsed(expr))


def errors(text: str) -> list[tuple[str, int, int, str]]:
    result = parse_spec(text, "net.arch")
    return [(d.code, d.line, d.column, d.message) for d in result.diagnostics]


def convs(text: str) -> list[tuple[int, int]]:
    result = parse_spec(text, "net.arch")
    assert result.graph is not None, [(d.code, d.line, d.message) for d in result.diagnostics]
    return [(n.out_channels, n.stride[0]) for n in result.graph.nodes if isinstance(n, ir.Conv)]


# --- unary minus -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("-x", -X),
        ("-(a + b)", -(A + B)),
        ("2 * -k", 2 * -K),
        ("-k * 2", -K * 2),
        ("xs[-k]", XS[-1]),
        ("xs[:-k]", ListValue(XS[:-1])),
        ("-len(xs)", -len(XS)),
        ("--x", X),  # as Python: minus of minus
        ("- - x", X),
        ("0 - -x", 0 - -X),
        ("x - -a", X - -A),
        ("-x ** 2", -(X**2)),  # looser than `**`, as Python: -9
        ("(-x) ** 2", (-X) ** 2),
        ("2 ** -x", Fraction(2) ** -X),
        ("-x // 2", -X // 2),  # tighter than `//`: (-3) // 2 = -2, not -(3 // 2) = -1
        ("-x % 2", -X % 2),
        ("-a + b", -A + B),
        ("b - -a * -x", B - -A * -X),
        ("[-v for v in xs]", ListValue(-v for v in XS)),
        ("(-x, -k)", (-X, -K)),
        ("-x if x > 0 else x", -X),
        ("max(-x, -k)", max(-X, -K)),
        ("not -x", Fraction(0)),
        ("-x < -k", Fraction(1)),
    ],
)
def test_unary_minus_has_pythons_value(expr: str, expected: object) -> None:
    assert value(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("-2 ** 2", -(2**2)),  # Python: -4; the release read the signed number first: 4
        ("-2 ** -1", -(Fraction(2) ** -1)),
        ("-2.5 ** 2", -(Fraction(5, 2) ** 2)),
        ("2 ** -2 ** 2", Fraction(2) ** -(2**2)),
        ("(-2) ** 2", (-2) ** 2),
        ("-2 * 3", -2 * 3),
        ("-7 // 2", -7 // 2),
        ("2**-1", Fraction(1, 2)),
    ],
)
def test_a_signed_number_before_power_is_read_as_python_reads_it(
    expr: str, expected: object
) -> None:
    assert value(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x-2*2", X - 2 * 2),
        ("x - 2*2", X - 2 * 2),
        ("(x-2)*2", (X - 2) * 2),
        ("x--1", X - -1),
        ("x -a", X - A),  # right after a value `-` stays the binary minus
        ("x-a", X - A),
        ("xs[0]-1", XS[0] - 1),
        ("(x)-1", X - 1),
    ],
)
def test_the_binary_minus_keeps_its_meaning(expr: str, expected: object) -> None:
    assert value(expr) == expected


def test_the_text_of_a_unary_minus() -> None:
    assert expr_text(parsed("-(a + b)")) == "-(a+b)"
    assert expr_text(parsed("2 * -k"), spaced=True) == "2 * -k"
    assert expr_text(parsed("-2 ** 2")) == "-2**2"


def test_unary_minus_in_layer_lines() -> None:
    text = (
        "input [8x8x3]\n"
        "let k = -4\n"
        "CONV (-k) 3x3 pad 1\n"  # 4
        "CONV 2 * -k 3x3 pad 1\n"  # 8
        "CONV max(-k, 2) 3x3 stride (-k) // 2 pad 1\n"  # 4, stride 2
        "CONV 10 -k 3x3 pad 1\n"  # `-` after a value is a minus: 10 - k = 14
    )
    assert convs(text) == [(4, 1), (8, 1), (4, 2), (14, 1)]


def test_unary_minus_in_a_for_header_and_comprehension() -> None:
    text = (
        "input [8x8x3]\n"
        "let ws = [-8, -16]\n"
        "for w in [-v for v in ws]:\n"
        "    CONV w 3x3 pad 1\n"
        "CONV 2 * -ws[0] 1x1\n"
    )
    assert convs(text) == [(8, 1), (16, 1), (16, 1)]


@pytest.mark.parametrize(
    ("line", "column", "kind"),
    [
        ('let t = -"ab"', 9, 'a string ("ab")'),
        ("let t = 2 * -[1, 2]", 13, "a list ([1, 2])"),
        ("let t = -(1, 2)", 9, "a tuple ((1, 2))"),
        ("let t = 1 + -s", 13, 'a string ("ab")'),
    ],
)
def test_a_minus_on_a_non_number_is_e226(line: str, column: int, kind: str) -> None:
    text = f'input [8x8x3]\nlet s = "ab"\n{line}\nCONV 4 3x3\n'
    assert errors(text)[0] == ("E226", 3, column, f"a unary `-` needs a number, not {kind}")


def test_a_minus_on_a_string_through_values_raises_a_problem_not_a_traceback() -> None:
    with pytest.raises(Problem) as info:
        value("-s")
    assert info.value.code == "E226"
    assert (info.value.span.line, info.value.span.column) == (1, 9)


def test_a_minus_right_after_a_layer_kind_is_explained() -> None:
    text = "input [8x8x3]\nlet k = -4\nb: CONV -k 3x3\n"
    ((code, line, column, message),) = errors(text)
    assert (code, line, column) == ("E105", 3, 4)
    assert message == "`CONV -…`: a `-` right after a word is a minus, so the line has no kind"
    # a signed number after a kind is still the argument it was: -1 filters (E209)
    assert errors("input [8x8x3]\nCONV -1 3x3\n")[0][:3] == ("E209", 2, 6)


# --- zip ---------------------------------------------------------------------------------------


def test_zip_is_pythons() -> None:
    ys = [Fraction(4), Fraction(5)]
    assert value("zip(xs, [4, 5])") == ListValue(zip(XS, ys, strict=False))
    assert value("zip(xs, [4, 5])") == ListValue([(1, 4), (2, 5)])
    assert isinstance(value("zip(xs, [4, 5])"), ListValue)
    assert value("zip(xs)") == ListValue((v,) for v in XS)
    assert value('zip(xs, "ab", (7, 8, 9))') == ListValue([(1, "a", 7), (2, "b", 8)])
    assert value("zip([], xs)") == ListValue()
    assert value("len(zip(range(100000), range(3, 100000)))") == 100000 - 3


def test_zip_in_a_for_loop_and_a_comprehension() -> None:
    text = (
        "input [32x32x3]\n"
        "let widths = [16, 32, 64]\n"
        "let strides = [1, 2]\n"
        "for (c, s) in zip(widths, strides):\n"
        "    CONV c 3x3 stride s pad 1\n"
        "for j, (c, s) in enumerate(zip(widths, strides)):\n"
        "    CONV c + j 1x1 stride s\n"
        "let macs = sum([c * s for c, s in zip(widths, strides)])\n"
        "CONV macs 1x1\n"
    )
    expected_sum = sum(c * s for c, s in zip([16, 32, 64], [1, 2], strict=False))
    assert convs(text) == [(16, 1), (32, 2), (16, 1), (33, 2), (expected_sum, 1)]


@pytest.mark.parametrize(
    ("line", "code", "column", "message"),
    [
        ("let t = zip()", "E106", 9, "`zip` takes 1 or more values, not 0"),
        (
            "let t = zip(xs, 3)",
            "E226",
            17,
            "`zip` needs a list, a tuple or a string, not a number (3)",
        ),
        ("let t = zip(4)", "E226", 13, "`zip` needs a list, a tuple or a string, not a number (4)"),
        (
            "for a, b in zip(xs, 2):",
            "E226",
            21,
            "`zip` needs a list, a tuple or a string, not a number (2)",
        ),
    ],
)
def test_zip_of_wrong_arguments(line: str, code: str, column: int, message: str) -> None:
    body = "\n    CONV 4 3x3" if line.endswith(":") else ""
    text = f"input [8x8x3]\nlet xs = [1, 2]\n{line}{body}\nCONV 4 3x3\n"
    assert errors(text)[0] == (code, 3, column, message)


def test_zip_is_bounded_like_the_other_list_functions() -> None:
    text = (
        "input [8x8x3]\n"
        "let r = range(100000)\n"
        "let t = [len(zip(r, r)) for j in range(1000)]\n"
        "CONV 4 3x3\n"
    )
    code, line, _, message = errors(text)[0]
    assert (code, line) == ("E209", 3)
    assert "list values" in message


def test_zip_cannot_name_a_block() -> None:
    text = "input [8x8x3]\nblock zip(c):\n    CONV c 3x3\nzip(4)\n"
    assert errors(text)[0] == (
        "E218",
        2,
        7,
        "a block cannot be named `zip`: that is an arithmetic function",
    )
