"""Source text -> syntax tree (:mod:`archc.syntax`), with syntax errors as diagnostics.

Two steps, in three modules. The Lark grammar (``grammar.lark``, LALR with a contextual lexer)
splits each line into its parts — declared shape, label, items, ``->`` shape, claims, remark —
or recognises it as a header (``residual:``, ``block b(w):``) by its terminals, and
archc.parsing.lines turns tokens into expressions and items. Then :class:`_Classifier` reads
the words: which statement a header's keywords make, an ``if`` condition, a ``train:`` setting,
a defaults line (archc.parsing.statements, with the construct registry, archc.constructs);
which layer kind a label or body names, which argument a number is, whether a line is a block
call (archc.parsing.binding). Errors of the first step stop the parse of the line
(E101-E103); errors of the second are reported per line and the other lines still parse.
"""

from __future__ import annotations

from typing import Any

from lark import Lark
from lark.exceptions import UnexpectedInput, VisitError

from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.parsing.binding import Arguments, Binding
from archc.parsing.lines import (
    _BLANK,
    _COLUMNS,
    _TOKEN,
    MAX_NESTING,
    MAX_SYNTAX_ERRORS,
    VARIANTS_HEADER,
    SyntaxProblem,
    _expected,
    _indent,
    _Line,
    _opens_body,
    _parse_row,
    _Parts,
    _point,
    _set_body_spans,
    _syntax_diagnostic,
    _template_line,
    _too_deep,
    _total_line,
    _tree,
    _variant_row,
    bidi_warnings,
    lark_parser,
)
from archc.parsing.lines import (
    MAX_BIDI_WARNINGS as MAX_BIDI_WARNINGS,  # the bound of W006, which tests read here
)
from archc.parsing.params import SpecParams
from archc.parsing.statements import StatementParts, Statements

MAX_STATEMENTS = 20_000
"""Statement lines a file may have. Checked before any line is parsed (E216), so that a 10 MB
file of 2 million `relu` lines is refused in a second instead of parsed in full for the
elaborator to stop at the node limit. Parsing, classifying, elaborating and checking costs
about a millisecond and 10 KB a line of distinct text on the 2-core development VM: 20,000
lines keep any file under the size limit within 30 s and 1 GB (issue 24), and are 200 times
the longest shipped spec; a network is still up to archc.elaborate.expand.MAX_NODES nodes,
made by calling blocks (`xN`)."""
VALUE_TABLES = {("table",)}
"""The header lines whose bodies are rows of values (the ``valuerow`` of grammar.lark)."""
MAX_TOKENS = 300_000
"""Words, numbers and signs a file's statements may hold (comments not counted), checked with
the statement lines: a line of 150 additions costs as much as dozens of plain ones, and 20,000
of them would take minutes and gigabytes. The largest shipped spec has about 500."""


class _Classifier(Statements, StatementParts, SpecParams, Binding, Arguments):
    """Reads the words of a file's lines: which statement each line makes (archc.parsing.
    statements) and, for a layer line, which layer kind and arguments (archc.parsing.binding)."""


def _parse_lines(
    text: str, file: str, expected: list[S.Expectation] | None = None
) -> tuple[list[_Line], list[Diagnostic]]:
    """Parse every line on its own and nest the bodies by indentation.

    Only a line ending in ``:`` opens a body; a deeper line elsewhere is read at the current
    level, so an indented or ragged table is still a table. A dedent must return to an enclosing
    level (E103). A rejected line is reported and left out; the others still parse. After a
    ``columns:`` line, the lines of its body are the rows of a paper's table (archc.table).
    ``expected`` collects the ``# expect CODE`` comments.
    """
    parser = lark_parser()
    rejected: list[Diagnostic] = []
    tables: dict[int, Any] = {}  # id of a body's list of lines -> the columns of its table
    variant_bodies: set[int] = set()  # ids of the bodies of `variants(...)` headers
    value_bodies: set[int] = set()  # ids of the bodies of `table NAME(cols):` lines
    top: list[_Line] = []
    levels: list[tuple[int, list[_Line]]] = []  # open bodies: (indentation, their lines)
    opener: _Line | None = None  # the last line read, which may open a body
    opener_raw = ""
    raws = text.split("\n")
    too_many = _too_many_statements(raws, file)
    if too_many is not None:
        return [], [too_many]
    for n, raw in enumerate(raws, 1):
        stripped = raw.lstrip(_BLANK)
        if not stripped or stripped.startswith("#"):
            if stripped and expected is not None:
                expected += _expected(raw, n, alone=True)  # stands on no finding's line
            continue
        if len(rejected) >= MAX_SYNTAX_ERRORS:
            break
        indent = _indent(raw)
        width = max(1, len(raw) - len(stripped))
        if not levels:
            levels = [(indent, top)]
        if indent > levels[-1][0] and opener_raw and _opens_body(opener, opener_raw):
            if len(levels) > MAX_NESTING:
                rejected.append(
                    error(
                        "E111",
                        f"bodies are nested more than {MAX_NESTING} deep",
                        _point(file, n, 1, width),
                        "move inner parts into blocks",
                    )
                )
                return [], rejected  # what was read is not the file's structure
            body: list[_Line] = []
            _mark_body(body, opener, opener_raw, value_bodies, variant_bodies)
            levels.append((indent, body))
        elif indent < levels[-1][0] and not _dedent(levels, top, indent):
            rejected.append(
                error(
                    "E103",
                    "this line's indentation matches no enclosing level",
                    _point(file, n, 1, width),
                    "indent it exactly like the lines above it that belong to the same body",
                )
            )
            opener, opener_raw = None, ""
            continue
        if expected is not None:
            expected += _expected(raw, n)
        here = levels[-1][1]
        if _COLUMNS.match(raw):
            tables[id(here)] = _columns(raw, n, file, width + 1 if stripped != raw else 1, rejected)
            opener, opener_raw = None, ""
            continue
        if id(here) in tables:
            line = _parse_row(parser, raw, n, file, rejected, tables[id(here)])
        elif id(here) in value_bodies:
            line = _parse_line(parser, raw, n, file, rejected, start="valuerow")
        else:
            line = _parse_any(parser, raw, n, file, rejected, id(here) in variant_bodies)
        if line is not None:
            here.append(line)
        opener, opener_raw = line, raw
    _set_body_spans(top)
    return top, rejected


