"""``archc lsp``: the language server, over stdio (pygls).

It publishes ``archc lint``'s diagnostics as the user types (debounced), and answers hovers,
definitions, completions and the outline from archc.editor. Everything here is translation
between archc's positions (1-based lines, columns in characters) and the protocol's (0-based,
columns in UTF-16 code units). Like lint, it never imports torch: a re-check of a 700-line
ResNet-152 takes about 0.1 s (docs/editors.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import BinaryIO

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from archc import __version__
from archc.diagnostics import Diagnostic, source_lines
from archc.editor import Completion, SpecView, Symbol
from archc.spans import Span

DEBOUNCE_S = 0.25
"""Quiet time after the last keystroke before a document is checked again: typing a word
should cost one check, not one per letter."""

_SEVERITY = {
    "error": T.DiagnosticSeverity.Error,
    "warning": T.DiagnosticSeverity.Warning,
    "info": T.DiagnosticSeverity.Information,
}
_SYMBOL = {
    "input": T.SymbolKind.Variable,
    "block": T.SymbolKind.Class,
    "stage": T.SymbolKind.Namespace,
    "section": T.SymbolKind.Struct,
    "call": T.SymbolKind.Object,
    "layer": T.SymbolKind.Field,
}
_COMPLETION = {
    "layer": T.CompletionItemKind.Class,
    "keyword": T.CompletionItemKind.Keyword,
    "block": T.CompletionItemKind.Function,
}


class ArchcServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("archc", __version__, T.TextDocumentSyncKind.Incremental)
        self.views: dict[str, SpecView] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}

    def view(self, uri: str) -> SpecView:
        """The checked current text of a document; checked again only when it changed, so a
        hover right after a keystroke sees the new text without waiting for the debounce."""
        text = self.workspace.get_text_document(uri).source
        view = self.views.get(uri)
        if view is None or view.text != text:
            start = time.perf_counter()
            view = self.views[uri] = SpecView(text, _file(uri))
            ms = (time.perf_counter() - start) * 1000
            lines = len(view.lines)
            self.window_log_message(
                T.LogMessageParams(
                    T.MessageType.Log, f"archc: checked {uri} ({lines} lines) in {ms:.0f} ms"
                )
            )
        return view

    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        view = self.view(uri)
        diagnostics = [_diagnostic(d, view) for d in view.checked.diagnostics]
        self.text_document_publish_diagnostics(
            T.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )

    def schedule(self, uri: str) -> None:
        waiting = self.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        loop = asyncio.get_running_loop()
        self.pending[uri] = loop.call_later(DEBOUNCE_S, self.publish, uri)


server = ArchcServer()


@server.feature(T.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ArchcServer, params: T.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ArchcServer, params: T.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: ArchcServer, params: T.DidSaveTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ArchcServer, params: T.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    waiting = ls.pending.pop(uri, None)
    if waiting is not None:
        waiting.cancel()
    ls.views.pop(uri, None)
    ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(T.TEXT_DOCUMENT_HOVER)
def hover(ls: ArchcServer, params: T.HoverParams) -> T.Hover | None:
    view = ls.view(params.text_document.uri)
    line, column = _place(view, params.position)
    text = view.hover(line, column)
    if text is None:
        return None
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text))


@server.feature(T.TEXT_DOCUMENT_DEFINITION)
def definition(ls: ArchcServer, params: T.DefinitionParams) -> T.Location | None:
    view = ls.view(params.text_document.uri)
    line, column = _place(view, params.position)
    span = view.definition(line, column)
    return _location(span, view) if span is not None else None


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[":", ",", " "]))
def completion(ls: ArchcServer, params: T.CompletionParams) -> T.CompletionList:
    view = ls.view(params.text_document.uri)
    return T.CompletionList(is_incomplete=False, items=[_item(c) for c in view.completions()])


@server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(ls: ArchcServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol]:
    view = ls.view(params.text_document.uri)
    return [_symbol(s, view) for s in view.symbols()]


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    server.start_io(stdin, stdout)


# --- translation ---------------------------------------------------------------------------


def _file(uri: str) -> str:
    """The file name archc checks a document as: its path, so that imports resolve beside
    it and diagnostics of its imports name their own files; ``<uri>`` for an unsaved one."""
    path = to_fs_path(uri)
    return path if path is not None else f"<{uri}>"


def _uri(file: str) -> str:
    return from_fs_path(file) or file


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _place(view: SpecView, position: T.Position) -> tuple[int, int]:
    """A protocol position as archc's line and column."""
    line = position.line + 1
    text = view.lines[line - 1] if line <= len(view.lines) else ""
    units = 0
    for i, ch in enumerate(text):
        if units >= position.character:
            return line, i + 1
        units += _units(ch)
    return line, len(text) + 1


def _position(lines: list[str], line: int, column: int) -> T.Position:
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    return T.Position(line=max(line - 1, 0), character=_units(text[: max(column - 1, 0)]))


def _range(span: Span, view: SpecView) -> T.Range:
    text = view.text if span.file == view.file else view.checked.sources.get(span.file, "")
    lines = source_lines(text)
    return T.Range(
        start=_position(lines, span.line, span.column),
        end=_position(lines, span.end_line, span.end_column),
    )


def _location(span: Span, view: SpecView) -> T.Location:
    unsaved = span.file.startswith("<") and span.file.endswith(">")
    return T.Location(uri=span.file[1:-1] if unsaved else _uri(span.file), range=_range(span, view))


def _diagnostic(d: Diagnostic, view: SpecView) -> T.Diagnostic:
    """``archc lint``'s diagnostic: its code, range and help; block call sites (and, for a
    problem in an imported file, the place itself) as related information."""
    related = [
        T.DiagnosticRelatedInformation(location=_location(n.span, view), message=n.message)
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
        where = T.DiagnosticRelatedInformation(location=_location(d.span, view), message=d.message)
        related.insert(0, where)
    message = d.message
    message += "".join(f"\nnote: {n.message}" for n in d.notes if n.span is None)
    if d.help:
        message += f"\nhelp: {d.help}"
    return T.Diagnostic(
        range=_range(span, view),
        message=message,
        severity=_SEVERITY[d.severity],
        code=d.code,
        source="archc",
        related_information=related or None,
    )


def _item(c: Completion) -> T.CompletionItem:
    doc = (
        T.MarkupContent(kind=T.MarkupKind.PlainText, value=c.documentation)
        if c.documentation
        else None
    )
    return T.CompletionItem(
        label=c.label, kind=_COMPLETION[c.kind], detail=c.detail, documentation=doc
    )


def _symbol(s: Symbol, view: SpecView) -> T.DocumentSymbol:
    return T.DocumentSymbol(
        name=s.name,
        kind=_SYMBOL[s.kind],
        detail=s.detail or None,
        range=_range(s.span, view),
        selection_range=_range(s.selection, view),
        children=[_symbol(c, view) for c in s.children] or None,
    )
