"""Source positions shared by every stage: a span in a file, and the chain of block calls
that produced an expanded node."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A region of one source file. Lines and columns are 1-based; ``end_*`` is exclusive."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Frame(BaseModel):
    """One step of an origin chain: block ``block`` was called at ``call`` (a call site)."""

    model_config = ConfigDict(frozen=True)

    block: str
    call: Span
