"""The lines that make a network family: ``param NAME = EXPR``, ``variants(COL, …):`` with its
rows, an import's settings (``import "blocks/x.arch" (bn_eps = 0.001)``) and quoted name
templates (``"block4-{i}":``, ``stage "block{s + 1}":``).
"""

from __future__ import annotations

from typing import Any

from archc import syntax as S
from archc.parsing.lines import (
    SyntaxProblem,
    _describe,
    _Group,
    _is_expr,
    _KwArg,
    _Line,
    _RawCall,
    _segments,
    _span_of,
    parse_piece,
    read_template,
)
from archc.spans import Span

RESERVED_PARAMS = ("classes", "input")
"""The names the command line's ``--set`` already gives (archc.parameters): no ``param``."""
PARAM_HELP = 'write e.g. `param variant = "b0"` or `param bn_eps = 1e-5`'


def _value(x: Any) -> bool:
    return _is_expr(x) or isinstance(x, S.Str)


class SpecParams:
    """Reads ``param`` lines, ``variants`` tables, import settings and name templates."""

    file: str

    def param_line(self, line: _Line) -> S.SpecParam:
        items = line.items
        at = line.span
        if line.label or line.colon or line.pre_shape or line.arrow or line.claims:
            raise SyntaxProblem("E106", "a parameter line is `param NAME = VALUE`", at, PARAM_HELP)
        if len(items) == 2 and isinstance(items[1], _KwArg) and _value(items[1].value):
            name, value, name_span = items[1].name, items[1].value, _span_of(items[1])
        elif len(items) == 2 and isinstance(items[1], S.Name):
            raise SyntaxProblem(
                "E106", f"parameter `{items[1].id}` needs a default value", at, PARAM_HELP
            )
        else:
            raise SyntaxProblem("E106", "a parameter line is `param NAME = VALUE`", at, PARAM_HELP)
        name_span = Span(
            file=self.file,
            line=name_span.line,
            column=name_span.column,
            end_line=name_span.line,
            end_column=name_span.column + len(name),
        )
        if name.lower() in RESERVED_PARAMS:
            raise SyntaxProblem(
                "E106",
                f"`{name}` cannot be a parameter: `--set {name}=…` already sets the network's "
                + ("class count" if name.lower() == "classes" else "input size"),
                name_span,
                "use another name, e.g. `num_classes`",
            )
        return S.SpecParam(name, value, line.span, name_span)

    def variants_line(self, line: _Line) -> S.Variants:
        call = line.items[0]
        assert isinstance(call, _RawCall)
        columns: list[str] = []
        for seg in _segments(list(call.items)):
            if len(seg) != 1 or not isinstance(seg[0], S.Name):
                raise SyntaxProblem(
                    "E106",
                    f"{_describe(seg[0])} is not a column name",
                    _span_of(seg[0]),
                    "write e.g. `variants(depth, width):`, one name per column",
                )
            if seg[0].id in columns:
                raise SyntaxProblem("E106", f"column `{seg[0].id}` appears twice", seg[0].span)
            columns.append(seg[0].id)
        if not columns:
            raise SyntaxProblem("E106", "`variants` needs its columns", call.span)
        rows: list[S.VariantRow] = []
        for row in line.body or []:
            if row.variant_row is None:
                continue
            key, key_span, items = row.variant_row
            values = _segments(items)
            for seg in values:
                if len(seg) != 1 or not _value(seg[0]):
                    raise SyntaxProblem(
                        "E106",
                        f"{_describe(seg[-1])} is not one value",
                        _span_of(seg[-1]),
                        "a row holds one value per column, separated by commas",
                    )
            if len(values) != len(columns):
                raise SyntaxProblem(
                    "E106",
                    f"row `{key}` has {len(values)} value{'s' if len(values) != 1 else ''}, "
                    f"the table {len(columns)} column{'s' if len(columns) != 1 else ''} "
                    f"({', '.join(columns)})",
                    row.span,
                )
            if any(r.key == key for r in rows):
                raise SyntaxProblem("E106", f"variant `{key}` appears twice", key_span)
            rows.append(S.VariantRow(key, tuple(seg[0] for seg in values), row.span, key_span))
        if not rows:
            raise SyntaxProblem(
                "E104",
                "`variants` needs its rows, indented below it",
                line.span,
                "write e.g. `b0: 1.0, 224`",
            )
        return S.Variants(tuple(columns), tuple(rows), line.span)

    def import_settings(self, line: _Line) -> tuple[S.KwArgSyntax, ...]:
        """The settings after an import's path: a group, or a remark (the grammar reads
        parentheses at the end of a line so)."""
        items: list[Any] = []
        if len(line.items) == 3 and isinstance(line.items[2], _Group):
            items = list(line.items[2].items)
        elif line.remark is not None:
            text = str(line.remark)
            items = parse_piece(text[1:-1], line.span.line, self.file, line.remark.column + 1)
        settings: list[S.KwArgSyntax] = []
        for seg in _segments(items):
            if len(seg) == 1 and isinstance(seg[0], _KwArg) and _value(seg[0].value):
                settings.append(S.KwArgSyntax(seg[0].name, seg[0].value, seg[0].span))
            else:
                raise SyntaxProblem(
                    "E109",
                    "an import's settings are `NAME = VALUE`",
                    _span_of(seg[0]),
                    'write e.g. `import "blocks/efficientnet.arch" (bn_eps = 0.001)`',
                )
        names = [s.name for s in settings]
        for s in settings:
            if names.count(s.name) > 1:
                raise SyntaxProblem("E109", f"`{s.name}` is set twice", s.span)
        return tuple(settings)

    def template(self, quoted: str, span: Span) -> S.Template:
        """A quoted name with ``{EXPR}`` holes; ``span`` is the quoted text's."""
        return read_template(quoted[1:-1], span.line, self.file, span.column + 1)


def is_variants(line: _Line) -> bool:
    items = line.items
    return (
        line.colon
        and line.label is None
        and len(items) == 1
        and isinstance(items[0], _RawCall)
        and items[0].name == "variants"
    )


__all__ = ["RESERVED_PARAMS", "SpecParams", "is_variants"]
