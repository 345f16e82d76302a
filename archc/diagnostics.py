"""Diagnostics: one type for every problem archc reports, and its three renderings.

Text looks like rustc/ruff::

    vgg.arch:3:5: error[E302]: declared shape [54x54x96] does not match inferred [55x55x96]
      |
    3 | [54x54x96] CONV1: 96 11x11 stride 4
      |  ^^^^^^^^
      = help: (227 - 11 + 2*0)/4 + 1 = 55

``json`` is a list of objects; ``github`` is workflow-command annotations.

Code ranges: E0xx files, E1xx syntax, E2xx elaboration (blocks, names, sizes),
E3xx/W3xx shapes and geometry, E4xx claims. docs/diagnostics.md lists them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from archc.spans import Frame, Span

Severity = Literal["error", "warning", "info"]


class Note(BaseModel):
    """A related location, e.g. "in block `bottleneck`, called here"."""

    model_config = ConfigDict(frozen=True)

    message: str
    span: Span | None = None


class Diagnostic(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: str
    message: str
    span: Span
    help: str | None = None
    notes: list[Note] = Field(default_factory=list)

    @property
    def file(self) -> str:
        return self.span.file

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "help": self.help,
            "notes": [
                {"message": n.message, **(_span_dict(n.span) if n.span else {})} for n in self.notes
            ],
        }


def _span_dict(span: Span) -> dict[str, object]:
    return {"file": span.file, "line": span.line, "column": span.column}


def error(code: str, message: str, span: Span, help: str | None = None, **kw: object) -> Diagnostic:
    return Diagnostic(severity="error", code=code, message=message, span=span, help=help, **kw)


def warning(
    code: str, message: str, span: Span, help: str | None = None, **kw: object
) -> Diagnostic:
    return Diagnostic(severity="warning", code=code, message=message, span=span, help=help, **kw)


def block_notes(origin: Sequence[Frame]) -> list[Note]:
    """One note per block call that produced a node, innermost call first."""
    return [
        Note(message=f"in block `{f.block}`, called here", span=f.call) for f in reversed(origin)
    ]


def merge_repeats(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Each problem once: a block called ``x3`` repeats its body's errors three times over,
    identically, and a wall of copies hides the other problems. The first copy stays, with its
    notes, and says how many more there were."""
    first: dict[tuple[str, str, str, Span, str | None], int] = {}
    merged: list[Diagnostic] = []
    repeats: list[int] = []
    for d in diagnostics:
        key = (d.severity, d.code, d.message, d.span, d.help)
        if key in first:
            repeats[first[key]] += 1
            continue
        first[key] = len(merged)
        merged.append(d)
        repeats.append(0)
    for i, n in enumerate(repeats):
        if n:
            d = merged[i]
            what = "call" if d.notes else "time"
            more = Note(message=f"… and {n} more {what}{'s' if n > 1 else ''}")
            merged[i] = d.model_copy(update={"notes": [*d.notes, more]})
    return merged


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    # By number, not letter: at one place the cause comes first (W301 non-exact tiling before
    # the E302 declared-shape mismatch it causes).
    return (d.span.file, d.span.line, d.span.column, d.code[1:])


class ArchcError(Exception):
    """Raised by the Python API when a spec has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic], sources: Mapping[str, str] | None = None):
        self.diagnostics = diagnostics
        self.sources = dict(sources or {})
        super().__init__(render_text(diagnostics, self.sources, color=False))


# --- rendering -------------------------------------------------------------------------------


def _snippet(span: Span, sources: Mapping[str, str]) -> list[str]:
    text = sources.get(span.file)
    if text is None:
        return []
    lines = text.splitlines()
    if not 1 <= span.line <= len(lines):
        return []
    # Tabs would misalign the caret; show them as single spaces.
    src = lines[span.line - 1].replace("\t", " ")
    width = len(str(span.line))
    start = max(span.column - 1, 0)
    end = span.end_column - 1 if span.end_line == span.line else len(src)
    end = max(end, start + 1)
    pad = " " * width
    return [
        f"{pad} |",
        f"{span.line} | {src}",
        f"{pad} | {' ' * start}{'^' * (end - start)}",
    ]


def render_one(d: Diagnostic, sources: Mapping[str, str], color: bool = False) -> str:
    bold, red, yellow, blue, reset = (
        ("\033[1m", "\033[31m", "\033[33m", "\033[34m", "\033[0m") if color else ("",) * 5
    )
    sev_color = {"error": red, "warning": yellow, "info": blue}[d.severity]
    out = [f"{bold}{d.span}: {sev_color}{d.severity}[{d.code}]{reset}{bold}: {d.message}{reset}"]
    out += _snippet(d.span, sources)
    pad = " " * (len(str(d.span.line)) + 1)
    for note in d.notes:
        where = f"{note.span}: " if note.span else ""
        out.append(f"{pad}= note: {where}{note.message}")
        if note.span:
            out += ["  " + line for line in _snippet(note.span, sources)]
    if d.help:
        for i, line in enumerate(d.help.splitlines()):
            out.append(f"{pad}= help: {line}" if i == 0 else f"{pad}        {line}")
    return "\n".join(out)


def render_text(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, str], color: bool = False
) -> str:
    return "\n\n".join(render_one(d, sources, color) for d in diagnostics)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.as_dict() for d in diagnostics], indent=2)


def _github_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    kind = {"error": "error", "warning": "warning", "info": "notice"}
    lines = []
    for d in diagnostics:
        s = d.span
        props = (
            f"file={_github_escape(s.file, True)},line={s.line},col={s.column},"
            f"endLine={s.end_line},endColumn={s.end_column},title={d.code}"
        )
        msg = d.message + (f"\n{d.help}" if d.help else "")
        lines.append(f"::{kind[d.severity]} {props}::{_github_escape(msg)}")
    return "\n".join(lines)
