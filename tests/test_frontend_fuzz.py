"""Property: no text makes the front end raise. It returns exactly one of a graph, a block
library (a file of block definitions only) or error diagnostics, and every diagnostic's span
points inside the text. Every input that once raised is kept below as a regression case.

The examples are derandomized (the same every run, no example database), so the test cannot
flake in CI; a bounded number keeps it to a few seconds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archc.check import check_source
from archc.frontend import FrontendResult, parse_spec

LINES = [
    "BN eps 1e400",
    "LRN size 5 alpha 1e-4 beta 0.75 k 2",
    "MAX POOL 3x3 stride 2 pad 1 ceil",
    "conv1: CONV 64 3x3 pad same",
    "input [4096]",
    "    branch:",
    "        CONV: w 1x1",
    "    concat",
    "x: b(3)",
    "[227x227x3] INPUT",
    "input [224x224x3]",
    "input (224 × 224 RGB image)",
    "INPUT: [224x224x3] memory: 224*224*3=150K params: 0 (not counting biases)",
    "[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0",
    "[27x27x96] MAX POOL1: 3x3 filters at stride 2",
    "[27x27x96] NORM1: Normalization layer",
    "[4096] FC6: 4096 neurons",
    "[1000] FC8: 1000 neurons (class scores)",
    "CONV2: 256 5x5 pad 2 -> [27x27x256]",
    "CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728",
    "POOL2: [112x112x64] memory: 112*112*64=800K params: 0",
    "FC: [1x1x4096] memory: 4096 params: 4096*4096 = 16,777,216",
    "conv3-64",
    "conv7-64/2",
    "maxpool",
    "FC-4096",
    "soft-max",
    "conv: bn, relu",
    "fc: relu",
    "block b(w, stride = 1):",
    "    residual:",
    "        CONV: w 3x3 stride stride pad 1",
    "        CONV: 4*w 1x1, no relu",
    "    shortcut: auto",
    "    shortcut:",
    "    add, relu",
    "    branch:",
    "        conv1-64",
    "    concat",
    "layer1: b(64) x3",
    "layer2: b(128, stride 2), b(128) x2",
    "stage s:",
    "    DROPOUT 0.5",
    "GAP",
    'import "blocks/resnet.arch"',
    "network N",
    "x: b(w // 0)",
    "CONV 0 3x3",
    "CONV -1 3x3",
    "CONV 99999999999 3x3",
    "\t\tCONV 64 3x3",
    "",
    "# comment",
]

TOKENS = [
    "1e40",
    "eps",
    "1e400",
    "CONV",
    "POOL",
    "FC",
    "[",
    "]",
    "(",
    ")",
    ":",
    ",",
    "x3",
    "3x3",
    "64",
    "->",
    "=",
    "memory:",
    "params:",
    "1,728",
    "3.2M",
    "block",
    "residual:",
    "shortcut:",
    "branch:",
    "add",
    "concat",
    "stride",
    "pad",
    "same",
    "no",
    "relu",
    "bn",
    "\n",
    "    ",
    "\t",
    "×",
    "*",
    "/",
    "//",
    "-",
    '"',
    "#",
    "\r\n",
    "\ufeff",
    "input",
    "[224x224x3]",
    "b(64)",
    "0",
    "-1",
    "1e-4",
]


def check(text: str) -> FrontendResult:
    result = parse_spec(text, "fuzz.arch")
    errors = any(d.severity == "error" for d in result.diagnostics)
    outcomes = [result.graph is not None, result.library, errors]
    assert outcomes.count(True) == 1, (outcomes, text)
    if result.library:
        assert result.blocks and "block" in text.lower()
    n_lines = max(1, len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")))
    for d in result.diagnostics:
        assert d.span.file == "fuzz.arch"
        assert 1 <= d.span.line <= n_lines + 1, (d, text)
        assert d.span.column >= 1
        assert (d.span.end_line, d.span.end_column) >= (d.span.line, d.span.column)
    if result.graph is not None:
        assert type(result.graph).from_json(result.graph.to_json()) == result.graph
    return result


FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text: str) -> None:
    check(text)


@FAST
@given(st.lists(st.sampled_from(LINES), max_size=12))
def test_recombined_lines_never_raise(lines: list[str]) -> None:
    check("\n".join(lines))


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_recombined_tokens_never_raise(tokens: list[str]) -> None:
    check(" ".join(tokens))


@FAST
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=8), st.data())
def test_mutated_lines_never_raise(lines: list[str], data: st.DataObject) -> None:
    text = "\n".join(lines)
    if text:
        i = data.draw(st.integers(0, len(text) - 1))
        j = data.draw(st.integers(i, min(len(text), i + 5)))
        text = text[:i] + data.draw(st.sampled_from(TOKENS)) + text[j:]
    check(text)


# Inputs that raised once (found by the properties above).
REGRESSIONS: list[str] = [
    "    shortcut: auto",  # a spec with no input whose only statement is not a layer
    "input [8x8x3]\nBN eps 1e400\n",  # float() overflow of an exact huge number
    "input [8x8x3]\ndropout 1e40\n",
    "input [8x8x3]\nCONV 1e99999999 3x3\n",  # an exponent that would take ages to expand
    "input [8x8x3]\nCONV " + "(" * 3000 + "1" + ")" * 3000 + " 3x3\n",  # RecursionError
    "input [8x8x3]\nFC 3 params: " + "+".join(["1"] * 5000) + "\n",
    "input [8x8x3]\n" + "".join(" " * i + f"stage s{i}:\n" for i in range(300)) + "relu\n",
    "block b(w, stride = 1):\n    CONV: w 3x3 stride stride pad 1",  # a library: no graph, no error
]


def test_a_block_library_is_a_library() -> None:
    result = check("block b(w, stride = 1):\n    CONV: w 3x3 stride stride pad 1\n")
    assert (result.graph, result.library, result.blocks) == (None, True, ("b",))
    assert result.diagnostics == []
    result = check("input [8x8x3]\nblock b(w):\n    CONV: w 3x3\nb(4)\n")
    assert result.graph is not None and not result.library and result.blocks == ("b",)


@pytest.mark.parametrize("text", REGRESSIONS)
def test_regressions(text: str) -> None:
    check(text)


# --- numeric extremes and deep block calls (issue 11) ---------------------------------------------

# Numbers at and past every bound: zero and negatives, the IR's MAX_SIZE (2^24) and one past it,
# tiny and huge floats, 40 and 41 digits (the parser's limit), values that overflow a float.
EXTREMES = [
    "0",
    "1",
    "2",
    "3",
    "-1",
    "16777216",
    "16777217",
    "8388609",
    "8388608",
    "1e40",
    "1e-40",
    "1e400",
    "0.000000001",
    "0.5",
    "9" * 40,
    "9" * 41,
    "1,728",
    "3.2M",
    "999G",
]
OPERATORS = ["*", "/", "+", "-", "//"]
TEMPLATES = [
    "input [{0}x{1}x{2}]",
    "CONV {0} {1}x{2} stride {3} pad {4}",
    "CONV {0} 1x1 stride {1}",
    "MAX POOL {0}x{1} stride {2}",
    "AVG POOL {0}x{0} stride {1} pad {2} ceil",
    "FC {0} params: {1} = {2}",
    "FC {0} memory: {1}",
    "CONV {0} 3x3 -> [{1}x{2}x{0}]",
    "DROPOUT {0}",
    "BN eps {0}",
    "layer: b({0}) x{1}",
]


@st.composite
def numeric_line(draw: st.DrawFn) -> str:
    def number() -> str:
        # A number, or arithmetic of a few of them (claims and block arguments evaluate it).
        terms = draw(st.lists(st.sampled_from(EXTREMES), min_size=1, max_size=4))
        ops = [draw(st.sampled_from(OPERATORS)) for _ in terms[1:]]
        return terms[0] + "".join(op + t for op, t in zip(ops, terms[1:]))

    return draw(st.sampled_from(TEMPLATES)).format(*(number() for _ in range(5)))


@FAST
@given(st.lists(numeric_line(), min_size=1, max_size=6))
def test_numeric_extremes_never_raise(lines: list[str]) -> None:
    text = "block b(w):\n    CONV: w 3x3\ninput [16x16x3]\n" + "\n".join(lines) + "\n"
    check(text)
    check_source(text, "fuzz.arch")  # shapes, tiling hints and claims too


@st.composite
def nested_calls(draw: st.DrawFn) -> str:
    """Blocks b0 … bN, each calling the one before it a few times; the innermost may fail
    (a zero size), recurse, or stride a huge input down."""
    depth = draw(st.integers(1, 5))
    inner = draw(
        st.sampled_from(
            ["CONV: w 3x3", "CONV: 0 3x3", "b0(w)", "CONV: w 1x1 stride 16777216", "relu"]
        )
    )
    lines = ["input [64x64x3]", "block b0(w):", f"    {inner}"]
    for i in range(1, depth + 1):
        reps = draw(st.sampled_from([1, 2, 3]))
        lines += [f"block b{i}(w):", f"    b{i - 1}(w) x{reps}"]
        if draw(st.booleans()):
            lines += ["    residual:", f"        b{i - 1}(w)", "    shortcut: auto", "    add"]
    lines.append(f"net: b{depth}({draw(st.sampled_from(['4', '0', '1e40', '16777217']))})")
    return "\n".join(lines) + "\n"


@FAST
@given(nested_calls())
def test_deeply_nested_block_calls_never_raise(text: str) -> None:
    check(text)
    check_source(text, "fuzz.arch")
