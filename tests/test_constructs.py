"""The statement registry (archc.constructs): every statement of the language has one construct
with every facet, and the parser, the walker and the editor outline each reach every construct
through it (a construct's header reads back as its own node; its outline shows it)."""

from __future__ import annotations

from typing import get_args

import pytest

from archc import syntax as S
from archc.constructs import CONSTRUCTS, HEADERS
from archc.constructs.base import REGISTERED, Construct, Line
from archc.editor import SpecView, Symbol
from archc.parser import parse


def test_every_statement_class_has_one_construct():
    assert set(CONSTRUCTS) == set(get_args(S.Stmt))
    assert len(REGISTERED) == len(get_args(S.Stmt)) == 22


def test_a_construct_without_a_facet_fails_when_defined():
    before = list(REGISTERED)
    with pytest.raises(TypeError, match="does not define elaborate, outline"):

        class Loop(Line):  # a statement the language does not have
            node = S.Stage
            title = "a loop"
            part = "nothing"

    with pytest.raises(TypeError, match="Stage already has one"):

        class Stage2(Construct):
            node = S.Stage
            title = part = ""
            headers = ()
            parse = elaborate = outline = Construct.parse

    assert REGISTERED == before


# Each header form, written out, and the statement it must read as (inside a block body, or at
# the top where a block or the recipe stands).
HEADER_LINES = {
    "block NAME(PARAMS):": ("block b(w):\n    relu\n", S.BlockDef),
    "sequential block NAME(PARAMS):": ("sequential block b(w):\n    relu\n", S.BlockDef),
    "train:": ("train:\n    epochs 3\n", S.Train),
    "if CONDITION:": ("block b(w):\n    if w > 1:\n        relu\n", S.If),
    "stage NAME:": ("block b(w):\n    stage s:\n        relu\n", S.Stage),
    "sequential NAME:": ("block b(w):\n    sequential s:\n        relu\n", S.Stage),
    "sequential:": ("block b(w):\n    sequential:\n        relu\n", S.Stage),
    "residual:": ("block b(w):\n    residual:\n        relu\n", S.Residual),
    "shortcut:": ("block b(w):\n    shortcut:\n        relu\n", S.Shortcut),
    "shortcut: auto": ("block b(w):\n    shortcut: auto\n", S.Shortcut),
    "shortcut: identity": ("block b(w):\n    shortcut: identity\n", S.Shortcut),
    "shortcut: projection": ("block b(w):\n    shortcut: projection\n", S.Shortcut),
    "gate:": ("block b(w):\n    gate:\n        relu\n", S.Gate),
    "branch:": ("block b(w):\n    branch:\n        relu\n", S.Branch),
    "sequential branch:": ("block b(w):\n    sequential branch:\n        relu\n", S.Branch),
    "inline branch:": ("block b(w):\n    inline branch:\n        relu\n", S.Branch),
    "aux NAME:": ("input [8x8x3]\naux a:\n    relu\n", S.Aux),
    "let NAME = EXPR": ("block b(w):\n    let v = w * 2\n    relu\n", S.Let),
    "table NAME(COLUMNS):": ("table t(a, b):\n    1, 2\n    3, 4\n", S.Table),
    "for TARGETS in EXPR:": ("block b(w):\n    for k in range(w):\n        relu\n", S.For),
}


def _walk(body):
    for st in body:
        yield st
        yield from _walk(getattr(st, "body", ()))


def test_every_header_form_reads_as_its_construct():
    forms = {(h, c.node) for c in HEADERS for h in c.headers}
    assert forms == {(h, node) for h, (_, node) in HEADER_LINES.items()}
    for form, (text, node) in HEADER_LINES.items():
        spec, diags = parse(text, "t.arch")
        assert spec is not None and not diags, (form, diags)
        found = [st for st in _walk(spec.body) if type(st) is node]
        assert len(found) == 1, (form, spec.body)


OUTLINED = """\
input [8x8x16]
conv: bn, relu

block b(w, se = 1):
    stage s:
        residual:
            CONV: w 3x3 pad 1
        shortcut: projection
        add
    sequential t:
        branch:
            CONV: 8 1x1
        branch:
            CONV: 8 1x1
        concat
    if se:
        gate:
            GAP
            CONV: w 1x1
            sigmoid

x: b(16)
"""


def test_the_outline_shows_every_section_construct():
    view = SpecView(OUTLINED, "/tmp/outline.arch")
    assert view.checked.ok, view.checked.diagnostics

    def flat(symbols: list[Symbol]) -> list[tuple[str, str, str]]:
        out = []
        for s in symbols:
            out += [(s.name, s.kind, s.detail), *flat(s.children)]
        return out

    shown = [(n, k, d) for n, k, d in flat(view.symbols()) if k != "layer"]
    assert shown == [
        ("input", "input", "[8x8x16]"),
        ("b", "block", "(w, se = 1)"),
        ("s", "stage", ""),
        ("residual", "section", ""),
        ("shortcut", "section", "projection"),
        ("t", "stage", ""),
        ("branch", "section", ""),
        ("branch", "section", ""),
        ("if", "section", ""),
        ("gate", "section", ""),
        ("x", "call", "b [8x8x16]"),
    ]


def test_the_editor_completes_every_header_word_with_its_construct():
    from archc.editor import registry_completions

    keywords = {c.label: c for c in registry_completions() if c.kind == "keyword"}
    for word, title in [
        ("residual:", "a residual path"),
        ("gate:", "a gate (squeeze-and-excitation)"),
        ("inline branch:", "a branch"),
        ("if", "a conditional section"),
        ("train:", "the training recipe"),
        ("sequential:", "a stage"),
        ("shortcut:", "a residual's shortcut"),
    ]:
        assert keywords[word].detail == title, word
    # What the graph and the source show of it: a branch is a part of its own, a gate is not.
    assert "branchN" in keywords["branch:"].documentation
    assert "enclosing part" in keywords["gate:"].documentation
