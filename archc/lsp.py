"""``archc lsp``: the language server, over stdio, with nothing but the standard library.

It publishes ``archc lint``'s diagnostics as the user types (debounced), and answers hovers,
definitions, completions and the outline from archc.editor. Like lint, it never imports torch:
a re-check of a 700-line ResNet-152 takes about 0.1 s (docs/editors.md).

Threads: the main one reads and dispatches messages and never checks a spec; one checker
thread checks documents (the newest text of each) and answers the requests that wait for a
check; a timer per edited document starts its debounced re-check. So a request that needs no
check (another document's hover, ``shutdown``) is answered while a 10 MB document is checked.

The server reads only what the editor gives it: the text of open documents, and the files
those import under the ``.arch`` rule (archc.files). A request naming a document that is not
open answers null; it never opens the URI.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from archc import __version__
from archc.editor import SpecView
from archc.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_NOT_INITIALIZED,
    Reader,
    RequestError,
    Writer,
)
from archc.lsp_convert import (
    Params,
    apply_change,
    completion_list,
    diagnostics_of,
    file_of,
    location,
    place,
    symbols_of,
)

DEBOUNCE_S = 0.25
"""Quiet time after the last keystroke before a document is checked again: typing a word
should cost one check, not one per letter."""


class Document:
    def __init__(self, uri: str, text: str) -> None:
        self.uri = uri
        self.text = text
        self.file = file_of(uri)
        self.view: SpecView | None = None
        self.last_good: SpecView | None = None
        """The last check whose graph stood (see SpecView.last_good)."""
        self.waiting: list[Callable[[SpecView | None], None]] = []
        """What waits for the check of the current text (None: the check failed)."""
        self.timer: threading.Timer | None = None


class Checker:
    """The one thread that checks: for each document with waiting callbacks, its newest text."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.lock = threading.Condition()
        self.docs: dict[str, Document] = {}
        threading.Thread(target=self._run, name="archc-check", daemon=True).start()

    def when_checked(self, uri: str, callback: Callable[[SpecView | None], None]) -> bool:
        """Call ``callback`` with the checked view of the document's current text: now when it
        is checked already, else from the checker thread. False when ``uri`` is not open."""
        with self.lock:
            doc = self.docs.get(uri)
            if doc is None:
                return False
            view = doc.view
            if view is None or view.text != doc.text:
                doc.waiting.append(callback)
                self.lock.notify()
                return True
        callback(view)
        return True

    def _next(self) -> tuple[Document, str]:
        with self.lock:
            while True:
                for doc in self.docs.values():
                    if doc.waiting:
                        return doc, doc.text
                self.lock.wait()

    def _run(self) -> None:
        while True:
            doc, text = self._next()
            start = time.perf_counter()
            try:
                view = SpecView(text, doc.file, doc.last_good)
            except Exception as e:  # never a dead checker: say what failed, answer with None
                self.log(f"archc: checking {doc.uri} failed: {type(e).__name__}: {e}"[:500])
                with self.lock:
                    waiting, doc.waiting = doc.waiting, []
                self.answer(waiting, None)
                continue
            ms = (time.perf_counter() - start) * 1000
            self.log(f"archc: checked {doc.uri} ({len(view.lines)} lines) in {ms:.0f} ms")
            with self.lock:
                doc.view = view
                if view.checked.accounting is not None:
                    doc.last_good = view
                if doc.text != text and self.docs.get(doc.uri) is doc:
                    continue  # edited meanwhile: check the newer text first
                waiting, doc.waiting = doc.waiting, []
            self.answer(waiting, view)

    def answer(
        self, waiting: list[Callable[[SpecView | None], None]], view: SpecView | None
    ) -> None:
        for callback in waiting:
            try:
                callback(view)
            except Exception as e:  # a bug in an answer: logged, and the checker goes on
                self.log(f"archc: answering failed: {type(e).__name__}: {e}"[:500])


