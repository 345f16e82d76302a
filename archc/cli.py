"""The ``archc`` command: the top-level parser, `main` and the console script `run`.

Each command (lint, summary, ir, schema, graph, specs, completion, export, lsp, compile, train,
eval) is one module of archc.commands holding its arguments and its handler; `build_parser`
registers those named in `archc.commands.COMMANDS`. Imports happen inside the handlers, so that
``archc --help`` is instant and lint/summary/ir never import torch (docs/usage.md has the
timings). Exit codes: 0 clean or warnings only, 1 errors in a spec, 2 usage errors,
unreadable files, an output compile cannot write, and a block library given to a command
that needs a network (lint checks it: 0); 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from archc.commands import COMMANDS
from archc.commands.output import Output

INTERRUPTED = 130  # the shell's code for a command ended by SIGINT (128 + 2)


def build_parser() -> argparse.ArgumentParser:
    from archc import __version__

    parser = argparse.ArgumentParser(
        prog="archc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A compiler for CNN architecture specs written as lecture and paper tables.",
        epilog=(
            "examples:\n"
            "  archc lint specs/*.arch                 check shapes and claims\n"
            "  archc summary specs/vgg16.arch          the lecture table: memory, params, MACs\n"
            "  archc compile specs/resnet50.arch -o resnet50.py\n\n"
            "exit codes: 0 clean or warnings only, 1 errors, 2 usage errors, unreadable files,\n"
            "            or a block library (no network) given to a command that needs one,\n"
            "            130 stopped by Ctrl-C"
        ),
    )
    parser.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        command = importlib.import_module(f"archc.commands.{name}")
        command.arguments(sub).set_defaults(run=command.handle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Pydantic looks for plugins (observability hooks archc has no use for) by scanning the
    # metadata of every installed distribution when the first model class is built: ~80 ms of
    # each `archc lint` in an environment with torch. Set PYDANTIC_DISABLE_PLUGINS= (empty) to
    # keep them.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # A command is a short run that makes almost no reference cycles (about a dozen objects per
    # spec checked), while the cycle collector would scan the ~10^5 objects that importing
    # pydantic and building the models leave behind, ~30 ms of a ~0.5 s lint. Off for the
    # command; back on afterwards for callers of main() in a longer-lived process.
    collecting = gc.isenabled()
    gc.disable()
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Output(sys.stdout), Output(sys.stderr)
    try:
        parser = build_parser()
        typo = _misspelt_command(parser, list(sys.argv[1:] if argv is None else argv))
        if typo is not None:
            print(typo, file=sys.stderr)
            return 2
        args = parser.parse_args(argv)
        return int(args.run(args))
    except KeyboardInterrupt:
        # Ctrl-C is the user's choice, not a failure to explain: no traceback.
        return INTERRUPTED
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        if collecting:
            gc.enable()


def _misspelt_command(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """`archc sumary`: the nearest command, where argparse would list all twelve."""
    from archc.suggest import did_you_mean

    if not words or words[0].startswith("-"):
        return None
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if words[0] in commands:
        return None
    near = did_you_mean(words[0], sorted(commands))
    return f"archc: unknown command `{words[0]}`{near}" if near else None


def run() -> NoReturn:
    """The ``archc`` program (the console script and ``python -m archc``): `main`, then exit.

    At exit the interpreter runs one last cycle collection over every object still alive: the
    ~10^5 that importing pydantic and lark and building the models leave, ~30 ms of the ~0.2 s
    that `archc lint` takes on ResNet-152 (benchmarks/bench_lint.py). The process is ending and
    the operating system takes its memory back, so those objects are frozen (`gc.freeze`: left
    out of every later collection) instead; objects that their reference counts free are freed
    as before, and atexit handlers and stream flushing run as usual. Only the program does this:
    `main` leaves the collector as it found it for callers in a longer-lived process.
    """
    code = main()
    gc.freeze()
    raise SystemExit(code)
