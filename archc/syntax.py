"""The syntax tree: what a spec says, line by line, before blocks and defaults are expanded.

archc.parser builds it; archc.elaborate turns it into an :class:`archc.ir.Graph`. Every node
keeps the :class:`Span` it was read from, so every later error can point back at the text.
Values that may depend on block parameters stay expressions (:data:`Expr`) until elaboration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from archc.spans import Span

# --- expressions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A number as written (``64``, ``0.5``): its exact value and its text."""

    value: Fraction
    text: str
    span: Span


@dataclass(frozen=True)
class Name:
    """A name in an expression: a block parameter (``width``)."""

    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    """``left op right``: one of ``+ - * / // % **``, with the precedence the parser gave it."""

    op: Literal["+", "-", "*", "/", "//", "%", "**"]
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Paren:
    """A parenthesised sub-expression, kept so a claim's text can be shown as written."""

    inner: Expr
    span: Span


@dataclass(frozen=True)
class InShape:
    """``in.c``, ``in.h``, ``in.w``: a size of the value entering the current block call."""

    dim: Literal["c", "h", "w"]
    span: Span


@dataclass(frozen=True)
class Func:
    """``max(a, b)``, ``round(x)``, ``make_divisible(v, d)``, ``len(xs)``, … (the functions of
    archc.parsing.lines.FUNCTIONS)."""

    name: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Str:
    """A string value: ``"b3"`` or ``'b3'`` (``value`` without the quotes)."""

    value: str
    span: Span


@dataclass(frozen=True)
class Not:
    """``not x``: 1 when ``x`` is false (0, an empty string or list), else 0."""

    operand: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    """``-x``: the unary minus of a number (``-2 ** 2`` is ``-(2 ** 2)``, as Python's)."""

    operand: Expr
    span: Span


@dataclass(frozen=True)
class IfElse:
    """``then if condition else other``, Python's conditional expression."""

    then: Expr
    condition: Expr
    other: Expr
    span: Span


@dataclass(frozen=True)
class Index:
    """``value[index]`` (a negative index counts from the end)."""

    value: Expr
    index: Expr
    span: Span


@dataclass(frozen=True)
class Slice:
    """``value[start:stop]``, either bound optional."""

    value: Expr
    start: Expr | None
    stop: Expr | None
    span: Span


@dataclass(frozen=True)
class ListExpr:
    """``[a, b, c]``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class TupleExpr:
    """``(a, b)`` or ``(a,)``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Targets:
    """What a ``for`` binds: names and nested tuples of names (``j, (t, k, s)``)."""

    items: tuple[Name | Targets, ...]
    span: Span


@dataclass(frozen=True)
class CompFor:
    """One ``for TARGETS in ITERABLE if COND …`` clause of a list comprehension."""

    targets: Targets
    iterable: Expr
    conditions: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Comprehension:
    """``[element for TARGETS in ITERABLE if COND]``."""

    element: Expr
    clauses: tuple[CompFor, ...]
    span: Span


@dataclass(frozen=True)
class Compare:
    """``expand != 1``: a comparison, 1 when it holds, else 0."""

    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Logic:
    """``a and b``, ``a or b``: 1 or 0."""

    op: Literal["and", "or"]
    left: Expr
    right: Expr
    span: Span


Expr = (
    Num
    | Name
    | BinOp
    | Paren
    | InShape
    | Func
    | Str
    | Not
    | Neg
    | IfElse
    | Index
    | Slice
    | ListExpr
    | TupleExpr
    | Comprehension
    | Compare
    | Logic
)

Condition = Expr
"""What ``if`` tests: any value, true when not 0 (nor an empty string or list)."""


@dataclass(frozen=True)
class Pair:
    """A size written ``HxW`` (``11x11``): two constant integers."""

    values: tuple[int, int]
    span: Span


Value = Expr | Pair | str
"""An argument value: an expression, a ``KxK`` pair, or a word such as ``same``."""


@dataclass(frozen=True)
class Arg:
    """A positional argument of a layer or call: an expression, a size or a word."""

    value: Value
    span: Span


@dataclass(frozen=True)
class DeclaredShape:
    """``[55x55x96]`` as written (H, W, C), or ``[4096]`` as (F,)."""

    dims: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class ClaimSyntax:
    """``memory: ARITHMETIC = PRINTED`` or ``params: …`` on a line (a table row's
    cells also claim ``ops`` and ``depth``): either side may be missing."""

    kind: Literal["memory", "params", "ops", "depth"]
    expression: Expr | None
    printed: str | None
    span: Span