class Server:
    def __init__(self, writer: Writer) -> None:
        self.out = writer
        self.checker = Checker(self.log)
        self.initialized = False
        self.shut_down = False
        self.handlers: dict[str, Callable[[Params, Any], Any]] = {
            "initialize": self.initialize,
            "shutdown": self.shutdown,
            "textDocument/hover": self.hover,
            "textDocument/definition": self.definition,
            "textDocument/completion": self.completion,
            "textDocument/documentSymbol": self.document_symbol,
        }
        self.notifications: dict[str, Callable[[Params], None]] = {
            "textDocument/didOpen": self.did_open,
            "textDocument/didChange": self.did_change,
            "textDocument/didSave": self.did_save,
            "textDocument/didClose": self.did_close,
        }

    # --- messages ------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        self.out.send({"method": "window/logMessage", "params": {"type": 4, "message": message}})

    def reply(self, id: Any, result: Any) -> None:
        self.out.send({"id": id, "result": result})

    def error(self, id: Any, code: int, message: str) -> None:
        self.out.send({"id": id, "error": {"code": code, "message": message}})

    def handle(self, body: bytes) -> int | None:
        """Dispatch one message; the exit code once ``exit`` arrives, else None."""
        try:
            message = json.loads(body)
        except (ValueError, RecursionError) as e:
            self.error(None, PARSE_ERROR, f"not JSON: {str(e)[:200]}")
            return None
        if not isinstance(message, dict) or not isinstance(message.get("method", ""), str):
            self.error(None, INVALID_REQUEST, "a message must be a JSON object with a method")
            return None
        method, id = message.get("method"), message.get("id")
        if method is None:
            return None  # a response to something the server never asks
        params = Params(message.get("params"))
        if "id" not in message:
            return self._notification(method, params)
        try:
            self._request(method, params, id)
        except RequestError as e:
            self.error(id, e.code, str(e))
        except Exception as e:  # a bug here: one line to the editor, and the server goes on
            self.error(id, INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e}"[:500])
        return None

    def _notification(self, method: str, params: Params) -> int | None:
        if method == "exit":
            return 0 if self.shut_down else 1
        handler = self.notifications.get(method)
        if handler is None or not self.initialized or self.shut_down:
            return None
        try:
            handler(params)
        except RequestError as e:
            self.log(f"archc: {method}: {e}")
        except Exception as e:
            self.log(f"archc: {method} failed: {type(e).__name__}: {e}"[:500])
        return None

    def _request(self, method: str, params: Params, id: Any) -> None:
        handler = self.handlers.get(method)
        if handler is None:
            raise RequestError(METHOD_NOT_FOUND, f"archc lsp has no method {method[:100]!r}")
        if self.shut_down:
            raise RequestError(INVALID_REQUEST, "the server has been shut down")
        if not self.initialized and method != "initialize":
            raise RequestError(SERVER_NOT_INITIALIZED, "initialize first")
        result = handler(params, id)
        if result is not _LATER:
            self.reply(id, result)

    def with_view(self, params: Params, id: Any, answer: Callable[[SpecView], Any]) -> Any:
        """The answer from the document's checked view: now, or once the checker has it."""
        uri = params.uri()

        def respond(view: SpecView | None) -> None:
            if view is None:
                message = "archc has no check of this document: it was closed, or its check failed"
                self.error(id, INTERNAL_ERROR, message)
                return
            try:
                self.reply(id, answer(view))
            except RequestError as e:
                self.error(id, e.code, str(e))
            except Exception as e:
                self.error(id, INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e}"[:500])

        # A document the editor has not opened answers null: the server never reads it.
        return _LATER if self.checker.when_checked(uri, respond) else None

    # --- lifecycle -----------------------------------------------------------------------------

    def initialize(self, params: Params, id: Any) -> dict[str, Any]:
        self.initialized = True
        return {
            "capabilities": {
                "textDocumentSync": {"openClose": True, "change": 2, "save": {}},
                "hoverProvider": True,
                "definitionProvider": True,
                "completionProvider": {"triggerCharacters": [":", ",", " "]},
                "documentSymbolProvider": True,
            },
            "serverInfo": {"name": "archc", "version": __version__},
        }

    def shutdown(self, params: Params, id: Any) -> None:
        self.shut_down = True
        return None

    # --- documents -----------------------------------------------------------------------------

    def did_open(self, params: Params) -> None:
        uri, text = params.uri(), params.text_document_text()
        with self.checker.lock:
            old = self.checker.docs.get(uri)
            doc = self.checker.docs[uri] = Document(uri, text)
            if old is not None:  # opened again: what waited on the old text waits on this
                if old.timer is not None:
                    old.timer.cancel()
                doc.waiting, doc.last_good = old.waiting, old.last_good
        self.publish(uri)

    def did_change(self, params: Params) -> None:
        uri = params.uri()
        changes = params.changes()
        with self.checker.lock:
            doc = self.checker.docs.get(uri)
            if doc is None:
                return
            text = doc.text
            for change in changes:
                text = apply_change(text, change)
            doc.text = text
            if doc.timer is not None:
                doc.timer.cancel()
            doc.timer = threading.Timer(DEBOUNCE_S, self.publish, (uri,))
            doc.timer.daemon = True
            doc.timer.start()

    def did_save(self, params: Params) -> None:
        # Only a document the editor has open: a save of any other URI reads nothing.
        if params.uri() in self.checker.docs:
            self.publish(params.uri())

    def did_close(self, params: Params) -> None:
        uri = params.uri()
        with self.checker.lock:
            doc = self.checker.docs.pop(uri, None)
            if doc is not None and doc.timer is not None:
                doc.timer.cancel()
            waiting = doc.waiting if doc is not None else []
            if doc is not None:
                doc.waiting = []
        self.checker.answer(waiting, None)  # requests on it get an error response, not silence
        self.out.send(_publish(uri, []))

    def publish(self, uri: str) -> None:
        def send(view: SpecView | None) -> None:
            if view is None:
                return
            with self.checker.lock:
                if self.checker.docs.get(uri) is None:
                    return  # closed meanwhile: its diagnostics were cleared
            self.out.send(_publish(uri, diagnostics_of(view)))

        self.checker.when_checked(uri, send)

    # --- requests ------------------------------------------------------------------------------

    def hover(self, params: Params, id: Any) -> Any:
        position = params.position()

        def answer(view: SpecView) -> Any:
            text = view.hover(*place(view, position))
            return None if text is None else {"contents": {"kind": "markdown", "value": text}}

        return self.with_view(params, id, answer)

    def definition(self, params: Params, id: Any) -> Any:
        position = params.position()

        def answer(view: SpecView) -> Any:
            span = view.definition(*place(view, position))
            return location(span, view) if span is not None else None

        return self.with_view(params, id, answer)

    def completion(self, params: Params, id: Any) -> Any:
        return self.with_view(params, id, completion_list)

    def document_symbol(self, params: Params, id: Any) -> Any:
        return self.with_view(params, id, symbols_of)


_LATER = object()
"""A handler's result when the answer is sent later, from the checker thread."""


def _publish(uri: str, diagnostics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "method": "textDocument/publishDiagnostics",
        "params": {"uri": uri, "diagnostics": diagnostics},
    }


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Serve until ``exit`` (0 after ``shutdown``, else 1) or the end of stdin (the same
    codes). Ctrl-C raises KeyboardInterrupt to the caller (the command exits 130)."""
    server = Server(Writer(stdout))
    reader = Reader(stdin, lambda problem: print(f"archc lsp: {problem}", file=sys.stderr))
    while True:
        body = reader.message()
        if body is None:
            return 0 if server.shut_down else 1
        code = server.handle(body)
        if code is not None:
            return code
