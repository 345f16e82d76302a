"""The front end in one call: spec text or file -> IR graph + diagnostics.

``parse_spec`` and ``read_spec`` run the parser (archc.parser) and the elaborator
(archc.elaborate), collect every diagnostic, and keep the text of every file read (imports too)
so that diagnostics can show their source lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from archc import ir
from archc import syntax as S
from archc.diagnostics import Diagnostic, Note, error, has_errors, sort_key
from archc.elaborate import elaborate
from archc.elaborate.params import Family, family_of
from archc.files import MAX_SPEC_BYTES, SpecFileError, link_problem, read_spec_bytes, too_large
from archc.parser import parse
from archc.spans import Span


@dataclass
class FrontendResult:
    """Exactly one of three outcomes: a ``graph``; a block ``library`` (a file of block
    definitions only, such as specs/blocks/resnet.arch: nothing to build, no error); or error
    ``diagnostics``. Warnings may come with the first two."""

    graph: ir.Graph | None
    """None when there are errors, and for a library."""
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)
    """File name -> text of every file read (imports too), for snippets."""
    library: bool = False
    """True for a file that only defines blocks (and imports): it has no input and no layers."""
    blocks: tuple[str, ...] = ()
    """The names of the blocks the file itself defines, in order (imports' blocks not included)."""
    spec: S.Spec | None = None
    """The syntax tree (None when the text did not parse): the language server's outline,
    definitions and hovers are read off it."""
    library_defaults: list[Diagnostic] = field(default_factory=list)
    """I002 notes: library defaults the spec leaves as they are where they set a training rate
    (shown by the summary, not as diagnostics)."""
    family: Family | None = None
    """What the file says of the family it writes (its name template, ``param``s with their
    defaults, variant keys), read from its own lines; None for a file without ``param`` or
    ``variants`` (archc.elaborate.params.Family)."""


def _start(file: str) -> Span:
    return Span(file=file, line=1, column=1, end_line=1, end_column=1)


def decode_spec(data: bytes, file: str) -> tuple[str | None, Diagnostic | None]:
    """UTF-8 text with an optional BOM; NUL bytes or invalid UTF-8 mean a binary file (E002)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    bad = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = e.start if bad < 0 else min(bad, e.start)
        text = None
    if bad < 0:
        return text, None
    line = data.count(b"\n", 0, bad) + 1
    column = bad - (data.rfind(b"\n", 0, bad) + 1) + 1
    span = Span(file=file, line=line, column=column, end_line=line, end_column=column + 1)
    return None, error(
        "E002",
        f"`{file}` is not UTF-8 text (byte {data[bad]:#04x} at offset {bad})",
        span,
        "spec files are UTF-8 text; is this the right file?",
    )


Parsed = tuple[S.Spec | None, list[Diagnostic], str | None]

# Imported block libraries are shared by many specs (`archc lint specs/*.arch`); each is parsed
# once per process and again only when the file changes. Syntax trees are immutable.
_IMPORTS: dict[tuple[str, int, int], Parsed] = {}


def _file_error(problem: SpecFileError, file: str) -> Diagnostic:
    return error(problem.code, problem.message, _start(file), _FILE_HELP.get(problem.code))


_FILE_HELP = {"E004": "is this the right file? (the limit is archc.files.MAX_SPEC_BYTES)"}


def _first_error_only(diags: list[Diagnostic], file: str) -> list[Diagnostic]:
    """An imported file that does not parse as a spec may be no spec at all (``/etc/passwd``
    renamed, a symlink): report its first bad line, not a snippet of each of its lines."""
    errors = sorted((d for d in diags if d.severity == "error"), key=sort_key)
    if len(errors) <= 1:
        return diags
    more = len(errors) - 1
    note = Note(
        message=f"{more} more syntax error{'s' if more > 1 else ''} in `{file}` not shown: "
        "an imported file that does not parse is quoted at its first bad line only"
    )
    return [errors[0].model_copy(update={"notes": [*errors[0].notes, note]})]


class _Reader:
    """Reads and parses imported files for one front-end run, recording their text."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}

    def read(self, path: Path) -> Parsed:
        file = str(path)
        try:
            stat = path.stat()
        except OSError as e:
            return (
                None,
                [error("E001", f"cannot read `{file}`: {e.strerror or e}", _start(file))],
                None,
            )
        key = (file, stat.st_mtime_ns, stat.st_size)
        cached = _IMPORTS.get(key)
        if cached is None:
            cached = self.parse_file(path)
            if cached[2] is not None:
                _IMPORTS[key] = cached
        if cached[2] is not None:
            self.sources[file] = cached[2]
        return cached[0], list(cached[1]), cached[2]

    @staticmethod
    def parse_file(path: Path) -> Parsed:
        file = str(path)
        try:
            data = read_spec_bytes(path)
        except SpecFileError as problem:
            return None, [_file_error(problem, file)], None
        text, problem = decode_spec(data, file)
        if problem is not None or text is None:
            return None, [problem] if problem else [], None
        spec, diags = parse(text, file)
        return spec, _first_error_only(diags, file), text


def _finish(
    spec: S.Spec | None,
    diags: list[Diagnostic],
    reader: _Reader,
    params: Mapping[str, object] | None = None,
) -> FrontendResult:
    graph = None
    if spec is not None:
        graph, more = elaborate(spec, reader.read, has_errors(diags), params)
        diags = diags + more
    if has_errors(diags):
        graph = None
    diags.sort(key=sort_key)
    blocks = tuple(st.name for st in spec.body if isinstance(st, S.BlockDef)) if spec else ()
    library = graph is None and bool(blocks) and not has_errors(diags)
    noted = [d for d in diags if d.code == "I002"]
    diags = [d for d in diags if d.code != "I002"]
    return FrontendResult(
        graph,
        diags,
        reader.sources,
        library=library,
        blocks=blocks,
        spec=spec,
        library_defaults=noted,
        family=family_of(spec) if spec is not None else None,
    )


def read_family(path: str | Path) -> Family | None:
    """The family a spec file writes (None: none, or the file cannot be read or parsed),
    from its own lines only: nothing is elaborated, so a directory's families are read fast."""
    spec = _Reader().read(Path(path))[0]
    return family_of(spec) if spec is not None else None


def read_syntax(path: Path) -> S.Spec | None:
    """The syntax tree of an imported file, from the same per-process cache as imports (None
    when it cannot be read or parsed)."""
    return _Reader().read(path)[0]


def parse_spec(
    text: str, file: str = "<string>", params: Mapping[str, object] | None = None
) -> FrontendResult:
    """Parse and elaborate spec text. ``file`` names it in diagnostics and in ``Graph.file``;
    ``params`` sets the spec's ``param``s: Python values (int, float, Fraction, str) or
    command-line text, converted by the kind of each parameter's default."""
    reader = _Reader()
    if text.startswith("\ufeff"):
        text = text[1:]
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        problem = SpecFileError("E004", too_large(file, size, MAX_SPEC_BYTES))
        return FrontendResult(None, [_file_error(problem, file)], {})
    reader.sources[file] = text
    spec, diags = parse(text, file)
    return _finish(spec, diags, reader, params)


def read_spec(path: str | Path, params: Mapping[str, object] | None = None) -> FrontendResult:
    """Read, parse and elaborate a spec file (E001 unreadable or not a regular file, E002 not
    text, E004 larger than archc.files.MAX_SPEC_BYTES); ``params`` as for :func:`parse_spec`."""
    reader = _Reader()
    file = str(path)
    linked = link_problem(path) if os.path.islink(path) else None
    if linked is not None:
        # A link named *.arch to some other file (a cloned repository's
        # `net.arch -> ~/.git-credentials`, met by a shell glob): never opened, never quoted.
        return FrontendResult(None, [error("E005", f"`{file}`: {linked}", _start(file))], {})
    try:
        data = read_spec_bytes(path)
    except SpecFileError as problem:
        return FrontendResult(None, [_file_error(problem, file)], {})
    text, problem = decode_spec(data, file)
    if problem is not None or text is None:
        return FrontendResult(None, [problem] if problem else [], {})
    reader.sources[file] = text
    spec, diags = parse(text, file)
    return _finish(spec, diags, reader, params)