ACT = "act"
"""`act(EXPR)`: the activation whose name a string value gives (`act(activation)`), a layer of
its own or an item of a defaults line."""


# --- statements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotalClaim:
    """``TOTAL params: 138M parameters``: a claim on the whole network's totals, as a lecture
    table's last lines print them. Only the first printed number is read; the rest of the line
    (``* 4 bytes ~= 96MB / image``) is the author's remark."""

    claim: ClaimSyntax
    span: Span


@dataclass(frozen=True)
class Template:
    """A name with ``{EXPR}`` holes: ``"block4-{i}"``, ``resnet{variant}``. ``parts`` alternate
    text and expressions in order; ``text`` is the template as written (without quotes)."""

    parts: tuple[str | Expr, ...]
    text: str
    span: Span


@dataclass(frozen=True)
class Network:
    """``network NAME``, or ``network NAME{variant}`` (``template``: filled from the spec's
    parameters; ``name`` is then the template's text)."""

    name: str
    span: Span
    template: Template | None = None


@dataclass(frozen=True)
class SpecParam:
    """``param NAME = EXPR``: a parameter of the whole file, with its default; a caller (the
    command line's ``--set``, ``archc.load``'s keywords, an import's settings) may set it."""

    name: str
    default: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class VariantRow:
    """One row of a ``variants(...)`` table: ``KEY: v1, v2, …``."""

    key: str
    values: tuple[Expr, ...]
    span: Span
    key_span: Span


@dataclass(frozen=True)
class Variants:
    """``variants(COL, …):`` and its rows: the row whose key is the value of ``param variant``
    makes each column a constant of the file."""

    columns: tuple[str, ...]
    rows: tuple[VariantRow, ...]
    span: Span


@dataclass(frozen=True)
class InputStmt:
    """``input [224x224x3]`` (or the lecture's ``INPUT: [224x224x3]``), with its claims."""

    dims: tuple[int, ...]
    """(H, W, C) or (F,), as written."""
    span: Span
    claims: tuple[ClaimSyntax, ...] = ()


@dataclass(frozen=True)
class InitStmt:
    """``init SCHEME``: how the compiled module initialises its weights."""

    scheme: str
    span: Span


@dataclass(frozen=True)
class Import:
    """``import "PATH"``: block definitions from another ``.arch`` file."""

    path: str
    span: Span
    settings: tuple[KwArgSyntax, ...] = ()
    """``import "blocks/x.arch" (bn_eps = 0.001)``: values for the library's ``param``s."""


@dataclass(frozen=True)
class Follower:
    """One item of a defaults line: ``bn``, ``bn(eps 0.001)``, an activation's kind (``relu``,
    ``silu``) or ``none``."""

    kind: str
    options: dict[str, Arg]
    span: Span


@dataclass(frozen=True)
class Defaults:
    """``conv: bn, relu`` — every later layer of ``kind`` in this scope gets these followers."""

    kind: str
    followers: tuple[Follower, ...]
    span: Span


@dataclass(frozen=True)
class Layer:
    """One layer as written. ``options`` holds the arguments by role (``filters``, ``kernel``,
    ``stride``, ``pad``, ``p``, ``eps`` …); ``flags`` the words ``no bias``, ``no relu``,
    ``no bn``, ``ceil``, ``floor``; ``paper`` is set for table/paper forms (``conv3-64``), whose
    unwritten conv padding is ``same``."""

    kind: str
    name: str | None
    span: Span
    options: dict[str, Arg] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    paper: bool = False
    repeat: int | Expr = 1
    """``xN`` (an int) or ``x EXPR`` (computed where the layer is elaborated)."""
    declared: DeclaredShape | None = None
    claims: tuple[ClaimSyntax, ...] = ()
    name_span: Span | None = None
    refs: tuple[Name, ...] = ()
    """``concat with a, b`` / ``add of a, b``: the earlier named outputs it joins."""
    ref_mode: Literal["with", "of"] | None = None
    """``with``: the current output, then the named ones; ``of``: the named ones only."""
    template: Template | None = None
    """A quoted label with ``{EXPR}`` holes: each repetition named by it."""


@dataclass(frozen=True)
class KwArgSyntax:
    """A keyword argument of a call: ``stride 2`` or ``stride=2``."""

    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """``bottleneck(128, stride 2)``, optionally repeated (``x3``)."""

    block: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArgSyntax, ...]
    repeat: int | Expr
    """``xN`` (an int) or ``x EXPR``; inside the call's arguments ``i`` is the repetition index
    when the call is repeated."""
    span: Span


