"""JSON-RPC over a byte stream, as the Language Server Protocol frames it (``Content-Length``
headers), with nothing but the standard library.

What a hostile or broken client can send is bounded here: a header block over
:data:`MAX_HEADER` bytes, a header without ``Content-Length``, a length that is not a number or
is over :data:`MAX_BODY` are each dropped with a note, and the reader resynchronises on the next
``Content-Length`` header instead of reading the stream out of step or allocating what a header
asks for.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

MAX_HEADER = 8192
"""Bytes a header block may take before its blank line."""

MAX_BODY = 64 * 2**20
"""The largest message body read: a 10 MB spec (archc's size limit) as JSON, with room for
escaping. A longer ``Content-Length`` is refused without reading it."""

_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*$", re.IGNORECASE)
_MARK = b"content-length"


PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002


class RequestError(Exception):
    """A request answered with an error response: ``code`` and a one-line message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Reader:
    """Message bodies from ``stream``, one at a time; ``problems`` gets a line for each frame
    dropped."""

    def __init__(self, stream: BinaryIO, problems: Callable[[str], None]) -> None:
        self.stream = stream
        self.problems = problems
        self.buf = bytearray()
        self._read = getattr(stream, "read1", stream.read)

    def _fill(self) -> bool:
        chunk = self._read(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def message(self) -> bytes | None:
        """The next body, or None at the end of the stream."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    self.problems(f"dropped a header of over {MAX_HEADER} bytes")
                    del self.buf[: len(self.buf) - len(_MARK)]
                    self._resync()
                elif not self._fill():
                    return None
                continue
            length = _content_length(bytes(self.buf[:end]))
            del self.buf[: end + 4]
            if length is None:
                self.problems("dropped a message whose header has no Content-Length")
                self._resync()
                continue
            if length > MAX_BODY:
                self.problems(f"dropped a message of {length} bytes (at most {MAX_BODY})")
                self._resync()
                continue
            while len(self.buf) < length:
                if not self._fill():
                    return None
            body = bytes(self.buf[:length])
            del self.buf[:length]
            return body

    def _resync(self) -> None:
        """Discard up to the next ``Content-Length`` header (memory stays bounded: only the
        last few bytes of what is discarded are kept, in case a header straddles two reads)."""
        while True:
            at = self.buf.lower().find(_MARK)
            if at >= 0:
                del self.buf[:at]
                return
            del self.buf[: max(len(self.buf) - len(_MARK), 0)]
            if not self._fill():
                return


def _content_length(header: bytes) -> int | None:
    for line in header.split(b"\r\n"):
        m = _LENGTH.match(line.strip())
        if m:
            return int(m.group(1))
    return None


class Writer:
    """Frames and writes messages; safe to call from several threads."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False).encode("utf-8")
        with self.lock:
            try:
                self.stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the editor has gone; the next read ends the server
