"""Layer binding: a layer line's words bound to its op (archc.ops) and its arguments to the
op's slots, keywords and flags; a line of block calls read as calls. The lecture's, the
table's and the paper's notations all come here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from archc import syntax as S
from archc.ops import LONGEST_WORD, OPS, WORDS, Op, by_word
from archc.parsing.lines import (
    SyntaxProblem,
    _as_value,
    _Comma,
    _describe,
    _Group,
    _is_expr,
    _Kind,
    _KwArg,
    _Line,
    _Range,
    _RawCall,
    _Repeat,
    _segments,
    _Size,
    _span_of,
    _Strided,
    parse_piece,
)
from archc.spans import Span
from archc.suggest import closest, did_you_mean

# --- the vocabulary ----------------------------------------------------------------------------
# Layer kinds, their words, slots, keywords and flags are the op registry's (archc/ops).

FILLER = {"filters", "filter", "at", "neurons", "neuron", "layer", "normalization", "units"}
NO_FLAGS = {"relu", "bn", "bias"}
# `s2`, `p3`, `s2x1`, `g32`, `d2`: stride, padding, groups and dilation as the summary prints them.
_SHORT_OPTION = re.compile(r"([spgd])(\d{1,9})(?:x(\d{1,9}))?")
_SHORT_KEYWORD = {"s": "stride", "p": "pad", "g": "groups", "d": "dilation"}

_INDEXED = re.compile(r"^(.*?)(\d[A-Za-z0-9_]*)$")  # CONV1, CONV1_1, CONV2a
_QUOTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # "block1-0": torchvision's RegNet


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


def _numeric(word: str, span: Span) -> bool:
    """``0:``, ``12:``: a numeric label, which names a layer or a call as an
    ``nn.Sequential`` numbers its children (torchvision's ``features.0``); E110 for
    leading zeros, which no position has."""
    if not word.isdigit():
        return False
    if word != str(int(word)):
        raise SyntaxProblem(
            "E110",
            f"`{word}` is not a valid name: a numeric label has no leading zeros",
            span,
            f"write `{int(word)}:`",
        )
    return True


def _kind_word(kind: str) -> str:
    return OPS[kind].article


def _position(span: Span) -> tuple[int, int]:
    return span.line, span.column


def _help_args(kind: str) -> str:
    return OPS[kind].help


class Binding:
    """A layer line's words bound to layer kinds and block calls."""

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
        if len(words) == 1 and (_numeric(words[0], span) or self.check_ident(words[0], span)):
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
        reached with getattr), for models named so; no kind is read from it. With ``{EXPR}``
        holes (``"block4-{i}"``) it is a template, filled for each instance."""
        if "{" in name or "}" in name:
            template = self.template(f'"{name}"', span)  # type: ignore[attr-defined]
            if not line.items:
                self.err(
                    "E106", f'`"{name}":` names nothing', span, 'write e.g. `"block{i}": b(48) x4`'
                )
                return []
            return self.layers(line, None, line.items, name=name, name_span=span, template=template)
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

    def layers(
        self,
        line: _Line,
        kind: _Kind | None,
        items: list[Any],
        name: str | None = None,
        name_span: Span | None = None,
        template: S.Template | None = None,
    ) -> list[S.Stmt]:
        """The layers (or block calls) of one line: `add, relu` is two layers."""
        declared = self.declared(line)
        claims = tuple(line.claims)
        segs = self.repeat_segments(line, items)
        if kind is None and segs and self.calls_only(segs):
            calls = tuple(self.call(seg) for seg in segs)
            return [S.CallLine(name, calls, line.span, declared, claims, name_span, template)]
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
                    refs=tuple(opts.refs),
                    ref_mode=opts.ref_mode,  # type: ignore[arg-type]
                    template=template if i == 0 else None,
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
        if isinstance(head, _RawCall):
            raise _call_among_layers(head)
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
        return _minus_after_kind(head, self.lead_kind) or SyntaxProblem(
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

    def repeat_segments(self, line: _Line, items: list[Any]) -> list[list[Any]]:
        """The items' segments, each ``x EXPR`` read as a repetition."""
        segs = _segments(items)
        if segs and _repeat_word(segs[-1][-1]) and len(segs[-1]) > 1 and line.remark is not None:
            # `b(4) x (n - 1)` at the end of a line: the grammar reads the parentheses as a
            # remark; they are the count.
            remark = line.remark
            inner = parse_piece(str(remark)[1:-1], line.span.line, self.file, remark.column + 1)
            n, col = line.span.line, remark.column
            at = Span(file=self.file, line=n, column=col, end_line=n, end_column=col + len(remark))
            segs[-1] = [*segs[-1], _Group(tuple(inner), at)]
        return [self.computed_repeat(seg) for seg in segs]

    def computed_repeat(self, seg: list[Any]) -> list[Any]:
        """``ITEM x EXPR``: the `x` and the expression that ends the item as one repetition
        (`bottleneck(out) x depth`, `relu x (n - 1)`); ``xN`` is one token already."""
        if len(seg) >= 3 and isinstance(seg[-2], S.Name) and seg[-2].id in ("x", "X", "×"):
            count = _group_expr(seg[-1]) if isinstance(seg[-1], _Group) else seg[-1]
            if count is not None and _is_expr(count):
                span = self.join(seg[-2].span, seg[-1].span)
                return [*seg[:-2], _Repeat(count, span)]
        return seg

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
            value = _as_value(part[-1]) if len(part) in (1, 2) else None
            if len(part) == 1 and isinstance(part[0], _KwArg):
                kwargs.append(S.KwArgSyntax(part[0].name, part[0].value, part[0].span))
            elif len(part) == 2 and isinstance(part[0], S.Name) and value is not None:
                kwargs.append(
                    S.KwArgSyntax(part[0].id, value, self.join(part[0].span, part[1].span))
                )
            elif len(part) == 1 and value is not None:
                if kwargs:
                    raise SyntaxProblem(
                        "E106",
                        "a positional argument cannot follow a keyword argument",
                        _span_of(part[0]),
                    )
                args.append(value)
            else:
                raise SyntaxProblem(
                    "E106",
                    "a block argument is a value or `name value`",
                    _span_of(part[0]),
                    "write e.g. `bottleneck(128, stride 2)`",
                )
        return S.Call(head.name, tuple(args), tuple(kwargs), repeat, span)