@dataclass(frozen=True)
class CallLine:
    """A line of block calls: ``layer2: bottleneck(128, stride 2), bottleneck(128) x3``."""

    name: str | None
    calls: tuple[Call, ...]
    span: Span
    declared: DeclaredShape | None = None
    claims: tuple[ClaimSyntax, ...] = ()
    name_span: Span | None = None
    template: Template | None = None
    """A quoted label with ``{EXPR}`` holes (``"block4-{i}"``): each instance named by it."""


@dataclass(frozen=True)
class Param:
    """A block parameter, with its default expression if it has one: ``stride = 1``."""

    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    """``block NAME(params):`` or ``sequential block NAME(params):`` (``numbered``: the layers
    of each instance are named 0, 1, …, like an ``nn.Sequential`` subclass such as
    torchvision's Conv2dNormActivation)."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    numbered: bool = False


@dataclass(frozen=True)
class Stage:
    """``stage NAME:`` or ``sequential NAME:`` (``numbered``: its layers are named 0, 1, …,
    like the children of an ``nn.Sequential``); ``sequential:`` has no name (None) and takes
    the next position of the sequential body it stands in."""

    name: str | None
    body: tuple[Stmt, ...]
    span: Span
    numbered: bool = False
    template: Template | None = None
    """``stage "block{s + 1}":``: the name filled where the stage is elaborated."""


@dataclass(frozen=True)
class Residual:
    """``residual:`` + its body: the path an ``add`` joins with the shortcut."""

    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Shortcut:
    """``shortcut: auto|identity|projection`` (``mode``) or ``shortcut:`` + a body, named
    ``downsample`` unless written ``shortcut NAME:``."""

    mode: Literal["auto", "identity", "projection"] | None
    body: tuple[Stmt, ...]
    span: Span
    name: str = "downsample"


@dataclass(frozen=True)
class Gate:
    """``gate:`` + a body: the body computes a per-channel gate from the value entering it, and
    that value times the gate comes out (squeeze-and-excitation)."""

    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Branch:
    """``branch:``, ``sequential branch:`` (``numbered``: its layers are named 0, 1, …) or
    ``inline branch:`` (``inline``: it opens no scope; its layers are named in the enclosing
    one, as the attributes of torchvision's Inception3 and Fire modules are)."""

    body: tuple[Stmt, ...]
    span: Span
    numbered: bool = False
    inline: bool = False


@dataclass(frozen=True)
class Aux:
    """``aux NAME:`` + a body: an auxiliary classifier, a side path from the current output
    whose layers are the network's (GoogLeNet's ``aux1``, Inception-v3's ``AuxLogits``); the
    module returns its output beside the main one in training mode only."""

    name: str
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class If:
    """``if CONDITION:`` + a body, elaborated only when the condition holds."""

    condition: Condition
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Let:
    """``let NAME = EXPR``: a constant of the scope, from the next line on."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Table:
    """``table NAME(col, …):`` + one row of values per line: the constant list of the rows'
    tuples."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[tuple[Expr, ...], Span], ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class For:
    """``for TARGETS in EXPR:`` + a body, elaborated once per element, as if written out."""

    targets: Targets
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Setting:
    """One line of a ``train:`` section as written: its words and numbers in order
    (``weight decay 5e-4 except bn``). archc.elaborate.recipe reads them."""

    words: tuple[Name | Num, ...]
    span: Span


@dataclass(frozen=True)
class Train:
    """``train:`` + its settings: the training recipe."""

    settings: tuple[Setting, ...]
    span: Span


Stmt = (
    Network
    | TotalClaim
    | InputStmt
    | InitStmt
    | Import
    | Defaults
    | Layer
    | CallLine
    | BlockDef
    | Stage
    | Residual
    | Gate
    | Shortcut
    | Branch
    | Aux
    | If
    | Train
    | SpecParam
    | Variants
    | Let
    | Table
    | For
)


@dataclass(frozen=True)
class Expectation:
    """One code of an ``# expect E403`` comment: where it stands (``column``, ``width``: the
    code in the comment), and whether the comment is a line of its own (``alone``), which
    acknowledges nothing. ``code`` is upper case; empty for a bare ``# expect``."""

    line: int
    code: str
    column: int
    width: int
    alone: bool = False


@dataclass(frozen=True)
class Spec:
    """A whole file: its statements, in order."""

    file: str
    body: tuple[Stmt, ...]
    expected: tuple[Expectation, ...] = ()
    """``# expect E403`` comments: each code of each finding the author acknowledges."""
