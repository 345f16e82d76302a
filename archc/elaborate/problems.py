"""The ways a statement's elaboration stops early, as exceptions the statement walker catches."""

from __future__ import annotations

from archc.spans import Span


class Problem(Exception):
    """An error that abandons the current statement; the walker reports it and goes on."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        super().__init__(message)
        self.code, self.message, self.span, self.help = code, message, span, help


class Quiet(Exception):
    """A consequence of an error already reported (a block from a file that failed to parse,
    a layer after an input line that was rejected): abandon the statement, report nothing."""


class Abort(Exception):
    """The expansion is out of control (too many nodes); stop elaborating."""


def unjoined_residual(span: Span) -> Problem:
    return Problem(
        "E211",
        "a `residual:` section must be joined by `add`",
        span,
        "write `add` (or `add, relu`) right after the residual and its shortcut",
    )


def unused_shortcut(span: Span, condition: Span) -> Problem:
    return Problem(
        "E211",
        f"this shortcut is never used: the `if` on line {condition.line} that holds its `add` "
        "does not hold",
        span,
        "put the `shortcut:` in the same `if` as its `add` (its layers would be parameters "
        "that get no gradient)",
    )


def unjoined_branches(span: Span, split: bool = False) -> Problem:
    if split:
        return Problem(
            "E211",
            "a `split` must be followed by its `branch:` sections and `concat`",
            span,
            "write one `branch:` section per part, then `concat`",
        )
    return Problem(
        "E211",
        "branches must be joined by `concat`",
        span,
        "write `concat` right after the last `branch:` section",
    )
