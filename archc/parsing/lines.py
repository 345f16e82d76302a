"""What a line is made of: the Lark grammar and its parser, the raw items of a line
(:class:`_Line`: declared shape, label, items, ``->`` shape, claims, remark), the Transformer
(:class:`_Parts`) that turns tokens into expressions and items, and the helpers that read
lines before any statement is made of them (indentation, ``# expect`` comments, syntax errors,
total lines, table rows, bidirectional-text warnings).

archc.parser runs them over a file; archc.parsing.statements and archc.parsing.binding read the
lines' words.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from archc import syntax as S
from archc.diagnostics import Diagnostic, Note, error, warning
from archc.ops import OPS, WORDS
from archc.spans import Span
from archc.suggest import did_you_mean

# The functions arithmetic may call, with their least and most argument counts (None: any).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "max": (1, None),
    "min": (1, None),
    "round": (1, 1),
    "make_divisible": (2, 2),
    "ceil": (1, 1),
    "floor": (1, 1),
    "int": (1, 1),
    "abs": (1, 1),
    "log": (1, 2),
    "sqrt": (1, 1),
    "len": (1, 1),
    "sum": (1, 1),
    "range": (1, 3),
    "enumerate": (1, 1),
    "zip": (1, None),
    "distinct": (1, 1),
    "count": (2, 2),
}
ACT = S.ACT
FUNCTION_HELP = "write e.g. `max(a, b)`, `round(in.c * 1.5)`, `make_divisible(in.c * 6, 8)`"
_MAX_DIGITS = 40  # longer numbers are typos, and Python refuses to parse very long ones
# Beyond these no real spec goes, and the recursive tree walks would overflow the stack.
MAX_NESTING = 32  # parentheses in a line, or bodies in a file
MAX_OPERATORS = 200  # arithmetic operators in a line
MAX_SYNTAX_ERRORS = 20  # lines rejected before the parser gives up on a file
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
    grammar = (Path(__file__).parent.parent / "grammar.lark").read_text(encoding="utf-8")
    grammar = grammar.replace("@PAPER@", _paper_pattern())
    options: dict[str, Any] = {
        "parser": "lalr",
        "lexer": "contextual",
        "propagate_positions": True,
        "maybe_placeholders": True,
        "start": ["start", "row", "valuerow"],
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


_Str = S.Str


@dataclass(frozen=True)
class _Repeat:
    count: int | S.Expr
    span: Span


@dataclass(frozen=True)
class _Strided:
    """``3x3/2``: a window and its stride."""

    size: _Size
    stride: S.Num
    span: Span


@dataclass(frozen=True)
class _Range:
    """``0:16``: a range of channels (``slice channels A:B``)."""

    start: S.Expr
    stop: S.Expr
    span: Span


@dataclass(frozen=True)
class _Comma:
    span: Span


@dataclass(frozen=True)
class _SliceParts:
    start: S.Expr | None
    stop: S.Expr | None


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
    stmt: S.Stmt | None = None
    """A statement read from the line's text before the grammar (``network NAME{variant}``)."""
    variant_row: tuple[str, Span, list[Any]] | None = None
    """A row of a ``variants(...)`` table: its key, the key's span and its values."""
    body_span: Span | None = None
    total: S.TotalClaim | None = None
    row: tuple[Any, list[Token], Span] | None = None
    """A table row: its columns, its cells and the span of the ``columns:`` line above it."""
    header: tuple[str, ...] | None = None
    """A header line's keyword phrase as the grammar's header terminals read it, name included
    (``("stage", "features")``, ``("shortcut",)``, ``("block",)`` before ``b(w):``)."""
    values: tuple[str | None, Span | None, tuple[S.Expr, ...]] | None = None
    """A row of a value table (``table NAME(cols):``): its key (``18:``) and its span, if
    written, and its values."""


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


