"""``archc lsp``, its arguments and its handler: run the language server (stdio) for editors."""

from __future__ import annotations

import argparse
import gc
import sys


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    lsp = sub.add_parser(
        "lsp",
        help="run the language server (stdio) for editors",
        description="Run archc's language server on stdin/stdout: lint diagnostics as you "
        "type, hover with shapes and costs, go to a block's definition, completion, outline. "
        "Needs nothing beyond the light install; docs/editors.md shows the editor setup. "
        "Exit 0 after the editor's shutdown and exit, 130 on Ctrl-C.",
    )
    return lsp


def handle(args: argparse.Namespace) -> int:
    from archc.commands.output import Output
    from archc.lsp import serve

    # The server runs until the editor closes it: the collector that main() turns off for a
    # short command is needed again, and the protocol speaks on the real binary streams.
    gc.enable()
    out = sys.stdout.stream if isinstance(sys.stdout, Output) else sys.stdout
    return serve(sys.stdin.buffer, out.buffer)