@dataclass
class _Bound:
    """A layer line's arguments as bound so far (:meth:`Arguments.arguments`): the items and
    the place reached in them, the options (``opts``), flags, `xN` and positional values."""

    kind: str
    op: Op
    opts: _Kind
    items: list[Any]
    i: int = 0
    flags: set[str] = field(default_factory=set)
    flag_spans: dict[str, Span] = field(default_factory=dict)
    repeat: int = 1
    positional: list[S.Arg] = field(default_factory=list)

    def next(self) -> Any | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def flag(self, word: str, span: Span) -> None:
        if word in self.flags:
            shown = word.replace("_", " ")
            raise SyntaxProblem("E106", f"`{shown}` is given twice", span, _help_args(self.kind))
        self.flags.add(word)
        self.flag_spans[word] = span


class Arguments:
    """A layer's arguments bound to its op's slots, keywords and flags."""

    def arguments(self, kind: str, items: list[Any], k: _Kind) -> tuple[_Kind, set[str], int]:
        """Bind the items after a kind word to the op's arguments, as its registry entry
        describes them: keywords with a value, flags, `no X`, positional slots, `xN`."""
        b = _Bound(kind, OPS[kind], k, items)
        while b.i < len(items):
            it = items[b.i]
            b.i += 1
            if isinstance(it, S.Name):
                self.word_argument(b, it)
            else:
                self.item_argument(b, it)
        self.positional(kind, b.opts, b.positional)
        for word, key in b.op.exclusive.items():
            if word in b.flags and key in b.opts.options:
                spans = sorted([b.flag_spans[word], b.opts.options[key].span], key=_position)
                raise SyntaxProblem(
                    "E106",
                    f"`{word}` and `{key}` both set the {key}: write one of them",
                    spans[1],
                    _help_args(kind),
                )
        return b.opts, b.flags, b.repeat

    def word_argument(self, b: _Bound, it: S.Name) -> None:
        """A word among a layer's arguments: filler, `no X`, a flag, a keyword and its value,
        a short option (`s2`), or a positional value (a block parameter's name)."""
        op, kind = b.op, b.kind
        w = it.id.lower()
        if w in FILLER and w not in op.keywords:
            return
        if w == "no":
            self.no_flag(b, it)
            return
        if w in op.flags:
            b.flag(w, it.span)
            return
        if w in ("with", "of") and op.references:
            self.references(b, it)
            return
        nxt = b.next()
        if (
            w == "channels"
            and "channels_last" in op.flags
            and isinstance(nxt, S.Name)
            and nxt.id.lower() == "last"
        ):
            b.flag("channels_last", self.join(it.span, nxt.span))  # two words
            b.i += 1
            return
        if w in op.keywords:
            if nxt is None or not (_is_expr(nxt) or isinstance(nxt, _Size)):
                raise SyntaxProblem("E106", f"`{it.id}` needs a value after it", it.span)
            self.set_option(b.opts, op.keywords[w], nxt, kind)
            b.i += 1
            return
        short = self.short_option(op, it)
        if short is not None:
            self.set_option(b.opts, *short, kind)
            return
        b.positional.append(S.Arg(it, it.span))

    def references(self, b: _Bound, it: S.Name) -> None:
        """``with a, b`` / ``of a, b`` after a concat or an add: the names of earlier outputs
        it joins, to the end of the layer (a numeric name, ``0``, too)."""
        b.opts.ref_mode = it.id.lower()
        while (nxt := b.next()) is not None:
            if isinstance(nxt, S.Num) and nxt.text.isdigit():
                nxt = S.Name(nxt.text, nxt.span)
            elif isinstance(nxt, S.Name) and nxt.id.lower() in ("with", "of"):
                raise SyntaxProblem(
                    "E106",
                    f"`{nxt.id}` after `{it.id}`: write the names once, after one of them",
                    nxt.span,
                    _help_args(b.kind),
                )
            elif not isinstance(nxt, S.Name) or nxt.id.lower() in FILLER:
                raise SyntaxProblem(
                    "E106",
                    f"{_describe(nxt)} is no name of an earlier output",
                    nxt.span,
                    f"write the names after `{it.id}`: `{b.opts.kind} {it.id} stem, layer1`",
                )
            b.opts.refs.append(nxt)
            b.i += 1
        if not b.opts.refs:
            raise SyntaxProblem(
                "E106",
                f"`{it.id}` needs the names of earlier outputs after it",
                it.span,
                f"write e.g. `{b.opts.kind} {it.id} stem, layer1`",
            )

    def no_flag(self, b: _Bound, it: S.Name) -> None:
        """`no bias`, `no bn`, `no relu`: on a kind that has what it turns off."""
        kind, nxt = b.kind, b.next()
        if isinstance(nxt, S.Name) and nxt.id.lower() in NO_FLAGS:
            what = nxt.id.lower()
            if what == "bias" and "bias" not in b.op.model.model_fields:
                raise SyntaxProblem(
                    "E106",
                    f"`no bias` is read on a conv or an FC, not on {_kind_word(kind)}",
                    self.join(it.span, nxt.span),
                    "a BN or a layer norm always keeps its shift (β)",
                )
            if what != "bias" and not b.op.followed:
                raise SyntaxProblem(
                    "E106",
                    f"`no {what}` has nothing to turn off on {_kind_word(kind)}: only "
                    "a conv or an FC is followed by default layers",
                    self.join(it.span, nxt.span),
                    "`no relu` and `no bn` stand on the conv or FC line itself: "
                    "`CONV 64 3x3 no relu`",
                )
            b.flag("no_" + what, self.join(it.span, nxt.span))
            b.i += 1
            return
        near = closest(nxt.id, NO_FLAGS) if isinstance(nxt, S.Name) else None
        raise SyntaxProblem(
            "E106",
            "`no` must be followed by `bias`, `bn` or `relu`"
            + (f": did you mean `no {near}`?" if near else ""),
            it.span,
        )

    def item_argument(self, b: _Bound, it: Any) -> None:
        """Any other item among a layer's arguments: `key=value`, a value, a size, `3x3/2`,
        `xN`, a parenthesised value or remark."""
        op, kind = b.op, b.kind
        if isinstance(it, _KwArg):
            w = it.name.lower()
            if w not in op.keywords:
                raise SyntaxProblem(
                    "E106",
                    f"{_kind_word(kind)} has no argument `{it.name}`",
                    it.span,
                    _help_args(kind),
                )
            self.set_option(b.opts, op.keywords[w], it.value, kind)
        elif _is_expr(it):
            b.positional.append(S.Arg(it, it.span))
        elif isinstance(it, _Size):
            if len(it.dims) != 2:
                raise SyntaxProblem(
                    "E106", "a window size is written KxK", it.span, _help_args(kind)
                )
            b.positional.append(S.Arg(S.Pair((it.dims[0], it.dims[1]), it.span), it.span))
        elif isinstance(it, _Strided) and "stride" in op.keywords.values():
            # `3x3/2`: the window, then its stride.
            b.items[b.i : b.i] = [it.size, S.Name("stride", it.stride.span), it.stride]
        elif isinstance(it, _Range) and "range" in op.slots:
            # `slice channels 0:16`: the range's two ends.
            self.set_option(b.opts, "start", it.start, kind)
            self.set_option(b.opts, "stop", it.stop, kind)
        elif isinstance(it, _Repeat):
            if b.i != len(b.items):
                raise SyntaxProblem("E106", "a repetition `xN` ends the item", it.span)
            b.repeat = it.count
        elif isinstance(it, _Group):
            expr = _group_expr(it)
            if expr is not None:
                b.positional.append(S.Arg(expr, it.span))
            # anything else in parentheses is a remark
        elif isinstance(it, _RawCall):
            raise _call_among_layers(it)
        else:
            raise SyntaxProblem(
                "E106",
                f"{_describe(it)} does not belong in {_kind_word(kind)} line",
                it.span,
                _help_args(kind),
            )

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
                    # `FC 10 x 2` reads as the size 10x2: a repetition with a spaced `x` needs
                    # no number before it.
                    again = "; to repeat the layer, write `x2` or `x (2)` (`10 x 2` is a size)"
                    raise SyntaxProblem(
                        "E106",
                        f"unexpected size in {_kind_word(kind)} line",
                        arg.span,
                        _help_args(kind) + (again if slot is None else ""),
                    )
                k.options[slot] = arg
                continue
            free = [s for s in slots if s not in k.options]
            if not free:
                raise _extra_value(kind, op, arg)
            k.options[free[0]] = arg