class _ValueParts:
    """The parts of the expression language beyond arithmetic (conditions, indexing, lists,
    comprehensions) and the lines of ``let``, ``table`` and ``for``: the half of
    :class:`_Parts` that builds values."""

    file: str
    number: int

    if TYPE_CHECKING:

        def span(self, x: Token | Any) -> Span: ...

        def operand(self, x: Any) -> S.Expr: ...

    @v_args(meta=True)
    def logic(self, meta: Any, children: list[Any]) -> S.Logic:
        left, op, right = children
        return S.Logic(str(op).lower(), self.operand(left), self.operand(right), self.span(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def negation(self, meta: Any, children: list[Any]) -> S.Not:
        return S.Not(self.operand(children[1]), self.span(meta))

    @v_args(meta=True)
    def neg(self, meta: Any, children: list[Any]) -> S.Neg:
        return S.Neg(self.operand(children[1]), self.span(meta))

    @v_args(meta=True)
    def ifelse(self, meta: Any, children: list[Any]) -> S.IfElse:
        then, _, cond, _, other = children
        return S.IfElse(
            self.operand(then), self.operand(cond), self.operand(other), self.span(meta)
        )

    @v_args(meta=True)
    def index(self, meta: Any, children: list[Any]) -> S.Index | S.Slice:
        value, _, sub = children
        span = self.span(meta)
        if isinstance(sub, _SliceParts):
            return S.Slice(self.operand(value), sub.start, sub.stop, span)
        return S.Index(self.operand(value), self.operand(sub), span)

    def slicing(self, children: list[Any]) -> _SliceParts:
        start, _, stop = children
        return _SliceParts(
            self.operand(start) if start is not None else None,
            self.operand(stop) if stop is not None else None,
        )

    @v_args(meta=True)
    def listexpr(self, meta: Any, children: list[Any]) -> S.ListExpr | S.Comprehension:
        inner = children[1]
        span = self.span(meta)
        if isinstance(inner, tuple) and inner and inner[0] == "comprehension":
            return S.Comprehension(inner[1], inner[2], span)
        return S.ListExpr(tuple(inner or ()), span)

    def elements(self, children: list[Any]) -> list[S.Expr]:
        return [self.operand(c) for c in children if not isinstance(c, _Comma)]

    def comprehension(self, children: list[Any]) -> tuple[str, S.Expr, tuple[S.CompFor, ...]]:
        return ("comprehension", self.operand(children[0]), tuple(children[1:]))

    @v_args(meta=True)
    def compfor(self, meta: Any, children: list[Any]) -> S.CompFor:
        _, targets, _, iterable, *rest = children
        conditions = tuple(self.operand(c) for c in rest[1::2])
        return S.CompFor(targets, self.operand(iterable), conditions, self.span(meta))

    @v_args(meta=True)
    def targets(self, meta: Any, children: list[Any]) -> S.Targets:
        items = tuple(c for c in children if not isinstance(c, _Comma))
        return S.Targets(items, self.span(meta))

    def _keyword_line(self, meta: Any, keyword: str, items: list[Any], colon: bool) -> _Line:
        span = self.span(meta)
        return _Line(span, None, None, items, None, None, [], None, colon, header=(keyword,))

    @v_args(meta=True)
    def for_header(self, meta: Any, children: list[Any]) -> _Line:
        _, targets, _, iterable, _ = children
        items = [targets, self.operand(iterable)]
        return self._keyword_line(meta, "for", items, True)

    @v_args(meta=True)
    def table_header(self, meta: Any, children: list[Any]) -> _Line:
        _, call, _ = children
        return self._keyword_line(meta, "table", [call], True)

    @v_args(meta=True)
    def let_line(self, meta: Any, children: list[Any]) -> _Line:
        _, name, value = children
        items = [name, self.operand(value)]
        return self._keyword_line(meta, "let", items, False)

    @v_args(meta=True)
    def valuerow(self, meta: Any, children: list[Any]) -> _Line:
        key, *rest = children
        values = tuple(self.operand(c) for c in rest if not isinstance(c, _Comma))
        key_text = key_span = None
        if key is not None:
            key_text = str(key).rstrip(":").rstrip()
            key_span = Span(
                file=self.file,
                line=self.number,
                column=key.column,
                end_line=self.number,
                end_column=key.column + len(key_text),
            )
        line = _Line(self.span(meta), None, None, [], None, None, [], None, False)
        line.values = (key_text, key_span, values)
        return line


class _Parts(_ValueParts, Transformer):
    """Tokens and item rules -> syntax values; lines -> :class:`_Line` records."""

    def __init__(self, file: str, line: int, shift: int = 0):
        super().__init__()
        self.file = file
        self.number = line  # each line is parsed alone: Lark's line 1 is this line of the file
        self.shift = shift  # columns before the parsed text (a piece of a line: parse_piece)

    def span(self, x: Token | Any) -> Span:
        if getattr(x, "empty", False):
            n = self.number
            return Span(file=self.file, line=n, column=1, end_line=n, end_column=1)
        return Span(
            file=self.file,
            line=self.number,
            column=x.column + self.shift,
            end_line=self.number,
            end_column=x.end_column + self.shift,
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

    def STRING(self, tok: Token) -> S.Str:
        return S.Str(str(tok)[1:-1], self.span(tok))

    def REPEAT(self, tok: Token) -> _Repeat:
        span = self.span(tok)
        return _Repeat(_int(str(tok)[1:], span), span)

    def COMMA(self, tok: Token) -> _Comma:
        return _Comma(self.span(tok))

    # expressions
    def binop(self, children: list[Any]) -> S.BinOp | S.Neg:
        left, op, right = children
        left, right = self.operand(left), self.operand(right)
        sym = {"·": "*"}.get(str(op), str(op))
        if sym == "**" and isinstance(left, S.Num) and left.text.startswith("-"):
            # `-2 ** 2`: the sign is a unary minus, looser than `**`, as Python reads it.
            s = left.span
            base = S.Num(-left.value, left.text[1:], s.model_copy(update={"column": s.column + 1}))
            power = S.BinOp("**", base, right, self.join(base.span, right.span))
            return S.Neg(power, self.join(s, right.span))
        return S.BinOp(sym, left, right, self.join(left.span, right.span))  # type: ignore[arg-type]

    def operand(self, x: Any) -> S.Expr:
        if isinstance(x, _Str):
            return S.Str(x.value, x.span)
        if isinstance(x, _RawCall):
            near = did_you_mean(x.name, list(FUNCTIONS))
            raise SyntaxProblem(
                "E102",
                f"`{x.name}(…)` is not a function{near}"
                + (
                    ""
                    if near
                    else ": arithmetic calls only " + ", ".join(f"`{f}`" for f in FUNCTIONS)
                ),
                x.span,
                "a block call is an item of its own: `layer1: bottleneck(64)`",
            )
        if isinstance(x, _Group):
            inner = [i for i in x.items if not isinstance(i, _Comma)]
            tuple_ = len(inner) != 1 or isinstance(x.items[-1], _Comma)
            if inner and all(_is_expr(i) or isinstance(i, _Str | _Group) for i in inner):
                if all(isinstance(i, _Comma) for i in x.items[1::2]) and (
                    len(x.items) in (2 * len(inner) - 1, 2 * len(inner))
                ):
                    values = tuple(self.operand(i) for i in inner)
                    return S.TupleExpr(values, x.span) if tuple_ else S.Paren(values[0], x.span)
            if not x.items:
                return S.TupleExpr((), x.span)
            raise SyntaxProblem(
                "E102",
                "expected one expression, or values separated by commas, inside the parentheses",
                x.span,
                None,
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
            if len(seg) != 1 or not (_is_expr(seg[0]) or isinstance(seg[0], _Str | _Group)):
                raise SyntaxProblem(
                    "E106", f"an argument of `{name}` is one value", seg[-1].span, FUNCTION_HELP
                )
            args.append(self.operand(seg[0]))
        low, high = FUNCTIONS[str(name)]
        if not low <= len(args) <= (high or len(args)):
            wanted = f"{low} or more" if high is None else str(low)
            wanted = f"{low} to {high}" if high is not None and high != low else wanted
            raise SyntaxProblem(
                "E106",
                f"`{name}` takes {wanted} value{'s' if wanted != '1' else ''}, not {len(args)}",
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
        _, value = children
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
    def range(self, meta: Any, children: list[Any]) -> _Range:
        start, _, stop = children
        return _Range(self.operand(start), self.operand(stop), self.span(meta))

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
        text = str(tok).rstrip().rstrip(":").rstrip()
        quote = text.find('"')
        words = tuple(text[:quote].split()) + (text[quote:],) if quote >= 0 else tuple(text.split())
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


def parse_piece(text: str, n: int, file: str, column: int) -> list[Any]:
    """The comma-separated values of a piece of line ``n`` that starts at ``column`` (a
    variants row after its key, a template's ``{EXPR}``, an import's settings), read as the
    arguments of a call so that every value form of a call's arguments is allowed; spans point
    into the line. Raises SyntaxProblem, or Lark's UnexpectedInput, for a bad piece."""
    wrapped = f"f({text})"
    problem = _too_deep(wrapped, n, file)
    if problem is not None:
        raise SyntaxProblem(problem.code, problem.message, problem.span, problem.help)
    try:
        tree = lark_parser().parse(wrapped, start="start")
    except UnexpectedInput as e:
        d = _syntax_diagnostic(e, file, n, wrapped)
        span = d.span.model_copy(
            update={
                "column": d.span.column + column - 3,
                "end_column": d.span.end_column + column - 3,
            }
        )
        raise SyntaxProblem(d.code, d.message, span, d.help) from None
    try:
        line = _Parts(file, n, column - 3).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, SyntaxProblem):
            raise e.orig_exc from None
        raise
    call = line.items[0] if len(line.items) == 1 else None
    if not isinstance(call, _RawCall) or line.label or line.colon:
        raise SyntaxProblem("E102", "expected values separated by commas", _point(file, n, column))
    return list(call.items)


_NETWORK_TEMPLATE = re.compile(
    r"([ \t]*)(?i:network)[ \t]+"
    r"((?:[A-Za-z0-9_]|\{[^{}\n]*\})*\{[^{}\n]*\}(?:[A-Za-z0-9_]|\{[^{}\n]*\})*)"
    r"[ \t]*(?:#[^\n]*)?"
)
_VARIANT_ROW = re.compile(r"([ \t]*)([A-Za-z0-9_.]+)[ \t]*:")
VARIANTS_HEADER = re.compile(r"[ \t]*variants[ \t]*\(")


def read_template(text: str, n: int, file: str, column: int) -> S.Template:
    """A name template (``block{s + 1}``, starting at ``column`` of line ``n``): its text and
    ``{EXPR}`` holes, each one expression."""
    parts: list[str | S.Expr] = []
    pos = 0
    while pos < len(text):
        start = text.find("{", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        end = text.find("}", start)
        if end < 0 or "{" in text[start + 1 : end]:
            raise SyntaxProblem(
                "E106",
                "a `{` in a name template needs its `}`",
                _point(file, n, column + start),
                'write e.g. `"block{i}"`',
            )
        if start > pos:
            parts.append(text[pos:start])
        items = parse_piece(text[start + 1 : end], n, file, column + start + 1)
        if len(items) != 1 or not (_is_expr(items[0]) or isinstance(items[0], S.Str)):
            raise SyntaxProblem(
                "E106",
                "a `{…}` in a name template holds one expression",
                _point(file, n, column + start, end - start + 1),
                'write e.g. `"block{i + 1}"`',
            )
        parts.append(items[0])
        pos = end + 1
    span = _point(file, n, column, len(text))
    return S.Template(tuple(parts), text, span)


def _template_line(raw: str, n: int, file: str) -> _Line | None:
    """``network NAME{variant}``: a network name template, read before the grammar (which has
    no braces); None for any other line."""
    m = _NETWORK_TEMPLATE.fullmatch(raw)
    if m is None:
        return None
    template = read_template(m[2], n, file, m.start(2) + 1)
    span = _point(file, n, len(m[1]) + 1, m.end(2) - len(m[1]))
    stmt = S.Network(m[2], span, template)
    return _Line(span, None, None, [], None, None, [], None, False, stmt=stmt)


def _variant_row(raw: str, n: int, file: str) -> _Line:
    """A row of a ``variants(...)`` table: ``KEY: v1, v2, …``."""
    m = _VARIANT_ROW.match(raw)
    code = raw.split("#", 1)[0].rstrip(_BLANK)
    start = len(raw) - len(raw.lstrip(_BLANK)) + 1
    span = _point(file, n, start, max(1, len(code) - start + 1))
    if m is None:
        raise SyntaxProblem(
            "E106",
            "a row of a `variants` table is `KEY: value, value, …`",
            span,
            "write e.g. `b0: 1.0, 1.0, 0.2` (a key of letters, digits, `_` and `.`)",
        )
    key_span = _point(file, n, m.start(2) + 1, len(m[2]))
    values = parse_piece(code[m.end() :], n, file, m.end() + 1) if code[m.end() :].strip() else []
    return _Line(
        span, None, None, [], None, None, [], None, False, variant_row=(m[2], key_span, values)
    )


_EXPRS = (
    S.Num,
    S.Name,
    S.BinOp,
    S.Paren,
    S.InShape,
    S.Func,
    S.Str,
    S.Not,
    S.Neg,
    S.IfElse,
    S.Index,
    S.Slice,
    S.ListExpr,
    S.TupleExpr,
    S.Comprehension,
    S.Compare,
    S.Logic,
)


def _is_expr(x: Any) -> bool:
    return isinstance(x, _EXPRS)


def chosen_activation(call: _RawCall) -> S.Expr:
    """The one value of an ``act(EXPR)`` call (E106 for anything else)."""
    parts = _segments(list(call.items))
    value = _as_value(parts[0][0]) if len(parts) == 1 and len(parts[0]) == 1 else None
    if value is None:
        raise SyntaxProblem(
            "E106",
            "`act` takes one value: the name of an activation",
            call.span,
            'write e.g. `act(activation)` or `act("silu")`',
        )
    return value


def _as_value(x: Any) -> S.Expr | None:
    """An item as a value of a call's argument: an expression, a string, a tuple or a
    parenthesised value; None for anything else."""
    if _is_expr(x):
        return x
    if isinstance(x, _Str):
        return S.Str(x.value, x.span)
    if isinstance(x, _Group):
        parts = _segments(list(x.items))
        values = [_as_value(p[0]) if len(p) == 1 else None for p in parts]
        if any(v is None for v in values):
            return None
        one = len(values) == 1 and not isinstance(x.items[-1], _Comma)
        return S.Paren(values[0], x.span) if one else S.TupleExpr(tuple(values), x.span)  # type: ignore[arg-type]
    return None


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


@dataclass
class _Kind:
    kind: str
    name: str | None = None
    options: dict[str, S.Arg] = field(default_factory=dict)
    paper: bool = False
    pool_digits: int | None = None  # POOL2: the digits are the size unless a size is written
    refs: list[S.Name] = field(default_factory=list)  # `concat with a, b`
    ref_mode: str | None = None


def _describe(x: Any) -> str:
    if isinstance(x, S.Name):
        return f"`{x.id}`"
    if isinstance(x, S.Num):
        return f"`{x.text}`"
    if isinstance(x, _RawCall):
        return f"the call `{x.name}(…)`"
    if isinstance(x, S.Str):
        return f'the string "{x.value}"'
    if isinstance(x, S.DeclaredShape):
        return "a shape"
    if isinstance(x, _Range):
        return "a range `A:B`"
    if isinstance(x, S.Compare):
        return f"the comparison `{x.op}`"
    if isinstance(x, _Size | S.Pair):
        return "a size"
    return "an expression"


# --- reading a file: indentation, expectations, limits, syntax errors ----------------------


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
    "RANGECOLON": "`:`",
    "ELSE": "`else`",
    "IN": "`in`",
    "LSQB": "`[`",
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
    assignment = _assignment_in_condition(text, column, file, n)
    if assignment is not None:
        return assignment
    expected = sorted({_EXPECT_NAMES.get(t, "") for t in e.expected} - {""})
    help = f"expected {', '.join(expected)}" if expected else None
    form = _STATEMENT_FORM.match(text)
    before = text[: column - 1].rstrip()
    after_value = before[-1:].isalnum() or before.endswith((")", "]", '"', "'"))
    if str(tok) == "-" and tok.type != "$END" and after_value:
        help = "a `-` after a value with no comma between begins no value: write `(-x)`"
    elif form is not None and not _STATEMENT_BEGUN[form[1].lower()].match(text):
        help = _STATEMENT_FORMS[form[1].lower()]
    return error("E102", f"unexpected {_describe_token(tok)}", _point(file, n, column, width), help)


_STATEMENT_FORM = re.compile(r"[ \t\f\u00a0]*(let|for|table)(?![A-Za-z0-9_])", re.I)
_STATEMENT_BEGUN = {  # a line that has its form's start: the grammar's own help is better
    "let": re.compile(r"[ \t\f\u00a0]*let[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*=", re.I),
    "for": re.compile(r"[ \t\f\u00a0]*for[ \t][^:]*[ \t)]in[ \t(\[]", re.I),
    "table": re.compile(r"[ \t\f\u00a0]*table[ \t]+[A-Za-z_][A-Za-z0-9_]*\(", re.I),
}
_STATEMENT_FORMS = {
    "let": "write `let NAME = VALUE`",
    "for": "write `for NAME in VALUE:` (or `for NAME, (NAME, NAME) in VALUE:`)",
    "table": "write `table NAME(column, column, …):` and the rows indented below it",
}


_CONDITION_LINE = re.compile(r"[ \t\f\u00a0]*(?i:if)(?![A-Za-z0-9_])")
_NAME_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*$")


def _assignment_in_condition(text: str, column: int, file: str, n: int) -> Diagnostic | None:
    """`if a == 1 and b = 2:`: an assignment where a test belongs, said as such (E106)."""
    at = column - 1
    if not (0 <= at < len(text) and text[at] == "=" and text[at + 1 : at + 2] != "="):
        return None
    name = _NAME_BEFORE.search(text[:at])
    if _CONDITION_LINE.match(text) is None or name is None:
        return None
    return error(
        "E106",
        "`=` does not belong in a condition",
        _point(file, n, name.start(1) + 1, column + 1 - name.start(1)),
        f"compare with `==`: `{name[1]} == …`",
    )


def _too_deep(line: str, n: int, file: str) -> Diagnostic | None:
    """Lines nested or chained beyond any real spec would overflow the recursive tree walks."""
    code = line.split("#", 1)[0]
    depth = operators = 0
    for column, ch in enumerate(code, 1):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in "+*/·-":  # `-` too: `--…-x` and `1-1-…-1` nest as deep (a `conv-1` counts)
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


_TREES: dict[str, Any] = {}


def _tree(parser: Lark, raw: str, start: str = "start") -> Any:
    """Lark's tree of a line, kept for lines met again (a generated spec repeats its lines;
    the tree holds no line number, which _Parts adds). Transforming a tree leaves it as it is."""
    key = raw if start == "start" else f"{start}\0{raw}"
    tree = _TREES.get(key)
    if tree is None:
        tree = parser.parse(raw, start=start)
        if len(raw) <= _TREE_LINE:
            if len(_TREES) >= _TREES_KEPT:
                _TREES.clear()
            _TREES[key] = tree
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
