"""Translation between archc and the Language Server Protocol's JSON.

archc's positions are 1-based lines and columns in characters; the protocol's are 0-based, with
columns in UTF-16 code units. Params are validated here: a request whose params are not what
the protocol says gets an InvalidParams error response naming what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from archc.diagnostics import Diagnostic, source_lines
from archc.editor import Completion, SpecView, Symbol
from archc.jsonrpc import INVALID_PARAMS, RequestError
from archc.spans import Span

MAX_DIAGNOSTICS = 200
"""Diagnostics published for one document, as ``archc lint`` caps a file's: past it, the last
one says how many more there are."""

_SEVERITY = {"error": 1, "warning": 2, "info": 3}
_SYMBOL = {
    "input": 13,
    "block": 5,
    "stage": 3,
    "section": 23,
    "call": 19,
    "layer": 8,
    "constant": 14,
}
"""Variable, Class, Namespace, Struct, Object, Field."""
_COMPLETION = {"layer": 7, "keyword": 14, "block": 3}
"""Class, Keyword, Function."""


class Params:
    """A message's params, read with checks."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def _get(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise RequestError(INVALID_PARAMS, f"invalid params: {where}{key} is missing or wrong")
        return value

    def _document(self) -> dict[str, Any]:
        return self._get(self.raw, "textDocument", dict, "")

    def uri(self) -> str:
        return self._get(self._document(), "uri", str, "textDocument.")

    def text_document_text(self) -> str:
        return self._get(self._document(), "text", str, "textDocument.")

    def position(self) -> tuple[int, int]:
        at = self._get(self.raw, "position", dict, "")
        line = self._get(at, "line", int, "position.")
        character = self._get(at, "character", int, "position.")
        if line < 0 or character < 0:
            raise RequestError(INVALID_PARAMS, "invalid params: a negative position")
        return line, character

    def changes(self) -> list[dict[str, Any]]:
        changes = self._get(self.raw, "contentChanges", list, "")
        for change in changes:
            self._get(change, "text", str, "contentChanges[].")
            if "range" in change:
                for end in ("start", "end"):
                    at = self._get(change["range"], end, dict, "contentChanges[].range.")
                    self._get(at, "line", int, f"contentChanges[].range.{end}.")
                    self._get(at, "character", int, f"contentChanges[].range.{end}.")
        return changes


def file_of(uri: str) -> str:
    """The file name archc checks a document as: its path for a ``file:`` URI, so that
    imports resolve beside it and diagnostics of its imports name their own files; ``<uri>``
    for anything else (an unsaved buffer)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return f"<{uri}>"
    path = unquote(parsed.path)
    return path if path else f"<{uri}>"


def uri_of(file: str) -> str:
    if file.startswith("<") and file.endswith(">"):
        return file[1:-1]
    path = Path(file)
    return path.as_uri() if path.is_absolute() else path.resolve().as_uri()


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _offset(text: str, line: int, character: int) -> int:
    """The index in ``text`` of a protocol position (past the end: the end)."""
    start = 0
    for _ in range(line):
        nl = text.find("\n", start)
        if nl < 0:
            return len(text)
        start = nl + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    units = 0
    for i in range(start, end):
        if units >= character:
            return i
        units += _units(text[i])
    return end


def apply_change(text: str, change: dict[str, Any]) -> str:
    """A ``contentChanges`` entry applied: a whole new text, or a range replaced."""
    if "range" not in change:
        return change["text"]
    r = change["range"]
    start = _offset(text, r["start"]["line"], r["start"]["character"])
    end = _offset(text, r["end"]["line"], r["end"]["character"])
    return text[:start] + change["text"] + text[max(start, end) :]


def place(view: SpecView, position: tuple[int, int]) -> tuple[int, int]:
    """A protocol position as archc's line and column."""
    line = position[0] + 1
    text = view.lines[line - 1] if line <= len(view.lines) else ""
    units = 0
    for i, ch in enumerate(text):
        if units >= position[1]:
            return line, i + 1
        units += _units(ch)
    return line, len(text) + 1


