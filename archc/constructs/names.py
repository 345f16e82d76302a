"""The constructs that define names: ``let NAME = EXPR``, ``table NAME(cols):`` + rows, and
``for TARGETS in EXPR:`` + a body, elaborated once per element. What they compute is the
walker's (archc.elaborate.definitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archc import syntax as S
from archc.constructs.base import Construct, Outline

if TYPE_CHECKING:
    from archc.editor import SpecView
    from archc.elaborate.expand import Body, Expander


class Let(Construct):
    node = S.Let
    title = "a constant"
    part = "nothing: it names a value for the lines after it"
    headers = ("let NAME = EXPR",)
    builds = needs_input = False

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower != ["let"]:
            return None
        p.no_body(line)
        name, value = line.items
        return S.Let(name.id, value, line.span, name.span)

    def elaborate(self, walk: Expander, st: S.Let, body: Body) -> None:
        walk.let(st, body)

    def continues(self, st: S.Let, body: Body) -> frozenset[str]:
        return frozenset({"branches", "residual"})

    def outline(self, view: SpecView, st: S.Let) -> Outline | None:
        return Outline(st.name, "constant", "let")


class Table(Construct):
    node = S.Table
    title = "a table of values"
    part = "nothing: it names a list of rows for the lines after it"
    headers = ("table NAME(COLUMNS):",)
    builds = needs_input = False

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower != ["table"]:
            return None
        call = line.items[0]
        columns: list[str] = []
        for seg in p.segments(list(call.items)):
            if len(seg) != 1 or not isinstance(seg[0], S.Name):
                p.err(
                    "E106",
                    "a table's columns are names",
                    seg[0].span,
                    "write e.g. `table stages(expand, kernel, stride, out, n):`",
                )
            elif seg[0].id in columns:
                p.err("E106", f"column `{seg[0].id}` appears twice", seg[0].span)
            else:
                columns.append(seg[0].id)
        rows = []
        if line.body is None:
            p.body(line, "table")  # E104
        for row in line.body or ():
            if row.values is None:  # a `TOTAL` line, read as a claim before anything else
                p.err("E106", "a table row is values separated by commas", row.span)
                continue
            key, key_span, values = row.values
            if key is not None:
                p.err(
                    "E106",
                    "a table row is values only, without a `KEY:`",
                    key_span,
                    "rows with keys belong to `variants(...)`; write the values alone",
                )
            elif len(values) != len(columns):
                p.err(
                    "E106",
                    f"this row has {len(values)} value{'s' if len(values) != 1 else ''}; table "
                    f"`{call.name}` has {len(columns)} columns ({', '.join(columns)})",
                    row.span,
                    "write one value per column, separated by commas",
                )
            else:
                rows.append((values, row.span))
        name_span = call.span
        return S.Table(call.name, tuple(columns), tuple(rows), line.span, name_span)

    def elaborate(self, walk: Expander, st: S.Table, body: Body) -> None:
        walk.table(st, body)

    def continues(self, st: S.Table, body: Body) -> frozenset[str]:
        return frozenset({"branches", "residual"})

    def outline(self, view: SpecView, st: S.Table) -> Outline | None:
        rows = "1 row" if len(st.rows) == 1 else f"{len(st.rows)} rows"
        return Outline(st.name, "constant", f"table ({', '.join(st.columns)}), {rows}")


class For(Construct):
    node = S.For
    title = "a loop"
    part = "nothing itself: the layers of each pass are the enclosing body's own"
    headers = ("for TARGETS in EXPR:",)
    needs_input = False

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        if lower != ["for"]:
            return None
        targets, iterable = line.items
        return S.For(targets, iterable, p.body(line, "for"), line.span)

    def continues(self, st: S.For, body: Body) -> frozenset[str]:
        # Its passes may add branches to those open before it, and join them.
        return frozenset({"branches", "residual"})

    def holds(self, st: S.For, kind: str) -> bool:
        from archc.constructs import construct_of

        return any(construct_of(inner).holds(inner, kind) for inner in st.body)

    def elaborate(self, walk: Expander, st: S.For, body: Body) -> None:
        walk.loop(st, body)

    def outline(self, view: SpecView, st: S.For) -> Outline | None:
        return Outline("for", "section", "", st.body)
