"""``archc lint``, its arguments and its handler: check specs: syntax, shapes, declared shapes and
memory/params claims."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archc.commands.common import (
    add_color,
    add_set_option,
    check_spec,
    exit_code,
    plural,
    print_diagnostics,
    settings,
)

if TYPE_CHECKING:
    from archc.diagnostics import Diagnostic


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    lint = sub.add_parser(
        "lint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="check specs: syntax, shapes, declared shapes and memory/params claims",
        description=(
            "Check one or more spec files: syntax, blocks and names, shape inference, declared\n"
            "shapes ([55x55x96]) and memory:/params: claims at the precision printed.\n"
            "A directory stands for the .arch files under it.\n\n"
            "exit codes: 0 no errors (warnings allowed), 1 an error in any file,\n"
            "            2 a usage error, a file that cannot be read (E001)\n"
            "            or is not text (E002), or a directory without .arch files"
        ),
    )
    lint.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="spec files (.arch), directories of them, shipped specs by name, or - for stdin",
    )
    lint.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text: rustc-style with source lines; json: one list of every diagnostic of every "
        "file; github: workflow annotations (default: text)",
    )
    add_set_option(lint)
    add_color(lint)
    return lint


def handle(args: argparse.Namespace) -> int:
    from archc.diagnostics import render_github, render_json
    from archc.parameters import SettingError

    sets = settings(args.set, "lint")
    files = _spec_files(args.files)
    if files is None or sets is None:
        return 2
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    claims = held = expected = 0
    for path in files:
        if not isinstance(path, str):
            diagnostics.append(path)
            continue
        try:
            checked = check_spec(path, sets=sets)
        except SettingError as e:
            print(f"archc lint: {e}", file=sys.stderr)
            return 2
        diagnostics += checked.diagnostics
        sources.update(checked.sources)
        claims += len(checked.claims)
        held += sum(c.ok for c in checked.claims)
        expected += len(checked.expected)
    if args.format == "json":
        print(render_json(diagnostics))
    elif args.format == "github":
        if diagnostics:
            print(render_github(diagnostics))
    else:
        if diagnostics:
            print_diagnostics(diagnostics, sources, args.color, sys.stdout)
            print()
        errors = sum(d.severity == "error" for d in diagnostics)
        warnings = sum(d.severity == "warning" for d in diagnostics)
        checked_claims = f", {held} of {plural(claims, 'claim')} hold" if claims else ""
        if expected:
            checked_claims += f", {plural(expected, 'expected finding')} made"
        print(
            f"{plural(len(files), 'file')} checked: {plural(errors, 'error')}, "
            f"{plural(warnings, 'warning')}{checked_claims}"
        )
    return exit_code(diagnostics)


def _spec_files(paths: Sequence[str]) -> list[str | Diagnostic] | None:
    """Each path as given, a directory as the ``.arch`` files under it (sorted, hidden
    directories skipped), and an E001 for each directory under it that cannot be listed (which
    ``os.walk`` would skip in silence); None, after a line on stderr, when a directory holds
    neither."""
    from archc.diagnostics import error, visible
    from archc.spans import Span

    def unlistable(e: OSError) -> Diagnostic:
        where = str(e.filename)
        span = Span(file=where, line=1, column=1, end_line=1, end_column=1)
        return error("E001", f"cannot read `{where}`: {e.strerror or e}", span)

    files: list[str | Diagnostic] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found: list[str] = []
        problems: list[OSError] = []
        for root, dirs, names in os.walk(path, onerror=problems.append):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(root, n) for n in names if n.endswith(".arch")]
        if not found and not problems:
            print(f"archc lint: no .arch files under {visible(path)}", file=sys.stderr)
            return None
        files += [_linked(f, path) or f for f in sorted(found)]
        files += [unlistable(e) for e in problems]
    return files


def _linked(file: str, tree: str) -> Diagnostic | None:
    """E005 for a symbolic link met under ``tree`` that leads out of it or to a file that is
    not a ``.arch`` spec: such a file is never opened, so none of its text is printed."""
    from archc.diagnostics import error
    from archc.files import link_problem
    from archc.spans import Span

    if not os.path.islink(file):
        return None
    why = link_problem(file, [Path(tree)])
    if why is None:
        return None
    span = Span(file=file, line=1, column=1, end_line=1, end_column=1)
    return error("E005", f"`{file}` is not read: {why}", span)
