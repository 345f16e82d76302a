"""Source text -> syntax tree (:mod:`archc.syntax`), with syntax errors as diagnostics.

Two steps. The Lark grammar (``grammar.lark``, LALR with a contextual lexer) splits each line
into its parts — declared shape, label, items, ``->`` shape, claims, remark — or recognises it
as a header (``residual:``, ``block b(w):``) by its terminals, and :class:`_Parts` turns tokens
into expressions and items. Then :class:`_Classifier` reads the words: which statement a
header's keywords make, which layer kind a label or body names, which argument a number is,
whether a line is a defaults line or a block call. Errors of the first step stop the parse of
the line (E101-E103); errors of the second are reported per line and the other lines still
parse.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from archc import syntax as S
from archc.diagnostics import Diagnostic, Note, error, warning
from archc.ops import LONGEST_WORD, OPS, WORDS, Op, by_word
from archc.spans import Span
from archc.suggest import closest, did_you_mean

# --- the vocabulary ----------------------------------------------------------------------------
# Layer kinds, their words, slots, keywords and flags are the op registry's (archc/ops).

FILLER = {"filters", "filter", "at", "neurons", "neuron", "layer", "normalization", "units"}
NO_FLAGS = {"relu", "bn", "bias"}
# The functions arithmetic may call, with their least and most argument counts (None: any).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "max": (2, None),
    "min": (2, None),
    "round": (1, 1),
    "make_divisible": (2, 2),
}
FUNCTION_HELP = "write e.g. `max(a, b)`, `round(in.c * 1.5)`, `make_divisible(in.c * 6, 8)`"
# `s2`, `p3`, `s2x1`, `g32`, `d2`: stride, padding, groups and dilation as the summary prints them.
_SHORT_OPTION = re.compile(r"([spgd])(\d{1,9})(?:x(\d{1,9}))?")
_SHORT_KEYWORD = {"s": "stride", "p": "pad", "g": "groups", "d": "dilation"}

_INDEXED = re.compile(r"^(.*?)(\d[A-Za-z0-9_]*)$")  # CONV1, CONV1_1, CONV2a
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # "block1-0": torchvision's RegNet
_MAX_DIGITS = 40  # longer numbers are typos, and Python refuses to parse very long ones
# Beyond these no real spec goes, and the recursive tree walks would overflow the stack.
MAX_NESTING = 32  # parentheses in a line, or bodies in a file
MAX_OPERATORS = 200  # arithmetic operators in a line
MAX_SYNTAX_ERRORS = 20  # lines rejected before the parser gives up on a file
MAX_STATEMENTS = 20_000
"""Statement lines a file may have. Checked before any line is parsed (E216), so that a 10 MB
file of 2 million `relu` lines is refused in a second instead of parsed in full for the
elaborator to stop at the node limit. Parsing, classifying, elaborating and checking costs
about a millisecond and 10 KB a line of distinct text on the 2-core development VM: 20,000
lines keep any file under the size limit within 30 s and 1 GB (issue 24), and are 200 times
the longest shipped spec; a network is still up to archc.elaborate.expand.MAX_NODES nodes,
made by calling blocks (`xN`)."""
MAX_TOKENS = 300_000
"""Words, numbers and signs a file's statements may hold (comments not counted), checked with
the statement lines: a line of 150 additions costs as much as dozens of plain ones, and 20,000
of them would take minutes and gigabytes. The largest shipped spec has about 500."""
_TREES_KEPT = 4096
_TREE_LINE = 200  # longer lines are not kept: a generated spec repeats short ones
_TOKEN = re.compile(r"[A-Za-z0-9_.]+|[^\sA-Za-z0-9_.]")


class SyntaxProblem(Exception):
    """A syntax error found while building items; becomes one diagnostic."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        super().__init__(message)
        self.diagnostic = error(code, message, span, help)


def _cache_file(grammar: str) -> Path | None:
    """Where the analysed grammar is cached: ``$XDG_CACHE_HOME/archc`` (``~/.cache/archc``), one
    file per grammar, Lark and Python version, so versions side by side never overwrite each
    other. None when no such directory can be made (the parser is then built every time)."""
    import hashlib
    import sys

    import lark

    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        directory = Path(base) / "archc"
        directory.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    key = f"{grammar}\0{lark.__version__}\0{sys.version_info[:2]}"
    return directory / f"grammar-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lark-cache"


def _paper_pattern() -> str:
    """The registry's hyphenated words and paper forms as one regex, for the PAPER terminal."""
    forms = [re.escape(w).replace("\\-", "-") for w in WORDS if "-" in w]
    for op in OPS.values():
        # The forms' groups become non-capturing: Lark's terminals may not capture.
        forms += [re.sub(r"\((?!\?)", "(?:", p.pattern) for p, _ in op.paper_forms]
    # Case-insensitive in the words only (see HEADER in grammar.lark).
    return f"(?i:{'|'.join(forms)})(?![A-Za-z0-9_])".replace("\\d", "[0-9]")


@cache
def lark_parser() -> Lark:
    """The Lark parser, built once per process on first use.

    Building the LALR tables costs ~0.3 s; loading them from the cache file ~15 ms. Lark checks
    the file against a digest of the grammar and options and rebuilds (and rewrites) it when it
    is stale, truncated (say, half-written by a parallel process) or unreadable, and does not
    mind an unwritable one; any other failure of the cache means a fresh build, never an error.
    """
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    grammar = grammar.replace("@PAPER@", _paper_pattern())
    options: dict[str, Any] = {
        "parser": "lalr",
        "lexer": "contextual",
        "propagate_positions": True,
        "maybe_placeholders": True,
        "start": ["start", "row"],
    }
    target = _cache_file(grammar)
    if target is not None:
        with contextlib.suppress(Exception):  # a broken cache must never break parsing
            return Lark(grammar, cache=str(target), **options)
    return Lark(grammar, **options)


# --- tokens and items --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Size:
    dims: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class _Group:
    items: tuple[Any, ...]
    span: Span


@dataclass(frozen=True)
class _RawCall:
    name: str
    items: tuple[Any, ...]
    span: Span


@dataclass(frozen=True)
class _KwArg:
    name: str
    value: S.Expr
    span: Span


@dataclass(frozen=True)
class _Str:
    value: str
    span: Span


@dataclass(frozen=True)
class _Repeat:
    count: int
    span: Span


@dataclass(frozen=True)
class _Strided:
    """``3x3/2``: a window and its stride."""

    size: _Size
    stride: S.Num
    span: Span


@dataclass(frozen=True)
class _Comma:
    span: Span


@dataclass(frozen=True)
class _CNum:
    """A number as printed in a claim: ``3.2M``, ``1,728``."""

    text: str
    span: Span


@dataclass
class _Line:
    span: Span
    pre_shape: S.DeclaredShape | None
    label: Token | None
    items: list[Any]
    table_shape: S.DeclaredShape | None
    arrow: S.DeclaredShape | None
    claims: list[S.ClaimSyntax]
    remark: Token | None
    colon: bool
    body: list[_Line] | None = None  # the indented lines below it, when it opens a body
    body_span: Span | None = None
    total: S.TotalClaim | None = None
    row: tuple[Any, list[Token], Span] | None = None
    """A table row: its columns, its cells and the span of the ``columns:`` line above it."""
    header: tuple[str, ...] | None = None
    """A header line's keyword phrase as the grammar's header terminals read it, name included
    (``("stage", "features")``, ``("shortcut",)``, ``("block",)`` before ``b(w):``)."""


def _int(text: str, span: Span) -> int:
    if len(text) > _MAX_DIGITS:
        raise SyntaxProblem("E107", f"the number {text[:12]}… is far too long", span)
    return int(text)


def _fraction(text: str, span: Span) -> Fraction:
    exponent = re.search(r"[eE]([-+]?\d+)$", text)
    if len(text) > _MAX_DIGITS or (exponent and abs(int(exponent[1])) > _MAX_DIGITS):
        raise SyntaxProblem(
            "E107", f"the number {text[:12]} has too many digits or too large an exponent", span
        )
    return Fraction(text)


