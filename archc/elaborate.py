"""Syntax tree -> IR graph: blocks, calls, repetition, stages, residuals, branches, defaults.

The elaborator walks the statements in order, keeping the name of the current output node.
Block calls expand the block's body in a fresh naming scope (``layer1.0.``) with the parameters
bound; every node made that way records its origin chain, and every error inside a block body
carries a note per call site. Arithmetic is evaluated exactly (fractions) by walking the
expression tree; a size that must be an integer and is not is an error.

Nodes are collected as drafts first and validated as IR models at the end, so that a later
line can still attach a declared shape or remove the last FC's default ReLU.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archc import ir
from archc import syntax as S
from archc.diagnostics import Diagnostic, Note, error
from archc.ops import OPS
from archc.ops.base import Evaluator
from archc.spans import Frame, Span

MAX_REPEAT = 1000
MAX_NODES = 100_000
MAX_DEPTH = 64

# Names that would shadow an attribute of the compiled torch module (torch.nn.Module and
# archc's CompiledNetwork, instance attributes included): the torch backend refuses them (E501),
# so the front end rejects them first (E218) -- without importing torch, hence the list of the
# public ones. Every name with a leading underscore is reserved too: torch keeps its private
# state there, more of it in every release and some added at run time (torch._dynamo patches
# nn.Module). tests/test_malformed.py checks that this covers dir() of both classes.
RESERVED_NAMES = frozenset(
    """
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters network_name parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
    training type xpu zero_grad
    """.split()
)


def reserved(name: str) -> bool:
    """True when ``name`` (one part of a dotted node name) would shadow a module attribute."""
    return name.startswith("_") or name in RESERVED_NAMES


SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"

Loader = Callable[[Path], "tuple[S.Spec | None, list[Diagnostic], str | None]"]
"""Reads and parses an imported file: (syntax tree, diagnostics, text or None if unreadable)."""


class _Problem(Exception):
    """An error that abandons the current statement."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        super().__init__(message)
        self.code, self.message, self.span, self.help = code, message, span, help


class _Quiet(Exception):
    """A consequence of an error already reported (a block from a file that failed to parse)."""


def _unjoined_residual(span: Span) -> _Problem:
    return _Problem(
        "E211",
        "a `residual:` section must be joined by `add`",
        span,
        "write `add` (or `add, relu`) right after the residual and its shortcut",
    )


def _unjoined_branches(span: Span) -> _Problem:
    return _Problem(
        "E211",
        "branches must be joined by `concat`",
        span,
        "write `concat` right after the last `branch:` section",
    )


class _Abort(Exception):
    """The expansion is out of control (too many nodes); stop elaborating."""


@dataclass
class _Draft:
    kind: str
    name: str
    inputs: list[str]
    span: Span | None
    origin: list[Frame]
    fields: dict[str, Any] = field(default_factory=dict)
    declared: ir.DeclaredShape | None = None
    claims: list[ir.Claim] = field(default_factory=list)
    follower_of: str | None = None


@dataclass
class _Scope:
    prefix: str
    positional: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    emitted: int = 0

    def child(self, name: str, positional: bool = False) -> _Scope:
        return _Scope(prefix=f"{self.prefix}{name}.", positional=positional)


@dataclass(frozen=True)
class _BlockInfo:
    definition: S.BlockDef
    defaults: dict[str, tuple[S.Follower, ...]]
    convention: bool


@dataclass(frozen=True)
class _Ctx:
    env: dict[str, Fraction]
    defaults: dict[str, tuple[S.Follower, ...]]
    convention: bool
    frames: tuple[Frame, ...] = ()
    stack: tuple[str, ...] = ()
    block: str | None = None


def uses_lecture_convention(body: tuple[S.Stmt, ...]) -> bool:
    """True when a file sets no defaults and writes no ReLU anywhere (the lecture tables)."""

    def walk(stmts: tuple[S.Stmt, ...]) -> bool:
        for st in stmts:
            if isinstance(st, S.Defaults):
                return False
            if isinstance(st, S.Layer) and OPS[st.kind].activation:
                return False
            inner = getattr(st, "body", ())
            if inner and not walk(inner):
                return False
        return True

    return walk(body)