def _position(lines: list[str], line: int, column: int) -> dict[str, int]:
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    return {"line": max(line - 1, 0), "character": _units(text[: max(column - 1, 0)])}


class _Lines:
    """Each file's lines, split once per answer (a 10 MB document is not split per range)."""

    def __init__(self, view: SpecView) -> None:
        self.view = view
        self.files: dict[str, list[str]] = {}

    def range(self, span: Span) -> dict[str, Any]:
        lines = self.files.get(span.file)
        if lines is None:
            view = self.view
            text = view.text if span.file == view.file else view.checked.sources.get(span.file, "")
            lines = self.files[span.file] = source_lines(text)
        return {
            "start": _position(lines, span.line, span.column),
            "end": _position(lines, span.end_line, span.end_column),
        }

    def location(self, span: Span) -> dict[str, Any]:
        return {"uri": uri_of(span.file), "range": self.range(span)}


def location(span: Span, view: SpecView) -> dict[str, Any]:
    return _Lines(view).location(span)


def diagnostics_of(view: SpecView) -> list[dict[str, Any]]:
    """The document's diagnostics as the protocol's, at most :data:`MAX_DIAGNOSTICS`."""
    found = view.checked.diagnostics
    lines = _Lines(view)
    shown = found if len(found) <= MAX_DIAGNOSTICS else found[: MAX_DIAGNOSTICS - 1]
    out = [_diagnostic(d, view, lines) for d in shown]
    if len(shown) < len(found):
        more = len(found) - len(shown)
        out.append(
            {
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                "message": f"{more:,} more problems not shown: `archc lint` lists them all",
                "severity": _SEVERITY["info"],
                "source": "archc",
            }
        )
    return out


def _diagnostic(d: Diagnostic, view: SpecView, lines: _Lines) -> dict[str, Any]:
    """``archc lint``'s diagnostic: its code, range and help; block call sites (and, for a
    problem in an imported file, the place itself) as related information."""
    related = [
        {"location": lines.location(n.span), "message": n.message}
        for n in d.notes
        if n.span is not None
    ]
    span = d.span
    if span.file != view.file:
        # The editor shows this file: anchor the problem at the outermost call made here.
        here = [n.span for n in d.notes if n.span is not None and n.span.file == view.file]
        span = (
            here[-1] if here else Span(file=view.file, line=1, column=1, end_line=1, end_column=1)
        )
        related.insert(0, {"location": lines.location(d.span), "message": d.message})
    message = d.message
    message += "".join(f"\nnote: {n.message}" for n in d.notes if n.span is None)
    if d.help:
        message += f"\nhelp: {d.help}"
    out: dict[str, Any] = {
        "range": lines.range(span),
        "message": message,
        "severity": _SEVERITY[d.severity],
        "code": d.code,
        "source": "archc",
    }
    if related:
        out["relatedInformation"] = related
    return out


def completion_list(view: SpecView) -> dict[str, Any]:
    return {"isIncomplete": False, "items": [_item(c) for c in view.completions()]}


def _item(c: Completion) -> dict[str, Any]:
    item: dict[str, Any] = {"label": c.label, "kind": _COMPLETION[c.kind], "detail": c.detail}
    if c.documentation:
        item["documentation"] = {"kind": "plaintext", "value": c.documentation}
    if c.sort:
        item["sortText"] = c.sort + c.label
    return item


def symbols_of(view: SpecView) -> list[dict[str, Any]]:
    lines = _Lines(view)
    return [_symbol(s, lines) for s in view.symbols()]


def _symbol(s: Symbol, lines: _Lines) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": s.name,
        "kind": _SYMBOL[s.kind],
        "range": lines.range(s.span),
        "selectionRange": lines.range(s.selection),
    }
    if s.detail:
        out["detail"] = s.detail
    if s.children:
        out["children"] = [_symbol(c, lines) for c in s.children]
    return out
