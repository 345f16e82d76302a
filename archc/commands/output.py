"""A command's stdout and stderr as `archc.cli.main` wraps them (ASCII fallback, a reader that
goes away)."""

from __future__ import annotations

import io
import os
from typing import TextIO

# What the diagnostics and tables print beyond ASCII, for a stream that cannot encode it
# (PYTHONIOENCODING=ascii, a POSIX locale); anything else becomes a backslash escape.
ASCII = str.maketrans(
    {
        "−": "-",
        "→": "->",
        "·": "*",
        "×": "x",
        "≤": "<=",
        "≥": ">=",
        "≈": "~",
        "…": "...",
        "—": "-",
        "–": "-",
        "²": "^2",
    }
)


class Output(io.TextIOBase):
    """A command's stdout or stderr: falls back to ASCII where the stream cannot encode archc's
    arithmetic signs, and survives a reader that goes away (``archc lint x | head -1``): the
    rest of the output is dropped, and the command still returns its real exit code."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "−→·≤".encode(encoding)
            self.ascii = False
        except (UnicodeEncodeError, LookupError):
            self.ascii = True
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="backslashreplace")

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text.translate(ASCII) if self.ascii else text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def _gone(self) -> None:
        self.broken = True
        # Point the descriptor at devnull, so that the interpreter's final flush of what is
        # still buffered does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
