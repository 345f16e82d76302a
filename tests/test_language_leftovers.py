"""Three limits of the last release, removed: a unary minus before a name or a parenthesis
(`-x`, `-(a + b)`, `2 * -k`, `xs[-k]`) with Python's precedence, `zip(a, b, …)`, and
`archc specs DIR` listing a directory of the user's own specs."""

from __future__ import annotations

from fractions import Fraction

import pytest
from test_spec_params_api import FAMILY  # a two-variant family of tiny nets

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


def test_a_minus_that_begins_no_value_says_how_to_write_one() -> None:
    # After a layer's size, with no comma, a value cannot begin with `-` (it would be a minus).
    result = parse_spec("input [8x8x3]\nCONV 4 3x3 - 2\n", "net.arch")
    (d,) = result.diagnostics
    assert (d.code, d.line, d.column, d.message) == ("E102", 2, 12, "unexpected `-`")
    assert d.help == "a `-` after a value with no comma between begins no value: write `(-x)`"
    assert convs("input [8x8x3]\nCONV 4 3x3 stride (-2) + 3\n") == [(4, 1)]


@pytest.mark.parametrize(
    ("expr", "column"),
    [
        ("-" * 5000 + "x", 9 + 200),  # the 201st `-`
        ("1" + "-1" * 3000, 9 + 1 + 2 * 200),
    ],
)
def test_a_chain_of_minus_signs_is_e111_not_a_recursion_error(expr: str, column: int) -> None:
    text = f"input [8x8x3]\nlet v = {expr}\nCONV 4 3x3\n"
    assert errors(text) == [("E111", 2, column, "this expression is too long to read")]
    assert value("-" * 199 + "x") == -X  # an odd count: -x


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


# --- archc specs DIR ---------------------------------------------------------------------------


