"""``archc ir``, its arguments and its handler: print the validated IR graph as JSON."""

from __future__ import annotations

import argparse
import sys

from archc.commands.common import (
    STDIN,
    add_color,
    add_set_option,
    exit_code,
    locate,
    no_such,
    print_diagnostics,
    refuse_library,
    settings,
    stdin_spec,
)


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    ir = sub.add_parser(
        "ir",
        help="print the validated IR graph as JSON",
        description="Print the IR graph the front end builds (blocks expanded, defaults applied) "
        "as JSON. Exit 1 with diagnostics on stderr if the spec has errors.",
    )
    ir.add_argument(
        "file", metavar="FILE", help="a spec file (.arch), a shipped spec's name, or - for stdin"
    )
    add_set_option(ir)
    add_color(ir)
    return ir


def handle(args: argparse.Namespace) -> int:
    from archc.diagnostics import has_errors
    from archc.families import resolve
    from archc.frontend import parse_spec, read_spec
    from archc.library import NoSuchSpec
    from archc.parameters import NAMES

    sets = settings(args.set, "ir")
    if sets is None:
        return 2
    if any(name in NAMES for name in sets):
        print(
            f"archc ir: --set {'/'.join(NAMES)} resize a checked network, and ir prints the "
            "graph before it is checked: use archc summary or compile",
            file=sys.stderr,
        )
        return 2
    if args.file == STDIN:
        text, problem = stdin_spec()
        if problem is not None or text is None:
            print_diagnostics([problem] if problem else [], {}, args.color, sys.stderr)
            return 2
        front = parse_spec(text, "<stdin>", params=sets)
    else:
        missing = no_such(args.file)
        if missing is not None:
            print_diagnostics([missing], {}, args.color, sys.stderr)
            return 2
        try:
            path, params = resolve(locate(args.file), sets)
        except NoSuchSpec as e:
            print(f"archc ir: {e}", file=sys.stderr)
            return 2
        front = read_spec(path or args.file, params=params)
    if front.library:
        print_diagnostics(front.diagnostics, front.sources, args.color, sys.stderr)
        return refuse_library(args.file, front.blocks, "print")
    if front.graph is None or has_errors(front.diagnostics):
        print_diagnostics(front.diagnostics, front.sources, args.color, sys.stderr)
        return exit_code(front.diagnostics) or 1
    print_diagnostics(front.diagnostics, front.sources, args.color, sys.stderr)
    print(front.graph.to_json())
    return 0