class _Parts(Transformer):
    """Tokens and item rules -> syntax values; lines -> :class:`_Line` records."""

    def __init__(self, file: str, line: int):
        super().__init__()
        self.file = file
        self.number = line  # each line is parsed alone: Lark's line 1 is this line of the file

    def span(self, x: Token | Any) -> Span:
        if getattr(x, "empty", False):
            n = self.number
            return Span(file=self.file, line=n, column=1, end_line=n, end_column=1)
        return Span(
            file=self.file,
            line=self.number,
            column=x.column,
            end_line=self.number,
            end_column=x.end_column,
        )

    def join(self, a: Span, b: Span) -> Span:
        return Span(
            file=self.file,
            line=a.line,
            column=a.column,
            end_line=b.end_line,
            end_column=b.end_column,
        )

    # tokens
    def NUMBER(self, tok: Token) -> S.Num:
        span = self.span(tok)
        return S.Num(_fraction(str(tok), span), str(tok), span)

    def WORD(self, tok: Token) -> S.Name:
        return S.Name(str(tok), self.span(tok))

    PAPER = WORD

    def INSHAPE(self, tok: Token) -> S.InShape:
        return S.InShape(str(tok)[-1], self.span(tok))  # type: ignore[arg-type]

    def SIZE(self, tok: Token) -> _Size:
        span = self.span(tok)
        return _Size(tuple(_int(d, span) for d in re.split(r"[ \t]*[xX×][ \t]*", str(tok))), span)

    def CNUM(self, tok: Token) -> _CNum:
        return _CNum(str(tok), self.span(tok))

    def STRING(self, tok: Token) -> _Str:
        return _Str(str(tok)[1:-1], self.span(tok))

    def REPEAT(self, tok: Token) -> _Repeat:
        span = self.span(tok)
        return _Repeat(_int(str(tok)[1:], span), span)

    def COMMA(self, tok: Token) -> _Comma:
        return _Comma(self.span(tok))

    # expressions
    def binop(self, children: list[Any]) -> S.BinOp:
        left, op, right = children
        left, right = self.operand(left), self.operand(right)
        sym = {"·": "*"}.get(str(op), str(op))
        return S.BinOp(sym, left, right, self.join(left.span, right.span))  # type: ignore[arg-type]

    def operand(self, x: Any) -> S.Expr:
        if isinstance(x, _RawCall):
            raise SyntaxProblem(
                "E102",
                f"`{x.name}(…)` is not a function: arithmetic calls only "
                + ", ".join(f"`{f}`" for f in FUNCTIONS),
                x.span,
                "a block call is an item of its own: `layer1: bottleneck(64)`",
            )
        if isinstance(x, _Group):
            inner = [i for i in x.items if not isinstance(i, _Comma)]
            if len(inner) == 1 and _is_expr(inner[0]):
                return S.Paren(inner[0], x.span)
            raise SyntaxProblem(
                "E102", "expected one expression inside the parentheses", x.span, None
            )
        if isinstance(x, _Size):
            # In a claim, 224x224x64 is a product.
            expr: S.Expr = S.Num(Fraction(x.dims[0]), str(x.dims[0]), x.span)
            for d in x.dims[1:]:
                expr = S.BinOp("*", expr, S.Num(Fraction(d), str(d), x.span), x.span)
            return expr
        if isinstance(x, _CNum):
            return _cnum_expr(x)
        return x

    @v_args(meta=True)
    def paren(self, meta: Any, children: list[Any]) -> S.Paren:
        return S.Paren(self.operand(children[0]), self.span(meta))

    @v_args(meta=True)
    def group(self, meta: Any, children: list[Any]) -> _Group:
        items = children[0] if children and children[0] is not None else []
        return _Group(tuple(items), self.span(meta))

    @v_args(meta=True)
    def call(self, meta: Any, children: list[Any]) -> _RawCall | S.Func:
        name, group = children
        span = self.span(meta)
        if str(name) not in FUNCTIONS:
            return _RawCall(str(name), group.items, span)
        args: list[S.Expr] = []
        for seg in _segments(list(group.items)):
            if len(seg) != 1 or isinstance(seg[0], S.Compare):
                raise SyntaxProblem(
                    "E106", f"an argument of `{name}` is one value", seg[-1].span, FUNCTION_HELP
                )
            args.append(self.operand(seg[0]))
        low, high = FUNCTIONS[str(name)]
        if not low <= len(args) <= (high or len(args)):
            wanted = f"{low} or more" if high is None else str(low)
            raise SyntaxProblem(
                "E106",
                f"`{name}` takes {wanted} value{'s' if low > 1 else ''}, not {len(args)}",
                span,
                FUNCTION_HELP,
            )
        return S.Func(str(name), tuple(args), span)  # type: ignore[arg-type]

    @v_args(meta=True)
    def blockcall(self, meta: Any, children: list[Any]) -> _RawCall:
        name, group = children
        return _RawCall(str(name), group.items, self.span(meta))

    @v_args(meta=True)
    def compare(self, meta: Any, children: list[Any]) -> S.Compare:
        left, op, right = children
        return S.Compare(str(op), self.operand(left), self.operand(right), self.span(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def kwarg(self, meta: Any, children: list[Any]) -> _KwArg:
        name, value = children
        return _KwArg(name.id, self.operand(value), self.span(meta))

    def items(self, children: list[Any]) -> list[Any]:
        return list(children)

    @v_args(meta=True)
    def shape(self, meta: Any, children: list[Any]) -> S.DeclaredShape:
        (value,) = children
        span = self.span(meta)
        if isinstance(value, S.Num):
            if value.value.denominator != 1:
                raise SyntaxProblem("E107", f"a shape size must be an integer: {value.text}", span)
            dims: tuple[int, ...] = (int(value.value),)
        else:
            dims = value.dims
        if len(dims) not in (1, 3):
            raise SyntaxProblem(
                "E107",
                f"a shape is written [HxWxC] or [N], not with {len(dims)} sizes",
                span,
                "write height x width x channels, e.g. [55x55x96]",
            )
        return S.DeclaredShape(dims, span)

    def arrow(self, children: list[Any]) -> S.DeclaredShape:
        return children[1]

    @v_args(meta=True)
    def strided(self, meta: Any, children: list[Any]) -> _Strided:
        size, _, stride = children
        return _Strided(size, stride, self.span(meta))

    @v_args(meta=True)
    def claim(self, meta: Any, children: list[Any]) -> S.ClaimSyntax:
        key, lhs, rhs = children
        kind = "memory" if str(key).lower().startswith("memory") else "params"
        span = self.span(meta)
        if rhs is None:
            if isinstance(lhs, _CNum):
                return S.ClaimSyntax(kind, None, _printed(lhs), span)
            return S.ClaimSyntax(kind, self.operand(lhs), None, span)
        if not isinstance(rhs, _CNum):
            raise SyntaxProblem(
                "E108",
                "the right side of a claim must be a printed number",
                getattr(rhs, "span", span),
                "write the arithmetic on the left: `params: 3*3*64 = 1,728`",
            )
        return S.ClaimSyntax(kind, self.operand(lhs), _printed(rhs), span)

    @v_args(meta=True)
    def line(self, meta: Any, children: list[Any]) -> _Line:
        pre, label, items, arrow, *rest = children
        claims = [c for c in rest if isinstance(c, S.ClaimSyntax)]
        remark, colon = rest[-2], rest[-1]
        return _Line(
            self.span(meta),
            pre,
            label,
            items or [],
            None,
            arrow,
            claims,
            remark,
            colon is not None,
        )

    @v_args(meta=True)
    def table_line(self, meta: Any, children: list[Any]) -> _Line:
        pre, label, shape, arrow, *rest = children
        claims = [c for c in rest if isinstance(c, S.ClaimSyntax)]
        return _Line(self.span(meta), pre, label, [], shape, arrow, claims, rest[-1], False)

    def start(self, children: list[Any]) -> _Line:
        return children[0]

    # Header lines: the terminal is kept as the line's label (its span names the header in
    # diagnostics), its words as the header.

    @v_args(meta=True)
    def header(self, meta: Any, children: list[Any]) -> _Line:
        (tok,) = children
        return self._header_line(meta, tok, [])

    @v_args(meta=True)
    def shortcut_header(self, meta: Any, children: list[Any]) -> _Line:
        tok, mode = children
        return self._header_line(meta, tok, [mode] if mode is not None else [])

    def _header_line(self, meta: Any, tok: Token, items: list[Any]) -> _Line:
        words = tuple(str(tok).rstrip().rstrip(":").split())
        return _Line(self.span(meta), None, tok, items, None, None, [], None, False, header=words)

    @v_args(meta=True)
    def block_header(self, meta: Any, children: list[Any]) -> _Line:
        keyword, call, _colon = children
        words = tuple(str(keyword).split())
        return _Line(self.span(meta), None, None, [call], None, None, [], None, True, header=words)

    @v_args(meta=True)
    def if_header(self, meta: Any, children: list[Any]) -> _Line:
        keyword, items, _colon = children
        span = self.span(meta)
        items = [S.Name(str(keyword), self.span(keyword)), *items]
        return _Line(span, None, None, items, None, None, [], None, True, header=("if",))


def _printed(x: _CNum) -> str:
    return re.sub(r"[ \t]+", "", x.text)


def _cnum_expr(x: _CNum) -> S.Num:
    text = x.text
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        raise SyntaxProblem(
            "E108",
            f"`{text}` is a printed (rounded) number; it can only stand after `=`",
            x.span,
            "write the exact arithmetic on the left of `=` and the printed value on the right",
        )
    return S.Num(_fraction(text, x.span), text, x.span)


# --- line classification -----------------------------------------------------------------------


def _group_expr(group: _Group) -> S.Paren | None:
    """``((a + b))`` as an expression; None when the parentheses hold a remark."""
    inner = [x for x in group.items if not isinstance(x, _Comma)]
    if len(inner) != 1:
        return None
    if isinstance(inner[0], _Group):
        nested = _group_expr(inner[0])
        return S.Paren(nested, group.span) if nested is not None else None
    return S.Paren(inner[0], group.span) if _is_expr(inner[0]) else None


def _is_expr(x: Any) -> bool:
    return isinstance(x, S.Num | S.Name | S.BinOp | S.Paren | S.InShape | S.Func)


def _segments(items: list[Any]) -> list[list[Any]]:
    segs: list[list[Any]] = [[]]
    for it in items:
        if isinstance(it, _Comma):
            segs.append([])
        else:
            segs[-1].append(it)
    return [s for s in segs if s]


def _span_of(x: Any) -> Span:
    return x.span


def _label_words(label: Token) -> list[str]:
    text = str(label).rstrip().rstrip(":").rstrip()
    return [text] if text.startswith('"') else text.split()


@dataclass
class _Kind:
    kind: str
    name: str | None = None
    options: dict[str, S.Arg] = field(default_factory=dict)
    paper: bool = False
    pool_digits: int | None = None  # POOL2: the digits are the size unless a size is written


def _kind_of_phrase(words: list[str], span: Span) -> _Kind | None:
    """Classify a label or the leading words of a body: `CONV1`, `MAX POOL`, `conv3-64`."""
    phrase = " ".join(words).upper()
    op = WORDS.get(phrase)
    if op is not None:
        return _Kind(op.kind)
    for op in OPS.values():
        for pattern, options in op.paper_forms:
            m = pattern.fullmatch(phrase)
            if m:
                return _Kind(op.kind, options=options(m, span), paper=True)
    m = _INDEXED.match(phrase)
    if m and m[1] in WORDS:
        op = WORDS[m[1]]
        name = "_".join(words)
        # Table notation: `POOL2:` is a 2x2 pool, for a kind whose first argument is its window.
        pool = op.slots[:1] == ("kernel",) and m[2].isdigit() and len(m[2]) < 4
        return _Kind(op.kind, name=name, pool_digits=int(m[2]) if pool else None)
    return None


class _Classifier:
    def __init__(self, file: str):
        self.file = file
        self.diags: list[Diagnostic] = []

    def err(self, code: str, message: str, span: Span, help: str | None = None) -> None:
        self.diags.append(error(code, message, span, help))

    def label_span(self, line: _Line) -> Span:
        tok = line.label
        assert tok is not None
        text = str(tok).rstrip().rstrip(":").rstrip()
        return Span(
            file=self.file,
            line=line.span.line,
            column=tok.column,
            end_line=line.span.line,
            end_column=tok.column + len(text),
        )

    def block(self, lines: list[_Line]) -> tuple[S.Stmt, ...]:
        out: list[S.Stmt] = []
        for line in lines:
            try:
                out += self.line(line)
            except SyntaxProblem as p:
                self.diags.append(p.diagnostic)
        return tuple(out)

    def body(self, line: _Line, what: str) -> tuple[S.Stmt, ...]:
        if line.body is None:
            self.err(
                "E104",
                f"`{what}` needs an indented body",
                line.span,
                "indent the lines that belong to it on the lines that follow",
            )
            return ()
        return self.block(line.body)

    def no_body(self, line: _Line) -> None:
        if line.body_span is not None:
            self.err(
                "E104",
                "only `block`, `stage`, `sequential`, `residual`, `shortcut`, `gate`, `branch` "
                "(`inline`, `sequential`), `if` and `train` lines take an indented body",
                line.body_span,
                "remove the indentation of these lines",
            )

    def line(self, line: _Line) -> list[S.Stmt]:
        if line.total is not None:
            return [line.total]
        if line.row is not None:
            from archc import table

            try:
                return table.row_statements(line.row[0], line.row[1], line.span)
            except table.RowProblem as p:
                self.diags.append(_in_table(p.diagnostic, line.row[2]))
                return []
        if not (line.label or line.items or line.pre_shape or line.table_shape):
            return []
        header = self.header(line)
        if header is not None:
            return [header]
        first = line.items[0] if line.items else None
        word, at = (
            (first.id, first.span) if isinstance(first, S.Name) and line.colon else ("", None)
        )
        if line.label and not line.items:
            word, at = _label_words(line.label)[0], self.label_span(line)
        if at is not None and word.lower() in ("else", "elif"):
            self.err(
                "E106",
                f"archc's `if` has no `{word}`",
                at,
                "write a second `if` with the opposite condition (`if stride != 1:`)",
            )
            return []
        if line.body is not None:
            self.no_body(line)
            return []
        if line.colon:
            self.err("E102", "unexpected `:` at the end of the line", line.span)
            return []
        words = [i.id.lower() for i in line.items[:1] if isinstance(i, S.Name)]
        label_words = _label_words(line.label) if line.label else []
        if (
            (words and words[0] == "input" and not line.label)
            or [w.lower() for w in label_words] == ["input"]
            or (
                not line.label
                and len(line.items) == 1
                and words == ["input"]
                and line.pre_shape is not None
            )
        ):
            return [self.input(line)]
        if not line.label and words and words[0] in ("network", "init", "import"):
            return [self.directive(line, words[0])]
        if line.label:
            return self.labelled(line, label_words)
        return self.layers(line, None, line.items)

    # headers: block, stage, residual, shortcut, branch -------------------------------------

    def header(self, line: _Line) -> S.Stmt | None:
        """The statement of a header line, which the grammar's header terminals recognised
        (``line.header``); None for any other line. The only header-like line the grammar
        leaves a label is a shortcut followed by more than a mode, reported here."""
        items = line.items
        if line.header is None:
            if line.label and not (line.pre_shape or line.arrow or line.claims) and items:
                words = _label_words(line.label)
                if words[0].lower() == "shortcut" and len(words) <= 2:
                    self.check_ident((words + ["downsample"])[1], self.label_span(line))
                    self.shortcut_mode(items)  # E106: the line is left out
            return None
        words = list(line.header)
        lower = [w.lower() for w in words]
        if line.colon and lower in (["block"], ["sequential", "block"]):
            # `block NAME(params):`, `sequential block NAME(params):`
            call = items[0]
            self.block_name(call.name, call.span)
            params = self.params(call)
            body = self.body(line, "block")
            return S.BlockDef(call.name, params, body, line.span, numbered=len(lower) == 2)
        if lower == ["if"]:
            condition = self.condition(items[1:], items[0].span)
            return S.If(condition, self.body(line, "if"), line.span)
        if lower[0] == "block":
            self.check_ident(words[1], self.label_span(line))
            self.block_name(words[1], self.label_span(line))
            return S.BlockDef(words[1], (), self.body(line, "block"), line.span)
        if lower[:2] == ["sequential", "block"] and len(words) == 3:
            self.check_ident(words[2], self.label_span(line))
            self.block_name(words[2], self.label_span(line))
            body = self.body(line, "block")
            return S.BlockDef(words[2], (), body, line.span, numbered=True)
        if lower[0] == "if":
            # `if se:`: its one word is the condition.
            condition = S.Name(words[1], self.label_span(line))
            return S.If(condition, self.body(line, "if"), line.span)
        if lower == ["sequential", "branch"]:
            return S.Branch(self.body(line, "branch"), line.span, numbered=True)
        if lower == ["sequential"]:
            # Unnamed: the next position of the sequential body it stands in (MNASNet's stacks).
            return S.Stage(None, self.body(line, "sequential"), line.span, numbered=True)
        if lower == ["inline", "branch"]:
            return S.Branch(self.body(line, "branch"), line.span, inline=True)
        if lower[0] == "sequential" and lower[1] in ("gate", "residual", "shortcut", "inline"):
            self.err(
                "E106",
                f"`sequential {words[1]}:` is not a section archc has",
                self.label_span(line),
                f"`{words[1]}` sections are written without `sequential`; a stage named "
                f"`{words[1]}` is `stage {words[1]}:`",
            )
        if lower[0] in ("stage", "sequential"):
            self.check_ident(words[1], self.label_span(line))
            numbered = lower[0] == "sequential"
            return S.Stage(words[1], self.body(line, lower[0]), line.span, numbered)
        if lower == ["residual"]:
            return S.Residual(self.body(line, "residual"), line.span)
        if lower == ["gate"]:
            return S.Gate(self.body(line, "gate"), line.span)
        if lower == ["train"]:
            return S.Train(self.settings(line), line.span)
        if lower == ["branch"]:
            return S.Branch(self.body(line, "branch"), line.span)
        assert lower[0] == "shortcut", lower  # the grammar's header terminals make no other
        # `shortcut proj:` names it (RegNet's `proj`); by default it is torchvision's ResNet
        # `downsample`.
        name = words[1] if len(words) == 2 else "downsample"
        self.check_ident(name, self.label_span(line))
        if not items:
            return S.Shortcut(None, self.body(line, "shortcut"), line.span, name)
        self.no_body(line)
        mode = self.shortcut_mode(items)
        return S.Shortcut(mode, (), line.span, name)  # type: ignore[arg-type]

    def block_name(self, name: str, span: Span) -> None:
        """A block cannot take the name of a layer kind or an arithmetic function: a call of it
        would build the kind (`gelu` is a GELU) or compute the function."""
        what = (
            "an arithmetic function"
            if name in FUNCTIONS
            else f"the word of a layer kind ({OPS[op.kind].article})"
            if (op := by_word(name)) is not None
            else None
        )
        if what is not None:
            self.err(
                "E218",
                f"a block cannot be named `{name}`: that is {what}",
                span,
                f"rename the block, e.g. `{name}_block`",
            )

    def shortcut_mode(self, items: list[Any]) -> str:
        """The mode after ``shortcut:``; for anything but one of the three, E106, and the line
        is left out (no shortcut is made up that the author did not write)."""
        mode = items[0].id.lower() if isinstance(items[0], S.Name) else None
        if len(items) != 1 or mode not in ("auto", "identity", "projection"):
            raise SyntaxProblem(
                "E106",
                "a shortcut is `auto`, `identity` or `projection`",
                _span_of(items[0]),
                "or write `shortcut:` and its layers indented below",
            )
        return mode

    def condition(self, items: list[Any], at: Span) -> S.Condition:
        """The condition of an ``if`` line: comparisons and values joined by ``and`` and ``or``
        (``and`` binding tighter, as in Python), parentheses grouping them."""
        alternatives: list[list[S.Condition]] = [[]]
        expect_operand = True
        for it in items:
            word = it.id.lower() if isinstance(it, S.Name) else None
            if not expect_operand and word in ("and", "or"):
                if word == "or":
                    alternatives.append([])
                expect_operand = True
                continue
            if expect_operand and isinstance(it, _Group):
                inner = [i for i in it.items if not isinstance(i, _Comma)]
                alternatives[-1].append(self.condition(inner, it.span))
            elif expect_operand and (isinstance(it, S.Compare) or _is_expr(it)):
                alternatives[-1].append(it)
            elif isinstance(it, _KwArg):  # `if a = 1:`, an assignment where a test belongs
                raise SyntaxProblem(
                    "E106",
                    "`=` does not belong in a condition",
                    _span_of(it),
                    f"compare with `==`: `{it.name} == …`",
                )
            else:
                raise SyntaxProblem(
                    "E106",
                    f"{_describe(it)} does not belong in a condition",
                    _span_of(it),
                    CONDITION_HELP,
                )
            expect_operand = False
        if expect_operand:
            raise SyntaxProblem(
                "E106",
                "`if` needs a condition",
                _span_of(items[-1]) if items else at,
                CONDITION_HELP,
            )
        joined = [_fold("and", terms) for terms in alternatives]
        return _fold("or", joined)

    def settings(self, line: _Line) -> tuple[S.Setting, ...]:
        """The lines of a ``train:`` body as words and numbers; what they mean is the
        elaborator's (archc.elaborate.recipe), which knows the network they train."""
        if line.body is None:
            self.body(line, "train")
            return ()
        settings: list[S.Setting] = []
        for setting in line.body:
            if setting.body is not None:
                self.no_body(setting)
            words: list[S.Name | S.Num] = []
            if setting.label is not None:
                span = self.label_span(setting)
                words += [S.Name(w, span) for w in _label_words(setting.label)]
            for item in setting.items:
                if isinstance(item, S.Name | S.Num):
                    words.append(item)
                elif not isinstance(item, _Comma):
                    self.err(
                        "E112",
                        f"a training setting is words and numbers, not {_describe(item)}",
                        _span_of(item),
                        "write e.g. `lr 0.01` or `schedule plateau factor 0.1 on val accuracy`",
                    )
            extra = setting.pre_shape or setting.table_shape or setting.arrow
            if extra is not None or setting.claims:
                self.err(
                    "E112",
                    "a training setting has no shapes or claims",
                    extra.span if extra is not None else setting.claims[0].span,
                )
            if words:
                settings.append(S.Setting(tuple(words), setting.span))
        return tuple(settings)

    def params(self, call: _RawCall) -> tuple[S.Param, ...]:
        params: list[S.Param] = []
        for seg in _segments(list(call.items)):
            if len(seg) == 1 and isinstance(seg[0], S.Name):
                params.append(S.Param(seg[0].id, None, seg[0].span))
            elif len(seg) == 1 and isinstance(seg[0], _KwArg):
                params.append(S.Param(seg[0].name, seg[0].value, seg[0].span))
            elif len(seg) == 2 and isinstance(seg[0], S.Name) and _is_expr(seg[1]):
                params.append(S.Param(seg[0].id, seg[1], seg[0].span))
            else:
                self.err(
                    "E106",
                    "a block parameter is a name, optionally with a default",
                    _span_of(seg[0]),
                    "write e.g. `block bottleneck(width, stride = 1):`",
                )
        seen: set[str] = set()
        for p in params:
            if p.name in seen:
                self.err("E106", f"parameter `{p.name}` appears twice", p.span)
            seen.add(p.name)
        return tuple(params)

    def check_ident(self, name: str, span: Span) -> bool:
        if _IDENT.fullmatch(name):
            return True
        self.err(
            "E110",
            f"`{name}` is not a valid name",
            span,
            "names become PyTorch attribute names: use letters, digits and `_`",
        )
        return False

    # input, network, init, import ----------------------------------------------------------

    def input(self, line: _Line) -> S.Stmt:
        dims: tuple[int, ...] | None = None
        if line.table_shape is not None:
            dims = line.table_shape.dims
        elif line.pre_shape is not None:
            dims = line.pre_shape.dims
        rest = [i for i in line.items if not (isinstance(i, S.Name) and i.id.lower() == "input")]
        for it in rest:
            if isinstance(it, S.DeclaredShape | _Size) and dims is None:
                dims = it.dims
            else:
                self.err("E106", "unexpected item in the input line", _span_of(it))
        if dims is None and line.arrow is not None:
            dims = line.arrow.dims
        if dims is None and line.remark is not None:
            dims = _remark_shape(str(line.remark))
        if dims is None:
            raise SyntaxProblem(
                "E107",
                "the input line needs a shape",
                line.span,
                "write e.g. `input [224x224x3]` (height x width x channels)",
            )
        if len(dims) == 2:
            raise SyntaxProblem(
                "E107",
                "the input shape needs a channel count",
                line.span,
                "write [224x224x3], or say `RGB` (3 channels) or `gray` (1) in the remark",
            )
        if len(dims) not in (1, 3):
            raise SyntaxProblem("E107", "an input shape is [HxWxC] or [N]", line.span)
        return S.InputStmt(dims, line.span, tuple(line.claims))

    def directive(self, line: _Line, word: str) -> S.Stmt:
        items = line.items
        if word == "network":
            if len(items) == 2 and isinstance(items[1], S.Name):
                return S.Network(items[1].id, line.span)
            raise SyntaxProblem("E109", "write `network NAME`", line.span)
        if word == "init":
            if (
                len(items) == 2
                and isinstance(items[1], S.Name)
                and items[1].id.lower() in ("kaiming", "xavier", "torchvision")
            ):
                return S.InitStmt(items[1].id.lower(), line.span)
            raise SyntaxProblem(
                "E109",
                "unknown initialisation",
                _span_of(items[1]) if len(items) > 1 else line.span,
                "write `init kaiming`, `init xavier` or `init torchvision`",
            )
        if len(items) == 2 and isinstance(items[1], _Str):
            return S.Import(items[1].value, line.span)
        raise SyntaxProblem(
            "E109", 'write `import "path/to/blocks.arch"`', line.span, "quote the path"
        )

    # layers and calls ----------------------------------------------------------------------

    def labelled(self, line: _Line, words: list[str]) -> list[S.Stmt]:
        span = self.label_span(line)
        if words[0].startswith('"'):
            return self.quoted(line, words[0][1:-1], span)
        kind = _kind_of_phrase(words, span)
        segs = _segments(line.items)
        if kind is not None and kind.name is None and not kind.paper and line.items:
            # `conv: bn, relu`: what follows every later layer of a kind that takes followers.
            defaults = self.defaults(line, kind.kind)
            if defaults is not None:
                return [defaults]
        if kind is not None and segs and (self.lead_kind(segs[0]) or self.calls_only(segs)):
            # A label followed by a layer or a call is only a name, even when it is also a kind
            # word: `maxpool: MAX POOL 3x3`, `fc: FC 1000`, `conv1: CONV 64 3x3`, `relu: relu`.
            kind = None
        if kind is not None:
            return self.layers(line, kind, line.items)
        if len(words) == 1 and self.check_ident(words[0], span):
            if not line.items and line.table_shape is None:
                self.err(
                    "E106",
                    f"`{words[0]}:` names nothing",
                    span,
                    "follow the name with a layer or a block call: `stem: CONV 64 7x7`",
                )
                return []
            return self.layers(line, None, line.items, name=words[0], name_span=span)
        if len(words) != 1:
            total = words[0].upper() == "TOTAL"
            stem = re.sub(r"[\d_-]+$", "", " ".join(words))  # `MAX POL1`: its kind words
            near = "" if total else did_you_mean(stem, [w.lower() for w in WORDS])
            self.err(
                "E105",
                f"unknown layer kind `{' '.join(words)}`{near}",
                span,
                "archc reads `TOTAL memory:` and `TOTAL params:` lines as claims on the network's "
                "totals; make any other TOTAL line a comment with `#`"
                if total
                else "a label is a layer kind (`CONV1`, `MAX POOL2`, `FC6`) or a single name",
            )
        return []

    def quoted(self, line: _Line, name: str, span: Span) -> list[S.Stmt]:
        """``"block1-0": …``: a name that may hold `-` (a module attribute torch accepts,
        reached with getattr), for models named so; no kind is read from it."""
        if not _QUOTED_NAME.fullmatch(name):
            self.err(
                "E110",
                f"`{name}` is not a valid name",
                span,
                "a quoted name holds letters, digits, `_` and `-`, and starts with a letter",
            )
            return []
        if not line.items:
            self.err("E106", f'`"{name}":` names nothing', span, 'write e.g. `"block1-0": b(48)`')
            return []
        return self.layers(line, None, line.items, name=name, name_span=span)

    def defaults(self, line: _Line, kind: str) -> S.Defaults | None:
        """A defaults line, or None when the line is something else: only kinds that take
        followers (conv, FC) have defaults, and each item is `bn`, `bn(eps E)`, an activation
        (with its arguments: `leaky relu 0.1`) or `none`, which stands alone.

        A line that starts with a follower and goes on with something else (`conv: bn, relu,
        dropout`) was meant as defaults and cannot be: E106, never a layer named `conv`."""
        if not OPS[kind].followed or line.pre_shape or line.arrow or line.claims:
            return None
        followers: list[S.Follower] = []
        label = " ".join(_label_words(line.label)) if line.label else kind
        for seg in _segments(line.items):
            follower = self.follower(seg)
            if follower is None:
                if followers:
                    near = ""
                    if isinstance(seg[0], S.Name):  # `conv: bn, rellu`
                        words = [w.lower() for w, op in WORDS.items() if op.activation]
                        near = did_you_mean(seg[0].id, [*words, "bn", "none"])
                    raise SyntaxProblem(
                        "E106",
                        f"{_describe(seg[0])} is not a follower: a defaults line "
                        f"(`{label}: …`) holds `bn`, activations or `none`{near}",
                        self.join(_span_of(seg[0]), _span_of(seg[-1])),
                        "write that layer after each one yourself; to build these layers here "
                        "instead, label the line with a name that is not a kind (`post: …`)",
                    )
                return None
            followers.append(follower)
        if len(followers) > 1 and any(f.kind == "none" for f in followers):
            none = next(f for f in followers if f.kind == "none")
            raise SyntaxProblem(
                "E106",
                "`none` clears the defaults and stands alone on its line",
                none.span,
                f"write `{kind}: none` on a line of its own, or leave `none` out",
            )
        return S.Defaults(kind, tuple(followers), line.span)

    def follower(self, seg: list[Any]) -> S.Follower | None:
        """One item of a defaults line (`bn`, `batch norm(eps 0.001)`, `relu`, `leaky relu 0.1`,
        `none`), or None when the item is something else."""
        head = seg[0]
        if len(seg) == 1 and isinstance(head, S.Name) and head.id.lower() == "none":
            return S.Follower("none", {}, head.span)
        words = 0
        while words < len(seg) and isinstance(seg[words], S.Name):
            words += 1
        if words == len(seg) - 1 and isinstance(seg[-1], _RawCall):
            # The arguments in parentheses: `bn(eps 0.001)`, `batch norm(momentum 0.01)`.
            call = seg[-1]
            op = by_word(" ".join([w.id for w in seg[:words]] + [call.name]))
            k, rest = (
                _Kind(op.kind) if op else None,
                [i for i in call.items if not isinstance(i, _Comma)],
            )
        else:
            lead = self.lead_kind(seg)
            op = OPS[lead[0].kind] if lead else None
            k, rest = (lead[0], seg[lead[1] :]) if lead else (None, [])
        if op is None or k is None or not (op.kind == "batchnorm" or op.activation):
            return None
        opts, flags, repeat = self.arguments(op.kind, rest, k)
        if flags or repeat != 1:
            return None
        kind = "bn" if op.kind == "batchnorm" else op.kind
        return S.Follower(kind, opts.options, _span_of(head))

    def layers(
        self,
        line: _Line,
        kind: _Kind | None,
        items: list[Any],
        name: str | None = None,
        name_span: Span | None = None,
    ) -> list[S.Stmt]:
        """The layers (or block calls) of one line: `add, relu` is two layers."""
        declared = self.declared(line)
        claims = tuple(line.claims)
        segs = _segments(items)
        if kind is None and segs and self.calls_only(segs):
            calls = tuple(self.call(seg) for seg in segs)
            return [S.CallLine(name, calls, line.span, declared, claims, name_span)]
        groups: list[tuple[_Kind, list[Any], Span]] = []
        if kind is not None:
            groups.append((kind, [], line.span))
        for seg in segs:
            lead = self.lead_kind(seg)
            if lead is not None and (groups or kind is None):
                found, n = lead
                groups.append((found, list(seg[n:]), _span_of(seg[0])))
            elif groups:
                groups[-1][1].extend(seg)
            elif isinstance(seg[0], _RawCall) and (op := by_word(seg[0].name)) is not None:
                raise SyntaxProblem(
                    "E105",
                    f"`{seg[0].name}` is a layer kind, not a block: its arguments are written "
                    "without parentheses",
                    _span_of(seg[0]),
                    _help_args(op.kind),
                )
            elif isinstance(seg[0], _RawCall) and len(seg) > 1 and _repeat_word(seg[1]):
                raise _repeat_count(_span_of(seg[1]))
            elif isinstance(seg[0], _RawCall) and len(seg) > 1:
                raise SyntaxProblem(
                    "E106",
                    f"a block call takes nothing after it: {_describe(seg[1])} does not belong "
                    "there",
                    self.join(_span_of(seg[1]), _span_of(seg[-1])),
                    "a call's options are its arguments, inside the parentheses; `no relu` and "
                    "`no bn` belong on the conv or FC lines of the block",
                )
            else:
                raise self.unknown_kind(seg)
        if not groups:
            raise SyntaxProblem("E105", "this line has no layer", line.span)
        out: list[S.Stmt] = []
        for i, (k, args, span) in enumerate(groups):
            opts, flags, repeat = self.arguments(k.kind, args, k)
            last = i == len(groups) - 1
            if k.pool_digits is not None and "kernel" not in opts.options:
                d = k.pool_digits
                opts.options["kernel"] = S.Arg(S.Pair((d, d), span), span)
                k.name = None
            layer_name = k.name if i == 0 and name is None else (name if i == 0 else None)
            nspan = name_span if name is not None else (self.label_span(line) if k.name else None)
            out.append(
                S.Layer(
                    kind=k.kind,
                    name=layer_name,
                    span=line.span if i == 0 else self.join(span, line.span),
                    options=opts.options,
                    flags=frozenset(flags),
                    paper=k.paper,
                    repeat=repeat,
                    declared=declared if last else None,
                    claims=claims if last else (),
                    name_span=nspan if i == 0 else None,
                )
            )
        if name is None and kind is not None and kind.name is not None:
            if not self.check_ident(kind.name, self.label_span(line)):
                return []
        return out

    def join(self, a: Span, b: Span) -> Span:
        return Span(
            file=self.file,
            line=a.line,
            column=a.column,
            end_line=b.end_line,
            end_column=b.end_column if b.end_line == a.line else a.end_column,
        )

    def declared(self, line: _Line) -> S.DeclaredShape | None:
        shapes = [s for s in (line.pre_shape, line.table_shape, line.arrow) if s is not None]
        if len(shapes) > 1 and len({s.dims for s in shapes}) > 1:
            raise SyntaxProblem(
                "E107",
                "this line declares two different shapes",
                shapes[1].span,
                "keep one declared shape per line",
            )
        return shapes[0] if shapes else None

    def unknown_kind(self, seg: list[Any]) -> SyntaxProblem:
        """E105 for a line that starts with no kind: a label or name missing its `:`
        (`CONV1 6 5x5`, `stem CONV 64 7x7`) says so; a misspelt kind gets the nearest one."""
        head = seg[0]
        label = _kind_of_phrase([head.id], head.span) if isinstance(head, S.Name) else None
        named = isinstance(head, S.Name) and len(seg) > 1 and self.lead_kind(seg[1:]) is not None
        if len(seg) > 1 and ((label is not None and label.name is not None) or named):
            return SyntaxProblem(
                "E105",
                f"missing `:` after the label `{head.id}`",
                _span_of(head),
                f"write `{head.id}:` (e.g. `CONV1: 6 5x5`, `stem: CONV 64 7x7`)",
            )
        near = ""
        if isinstance(head, S.Name):
            words = [it.id for it in seg[:LONGEST_WORD] if isinstance(it, S.Name)]
            for n in range(len(words), 0, -1):  # `leaky rellu`: the phrase, then its first word
                if near := did_you_mean(" ".join(words[:n]), [w.lower() for w in WORDS]):
                    break
        return SyntaxProblem(
            "E105",
            f"unknown layer kind {_describe(head)}{near}",
            _span_of(head),
            "a layer starts with a kind: CONV, POOL, FC, NORM, BN, RELU, DROPOUT, "
            "SOFTMAX, … (docs/language.md lists them), or is a block call `name(args)`",
        )

    def lead_kind(self, seg: list[Any]) -> tuple[_Kind, int] | None:
        words: list[S.Name] = []
        for it in seg[:LONGEST_WORD]:
            if not isinstance(it, S.Name):
                break
            words.append(it)
        for n in range(len(words), 0, -1):
            span = self.join(words[0].span, words[n - 1].span)
            k = _kind_of_phrase([w.id for w in words[:n]], span)
            if k is not None and k.name is None:
                return k, n
        head = seg[0]
        # conv7-64/2: paper notation with a stride
        if (
            isinstance(head, S.BinOp)
            and head.op == "/"
            and isinstance(head.left, S.Name)
            and isinstance(head.right, S.Num)
        ):
            k = _kind_of_phrase([head.left.id], head.span)
            if k is not None and k.paper:
                k.options["stride"] = S.Arg(head.right, head.right.span)
                return k, 1
        return None

    def calls_only(self, segs: list[list[Any]]) -> bool:
        for seg in segs:
            head = seg[0]
            rest = seg[1:]
            if rest and not (len(rest) == 1 and isinstance(rest[0], _Repeat)):
                return False
            if isinstance(head, _RawCall):
                if head.name.upper() in WORDS:
                    return False
                continue
            if isinstance(head, S.Name) and self.lead_kind(seg) is None:
                if head.id.lower() in FILLER or head.id.lower() == "no":
                    return False
                continue
            return False
        return True

    def call(self, seg: list[Any]) -> S.Call:
        head = seg[0]
        repeat = seg[1].count if len(seg) == 2 else 1
        span = self.join(head.span, seg[-1].span)
        if isinstance(head, S.Name):
            return S.Call(head.id, (), (), repeat, span)
        args: list[S.Expr] = []
        kwargs: list[S.KwArgSyntax] = []
        for part in _segments(list(head.items)):
            if len(part) == 1 and isinstance(part[0], _KwArg):
                kwargs.append(S.KwArgSyntax(part[0].name, part[0].value, part[0].span))
            elif len(part) == 2 and isinstance(part[0], S.Name) and _is_expr(part[1]):
                kwargs.append(
                    S.KwArgSyntax(part[0].id, part[1], self.join(part[0].span, part[1].span))
                )
            elif len(part) == 1 and _is_expr(part[0]):
                if kwargs:
                    raise SyntaxProblem(
                        "E106",
                        "a positional argument cannot follow a keyword argument",
                        _span_of(part[0]),
                    )
                args.append(part[0])
            else:
                raise SyntaxProblem(
                    "E106",
                    "a block argument is a value or `name value`",
                    _span_of(part[0]),
                    "write e.g. `bottleneck(128, stride 2)`",
                )
        return S.Call(head.name, tuple(args), tuple(kwargs), repeat, span)

    def arguments(self, kind: str, items: list[Any], k: _Kind) -> tuple[_Kind, set[str], int]:
        """Bind the items after a kind word to the op's arguments, as its registry entry
        describes them: keywords with a value, flags, `no X`, positional slots, `xN`."""
        op = OPS[kind]
        opts = k
        flags: set[str] = set()
        flag_spans: dict[str, Span] = {}
        repeat = 1
        positional: list[S.Arg] = []

        def flag(word: str, span: Span) -> None:
            if word in flags:
                shown = word.replace("_", " ")
                raise SyntaxProblem("E106", f"`{shown}` is given twice", span, _help_args(kind))
            flags.add(word)
            flag_spans[word] = span

        i = 0
        while i < len(items):
            it = items[i]
            i += 1
            if isinstance(it, S.Name):
                w = it.id.lower()
                if w in FILLER and w not in op.keywords:
                    continue
                if w == "no":
                    nxt = items[i] if i < len(items) else None
                    if isinstance(nxt, S.Name) and nxt.id.lower() in NO_FLAGS:
                        what = nxt.id.lower()
                        if what == "bias" and "bias" not in op.model.model_fields:
                            raise SyntaxProblem(
                                "E106",
                                f"`no bias` is read on a conv or an FC, not on {_kind_word(kind)}",
                                self.join(it.span, nxt.span),
                                "a BN or a layer norm always keeps its shift (β)",
                            )
                        if what != "bias" and not op.followed:
                            raise SyntaxProblem(
                                "E106",
                                f"`no {what}` has nothing to turn off on {_kind_word(kind)}: only "
                                "a conv or an FC is followed by default layers",
                                self.join(it.span, nxt.span),
                                "`no relu` and `no bn` stand on the conv or FC line itself: "
                                "`CONV 64 3x3 no relu`",
                            )
                        flag("no_" + what, self.join(it.span, nxt.span))
                        i += 1
                        continue
                    near = closest(nxt.id, NO_FLAGS) if isinstance(nxt, S.Name) else None
                    raise SyntaxProblem(
                        "E106",
                        "`no` must be followed by `bias`, `bn` or `relu`"
                        + (f": did you mean `no {near}`?" if near else ""),
                        it.span,
                    )
                if w in op.flags:
                    flag(w, it.span)
                    continue
                nxt = items[i] if i < len(items) else None
                if (
                    w == "channels"
                    and "channels_last" in op.flags
                    and isinstance(nxt, S.Name)
                    and nxt.id.lower() == "last"
                ):
                    flag("channels_last", self.join(it.span, nxt.span))  # two words
                    i += 1
                    continue
                if w in op.keywords:
                    if i >= len(items) or not (_is_expr(items[i]) or isinstance(items[i], _Size)):
                        raise SyntaxProblem("E106", f"`{it.id}` needs a value after it", it.span)
                    self.set_option(opts, op.keywords[w], items[i], kind)
                    i += 1
                    continue
                short = self.short_option(op, it)
                if short is not None:
                    self.set_option(opts, *short, kind)
                    continue
                positional.append(S.Arg(it, it.span))
            elif isinstance(it, _KwArg):
                w = it.name.lower()
                if w not in op.keywords:
                    raise SyntaxProblem(
                        "E106",
                        f"{_kind_word(kind)} has no argument `{it.name}`",
                        it.span,
                        _help_args(kind),
                    )
                self.set_option(opts, op.keywords[w], it.value, kind)
            elif _is_expr(it):
                positional.append(S.Arg(it, it.span))
            elif isinstance(it, _Size):
                if len(it.dims) != 2:
                    raise SyntaxProblem(
                        "E106", "a window size is written KxK", it.span, _help_args(kind)
                    )
                positional.append(S.Arg(S.Pair((it.dims[0], it.dims[1]), it.span), it.span))
            elif isinstance(it, _Strided) and "stride" in op.keywords.values():
                # `3x3/2`: the window, then its stride.
                items[i:i] = [it.size, S.Name("stride", it.stride.span), it.stride]
            elif isinstance(it, _Repeat):
                if i != len(items):
                    raise SyntaxProblem("E106", "a repetition `xN` ends the item", it.span)
                repeat = it.count
            elif isinstance(it, _Group):
                expr = _group_expr(it)
                if expr is not None:
                    positional.append(S.Arg(expr, it.span))
                # anything else in parentheses is a remark
            else:
                raise SyntaxProblem(
                    "E106",
                    f"{_describe(it)} does not belong in {_kind_word(kind)} line",
                    it.span,
                    _help_args(kind),
                )
        self.positional(kind, opts, positional)
        for word, key in op.exclusive.items():
            if word in flags and key in opts.options:
                spans = sorted([flag_spans[word], opts.options[key].span], key=_position)
                raise SyntaxProblem(
                    "E106",
                    f"`{word}` and `{key}` both set the {key}: write one of them",
                    spans[1],
                    _help_args(kind),
                )
        return opts, flags, repeat

    @staticmethod
    def short_option(op: Op, word: S.Name) -> tuple[str, Any] | None:
        """`s2`, `p3`, `s2x1`: stride and padding the way the summary prints them."""
        m = _SHORT_OPTION.fullmatch(word.id)
        if m is None or _SHORT_KEYWORD[m[1]] not in op.keywords.values():
            return None
        span = word.span
        if m[3] is None:
            return _SHORT_KEYWORD[m[1]], S.Num(Fraction(int(m[2])), m[2], span)
        return _SHORT_KEYWORD[m[1]], _Size((int(m[2]), int(m[3])), span)

    def set_option(self, k: _Kind, key: str, item: Any, kind: str) -> None:
        span = item.span
        if key == "pad" and isinstance(item, S.Name) and item.id.lower() == "same":
            value: S.Value = "same"
        elif isinstance(item, _Size):
            if len(item.dims) != 2:
                raise SyntaxProblem("E106", f"`{key}` takes one value or HxW", span)
            value = S.Pair((item.dims[0], item.dims[1]), span)
        else:
            value = item
        if key in k.options and not k.paper:  # paper forms may override their own sizes
            raise SyntaxProblem("E106", f"`{key}` is given twice", span)
        k.options[key] = S.Arg(value, span)

    def positional(self, kind: str, k: _Kind, values: list[S.Arg]) -> None:
        op = OPS[kind]
        slots = op.slots
        for n, arg in enumerate(values):
            if isinstance(arg.value, S.Pair):
                slot = op.pair_slot
                if slot is not None and slot in k.options and not k.paper:
                    # `CONV 4 3x3 kernel 5`: the size and the keyword name the same thing.
                    later = max(arg.span, k.options[slot].span, key=_position)
                    _misspelt_kind(values[:n])  # `CONV2: cnov 32 3x3`: cnov filled a slot
                    raise SyntaxProblem("E106", f"`{slot}` is given twice", later, _help_args(kind))
                if slot is None or slot in k.options:
                    _misspelt_kind(values[:n])
                    raise SyntaxProblem(
                        "E106",
                        f"unexpected size in {_kind_word(kind)} line",
                        arg.span,
                        _help_args(kind),
                    )
                k.options[slot] = arg
                continue
            free = [s for s in slots if s not in k.options]
            if not free:
                what = _describe(arg.value)
                if not slots:  # `bn, rleu`: a misspelt kind after a comma reads as BN's
                    msg = f"{_kind_word(kind)} takes no arguments, but got {what}"
                else:
                    msg = f"too many values for {_kind_word(kind)}: {what} is extra"
                    if _repeat_word(arg.value):  # `CONV 64 3x3 x depth`
                        raise _repeat_count(arg.span)
                if isinstance(arg.value, S.Name):  # `strid 2`, `depthwize`, `, rellu`
                    words = [*op.keywords, *(f.replace("_", " ") for f in op.flags)]
                    kinds = [w.lower() for w in WORDS]
                    msg += did_you_mean(arg.value.id, words) or did_you_mean(arg.value.id, kinds)
                raise SyntaxProblem("E106", msg, arg.span, _help_args(kind))
            k.options[free[0]] = arg


def _misspelt_kind(before: list[S.Arg]) -> None:
    """Raise E105 for a word read as a value that is nearly a kind: under a label that names
    the kind (`CONV2: cnov 32 3x3`) a misspelt kind word fills the first slot, and the size
    after it would otherwise be reported as given twice."""
    kinds = [w.lower() for w in WORDS]
    for arg in before:
        if isinstance(arg.value, S.Name) and arg.value.id.lower() not in kinds:
            near = did_you_mean(arg.value.id.lower(), kinds)
            if near:
                raise SyntaxProblem(
                    "E105",
                    f"unknown layer kind `{arg.value.id}`{near}",
                    arg.span,
                    "the label already names the kind (`CONV2: 32 3x3`); or write the kind "
                    "after it (`conv2: CONV 32 3x3`)",
                )


CONDITION_HELP = (
    "write e.g. `if expand != 1:` or `if stride == 1 and in.c == out:` "
    "(comparisons `== != < <= > >=`, joined by `and` / `or`)"
)


def _fold(op: str, terms: list[S.Condition]) -> S.Condition:
    result = terms[0]
    for term in terms[1:]:
        span = Span(
            file=result.span.file,
            line=result.span.line,
            column=result.span.column,
            end_line=term.span.end_line,
            end_column=term.span.end_column,
        )
        result = S.Logic(op, result, term, span)  # type: ignore[arg-type]
    return result


def _describe(x: Any) -> str:
    if isinstance(x, S.Name):
        return f"`{x.id}`"
    if isinstance(x, S.Num):
        return f"`{x.text}`"
    if isinstance(x, _RawCall):
        return f"the call `{x.name}(…)`"
    if isinstance(x, _Str):
        return "a string"
    if isinstance(x, S.DeclaredShape):
        return "a shape"
    if isinstance(x, S.Compare):
        return f"the comparison `{x.op}`"
    if isinstance(x, _Size | S.Pair):
        return "a size"
    return "an expression"


def _repeat_word(x: Any) -> bool:
    """`x` or `xdepth`: a repetition whose count is no number (`x3` is read as one)."""
    return isinstance(x, S.Name) and re.fullmatch(r"[xX]([A-Za-z_]\w*)?", x.id) is not None


def _repeat_count(span: Span) -> SyntaxProblem:
    return SyntaxProblem(
        "E106",
        "the repeat count after `x` must be a number",
        span,
        "write the count right after the `x`: `bottleneck(64) x3`, `CONV 64 3x3 x2`",
    )


def _kind_word(kind: str) -> str:
    return OPS[kind].article


def _position(span: Span) -> tuple[int, int]:
    return span.line, span.column


def _help_args(kind: str) -> str:
    return OPS[kind].help


def _remark_shape(remark: str) -> tuple[int, ...] | None:
    """``(224 × 224 RGB image)`` -> (224, 224, 3)."""
    m = re.search(r"(\d+)\s*[xX×]\s*(\d+)(?:\s*[xX×]\s*(\d+))?", remark)
    if not m or any(len(g) > _MAX_DIGITS for g in m.groups() if g):
        return None
    if m[3]:
        return int(m[1]), int(m[2]), int(m[3])
    if re.search(r"\b(rgb|color|colour)\b", remark, re.I):
        return int(m[1]), int(m[2]), 3
    if re.search(r"\b(gray|grey|grayscale|greyscale|mono)\b", remark, re.I):
        return int(m[1]), int(m[2]), 1
    return int(m[1]), int(m[2])


# --- entry point -------------------------------------------------------------------------------


def _point(file: str, line: int, column: int, width: int = 1) -> Span:
    return Span(file=file, line=line, column=column, end_line=line, end_column=column + width)


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of line"
    return f"`{tok}`"


_EXPECT_NAMES = {
    "RPAR": "`)`",
    "RSQB": "`]`",
    "NUMBER": "a number",
    "SIZE": "a size",
    "WORD": "a word",
    "CNUM": "a number",
    "LPAR": "`(`",
    "$END": "the end of the line",
    "DASH": "`-`",
    "PATCH": "a window and its stride",
    "CELLNUM": "a number",
    "COLON": "`:`",
}


def _syntax_diagnostic(e: UnexpectedInput, file: str, n: int, text: str) -> Diagnostic:
    """The diagnostic of line ``n`` (``text``), which the grammar rejected."""
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.column - 1] if 0 < e.column <= len(text) else "?"
        help = None
        if ch in "=":
            help = "`=` only joins a claim to its printed value or names a block argument"
        elif ch == "(":
            help = "parentheses hold block arguments, arithmetic, or a remark at the end"
        return error(
            "E101",
            f"unexpected character `{ch}`" if ch.isprintable() else f"unexpected character {ch!r}",
            _point(file, n, e.column),
            help,
        )
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    if tok.type == "$END":
        column, width = len(text) + 1, 1
    else:
        column, width = tok.column or 1, max(1, len(str(tok)))
    expected = sorted({_EXPECT_NAMES.get(t, "") for t in e.expected} - {""})
    help = f"expected {', '.join(expected)}" if expected else None
    return error("E102", f"unexpected {_describe_token(tok)}", _point(file, n, column, width), help)


def _too_deep(line: str, n: int, file: str) -> Diagnostic | None:
    """Lines nested or chained beyond any real spec would overflow the recursive tree walks."""
    code = line.split("#", 1)[0]
    depth = operators = 0
    for column, ch in enumerate(code, 1):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in "+*/·":
            operators += 1
        if depth > MAX_NESTING or operators > MAX_OPERATORS:
            what = "nested" if depth > MAX_NESTING else "long"
            return error(
                "E111",
                f"this expression is too {what} to read",
                _point(file, n, column),
                f"archc reads up to {MAX_NESTING} nested parentheses and {MAX_OPERATORS} "
                "operators in a line; split the arithmetic into block parameters",
            )
    return None


_BLANK = " \t\f\u00a0"


def _indent(raw: str) -> int:
    return len(raw[: len(raw) - len(raw.lstrip(_BLANK))].expandtabs(8))


def _opens_body(line: _Line | None, raw: str) -> bool:
    """A line opens a body when it ends with `:` — its label (``residual:``) or a colon after
    its items (``block b(w):``). A rejected line is judged by its text."""
    if line is None:
        return raw.split("#", 1)[0].rstrip(_BLANK).endswith(":")
    return line.colon or (
        line.label is not None
        and not (line.items or line.table_shape or line.arrow or line.claims or line.remark)
    )


# `# expect E403` / `# expect W301`: a finding the author knows of, on this line (archc.check
# verifies it).
# Codes in either case (`# expect w301` is W301); a bare `# expect` is reported (archc.check).
_EXPECT = re.compile(
    r"#[ \t]*expect[ \t]+([EW]\d{3}(?:[ \t]*,?[ \t]*[EW]\d{3})*)(?![A-Za-z0-9_])", re.I
)
_EXPECT_CODE = re.compile(r"[EW]\d{3}", re.I)
_BARE_EXPECT = re.compile(r"#[ \t]*expect[ \t]*$", re.I)
_COLUMNS = re.compile(r"[ \t\f\u00a0]*columns[ \t]*:", re.I)


def _expected(raw: str, n: int, alone: bool = False) -> list[S.Expectation]:
    """The codes of the line's ``# expect`` comment, each with the column it stands at."""
    m = _EXPECT.search(raw)
    if m is not None:
        return [
            S.Expectation(n, c[0].upper(), m.start(1) + c.start() + 1, len(c[0]), alone)
            for c in _EXPECT_CODE.finditer(m[1])
        ]
    bare = _BARE_EXPECT.search(raw.rstrip(_BLANK))
    if bare is not None:
        return [S.Expectation(n, "", bare.start() + 1, bare.end() - bare.start(), alone)]
    return []


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
            if opener is not None:
                opener.body = body
            levels.append((indent, body))
        elif indent < levels[-1][0]:
            popped = False
            while len(levels) > 1 and indent < levels[-1][0]:
                levels.pop()
                popped = True
            if indent < levels[-1][0]:
                levels[0] = (indent, top)  # a table that started indented
            elif popped and indent > levels[-1][0]:
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
            from archc.table import read_columns

            columns, problems = read_columns(raw, n, file)
            rejected += problems
            begun = _point(file, n, width + 1 if stripped != raw else 1, len("columns:"))
            tables[id(here)] = (columns, begun) if not problems else None
            opener, opener_raw = None, ""
            continue
        if id(here) in tables:
            line = _parse_row(parser, raw, n, file, rejected, tables[id(here)])
        else:
            line = _parse_line(parser, raw, n, file, rejected)
        if line is not None:
            here.append(line)
        opener, opener_raw = line, raw
    _set_body_spans(top)
    return top, rejected


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


# `TOTAL memory: 24M * 4 bytes ~= 96MB / image (only forward! ~*2 for bwd)`: the slide's own
# words after the number are no grammar archc could give, so the line is read here instead.
_TOTAL = re.compile(r"([ \t]*)TOTAL[ \t]+((memory|params)[ \t]*:[ \t]*)(.*?)[ \t]*$", re.I)
_PRINTED = re.compile(
    r"[~≈]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?([ \t]*[kKmMgG]i?)?(?![A-Za-z0-9_])"
)


def _total_line(raw: str, n: int, file: str) -> _Line | None:
    """A lecture's TOTAL line as a claim on the network's totals, or None for any other line.
    The claim's value is the first printed number after the colon; without one, the whole rest
    is the printed value, which the claims check reports as unreadable (E404)."""
    m = _TOTAL.fullmatch(raw)
    if m is None:
        return None
    rest = m.group(4)
    number = _PRINTED.search(rest)
    printed = re.sub(r"[ \t]+", "", number.group(0)) if number else (rest or "nothing")
    start = m.start(2) + 1
    end = m.start(4) + (number.end() if number else len(rest)) + 1
    claim = S.ClaimSyntax(m.group(3).lower(), None, printed, _point(file, n, start, end - start))  # type: ignore[arg-type]
    line_span = _point(file, n, len(m.group(1)) + 1, len(raw.rstrip()) - len(m.group(1)))
    return _Line(
        line_span, None, None, [], None, None, [], None, False, total=S.TotalClaim(claim, line_span)
    )


def _parse_line(
    parser: Lark, raw: str, n: int, file: str, rejected: list[Diagnostic]
) -> _Line | None:
    total = _total_line(raw, n, file)
    if total is not None:
        return total
    problem = _too_deep(raw, n, file)
    if problem is not None:
        rejected.append(problem)
        return None
    try:
        return _Parts(file, n).transform(_tree(parser, raw))
    except UnexpectedInput as e:
        rejected.append(_syntax_diagnostic(e, file, n, raw))
    except VisitError as e:
        if not isinstance(e.orig_exc, SyntaxProblem):
            raise
        rejected.append(e.orig_exc.diagnostic)
    return None


_TREES: dict[str, Any] = {}


def _tree(parser: Lark, raw: str) -> Any:
    """Lark's tree of a line, kept for lines met again (a generated spec repeats its lines;
    the tree holds no line number, which _Parts adds). Transforming a tree leaves it as it is."""
    tree = _TREES.get(raw)
    if tree is None:
        tree = parser.parse(raw, start="start")
        if len(raw) <= _TREE_LINE:
            if len(_TREES) >= _TREES_KEPT:
                _TREES.clear()
            _TREES[raw] = tree
    return tree


def _parse_row(
    parser: Lark, raw: str, n: int, file: str, rejected: list[Diagnostic], table: Any
) -> _Line | None:
    """A row of a table; None (and nothing reported) under a columns line that was rejected.
    ``table``: the columns and the span of the columns line."""
    total = _total_line(raw, n, file)
    if total is not None or table is None:
        return total
    columns, begun = table
    try:
        tree = parser.parse(raw, start="row")
    except UnexpectedInput as e:
        rejected.append(_in_table(_syntax_diagnostic(e, file, n, raw), begun))
        return None
    stripped = raw.rstrip(_BLANK)
    start = len(raw) - len(raw.lstrip(_BLANK)) + 1
    code = stripped.split("#", 1)[0].rstrip(_BLANK) if "#" in stripped else stripped
    span = _point(file, n, start, max(1, len(code) - start + 1))
    row = (columns, tree.children, begun)
    return _Line(span, None, None, [], None, None, [], None, False, row=row)


def _in_table(d: Diagnostic, begun: Span) -> Diagnostic:
    """A row's diagnostic, with a note that the line is read as a row of the table begun at
    ``begun``: a layer written after a table is a row too, and its diagnostic would not say so."""
    note = Note(
        message=f"this line is read as a row of the table begun on line {begun.line}, which "
        "runs to the end of its body: to write layers after the table, put the table in a "
        "`stage NAME:` body, or move the layers before it",
        span=begun,
    )
    return d.model_copy(update={"notes": [*d.notes, note]})


def _set_body_spans(lines: list[_Line]) -> None:
    """A body's span is its first line's; a body whose lines were all rejected has none."""
    for line in lines:
        if line.body:
            line.body_span = line.body[0].span
            _set_body_spans(line.body)


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


# Unicode's bidirectional controls: in a comment they make an editor show a line in another
# order than the one archc reads ("Trojan Source", CVE-2021-42574).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_BIDI_WARNINGS = 20


def bidi_warnings(text: str, file: str) -> list[Diagnostic]:
    """W006 at each line (the first MAX_BIDI_WARNINGS) holding a bidirectional control."""
    found: list[Diagnostic] = []
    pos, line = 0, 1
    while len(found) < MAX_BIDI_WARNINGS and (m := _BIDI.search(text, pos)) is not None:
        line += text.count("\n", pos, m.start())
        column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        end = text.find("\n", m.start())
        pos = len(text) if end < 0 else end  # one warning a line: on from the line's end
        found.append(
            warning(
                "W006",
                f"a bidirectional control character (U+{ord(m.group()):04X}) makes this line "
                "show in another order than archc reads it",
                _point(file, line, column),
                "remove it: a spec has no use for it, and editors hide it",
            )
        )
    return found