def _mark_body(
    body: list[_Line],
    opener: _Line | None,
    raw: str,
    value_bodies: set[int],
    variant_bodies: set[int],
) -> None:
    """A body opened by ``opener``: its lines are rows of values under `table NAME(...):`, or
    of a `variants(...)` table."""
    if opener is not None:
        opener.body = body
        value_bodies |= {id(body)} if opener.header in VALUE_TABLES else set()
    if VARIANTS_HEADER.match(raw):
        variant_bodies.add(id(body))


def _parse_any(
    parser: Lark, raw: str, n: int, file: str, rejected: list[Diagnostic], variant_row: bool
) -> _Line | None:
    """A line, or a row of a ``variants`` table (``variant_row``)."""
    if not variant_row:
        return _parse_line(parser, raw, n, file, rejected)
    try:
        return _variant_row(raw, n, file)
    except SyntaxProblem as p:
        rejected.append(p.diagnostic)
        return None


def _dedent(levels: list[tuple[int, list[_Line]]], top: list[_Line], indent: int) -> bool:
    """Close the bodies a line at ``indent`` leaves; False when it returns to no enclosing
    level (E103). A line left of the top level moves the top level (a table that started
    indented)."""
    popped = False
    while len(levels) > 1 and indent < levels[-1][0]:
        levels.pop()
        popped = True
    if indent < levels[-1][0]:
        levels[0] = (indent, top)
        return True
    return not (popped and indent > levels[-1][0])


def _columns(raw: str, n: int, file: str, column: int, rejected: list[Diagnostic]) -> Any:
    """A ``columns:`` line's columns and where it begins (None when it has problems, which
    are added to ``rejected``): the lines of its body are the rows of a paper's table."""
    from archc.table import read_columns

    columns, problems = read_columns(raw, n, file)
    rejected += problems
    begun = _point(file, n, column, len("columns:"))
    return (columns, begun) if not problems else None


def _too_many_statements(raws: list[str], file: str) -> Diagnostic | None:
    """E216 at the statement line past MAX_STATEMENTS, found before any line is parsed: the
    parse of a file that cannot be built stops there, in time and memory linear in the file."""
    statements = tokens = 0
    for n, raw in enumerate(raws, 1):
        stripped = raw.lstrip(_BLANK)
        if stripped and not stripped.startswith("#"):
            statements += 1
            tokens += len(_TOKEN.findall(stripped.split("#", 1)[0]))
            if statements > MAX_STATEMENTS or tokens > MAX_TOKENS:
                what = (
                    f"{MAX_STATEMENTS:,} statement lines"
                    if statements > MAX_STATEMENTS
                    else f"{MAX_TOKENS:,} words, numbers and signs in its statements"
                )
                return error(
                    "E216",
                    f"the spec has more than {what}",
                    _point(file, n, 1, max(1, min(len(raw), 80))),
                    "is this the right file? a larger network is written with blocks and "
                    "repetition (`layer: block() x100`), up to 100,000 nodes",
                )
    return None


def _parse_line(
    parser: Lark, raw: str, n: int, file: str, rejected: list[Diagnostic], start: str = "start"
) -> _Line | None:
    total = _total_line(raw, n, file)
    if total is not None:
        return total
    try:
        template = _template_line(raw, n, file)
    except SyntaxProblem as p:
        rejected.append(p.diagnostic)
        return None
    if template is not None:
        return template
    problem = _too_deep(raw, n, file)
    if problem is not None:
        rejected.append(problem)
        return None
    try:
        return _Parts(file, n).transform(_tree(parser, raw, start))
    except UnexpectedInput as e:
        rejected.append(_syntax_diagnostic(e, file, n, raw))
    except VisitError as e:
        if not isinstance(e.orig_exc, SyntaxProblem):
            raise
        rejected.append(e.orig_exc.diagnostic)
    return None


def parse(text: str, file: str = "<string>") -> tuple[S.Spec | None, list[Diagnostic]]:
    """Parse spec text into a syntax tree and diagnostics.

    Each line is parsed on its own, so one typo does not hide the next (up to
    MAX_SYNTAX_ERRORS rejected lines). The tree is None when any line was rejected: what is left
    of the file is not the spec the author wrote.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    expected: list[S.Expectation] = []
    lines, rejected = _parse_lines(text, file, expected)
    classifier = _Classifier(file)
    body = classifier.block(lines)
    hidden = bidi_warnings(text, file)
    if rejected:
        return None, rejected + classifier.diags + hidden
    return S.Spec(file, body, tuple(expected)), classifier.diags + hidden