def _sanitise(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if name.strip("_") else "network"


def expr_text(e: S.Expr) -> str:
    """An expression as normalised text: no spaces, parentheses as written."""
    if isinstance(e, S.Num):
        return e.text
    if isinstance(e, S.Name):
        return e.id
    if isinstance(e, S.Paren):
        return f"({expr_text(e.inner)})"
    return f"{expr_text(e.left)}{e.op}{expr_text(e.right)}"


class Elaborator:
    def __init__(self, file: str, loader: Loader, quiet_empty: bool = False):
        self.file = file
        self.quiet_empty = quiet_empty  # the parser already reported why nothing is left
        self.loader = loader
        self.diags: list[Diagnostic] = []
        self.drafts: list[_Draft] = []
        self.all_names: set[str] = set()
        self.blocks: dict[str, _BlockInfo] = {}
        self.loaded: set[Path] = set()
        self.import_stack: list[Path] = []
        self.import_failed = False

    # --- diagnostics ---------------------------------------------------------------------------

    def report(self, p: _Problem, ctx: _Ctx | None) -> None:
        notes = []
        if ctx is not None:
            for frame in reversed(ctx.frames):
                notes.append(
                    Note(message=f"in block `{frame.block}`, called here", span=frame.call)
                )
        self.diags.append(error(p.code, p.message, p.span, p.help, notes=notes))

    # --- entry ---------------------------------------------------------------------------------

    def run(self, spec: S.Spec) -> ir.Graph | None:
        path = None if self.file.startswith("<") else Path(self.file).resolve()
        if path is not None:
            self.loaded.add(path)
            self.import_stack.append(path)
        name = None if self.file.startswith("<") else _sanitise(Path(self.file).stem)
        init = "kaiming"
        convention = uses_lecture_convention(spec.body)
        self.register(spec, convention, self.base_dir())
        for st in spec.body:
            if isinstance(st, S.Network):
                name = st.name
            elif isinstance(st, S.InitStmt):
                init = st.scheme
        inputs = [st for st in spec.body if isinstance(st, S.InputStmt)]
        layers = [
            st
            for st in spec.body
            if isinstance(st, S.Layer | S.CallLine | S.Stage | S.Residual | S.Branch | S.Shortcut)
        ]
        if not layers:
            library = not inputs and any(isinstance(st, S.BlockDef) for st in spec.body)
            # A file of block definitions only is a library (specs/blocks/): nothing to build.
            if not self.diags and not self.quiet_empty and not library:
                start = Span(file=self.file, line=1, column=1, end_line=1, end_column=1)
                self.diags.append(
                    error(
                        "E003",
                        "the spec has no layers",
                        inputs[0].span if inputs else start,
                        "write the input line, e.g. `input [224x224x3]`, then one layer per line",
                    )
                )
            return None
        ctx = _Ctx(env={}, defaults={}, convention=convention)
        scope = _Scope(prefix="")
        if not inputs or layers[0].span.line < inputs[0].span.line:
            where = layers[0].span
            self.diags.append(
                error(
                    "E201",
                    "the first layer comes before any input line",
                    where,
                    "start the network with its input, e.g. `input [224x224x3]` or "
                    "`[227x227x3] INPUT`",
                )
            )
            return None
        try:
            cur = self.body(spec.body, ctx, scope, None, top=True)
        except _Abort:
            return None
        if any(d.severity == "error" for d in self.diags) or cur is None:
            return None
        return self.build(name or "network", init, cur)

    def base_dir(self) -> Path:
        return Path.cwd() if self.file.startswith("<") else Path(self.file).resolve().parent

    # --- blocks and imports --------------------------------------------------------------------

    def register(self, spec: S.Spec, convention: bool, base: Path) -> None:
        defaults: dict[str, tuple[S.Follower, ...]] = {}
        for st in spec.body:
            if isinstance(st, S.Defaults):
                defaults = _apply_defaults(defaults, st)
            elif isinstance(st, S.Import):
                self.import_file(st, base)
            elif isinstance(st, S.BlockDef):
                old = self.blocks.get(st.name)
                if old is not None:
                    self.diags.append(
                        error(
                            "E214",
                            f"block `{st.name}` is defined twice",
                            st.span,
                            f"the other definition is at {old.definition.span}; rename one",
                        )
                    )
                    continue
                self.blocks[st.name] = _BlockInfo(st, dict(defaults), convention)

    def import_file(self, st: S.Import, base: Path) -> None:
        candidates = [base / st.path, SPECS_DIR / st.path]
        found = next((c.resolve() for c in candidates if c.is_file()), None)
        if found is None:
            self.diags.append(
                error(
                    "E204",
                    f"cannot find the imported file `{st.path}`",
                    st.span,
                    f"looked in {base} and in {SPECS_DIR}",
                )
            )
            return
        if found in self.import_stack:
            chain = " → ".join(p.name for p in [*self.import_stack, found])
            self.diags.append(
                error("E205", f"recursive import: {chain}", st.span, "remove one of the imports")
            )
            return
        if found in self.loaded:
            return
        self.loaded.add(found)
        spec, diags, text = self.loader(found)
        if text is None:
            self.import_failed = True
            self.diags += diags
            return
        self.diags += diags
        self.import_failed |= any(d.severity == "error" for d in diags)
        if spec is None:
            return
        self.import_stack.append(found)
        try:
            self.register(spec, uses_lecture_convention(spec.body), found.parent)
        finally:
            self.import_stack.pop()

    # --- statements ----------------------------------------------------------------------------

    def body(
        self,
        stmts: tuple[S.Stmt, ...],
        ctx: _Ctx,
        scope: _Scope,
        cur: str | None,
        top: bool = False,
    ) -> str | None:
        residual: list[Any] | None = None  # [input, span, shortcut output or None]
        branches: list[str] | None = None
        branch_input: str | None = None
        branch_span: Span | None = None
        for st in stmts:
            joins_branches = isinstance(st, S.Branch) or (
                isinstance(st, S.Layer) and st.kind == "concat"
            )
            if branches is not None and branch_span is not None and not joins_branches:
                self.report(_unjoined_branches(branch_span), ctx)
                branches = None
            joins_residual = isinstance(st, S.Shortcut) or (
                isinstance(st, S.Layer) and st.kind == "add"
            )
            if residual is not None and not joins_residual:
                self.report(_unjoined_residual(residual[1]), ctx)
                residual = None
            try:
                if isinstance(st, S.Defaults):
                    ctx = replace(ctx, defaults=_apply_defaults(ctx.defaults, st))
                elif isinstance(st, S.InputStmt):
                    if not top or cur is not None:
                        raise _Problem(
                            "E201",
                            "a second input line" if cur is not None else "an input inside a body",
                            st.span,
                            "a network has exactly one input line, before its first layer",
                        )
                    cur = self.input(st)
                elif isinstance(st, S.Network | S.InitStmt | S.Import):
                    if not top:
                        raise _Problem("E217", "this line belongs at the top of the file", st.span)
                elif isinstance(st, S.BlockDef):
                    if not top:
                        raise _Problem(
                            "E217",
                            "blocks are defined at the top level of a file",
                            st.span,
                            "move this block definition out of the body",
                        )
                elif cur is None:
                    raise _Problem("E201", "the first layer comes before any input line", st.span)
                elif isinstance(st, S.Layer):
                    if st.kind == "add":
                        if residual is None:
                            raise _Problem(
                                "E211",
                                "`add` needs a `residual:` section before it",
                                st.span,
                                "write the residual path as an indented `residual:` body",
                            )
                        shortcut = residual[2] if residual[2] is not None else residual[0]
                        cur = self.layer(st, ctx, scope, [cur, shortcut])
                        residual = None
                    elif st.kind == "concat":
                        if branches is None or len(branches) < 2:
                            raise _Problem(
                                "E211",
                                "`concat` needs two or more `branch:` sections before it",
                                st.span,
                            )
                        cur = self.layer(st, ctx, scope, list(branches))
                        branches = None
                    else:
                        cur = self.layer(st, ctx, scope, [cur])
                elif isinstance(st, S.CallLine):
                    cur = self.call_line(st, ctx, scope, cur)
                elif isinstance(st, S.Stage):
                    self.claim_name(scope, st.name, st.span)
                    cur = self.body(st.body, ctx, scope.child(st.name), cur)
                elif isinstance(st, S.Residual):
                    start = cur
                    cur = self.body(st.body, ctx, scope, cur)
                    residual = [start, st.span, None]
                elif isinstance(st, S.Shortcut):
                    if residual is None or residual[2] is not None:
                        raise _Problem(
                            "E211",
                            "`shortcut` must follow a `residual:` section"
                            if residual is None
                            else "a residual has one shortcut",
                            st.span,
                        )
                    residual[2] = self.shortcut(st, ctx, scope, residual[0])
                elif isinstance(st, S.Branch):
                    if branches is None:
                        branches, branch_input, branch_span = [], cur, st.span
                    name = f"branch{len(branches) + 1}"
                    self.claim_name(scope, name, st.span)
                    out = self.body(st.body, ctx, scope.child(name), branch_input)
                    if out is not None:
                        branches.append(out)
            except _Problem as p:
                self.report(p, ctx)
            except _Quiet:
                pass
        if residual is not None:
            self.report(_unjoined_residual(residual[1]), ctx)
        if branches is not None and branch_span is not None:
            self.report(_unjoined_branches(branch_span), ctx)
        return cur

    def input(self, st: S.InputStmt) -> str:
        dims = tuple(self.check_size(d, "input size", st.span) for d in st.dims)
        shape = (dims[2], dims[0], dims[1]) if len(dims) == 3 else dims
        claims = [self.claim(c) for c in st.claims]
        self.all_names.add("input")
        self.drafts.append(
            _Draft("input", "input", [], st.span, [], {"shape": shape}, claims=claims)
        )
        return "input"

    # --- layers --------------------------------------------------------------------------------

    def layer(self, st: S.Layer, ctx: _Ctx, scope: _Scope, inputs: list[str]) -> str:
        if not 1 <= st.repeat <= MAX_REPEAT:
            raise _Problem(
                "E209" if st.repeat < 1 else "E216",
                f"repetition x{st.repeat} is out of range (1 to {MAX_REPEAT})",
                st.span,
            )
        fields = self.fields(st, ctx)
        cur = inputs[0]
        for i in range(st.repeat):
            draft = self.emit(
                st.kind,
                st.name if i == 0 else None,
                inputs if i == 0 else [cur],
                st.span,
                ctx,
                scope,
                dict(fields),
                name_span=st.name_span,
            )
            if st.declared is not None and i == st.repeat - 1:
                draft.declared = self.declared(st.declared)
            if i == st.repeat - 1:
                draft.claims = [self.claim(c) for c in st.claims]
            cur = self.followers(st, draft, ctx, scope)
        return cur

    def followers(self, st: S.Layer, draft: _Draft, ctx: _Ctx, scope: _Scope) -> str:
        cur = draft.name
        of = draft.name if st.kind == "linear" else None
        if st.kind in ctx.defaults:
            for f in ctx.defaults[st.kind]:
                if f.kind == "bn" and "no_bn" not in st.flags:
                    fields = {k: self.float_arg(a) for k, a in f.options.items()}
                    d = self.emit("batchnorm", None, [cur], st.span, ctx, scope, fields)
                    d.follower_of, cur = of, d.name
                elif f.kind != "bn" and "no_relu" not in st.flags:
                    d = self.emit(f.kind, None, [cur], st.span, ctx, scope, {})
                    d.follower_of, cur = of, d.name
        elif ctx.convention and OPS[st.kind].followed and "no_relu" not in st.flags:
            d = self.emit("relu", None, [cur], st.span, ctx, scope, {})
            d.follower_of, cur = of, d.name
        return cur

    def emit(
        self,
        kind: str,
        name: str | None,
        inputs: list[str],
        span: Span,
        ctx: _Ctx,
        scope: _Scope,
        fields: dict[str, Any],
        name_span: Span | None = None,
    ) -> _Draft:
        if len(self.drafts) >= MAX_NODES:
            self.diags.append(
                error("E216", f"the network expands to more than {MAX_NODES} nodes", span)
            )
            raise _Abort
        prefix = OPS[kind].prefix
        scope.counts[prefix] = scope.counts.get(prefix, 0) + 1
        if name is None:
            if scope.positional:
                name = str(scope.emitted)
            else:
                n = scope.counts[prefix]
                while f"{prefix}{n}" in scope.names:
                    n += 1
                name = f"{prefix}{n}"
        self.claim_name(scope, name, name_span or span)
        scope.emitted += 1
        draft = _Draft(kind, scope.prefix + name, inputs, span, list(ctx.frames), fields)
        self.drafts.append(draft)
        return draft

    def claim_name(self, scope: _Scope, name: str, span: Span) -> None:
        full = scope.prefix + name
        for part in name.split("."):
            if reserved(part):
                why = (
                    "names starting with `_` are kept for torch's own attributes"
                    if part.startswith("_")
                    else "it would shadow an attribute of the compiled torch module"
                )
                raise _Problem(
                    "E218",
                    f"the name `{part}` is reserved: {why}",
                    span,
                    f"names become attributes of the compiled nn.Module; rename it, "
                    f"e.g. `{part.strip('_') or 'layer'}_1`",
                )
        if name in scope.names or full in self.all_names:
            raise _Problem(
                "E210",
                f"the name `{full}` is used twice",
                span,
                "names become state_dict keys and must be unique; rename one of them",
            )
        scope.names.add(name)
        self.all_names.add(full)

    def fields(self, st: S.Layer, ctx: _Ctx) -> dict[str, Any]:
        return OPS[st.kind].fields(st, _Arguments(self, ctx))

    def padding(
        self, arg: S.Arg | None, kernel: tuple[int, int], paper: bool, ctx: _Ctx, span: Span
    ) -> tuple[int, int]:
        if arg is None and not paper:
            return (0, 0)
        if arg is None or arg.value == "same":
            if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
                raise _Problem(
                    "E209",
                    f"`same` padding needs an odd kernel, not {kernel[0]}x{kernel[1]}",
                    arg.span if arg else span,
                    "write the padding as a number",
                )
            return ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
        return self.pair_arg(arg, ctx, "padding", low=0)

    # --- values --------------------------------------------------------------------------------

    def evaluate(self, e: S.Expr, ctx: _Ctx | None) -> Fraction:
        if isinstance(e, S.Num):
            return e.value
        if isinstance(e, S.Paren):
            return self.evaluate(e.inner, ctx)
        if isinstance(e, S.Name):
            env = ctx.env if ctx is not None else {}
            if e.id in env:
                return env[e.id]
            if ctx is not None and ctx.block is not None:
                known = ", ".join(f"`{n}`" for n in env) or "none"
                raise _Problem(
                    "E207",
                    f"`{e.id}` is not a parameter of block `{ctx.block}`",
                    e.span,
                    f"the block's parameters are: {known}",
                )
            raise _Problem(
                "E207",
                f"unexpected word `{e.id}`",
                e.span,
                "outside a block, sizes are numbers; names are block parameters",
            )
        left = self.evaluate(e.left, ctx)
        right = self.evaluate(e.right, ctx)
        if e.op == "+":
            return left + right
        if e.op == "-":
            return left - right
        if e.op == "*":
            value = left * right
            if abs(value) > 10**30:
                raise _Problem("E209", "this arithmetic gives an absurdly large number", e.span)
            return value
        if right == 0:
            raise _Problem(
                "E208", f"division by zero in `{expr_text(e)}`", e.span, "check the arithmetic"
            )
        return left / right if e.op == "/" else Fraction(left // right)

    def int_value(self, e: S.Expr, ctx: _Ctx | None, what: str, low: int = 1) -> int:
        v = self.evaluate(e, ctx)
        if v.denominator != 1:
            raise _Problem(
                "E208",
                f"{what} `{expr_text(e)}` = {v} is not an integer",
                e.span,
                "use `//` for floor division, or change the arithmetic",
            )
        return self.check_size(int(v), what, e.span, low)

    def check_size(self, v: int, what: str, span: Span, low: int = 1) -> int:
        if v < low:
            raise _Problem(
                "E209",
                f"{what} must be at least {low}, got {v}",
                span,
                "sizes, strides and counts are positive integers (padding may be 0)",
            )
        if v > ir.MAX_SIZE:
            shown = str(v) if v < 10**12 else f"{str(v)[0]}e{len(str(v)) - 1}"
            raise _Problem(
                "E209",
                f"{what} of {shown} is absurdly large (more than {ir.MAX_SIZE})",
                span,
                "check for a typo",
            )
        return v

    def int_arg(self, arg: S.Arg, ctx: _Ctx, what: str) -> int:
        if isinstance(arg.value, S.Pair) or isinstance(arg.value, str):
            raise _Problem("E106", f"{what} is one number here", arg.span)
        return self.int_value(arg.value, ctx, what)

    def pair_arg(self, arg: S.Arg, ctx: _Ctx, what: str, low: int = 1) -> tuple[int, int]:
        v = arg.value
        if isinstance(v, S.Pair):
            return (
                self.check_size(v.values[0], what, v.span, low),
                self.check_size(v.values[1], what, v.span, low),
            )
        if isinstance(v, str):
            raise _Problem("E106", f"`{v}` is not a {what}", arg.span)
        n = self.int_value(v, ctx, what, low)
        return (n, n)

    def float_arg(self, arg: S.Arg, ctx: _Ctx | None = None) -> float:
        if isinstance(arg.value, S.Pair | str):
            raise _Problem("E106", "expected a single number", arg.span)
        value = self.evaluate(arg.value, ctx)
        if abs(value) > 10**30:
            raise _Problem("E209", "this number is absurdly large", arg.span)
        return float(value)

    def declared(self, d: S.DeclaredShape) -> ir.DeclaredShape:
        dims = tuple(self.check_size(x, "declared size", d.span) for x in d.dims)
        shape = (dims[2], dims[0], dims[1]) if len(dims) == 3 else dims
        return ir.DeclaredShape(shape=shape, span=d.span)

    def claim(self, c: S.ClaimSyntax) -> ir.Claim:
        value: int | float | None = None
        text = None
        if c.expression is not None:
            v = self.evaluate(c.expression, None)
            value = int(v) if v.denominator == 1 else float(v)
            text = expr_text(c.expression)
        return ir.Claim(kind=c.kind, expression=text, value=value, printed=c.printed, span=c.span)

    # --- residual shortcuts --------------------------------------------------------------------

    def shortcut(self, st: S.Shortcut, ctx: _Ctx, scope: _Scope, start: str) -> str:
        if st.mode is not None:
            eps = 1e-5
            for f in ctx.defaults.get("conv", ()):
                if f.kind == "bn" and "eps" in f.options:
                    eps = self.float_arg(f.options["eps"])
            self.claim_name(scope, "downsample", st.span)
            scope.emitted += 1
            name = scope.prefix + "downsample"
            fields = {"mode": st.mode, "eps": eps}
            self.drafts.append(_Draft("shortcut", name, [start], st.span, list(ctx.frames), fields))
            return name
        self.claim_name(scope, "downsample", st.span)
        out = self.body(st.body, ctx, scope.child("downsample", positional=True), start)
        if out is None or out == start:
            raise _Problem("E211", "the shortcut body has no layers", st.span)
        return out

    # --- block calls ---------------------------------------------------------------------------

    def call_line(self, st: S.CallLine, ctx: _Ctx, scope: _Scope, cur: str) -> str:
        total = sum(c.repeat for c in st.calls)
        for c in st.calls:
            if not 1 <= c.repeat <= MAX_REPEAT:
                raise _Problem(
                    "E209" if c.repeat < 1 else "E216",
                    f"repetition x{c.repeat} is out of range (1 to {MAX_REPEAT})",
                    c.span,
                )
        index = 0
        first_new = len(self.drafts)
        for c in st.calls:
            info = self.blocks.get(c.block)
            if info is None and self.import_failed:
                raise _Quiet
            if info is None:
                known = ", ".join(f"`{b}`" for b in sorted(self.blocks)) or "none"
                raise _Problem(
                    "E202",
                    f"`{c.block}` is neither a layer kind nor a defined block",
                    c.span,
                    f"defined blocks: {known}; layer kinds are CONV, POOL, FC, NORM, BN, "
                    "RELU, DROPOUT, SOFTMAX, …",
                )
            if c.block in ctx.stack:
                chain = " → ".join([*ctx.stack[ctx.stack.index(c.block) :], c.block])
                raise _Problem(
                    "E203",
                    f"block `{c.block}` calls itself: {chain}",
                    c.span,
                    "a block cannot expand into itself; remove the recursive call",
                )
            if len(ctx.stack) >= MAX_DEPTH:
                raise _Problem("E203", "blocks are nested too deeply", c.span)
            env = self.bind(info.definition, c, ctx)
            for _ in range(c.repeat):
                if st.name is not None:
                    inst = st.name if total == 1 else f"{st.name}.{index}"
                    if total > 1 and index == 0:
                        self.claim_name(scope, st.name, st.name_span or st.span)
                    if total == 1:
                        self.claim_name(scope, inst, st.name_span or st.span)
                    else:
                        self.all_names.add(scope.prefix + inst)
                else:
                    scope.counts[c.block] = scope.counts.get(c.block, 0) + 1
                    n = scope.counts[c.block]
                    while f"{c.block}{n}" in scope.names:
                        n += 1
                    inst = f"{c.block}{n}"
                    self.claim_name(scope, inst, c.span)
                index += 1
                inner = _Ctx(
                    env=env,
                    defaults=dict(info.defaults),
                    convention=info.convention,
                    frames=(*ctx.frames, Frame(block=c.block, call=c.span)),
                    stack=(*ctx.stack, c.block),
                    block=c.block,
                )
                sub = scope.child(inst)
                out = self.body(info.definition.body, inner, sub, cur)
                if out is not None:
                    cur = out
        if len(self.drafts) > first_new:
            last = self.drafts[-1]
            if st.declared is not None:
                last.declared = self.declared(st.declared)
            if st.claims:
                last.claims = [self.claim(c) for c in st.claims]
        return cur

    def bind(self, block: S.BlockDef, call: S.Call, ctx: _Ctx) -> dict[str, Fraction]:
        params = block.params
        if len(call.args) > len(params):
            extra = call.args[len(params)]
            raise _Problem(
                "E206",
                f"block `{block.name}` takes {len(params)} argument"
                f"{'s' if len(params) != 1 else ''}, but {len(call.args)} were given",
                extra.span,
                f"its parameters are ({', '.join(p.name for p in params)})",
            )
        env: dict[str, Fraction] = {}
        given: dict[str, Fraction] = {}
        for p, a in zip(params, call.args):
            given[p.name] = self.evaluate(a, ctx)
        names = [p.name for p in params]
        for kw in call.kwargs:
            if kw.name not in names:
                raise _Problem(
                    "E206",
                    f"block `{block.name}` has no parameter `{kw.name}`",
                    kw.span,
                    f"its parameters are ({', '.join(names)})",
                )
            if kw.name in given:
                raise _Problem("E206", f"parameter `{kw.name}` is given twice", kw.span, None)
            given[kw.name] = self.evaluate(kw.value, ctx)
        inner = _Ctx(env=env, defaults={}, convention=False, block=block.name)
        for p in params:
            if p.name in given:
                env[p.name] = given[p.name]
            elif p.default is not None:
                try:
                    env[p.name] = self.evaluate(p.default, inner)
                except _Problem as problem:
                    problem.span = call.span
                    raise
            else:
                raise _Problem(
                    "E206",
                    f"block `{block.name}` needs a value for `{p.name}`",
                    call.span,
                    f"its parameters are ({', '.join(names)})",
                )
        return env

    # --- the graph -----------------------------------------------------------------------------

    def build(self, name: str, init: str, output: str) -> ir.Graph | None:
        self.drop_last_fc_followers()
        renamed = {d.name: d.follower_of for d in self.drafts if d.kind == "removed"}
        nodes: list[ir.Node] = []
        for d in self.drafts:
            if d.kind == "removed":
                continue
            inputs = [renamed.get(i, i) for i in d.inputs]
            cls = OPS[d.kind].model if d.kind in OPS else _STRUCTURAL[d.kind]
            try:
                nodes.append(
                    cls(
                        name=d.name,
                        inputs=inputs,
                        span=d.span,
                        origin=d.origin,
                        declared=d.declared,
                        claims=d.claims,
                        **d.fields,
                    )
                )
            except ValidationError as e:
                msg = e.errors()[0]["msg"].removeprefix("Value error, ")
                span = d.span or Span(file=self.file, line=1, column=1, end_line=1, end_column=1)
                notes = [
                    Note(message=f"in block `{f.block}`, called here", span=f.call)
                    for f in reversed(d.origin)
                ]
                help = "docs/language.md gives each layer's arguments and their ranges"
                self.diags.append(error("E215", msg, span, help, notes=notes))
        if any(d.severity == "error" for d in self.diags):
            return None
        output = renamed.get(output, output)
        try:
            return ir.Graph(name=name, file=self.file, init=init, nodes=nodes, output=output)  # type: ignore[arg-type]
        except ValidationError as e:
            msg = e.errors()[0]["msg"].removeprefix("Value error, ")
            self.diags.append(
                error(
                    "E215",
                    f"the network is not well formed: {msg}",
                    Span(file=self.file, line=1, column=1, end_line=1, end_column=1),
                )
            )
            return None

    def drop_last_fc_followers(self) -> None:
        """`fc: relu` and the lecture convention skip the last FC (its outputs are scores)."""
        last = next((d for d in reversed(self.drafts) if d.kind == "linear"), None)
        if last is None:
            return
        target = last.name
        for d in self.drafts:
            if d.follower_of == last.name:
                d.kind = "removed"
                d.follower_of = target


_STRUCTURAL: dict[str, type[ir.NodeBase]] = {"input": ir.Input, "shortcut": ir.Shortcut}


class _Arguments(Evaluator):
    """The elaborator's evaluation of layer arguments, in one call's context, for the
    registry's ``Op.fields``."""

    def __init__(self, elaborator: Elaborator, ctx: _Ctx) -> None:
        self.e, self.ctx = elaborator, ctx

    def int_arg(self, arg: S.Arg, what: str) -> int:
        return self.e.int_arg(arg, self.ctx, what)

    def pair_arg(self, arg: S.Arg, what: str, low: int = 1) -> ir.Pair:
        return self.e.pair_arg(arg, self.ctx, what, low)

    def float_arg(self, arg: S.Arg) -> float:
        return self.e.float_arg(arg, self.ctx)

    def check_size(self, value: int, what: str, span: Span, low: int = 1) -> int:
        return self.e.check_size(value, what, span, low)

    def padding(self, arg: S.Arg | None, kernel: ir.Pair, paper: bool, span: Span) -> ir.Pair:
        return self.e.padding(arg, kernel, paper, self.ctx, span)

    def missing(self, what: str, span: Span, help: str) -> Exception:
        return _Problem("E213", what, span, help)


def _apply_defaults(
    defaults: dict[str, tuple[S.Follower, ...]], st: S.Defaults
) -> dict[str, tuple[S.Follower, ...]]:
    new = dict(defaults)
    new[st.kind] = tuple(f for f in st.followers if f.kind != "none")
    return new


def elaborate(
    spec: S.Spec, loader: Loader, parse_errors: bool = False
) -> tuple[ir.Graph | None, list[Diagnostic]]:
    """Elaborate a parsed spec; ``loader`` reads imported files (see :data:`Loader`)."""
    e = Elaborator(spec.file, loader, quiet_empty=parse_errors)
    graph = e.run(spec)
    return graph, e.diags
