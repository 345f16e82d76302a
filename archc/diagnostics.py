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

CODES = frozenset(
    """
    E001 E002 E003 E004 E005 W006 E101 E102 E103 E104 E105 E106 E107 E108 E109 E110 E111 E112 E113
    E114 E201 E202 E203 E204 E205 E206 E207 E208 E209 E210 E211 E213 E214 E215 E216 E217 E218 E225
    E221 E222 E223 W219 W220 W221 W224 W301 E302 E303 E304 E305 E306 E307 E308 E309 E310 E311 E312
    E313 E401 E402 E403 E404 E405 E406 E407 E408 E409 E501 E502 I001
    E226 E227 E228 E229
    """.split()
)
"""Every code archc reports, as docs/diagnostics.md lists them (tests/test_malformed.py checks
both agree): a ``# expect`` naming another is E409."""


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


class SpecWarning(UserWarning):
    """A spec's warning (or a failed claim let through), issued by ``archc.load``."""


class ArchcError(Exception):
    """Raised by the Python API when a spec has errors; carries every diagnostic."""

    def __init__(
        self,
        diagnostics: list[Diagnostic],
        sources: Mapping[str, str] | None = None,
        library: Sequence[str] = (),
    ):
        self.diagnostics = diagnostics
        self.sources = dict(sources or {})
        self.library = tuple(library)  # the blocks, when the spec is a library (no network)
        super().__init__(render_text(diagnostics, self.sources, color=False))


# --- rendering -------------------------------------------------------------------------------

MAX_SHOWN = 200
"""Diagnostics shown per run (every file of an ``archc lint`` together); the rest are counted
in one ``I001`` line. A generated or mangled spec can produce thousands, and no one reads past
the first screens of them. (Per file, 20 files of 200 printed 4,000.)"""
MAX_PER_FILE = MAX_SHOWN  # the old name

MAX_QUOTED = 160
"""Characters of a source line a snippet quotes: a window around the span, ``…`` marking what
is cut. A line carrying a 9 MB comment, quoted by each of 200 notes, printed 1.8 GB."""

# Characters a terminal would act on rather than show (ESC starts colour and cursor sequences,
# BEL rings, the bidi controls reorder the line so that the text shown is not the text read),
# and line breaks other than \n. Spec text echoed in a diagnostic shows them as escapes.
_CONTROLS = [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0)]
_CONTROLS += [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROLS += [0x2028, 0x2029]
_VISIBLE = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}


def visible(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``, ``\\u202e``)."""
    return text.translate(_VISIBLE)


def source_lines(text: str) -> list[str]:
    """A file's lines as the parser numbers them: split at \\n, \\r\\n and \\r only. (Python's
    ``splitlines`` also splits at form feed and other separators, which would shift every
    later line against the line numbers in the diagnostics.)"""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


class _Lines:
    """Each file's lines, split once per rendering however many diagnostics it has (splitting
    per diagnostic made 32k diagnostics in a 32k-line file take 46 s)."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources
        self.lines: dict[str, list[str]] = {}

    def get(self, file: str, line: int) -> str | None:
        if file not in self.lines:
            text = self.sources.get(file)
            self.lines[file] = source_lines(text) if text is not None else []
        lines = self.lines[file]
        return lines[line - 1] if 1 <= line <= len(lines) else None


def _snippet(span: Span, lines: _Lines) -> list[str]:
    raw = lines.get(span.file, span.line)
    if raw is None:
        return []
    # Tabs would misalign the caret; show them as single spaces. Escapes widen the line, so
    # the caret is placed by the width of the escaped text before it.
    raw = raw.replace("\t", " ")
    start = min(max(span.column - 1, 0), len(raw))
    end = span.end_column - 1 if span.end_line == span.line else len(raw)
    end = min(max(end, start + 1), max(len(raw), start + 1))
    raw, start, end = _window(raw, start, end)
    src = visible(raw)
    left, right = len(visible(raw[:start])), len(visible(raw[:end]))
    width = len(str(span.line))
    pad = " " * width
    return [
        f"{pad} |",
        f"{span.line} | {src}",
        f"{pad} | {' ' * left}{'^' * max(right - left, 1)}",
    ]


