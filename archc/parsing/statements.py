"""The statement of each line: header lines (through the construct registry,
archc.constructs), ``if`` conditions, ``train:`` settings, block parameters, defaults lines,
the input line and the directives. A line that is none of these is a layer line, which
archc.parsing.binding reads.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token

from archc import constructs
from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.ops import OPS, WORDS, by_word
from archc.parsing.lines import (
    _MAX_DIGITS,
    ACT,
    FUNCTIONS,
    SyntaxProblem,
    _Comma,
    _describe,
    _Group,
    _in_table,
    _is_expr,
    _Kind,
    _KwArg,
    _Line,
    _RawCall,
    _segments,
    _Size,
    _span_of,
    _Str,
    chosen_activation,
)
from archc.parsing.params import is_variants
from archc.spans import Span
from archc.suggest import did_you_mean

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _label_words(label: Token) -> list[str]:
    text = str(label).rstrip().rstrip(":").rstrip()
    return [text] if text.startswith('"') else text.split()


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


class Statements:
    """The statement of each line: header lines (through the construct registry), the input,
    directives; a line that is none of these goes to layer binding."""

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
        if line.stmt is not None:
            return [line.stmt]
        if is_variants(line):
            return [self.variants_line(line)]  # type: ignore[attr-defined]
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
        self.unnamed_stage(line)
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
        if not line.label and words == ["param"] and len(line.items) > 1:
            return [self.param_line(line)]  # type: ignore[attr-defined]
        first = line.items[0] if line.items else None
        if isinstance(first, _KwArg) and first.name.lower() == "let":  # `let = 3`
            words = ["let", ""]
        if label_words and label_words[0].lower() == "table" and len(label_words) == 2:
            words = ["table", ""]  # `table t:`, without its columns
        if words and words[0] in ("let", "table") and (len(line.items) > 1 or len(words) > 1):
            raise SyntaxProblem(
                "E106",
                f"a `{words[0]}` line is "
                + ("`let NAME = VALUE`" if words[0] == "let" else "`table NAME(columns):`"),
                line.span,
                "write e.g. `let width = 64`"
                if words[0] == "let"
                else "write e.g. `table stages(out, n):` and one row of values per line below",
            )
        if line.label:
            return self.labelled(line, label_words)
        return self.layers(line, None, line.items)

    def unnamed_stage(self, line: _Line) -> None:
        """E104 for `stage:` alone: the grammar reads it as a label, which names nothing."""
        words = [w.lower() for w in _label_words(line.label)] if line.label else []
        if words == ["stage"] and not line.items:
            raise SyntaxProblem(
                "E104",
                "a stage needs a name: `stage NAME:`",
                self.label_span(line),
                "its name prefixes its layers' names (`stage features:` makes `features.conv1`); "
                "an unnamed `sequential:` stands only in a sequential body",
            )

    # headers: each read by its construct (archc.constructs) ---------------------------------

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
        return constructs.header(self, line, list(line.header))

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
        if len(items) in (2, 3) and isinstance(items[1], _Str):
            settings = self.import_settings(line)  # type: ignore[attr-defined]
            return S.Import(items[1].value, line.span, settings)
        raise SyntaxProblem(
            "E109", 'write `import "path/to/blocks.arch"`', line.span, "quote the path"
        )


class StatementParts:
    """The parts of statement lines: block names and parameters, shortcut modes, ``if``
    conditions, ``train:`` settings, defaults lines and their followers."""

    segments = staticmethod(_segments)

    def block_name(self, name: str, span: Span) -> None:
        """A block cannot take the name of a layer kind or an arithmetic function: a call of it
        would build the kind (`gelu` is a GELU) or compute the function."""
        what = (
            "an arithmetic function"
            if name in FUNCTIONS
            else "the activation chooser `act(NAME)`"
            if name == ACT
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
        if len(seg) == 1 and isinstance(head, _RawCall) and head.name == ACT:
            # `act(activation)`: the activation a string names, chosen when elaborated.
            return S.Follower(ACT, {"name": S.Arg(chosen_activation(head), head.span)}, head.span)
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