def _extra_value(kind: str, op: Op, arg: S.Arg) -> SyntaxProblem:
    """E106 for a value past a kind's slots, with the keyword, flag or kind it nearly is."""
    what = _describe(arg.value)
    if not op.slots:  # `bn, rleu`: a misspelt kind after a comma reads as BN's
        msg = f"{_kind_word(kind)} takes no arguments, but got {what}"
    else:
        msg = f"too many values for {_kind_word(kind)}: {what} is extra"
        if _repeat_word(arg.value):  # `CONV 64 3x3 x depth`
            return _repeat_count(arg.span)
    if isinstance(arg.value, S.Name):  # `strid 2`, `depthwize`, `, rellu`
        words = [*op.keywords, *(f.replace("_", " ") for f in op.flags)]
        kinds = [w.lower() for w in WORDS]
        msg += did_you_mean(arg.value.id, words) or did_you_mean(arg.value.id, kinds)
    return SyntaxProblem("E106", msg, arg.span, _help_args(kind))


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


def _minus_after_kind(head: Any, lead_kind: Any) -> SyntaxProblem | None:
    """E105 for ``CONV -k``, read as ``CONV - k`` (a `-` right after a value is a minus): a
    line whose first value is a subtraction from a layer kind."""
    e = head
    while isinstance(e, S.BinOp) and not (e.op == "-" and isinstance(e.left, S.Name)):
        e = e.left
    if not isinstance(e, S.BinOp) or lead_kind([e.left]) is None:
        return None
    word = e.left.id  # type: ignore[union-attr]
    return SyntaxProblem(
        "E105",
        f"`{word} -…`: a `-` right after a word is a minus, so the line has no kind",
        _span_of(head),
        f"put a negative value in parentheses: `{word} (-k) …` (a number may stand as it is: `-1`)",
    )


def _call_among_layers(call: _RawCall) -> SyntaxProblem:
    """E106 for a call (`act(a)`, a block's) on a line with layers: `add, act(a)` reads
    naturally after `add, relu`, but calls and layers stand on lines of their own."""
    return SyntaxProblem(
        "E106",
        f"{_describe(call)} cannot share a line with layers",
        call.span,
        f"put `{call.name}(…)` on a line of its own, below the layers it follows",
    )