def _window(raw: str, start: int, end: int) -> tuple[str, int, int]:
    """At most MAX_QUOTED characters of ``raw`` around ``start``, and the span's place in them."""
    if len(raw) <= MAX_QUOTED:
        return raw, start, end
    lo = max(0, min(start - MAX_QUOTED // 4, len(raw) - MAX_QUOTED))
    hi = lo + MAX_QUOTED
    head, tail = ("…" if lo else ""), ("…" if hi < len(raw) else "")
    shift = len(head) - lo
    start = start + shift
    end = max(min(end, hi) + shift, start + 1)
    return head + raw[lo:hi] + tail, start, end


def _render(d: Diagnostic, lines: _Lines, color: bool) -> str:
    bold, red, yellow, blue, reset = (
        ("\033[1m", "\033[31m", "\033[33m", "\033[34m", "\033[0m") if color else ("",) * 5
    )
    sev_color = {"error": red, "warning": yellow, "info": blue}[d.severity]
    where, message = visible(str(d.span)), visible(d.message)
    out = [f"{bold}{where}: {sev_color}{d.severity}[{d.code}]{reset}{bold}: {message}{reset}"]
    out += _snippet(d.span, lines)
    pad = " " * (len(str(d.span.line)) + 1)
    for note in d.notes:
        note_where = f"{visible(str(note.span))}: " if note.span else ""
        out.append(f"{pad}= note: {note_where}{visible(note.message)}")
        if note.span:
            out += ["  " + line for line in _snippet(note.span, lines)]
    if d.help:
        for i, line in enumerate(d.help.split("\n")):
            out.append(
                f"{pad}= help: {visible(line)}" if i == 0 else f"{pad}        {visible(line)}"
            )
    return "\n".join(out)


def render_one(d: Diagnostic, sources: Mapping[str, str], color: bool = False) -> str:
    return _render(d, _Lines(sources), color)


def capped(diagnostics: Iterable[Diagnostic], limit: int = MAX_SHOWN) -> list[Diagnostic]:
    """The first ``limit`` diagnostics of the run (all files together), then one ``I001``
    saying how many more there are (by severity), placed where the first of them would have
    been."""
    shown = list(diagnostics)
    if len(shown) <= limit:
        return shown
    return [*shown[:limit], _more(shown[limit:], limit)]


def _more(rest: list[Diagnostic], limit: int) -> Diagnostic:
    counts = {sev: sum(d.severity == sev for d in rest) for sev in ("error", "warning", "info")}
    parts = [f"{n:,} {sev}{'s' if n > 1 else ''}" for sev, n in counts.items() if n]
    return Diagnostic(
        severity="info",
        code="I001",
        message=f"{len(rest):,} more diagnostics are not shown "
        f"({', '.join(parts)}): archc shows the first {limit} of a run",
        span=rest[0].span.model_copy(update={"end_line": rest[0].span.line}),
        help="fix these and run archc again to see the rest",
    )


def render_text(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    color: bool = False,
    limit: int = MAX_SHOWN,
) -> str:
    lines = _Lines(sources)
    return "\n\n".join(_render(d, lines, color) for d in capped(diagnostics, limit))


def render_json(diagnostics: Iterable[Diagnostic], limit: int = MAX_SHOWN) -> str:
    return json.dumps([d.as_dict() for d in capped(diagnostics, limit)], indent=2)


def _github_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return visible(text)


def render_github(diagnostics: Iterable[Diagnostic], limit: int = MAX_SHOWN) -> str:
    kind = {"error": "error", "warning": "warning", "info": "notice"}
    lines = []
    for d in capped(diagnostics, limit):
        s = d.span
        props = (
            f"file={_github_escape(s.file, True)},line={s.line},col={s.column},"
            f"endLine={s.end_line},endColumn={s.end_column},title={d.code}"
        )
        msg = d.message + (f"\n{d.help}" if d.help else "")
        lines.append(f"::{kind[d.severity]} {props}::{_github_escape(msg)}")
    return "\n".join(lines)
