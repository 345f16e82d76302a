"""A paper's table as the paper prints it: a ``columns:`` line, then one row per line.

The GoogLeNet paper's Table 1 is the model (specs/googlenet_table.arch), here cut short::

    columns: type  patch size/stride  output size  depth  #1x1  #3x3  params (K = 1024)  ops
    convolution     7×7/2  112×112×64  1  -   -    2.7K  34M
    max pool        3×3/2  56×56×64    0

The columns line names the columns in the paper's words (archc knows each one's meaning); each
row is read by position: its type in the paper's words, then one cell per column, ``-`` for an
empty cell, and the empty cells after the last written one left out. A row becomes the layers or
the block call the paper means, with the output size as its declared shape and the depth,
params and ops cells as claims, which archc checks like any other (archc.passes.claims).

The parser (archc/parser.py) imports this module only for a file that has a columns line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from lark import Token

from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.ops import OPS, WORDS
from archc.spans import Span

COLUMNS = re.compile(r"[ \t\f\u00a0]*columns[ \t]*:", re.I)
"""How a columns line starts."""

_X = r"[ \t]*[xX×][ \t]*"
# Each column archc reads, by its words in the paper; matched case-insensitively at a position,
# the longest match winning (`#3x3 reduce` over `#3x3`).
_TITLES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.I))
    for kind, pattern in (
        ("type", r"type"),
        ("patch", r"patch[ \t]+size(?:[ \t]*/[ \t]*stride)?"),
        ("output", r"output[ \t]+size"),
        ("depth", r"depth"),
        ("reduce", rf"#[ \t]*(\d{{1,3}}){_X}(\d{{1,3}})[ \t]+reduce"),
        ("filters", rf"#[ \t]*(\d{{1,3}}){_X}(\d{{1,3}})"),
        ("pool proj", r"pool[ \t]+proj"),
        ("params", r"params"),
        ("ops", r"ops"),
    )
)
_UNIT = re.compile(r"[ \t]*\([ \t]*K[ \t]*=[ \t]*(\d+)[ \t]*\)", re.I)
_SEPARATOR = re.compile(r"[ \t\f\u00a0,|]+")
COLUMNS_HELP = (
    "archc reads the columns type, patch size/stride, output size, depth, #KxK, #KxK reduce, "
    "pool proj, params and ops (type first), as in `columns: type  patch size/stride  output "
    "size  depth  params (K = 1024)  ops`"
)
FILTER_KINDS = ("filters", "reduce", "pool proj")


@dataclass(frozen=True)
class Column:
    kind: str
    """type, patch, output, depth, filters (#KxK), reduce (#KxK reduce), pool proj, params, ops."""
    title: str
    span: Span
    size: int | None = None
    """K of a #KxK or #KxK reduce column."""
    thousand: int = 1000
    """What the column's K means: 1000, or 1024 (``params (K = 1024)``)."""


class RowProblem(Exception):
    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        super().__init__(message)
        self.diagnostic = error(code, message, span, help)


def _at(file: str, line: int, column: int, width: int) -> Span:
    return Span(file=file, line=line, column=column, end_line=line, end_column=column + width)


def read_columns(raw: str, line: int, file: str) -> tuple[list[Column], list[Diagnostic]]:
    """The columns a ``columns:`` line names (``raw`` is the whole line). A ``#`` directly
    followed by a digit is a column (the paper's ``#3x3``); any other ``#`` starts a comment."""
    start = COLUMNS.match(raw)
    assert start is not None
    columns: list[Column] = []
    pos = start.end()
    while True:
        gap = _SEPARATOR.match(raw, pos)
        pos = gap.end() if gap else pos
        if pos >= len(raw) or (raw[pos] == "#" and not re.match(r"#[ \t]*\d", raw[pos:])):
            break
        found = max(
            ((kind, m) for kind, p in _TITLES if (m := p.match(raw, pos))),
            key=lambda km: km[1].end(),
            default=None,
        )
        if found is None:
            word = re.match(r"[^ \t,|]+", raw[pos:])
            width = len(word[0]) if word else 1
            span = _at(file, line, pos + 1, width)
            return [], [error("E113", "archc does not know this column", span, COLUMNS_HELP)]
        kind, m = found
        end = m.end()
        thousand = 1000
        unit = _UNIT.match(raw, end)
        if unit is not None:
            thousand = int(unit[1])
            end = unit.end()
            if kind not in ("params", "ops") or thousand not in (1000, 1024):
                span = _at(file, line, unit.start() + 1, end - unit.start())
                why = (
                    "K is 1000 or 1024"
                    if kind in ("params", "ops")
                    else "only the params and ops columns print counts with K"
                )
                return [], [error("E113", f"`{unit[0].strip()}`: {why}", span, COLUMNS_HELP)]
        span = _at(file, line, pos + 1, m.end() - pos)
        size = None
        if kind in ("filters", "reduce"):
            if m[1] != m[2]:
                return [], [error("E113", "a filter column is square: #KxK", span, COLUMNS_HELP)]
            size = int(m[1])
        column = Column(kind, re.sub(r"[ \t]+", " ", m[0]), span, size, thousand)
        if any((c.kind, c.size) == (column.kind, column.size) for c in columns):
            return [], [error("E113", f"the column `{column.title}` is named twice", span)]
        columns.append(column)
        pos = end
    whole = _at(file, line, 1, max(1, len(raw.rstrip())))
    if not columns or columns[0].kind != "type":
        where = columns[0].span if columns else whole
        return [], [error("E113", "a table's first column is its type", where, COLUMNS_HELP)]
    return columns, []


# --- rows ------------------------------------------------------------------------------------

_TYPE = re.compile(r"(?P<words>[^(]*?)[ \t]*(?:\((?P<tag>[^()]*)\))?[ \t]*")
_PERCENT = re.compile(r"[ \t]*(\d{1,3}(?:\.\d+)?)[ \t]*%[ \t]*")
_TAG = re.compile(r"[ \t]*([A-Za-z0-9_]+)[ \t]*")


class _Row:
    def __init__(self, columns: list[Column], cells: list[Token], span: Span, file: str):
        self.columns = columns
        self.file = file
        self.line = span.line
        self.span = span
        self.type = cells[0]
        self.cells: dict[str, tuple[Column, Token, Span]] = {}
        self.filters: list[tuple[Column, Token | None, Span | None]] = []
        rest = cells[1:]
        if len(rest) > len(columns) - 1:
            extra = rest[len(columns) - 1]
            raise RowProblem(
                "E114",
                f"this row has {len(rest) + 1} cells, but the table has {len(columns)} columns",
                self.cell_span(extra),
                "write `-` for an empty cell; the empty cells at the end may be left out",
            )
        for i, column in enumerate(columns[1:]):
            tok = rest[i] if i < len(rest) and rest[i].type != "DASH" else None
            span = self.cell_span(tok) if tok is not None else None
            if column.kind in FILTER_KINDS:
                self.filters.append((column, tok, span))
            elif tok is not None and span is not None:
                self.cells[column.kind] = (column, tok, span)

    def cell_span(self, tok: Token) -> Span:
        return _at(self.file, self.line, tok.column or 1, len(str(tok)))

    def wrong(self, column: Column, span: Span, what: str) -> RowProblem:
        return RowProblem(
            "E114", f"the {column.title} column holds {what}", span, "or `-` for an empty cell"
        )

    # cells ---------------------------------------------------------------------------------

    def count(self, column: Column, tok: Token, span: Span) -> int:
        text = str(tok)
        if tok.type != "CELLNUM" or not re.fullmatch(r"\d{1,6}", text):
            raise self.wrong(column, span, "a whole number")
        return int(text)

    def sizes(self, column: Column, tok: Token, span: Span) -> list[int]:
        digits = re.findall(r"\d+", str(tok))
        if any(len(d) > 9 for d in digits):  # far past any real size; int() of 5000 digits fails
            raise self.wrong(column, span, "sizes, and this one is far too large")
        return [int(d) for d in digits]

    def patch(self) -> tuple[S.Arg, S.Arg | None] | None:
        if "patch" not in self.cells:
            return None
        column, tok, span = self.cells["patch"]
        sizes = self.sizes(column, tok, span)
        if tok.type == "SIZE" and len(sizes) == 2:
            return S.Arg(S.Pair((sizes[0], sizes[1]), span), span), None
        if tok.type != "PATCH" or len(sizes) != 3:
            raise self.wrong(column, span, "a window and its stride, e.g. 3×3/2")
        stride = S.Num(Fraction(sizes[2]), str(sizes[2]), span)
        return S.Arg(S.Pair((sizes[0], sizes[1]), span), span), S.Arg(stride, span)

    def declared(self) -> S.DeclaredShape | None:
        if "output" not in self.cells:
            return None
        column, tok, span = self.cells["output"]
        dims = self.sizes(column, tok, span)
        if tok.type == "SIZE" and len(dims) == 3:
            return S.DeclaredShape((dims[0], dims[1], dims[2]), span)
        if tok.type == "CELLNUM" and re.fullmatch(r"\d+", str(tok)):
            return S.DeclaredShape((dims[0],), span)
        raise self.wrong(column, span, "a shape, height × width × channels")

    def claims(self) -> tuple[S.ClaimSyntax, ...]:
        claims = []
        for kind in ("depth", "params", "ops"):
            if kind not in self.cells:
                continue
            column, tok, span = self.cells[kind]
            if kind == "depth":
                self.count(column, tok, span)
            elif tok.type != "CELLNUM":
                raise self.wrong(column, span, "a printed count, e.g. 159K or 1,728")
            text = re.sub(r"[ \t]+", "", str(tok))
            if column.thousand == 1024 and text[-1] in "kKmMgG":
                text += "i"  # 159K in a `params (K = 1024)` column is 159Ki: 159 · 1024
            claims.append(S.ClaimSyntax(kind, None, text, span))  # type: ignore[arg-type]
        return tuple(claims)

    # the row's meaning ---------------------------------------------------------------------

    def statements(self) -> list[S.Stmt]:
        text = str(self.type)
        m = _TYPE.fullmatch(text)
        assert m is not None
        words = m["words"].split()
        tag = m["tag"]
        type_span = self.cell_span(self.type)
        op = WORDS.get(" ".join(words).upper())
        percent = _PERCENT.fullmatch(tag) if tag is not None else None
        name_tag = _TAG.fullmatch(tag) if tag is not None and percent is None else None
        if tag is not None and percent is None and name_tag is None:
            raise RowProblem(
                "E114",
                f"`({tag})` is neither a name nor a percentage",
                type_span,
                "the paper's types read `inception (3a)` (a name) or `dropout (40%)`",
            )
        if percent is not None and (op is None or op.kind != "dropout"):
            raise RowProblem("E114", "only a dropout row takes a percentage", type_span)
        name = "_".join(words) + name_tag[1] if name_tag is not None else None
        if op is None:
            if len(words) != 1 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", words[0]):
                raise RowProblem(
                    "E105",
                    f"unknown layer kind `{m['words']}`",
                    type_span,
                    "a row's type is a layer kind in the paper's words (convolution, max pool, "
                    "avg pool, dropout, linear, softmax) or the name of a block",
                )
            return [self.call(words[0], name, type_span)]
        options: dict[str, S.Arg] = {}
        if percent is not None:
            value = Fraction(percent[1]) / 100
            options["p"] = S.Arg(S.Num(value, str(float(value)), type_span), type_span)
        return self.layers(op.kind, name, options, type_span)

    def call(self, block: str, name: str | None, type_span: Span) -> S.Stmt:
        if "patch" in self.cells:
            column, _, span = self.cells["patch"]
            raise RowProblem("E114", f"a block row has no {column.title}", span)
        args: list[S.Expr] = []
        for column, tok, span in self.filters:
            if tok is None or span is None:
                raise RowProblem(
                    "E114",
                    f"the block `{block}` takes every filter column, but {column.title} is empty",
                    self.span,
                    "its arguments are the filter columns in order",
                )
            args.append(S.Num(Fraction(self.count(column, tok, span)), str(tok), span))
        call = S.Call(block, tuple(args), (), 1, type_span)
        return S.CallLine(
            name,
            (call,),
            self.span,
            self.declared(),
            self.claims(),
            type_span if name is not None else None,
        )

    def layers(
        self, kind: str, name: str | None, options: dict[str, S.Arg], type_span: Span
    ) -> list[S.Stmt]:
        op = OPS[kind]
        patch = self.patch()
        written = [(c, t, s) for c, t, s in self.filters if t is not None and s is not None]
        flags: frozenset[str] = frozenset()
        if patch is not None:
            if "kernel" not in op.keywords.values():
                _, _, span = self.cells["patch"]
                raise RowProblem("E114", f"{op.article} row has no patch size", span)
            options["kernel"] = patch[0]
            if patch[1] is not None:
                options["stride"] = patch[1]
        if op.kind in ("maxpool", "avgpool"):
            # The paper's pools round up, as its sizes show (112 → 56 through a 3x3/2 window).
            flags = frozenset({"ceil"})
        before: list[S.Stmt] = []
        if op.kind == "conv":
            before = self.conv_filters(options, written)
        elif written:
            column, _, span = written[0]
            raise RowProblem("E114", f"{op.article} row has no {column.title}", span)
        layer = S.Layer(
            kind=kind,
            name=name,
            span=self.span,
            options=options,
            flags=flags,
            paper=True,
            declared=self.declared(),
            claims=self.claims(),
            name_span=type_span if name is not None else None,
        )
        return [*before, layer]

    def conv_filters(
        self, options: dict[str, S.Arg], written: list[tuple[Column, Token, Span]]
    ) -> list[S.Stmt]:
        """A convolution row's `#KxK reduce` (a 1x1 conv before it) and `#KxK` (its filters),
        K being its patch size; the paper's second convolution reads `#3x3 reduce 64, #3x3 192`."""
        if "kernel" not in options:
            raise RowProblem(
                "E114",
                "a convolution row needs its patch size",
                self.span,
                "write the window and its stride, e.g. 3×3/1",
            )
        kernel = options["kernel"].value
        assert isinstance(kernel, S.Pair)
        before: list[S.Stmt] = []
        for column, tok, span in written:
            if column.size is None or (column.size, column.size) != kernel.values:
                k = f"{kernel.values[0]}x{kernel.values[1]}"
                raise RowProblem(
                    "E114",
                    f"a {k} convolution row reads #{k} reduce and #{k}, not {column.title}",
                    span,
                )
            count = S.Num(Fraction(self.count(column, tok, span)), str(tok), span)
            if column.kind == "filters":
                options["filters"] = S.Arg(count, span)
                continue
            one = S.Pair((1, 1), span)
            reduce = {"filters": S.Arg(count, span), "kernel": S.Arg(one, span)}
            before.append(S.Layer(kind="conv", name=None, span=self.span, options=reduce))
        return before


def row_statements(columns: list[Column], cells: list[Token], span: Span) -> list[S.Stmt]:
    """The statements of one row, read by ``columns`` (RowProblem when a cell does not fit)."""
    return _Row(columns, cells, span, span.file).statements()
