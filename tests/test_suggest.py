"""Diagnostics that suggest (issue 23, point 8): the nearest kind, keyword, flag or block for a
misspelt one, a missing `:` after a label or `residual`, and a repeat count that is no number."""

from __future__ import annotations

import pytest

from archc.frontend import parse_spec
from archc.suggest import closest, distance

INPUT = "input [8x8x3]\n"


def only_error(text: str) -> tuple[str, str, int, int]:
    errors = [d for d in parse_spec(text, "net.arch").diagnostics if d.severity == "error"]
    assert errors, text
    d = errors[0]
    return d.code, d.message, d.line, d.column


def test_distance_counts_edits_and_neighbour_swaps() -> None:
    assert distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert distance("tanj", "tanh") == 1
    assert distance("reul", "relu") == 1  # one swap of neighbours
    assert distance("", "abc") == 3 and distance("abc", "abc") == 0
    # Too far to be a typo: nothing is suggested; ties go to the first in sorted order.
    assert closest("zzz", ["relu", "tanh"]) is None
    assert closest("ab", ["ac", "ad"]) == "ac"


@pytest.mark.parametrize(
    ("line", "code", "suggested"),
    [
        ("tanj", "E202", "tanh"),  # a kind word read as a call
        ("hardswsh", "E202", "hardswish"),
        ("leaky rellu", "E105", "leaky relu"),  # a kind of two words
        ("maxpol 2x2", "E105", "maxpool"),
        ("MAX POL1: 2x2", "E105", "max pool"),  # a label
        ("CONV 6 5x5 strid 2", "E106", "stride"),  # a keyword
        ("CONV 6 5x5 stride 1 depthwize", "E106", "depthwise"),  # a flag
        ("CONV 6 5x5 no reul", "E106", "no relu"),
        ("CONV 6 5x5, rellu", "E106", "relu"),  # a kind after a comma
        ("conv: bn, rellu", "E106", "relu"),  # a follower of a defaults line
        ("CONV 6 5x5, bn, rleu", "E106", "relu"),  # after a kind that takes no arguments
        ("CONV2: cnov 6 5x5", "E105", "conv"),  # a label naming the kind, then a typo
        ("pool: maxpol 2x2", "E105", "maxpool"),
        ("CONV 6 5x5, relu, bnn", "E106", "bn"),
    ],
)
def test_a_misspelt_word_gets_the_nearest_known_one(line: str, code: str, suggested: str) -> None:
    got_code, message, got_line, _ = only_error(INPUT + line + "\nFC 2\n")
    assert (got_code, got_line) == (code, 2)
    assert message.endswith(f"did you mean `{suggested}`?"), message


def test_a_misspelt_block_gets_the_files_block() -> None:
    text = "block bottle(c):\n    CONV c 3x3 pad 1\n" + INPUT + "botle(4)\nFC 2\n"
    code, message, line, _ = only_error(text)
    assert (code, line) == ("E202", 4)
    assert message.endswith("did you mean `bottle`?")


def test_nothing_near_suggests_nothing() -> None:
    _, message, _, _ = only_error(INPUT + "zzz\nFC 2\n")
    assert "did you mean" not in message
    _, message, _, _ = only_error(INPUT + "CONV 6 5x5 frobnicate\nFC 2\n")
    assert "did you mean" not in message


def test_a_label_without_its_colon_says_so() -> None:
    code, message, line, column = only_error(INPUT + "CONV1 6 5x5 stride 1\nFC 2\n")
    assert (code, line, column) == ("E105", 2, 1)
    assert message == "missing `:` after the label `CONV1`"
    _, message, _, _ = only_error(INPUT + "stem CONV 6 5x5\nFC 2\n")
    assert message == "missing `:` after the label `stem`"


def test_residual_without_its_colon_says_so() -> None:
    text = INPUT + "residual\n    CONV 3 3x3 pad 1\nadd\nFC 2\n"
    code, message, line, _ = only_error(text)
    assert (code, line) == ("E202", 2)
    assert message == "`residual` needs a `:` after it"


@pytest.mark.parametrize("line", ["b(4) xdepth"], ids=["one"])
def test_a_repeat_count_that_is_no_number_says_so(line: str) -> None:
    text = "block b(c):\n    CONV c 3x3 pad 1\n" + INPUT + line + "\nFC 2\n"
    code, message, row, _ = only_error(text)
    assert (code, row) == ("E106", 4)
    assert message == "the repeat count after `x` must be a number"


@pytest.mark.parametrize(
    "line", ["b(4) x depth", "CONV 4 3x3 pad 1 x depth"], ids=["call", "layer"]
)
def test_a_computed_repeat_count_reads_known_names(line: str) -> None:
    # `x EXPR` is a computed count (issue 23): an unknown name in it is E207 with the names.
    text = "block b(c):\n    CONV c 3x3 pad 1\n" + INPUT + line + "\nFC 2\n"
    code, message, row, _ = only_error(text)
    assert (code, row) == ("E207", 4)
    assert message == "unexpected word `depth`"
    # A parameter named `x` is still a value, and `x3` a count.
    ok = "block b(c, x = 2):\n    CONV x 3x3 pad 1\n" + INPUT + "b(4) x3\nFC 2\n"
    assert parse_spec(ok).diagnostics == []


@pytest.mark.parametrize(
    ("setting", "suggested"),
    [("optimiser sgd", "optimizer"), ("epoch 3", "epochs"), ("wieght decay 0.1", "weight decay")],
)
def test_a_misspelt_training_setting_gets_the_nearest(setting: str, suggested: str) -> None:
    text = INPUT + "CONV 4 3x3\nGAP\nFC 2\ntrain:\n    " + setting + "\n"
    code, message, line, _ = only_error(text)
    assert (code, line) == ("E112", 6)
    assert message == f"unknown training setting: did you mean `{suggested}`?"
