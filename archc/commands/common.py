"""What the commands share: reading a spec argument (a file, a shipped spec's name or ``-``),
printing diagnostics, exit codes, and the argument types and options of several commands.

Imports of the pipeline happen inside the functions, so that ``archc --help`` is instant and
lint/summary/ir never import torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archc.check import Checked
    from archc.diagnostics import Diagnostic


# A file that cannot be read (E001), is not text (E002) or is too large (E004) is an input
# problem, like usage.
UNREADABLE = frozenset({"E001", "E002", "E004"})


MAX_BATCH = 10**9
"""The largest ``summary --batch``: byte totals stay exact and printable far beyond any real
batch, and a typo of hundreds of digits is a usage error rather than an overflow."""


def use_color(choice: str, stream: object) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


STDIN = "-"
"""The file argument that reads the spec from standard input (shown as ``<stdin>``)."""


def stdin_spec() -> tuple[str | None, Diagnostic | None]:
    """The spec on stdin, decoded as strictly as a file: NUL or invalid UTF-8 is E002, not a
    replaced character. Past the size limit, the text as read (one byte over), so that
    check_source reports a spec too large (E004)."""
    from archc.files import MAX_SPEC_BYTES
    from archc.frontend import decode_spec

    data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        return data.decode("utf-8", errors="replace"), None
    return decode_spec(data, "<stdin>")


def check_spec(
    path: str, batch: int = 1, dtype: str = "fp32", sets: dict[str, str] | None = None
) -> Checked:
    """The checked spec of FILE with its ``--set`` values: spec params read with the spec, then
    ``classes``/``input`` applied. Raises archc.parameters.SettingError for a resizing the
    network cannot take."""
    from archc.check import Checked, check_source
    from archc.parameters import apply, check_with, split

    if path == STDIN:
        text, problem = stdin_spec()
        if problem is not None or text is None:
            return Checked(file="<stdin>", graph=None, diagnostics=[problem] if problem else [])
        resize, params = split(sets or {})
        kind = {"batch": batch, "dtype": dtype}
        checked = check_source(text, "<stdin>", params=params, **kind)  # type: ignore[arg-type]
        return apply(checked, resize, **kind) if checked.ok else checked  # type: ignore[arg-type]
    missing = no_such(path)
    if missing is not None:
        return Checked(file=path, graph=None, diagnostics=[missing])
    return check_with(locate(path), sets or {}, batch=batch, dtype=dtype)  # type: ignore[arg-type]


def checked_file(
    args: argparse.Namespace, command: str, batch: int = 1, dtype: str = "fp32"
) -> Checked | None:
    """:func:`check_spec` of ``args.file`` with ``args.set``; None, after one line on stderr,
    for a ``--set`` that is no setting or that the network cannot take (a usage error)."""
    from archc.parameters import SettingError

    sets = settings(args.set, command)
    if sets is None:
        return None
    try:
        return check_spec(args.file, batch, dtype, sets)
    except SettingError as e:
        print(f"archc {command}: {e}", file=sys.stderr)
        return None


def no_such(path: str) -> Diagnostic | None:
    """E001 for a FILE that is neither a file nor a shipped spec's name (None otherwise)."""
    from archc.diagnostics import error, visible
    from archc.families import member, unparsed_hint
    from archc.library import shipped
    from archc.spans import Span

    if path == STDIN or os.path.lexists(path) or shipped(path) is not None:
        return None
    if member(path) is not None:
        return None
    span = Span(file=path, line=1, column=1, end_line=1, end_column=1)
    return error(
        "E001",
        f"`{visible(path)}`: no such file or shipped spec (`archc specs` lists the shipped ones)"
        + visible(unparsed_hint(path)),
        span,
    )


def spec_argument(command: str, path: str, output: str | None, color: str) -> str | None:
    """What compile, export and train give the API for FILE: spec text read from stdin for
    ``-`` (which needs ``-o``: there is no file name to derive one from), else the file or
    shipped spec. None, after the reason on stderr, when there is nothing to read."""
    if path == STDIN:
        if output is None and command != "train":
            print(
                f"archc {command}: the spec comes from stdin, so name the output with -o",
                file=sys.stderr,
            )
            return None
        text, problem = stdin_spec()
        if problem is not None or text is None:
            print_diagnostics([problem] if problem else [], {}, color, sys.stderr)
            return None
        return text if "\n" in text else text + "\n"  # never read as a spec's name
    missing = no_such(path)
    if missing is not None:
        print_diagnostics([missing], {}, color, sys.stderr)
        return None
    return locate(path)