def tiny_params(width: int, scores: int = 10) -> int:
    """A 3x3 conv of 3 channels with bias, then an FC from ``width`` to ``scores``."""
    return (3 * 3 * 3 + 1) * width + (width + 1) * scores


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from archc.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def mine(tmp_path, monkeypatch):
    """A directory of the user's own: a family in a subdirectory, a plain net, a block library,
    and a hidden directory whose spec is not listed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine" / "sub").mkdir(parents=True)
    (tmp_path / "mine" / ".cache").mkdir()
    (tmp_path / "mine" / "sub" / "tiny.arch").write_text(FAMILY)
    (tmp_path / "mine" / "plain.arch").write_text("network plain\ninput [8x8x3]\nCONV 8 3x3\n")
    (tmp_path / "mine" / "lib.arch").write_text("block b(c):\n    CONV c 3x3\n")
    (tmp_path / "mine" / ".cache" / "old.arch").write_text("network old\ninput [8x8x3]\n")
    (tmp_path / "mine" / "notes.txt").write_text("not a spec")
    return tmp_path / "mine"


def test_specs_dir_lists_the_directorys_specs_with_families(capsys, mine) -> None:
    code, out, err = run(capsys, "specs", "mine")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(None, 1)[0] for line in lines[:3]] == [
        "mine/lib.arch",
        "mine/plain.arch",
        "mine/sub/tiny.arch",
    ]
    assert lines[0].split(None, 1)[1] == "block library: b"
    plain = 3 * 3 * 3 * 8 + 8  # CONV 8 3x3 with bias
    macs = (8 - 2) * (8 - 2) * 8 * (3 * 3 * 3)  # unpadded: 6x6 outputs
    assert lines[1].split(None, 1)[1] == f"plain: {plain} params, {macs / 1000:.1f}K MACs per image"
    assert lines[2].split(None, 1)[1].startswith(f"tiny_a: {tiny_params(8)} params")
    assert lines[3].split() == ["variants", "(tiny_{variant}):", "a,", "b"]
    assert lines[4].split() == ["builders:", "mine/sub/tiny_a,", "mine/sub/tiny_b"]
    assert "old" not in out and "notes" not in out  # hidden directories and other files
    assert lines[-1] == "(in mine; archc summary mine/plain.arch, archc summary mine/sub/tiny_a)"


def test_the_builder_names_it_lists_resolve_from_the_directory(capsys, mine) -> None:
    import json

    code, out, _ = run(capsys, "specs", "mine", "--format", "json")
    entries = {e["name"]: e for e in json.loads(out)}
    tiny = entries["mine/sub/tiny.arch"]
    builders = [v["name"] for v in tiny["family"]["variants"]]
    assert builders == ["mine/sub/tiny_a", "mine/sub/tiny_b"]
    for builder, width in zip(builders, (8, 16), strict=True):
        code, out, err = run(capsys, "summary", builder, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["totals"]["params"] == tiny_params(width)
    # and so do the file names it lists
    code, out, _ = run(capsys, "summary", "mine/plain.arch", "--format", "json")
    assert json.loads(out)["totals"]["params"] == entries["mine/plain.arch"]["params"] == 224


def test_specs_dir_json(capsys, mine) -> None:
    import json

    code, out, _ = run(capsys, "specs", "--format", "json", "mine")
    assert code == 0
    lib, plain, tiny = json.loads(out)
    assert lib == {"name": "mine/lib.arch", "kind": "library", "blocks": ["b"]}
    assert (plain["name"], plain["kind"], plain["network"]) == (
        "mine/plain.arch",
        "network",
        "plain",
    )
    assert tiny["family"] == {
        "template": "tiny_{variant}",
        "default": "a",
        "variants": [
            {"variant": "a", "name": "mine/sub/tiny_a"},
            {"variant": "b", "name": "mine/sub/tiny_b"},
        ],
    }
    assert (tiny["network"], tiny["params"]) == ("tiny_a", tiny_params(8))


def test_specs_of_the_current_directory_names_files_as_written_here(capsys, mine) -> None:
    import os

    os.chdir(mine)
    code, out, _ = run(capsys, "specs", ".")
    assert code == 0
    assert "builders: sub/tiny_a, sub/tiny_b" in out
    assert out.splitlines()[1].startswith("plain.arch ")


def test_a_spec_with_errors_is_a_marked_row(capsys, mine) -> None:
    import json

    (mine / "bad.arch").write_text("input [8x8x3]\nCONV 4 3x3 -> [\n")
    (mine / "binary.arch").write_bytes(b"\xff\xfe\x00")
    code, out, err = run(capsys, "specs", "mine")
    assert code == 1 and err == ""
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines() if line}
    assert rows["mine/bad.arch"] == "has errors E102 at 2:15: run `archc lint mine/bad.arch`"
    assert rows["mine/binary.arch"].startswith("has errors E002 at 1:1")
    assert rows["mine/plain.arch"].startswith("plain: 224 params")  # the others still listed
    code, out, _ = run(capsys, "specs", "mine", "--format", "json")
    bad = next(e for e in json.loads(out) if e["name"] == "mine/bad.arch")
    assert code == 1
    assert bad == {
        "name": "mine/bad.arch",
        "kind": "error",
        "error": {"code": "E102", "line": 2, "column": 15, "message": "unexpected `[`"},
    }


def test_a_link_out_of_the_directory_is_not_read(capsys, mine, tmp_path) -> None:
    (tmp_path / "secret.txt").write_text("password")
    (mine / "evil.arch").symlink_to(tmp_path / "secret.txt")
    code, out, _ = run(capsys, "specs", "mine")
    assert code == 1
    (row,) = [line for line in out.splitlines() if line.startswith("mine/evil.arch")]
    assert row.split(None, 1)[1] == "has errors E005 at 1:1: run `archc lint mine/evil.arch`"
    assert "password" not in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_specs_of_an_empty_directory_says_so(capsys, tmp_path, fmt) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no specs")
    code, out, err = run(capsys, "specs", "--format", fmt, str(tmp_path / "empty"))
    assert code == 0
    assert out == ("[]\n" if fmt == "json" else "")
    assert err == f"archc specs: no .arch files under {tmp_path / 'empty'}\n"


def test_specs_of_no_directory_is_a_usage_error(capsys, mine) -> None:
    code, out, err = run(capsys, "specs", "nowhere")
    assert (code, out, err) == (2, "", "archc specs: `nowhere`: no such directory\n")
    code, out, err = run(capsys, "specs", "mine/plain.arch")
    assert (code, out) == (2, "")
    assert err == (
        "archc specs: `mine/plain.arch`: a file, not a directory "
        "(`archc summary FILE` shows one spec)\n"
    )


def test_specs_help_names_dir(capsys) -> None:
    from archc.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["specs", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: archc specs [-h] [--format {text,json}] [DIR]")
    assert "archc summary DIR/mynet.arch" in " ".join(out.split())


def test_specs_without_dir_still_lists_the_shipped_library(capsys) -> None:
    code, out, _ = run(capsys, "specs")
    assert code == 0
    assert "builders: torchvision/resnet18, torchvision/resnet34, torchvision/resnet50," in out
    assert out.splitlines()[-1].startswith("(in ")