def locate(path: str) -> str:
    """``path`` when it exists, else the shipped spec of that name (``torchvision/resnet50``),
    else ``path`` itself: a family member's name (``torchvision/efficientnet_b3``), which
    archc.check.check_spec resolves, or a missing file, whose E001 says so."""
    from archc.library import shipped

    if os.path.lexists(path):
        return path
    found = shipped(path)
    return str(found) if found is not None else path


def lacks(command: str, extra: str) -> bool:
    """True, after one line on stderr naming the extra to install, when ``extra``'s modules
    are missing (the light install has no torch): the command then exits 2."""
    from archc.extras import message, missing

    module = missing(extra)
    if module is not None:
        print(message(f"archc {command}", extra, module), file=sys.stderr)
    return module is not None


def exit_code(diagnostics: Sequence[Diagnostic]) -> int:
    if any(d.code in UNREADABLE for d in diagnostics):
        return 2
    return 1 if any(d.severity == "error" for d in diagnostics) else 0


def print_diagnostics(
    diagnostics: Sequence[Diagnostic], sources: dict[str, str], color: str, stream: object
) -> None:
    from archc.diagnostics import render_text

    if diagnostics:
        print(render_text(diagnostics, sources, use_color(color, stream)), file=stream)  # type: ignore[arg-type]


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def refuse_library(path: str, blocks: Sequence[str], nothing_to: str) -> int:
    """A block library given to a command that needs a network: say so on stderr, exit 2 (a
    usage error: the file is fine, it is just not a network)."""
    from archc.diagnostics import visible

    print(
        f"{visible(path)}: a block library ({plural(len(blocks), 'block')}: {', '.join(blocks)}): "
        f"nothing to {nothing_to}; import it from a network spec",
        file=sys.stderr,
    )
    return 2


def refused(exc: Any, args: argparse.Namespace, verb: str) -> int:
    """An ArchcError of the API: its diagnostics (exit 1, or 2 for an unreadable file), or
    for a block library, which has none, the line that says there is no network to ``verb``."""
    print_diagnostics(exc.diagnostics, exc.sources, args.color, sys.stderr)
    if exc.library:
        return refuse_library(args.file, exc.library, verb)
    return exit_code(exc.diagnostics) or 1


def training_errors() -> tuple[type[Exception], ...]:
    """The exceptions of archc.training that are a refusal said in one line."""
    from archc.parameters import SettingError
    from archc.training.checkpoint import CheckpointError
    from archc.training.data import DataError
    from archc.training.rundir import RunError
    from archc.training.setup import TrainingError

    return (DataError, CheckpointError, TrainingError, RunError, SettingError)


def settings(items: list[str] | None, command: str) -> dict[str, str] | None:
    from archc.parameters import SettingError, parse

    try:
        return parse(items or [])
    except SettingError as e:
        print(f"archc {command}: {e}", file=sys.stderr)
        return None


# --- arguments shared by several commands -----------------------------------------------------


def add_color(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour diagnostics: auto = only on a terminal, and not when NO_COLOR is set "
        "(default: auto)",
    )


def add_set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="set a param of the spec (variant=b3: any name its `param` lines declare), or "
        "resize the network: classes=N (the class-score layer's outputs), input=N, HxW or "
        "HxWxC (repeatable)",
    )


def positive_int(text: str) -> int:
    shown = text if len(text) <= 20 else text[:19] + "…"
    # Checked as text first: int() of thousands of digits is slow or refused outright.
    if len(text.strip().lstrip("+-").lstrip("0")) > len(str(MAX_BATCH)):
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BATCH:,}, got {shown!r}")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown!r} is not an integer") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH:,}, got {value}")
    return value


def non_negative_int(text: str) -> int:
    if text.strip() == "0":
        return 0
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_BATCH:,}, got {text[:20]!r}"
        ) from None


def seed(text: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 19 or int(text) >= 2**63:
        shown = text if len(text) <= 24 else text[:23] + "…"
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to 2**63 - 1, got {shown!r}"
        )
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def depth(text: str) -> int | str:
    return "all" if text == "all" else positive_int(text)
