"""``archc compile``, its arguments and its handler: generate a standalone PyTorch module (.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from archc.commands.common import (
    STDIN,
    add_color,
    add_set_option,
    checked_file,
    exit_code,
    lacks,
    locate,
    print_diagnostics,
    refuse_library,
)

if TYPE_CHECKING:
    from archc.check import Checked


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    comp = sub.add_parser(
        "compile",
        help="generate a standalone PyTorch module (.py)",
        description="Compile a spec to standalone PyTorch source. Imports torch. "
        "Exit 1 with diagnostics on stderr if the spec has errors.",
    )
    comp.add_argument(
        "file",
        metavar="FILE",
        help="a spec file (.arch), a shipped spec's name, or - for stdin (then -o is needed)",
    )
    comp.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default=None,
        help="the file to write, or an existing directory to write FILE's stem + .py in "
        "(default: FILE's stem + .py in the current directory); - writes to stdout. Never the "
        "spec or a file it imports; a FIFO or a device is written to, never replaced",
    )
    comp.add_argument(
        "--fused",
        action="store_true",
        # The activations are the registry's with a kernel_activation (tests/test_review_fixes.py
        # checks), written out so that `archc --help` imports no op registry.
        help="also write fused(model): the inference variant whose conv -> BN -> (+ residual) -> "
        "activation groups are one op each, for ReLU, SiLU, ReLU6, leaky ReLU, hardswish and "
        "hardsigmoid (archc.fuse; the file then needs archc to run it)",
    )
    comp.add_argument(
        "--allow-claims",
        action="store_true",
        help="compile even when claims fail (a declared shape, a memory: or params: number); "
        "other errors still stop it",
    )
    comp.add_argument(
        "--weights",
        metavar="CKPT",
        help="also write trained weights beside the source (OUT's stem + .pt, a plain "
        "state_dict checked against the module): last.pt or best.pt of archc train, or a "
        "state_dict",
    )
    add_set_option(comp)
    add_color(comp)
    return comp


def handle(args: argparse.Namespace) -> int:
    if lacks("compile", "torch"):
        return 2
    from archc.diagnostics import ArchcError
    from archc.progress import stages

    if args.file == STDIN and args.output is None:
        print(
            "archc compile: the spec comes from stdin, so name the output with -o", file=sys.stderr
        )
        return 2
    checked = checked_file(args, "compile")
    if checked is None:
        return 2
    source = "<stdin>" if args.file == STDIN else locate(args.file)
    allowed = args.allow_claims and checked.only_claims_fail
    if not (checked.ok or allowed):
        print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
        if checked.library:
            return refuse_library(args.file, checked.blocks, "compile")
        return exit_code(checked.diagnostics) or 1
    # Warnings, and the failed claims that --allow-claims lets through, are still shown.
    print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
    weights = _read_weights(checked, args)  # a bad checkpoint: no source written either
    if weights == 1:
        return 1
    try:
        # Seconds on a terminal, most of them torch's import: say which part is running.
        with stages("archc compile", ("importing torch", "generating")) as step:
            step("importing torch")
            # The backend imports torch; only this command pays for it.
            import torch  # noqa: F401

            from archc.backends.source import write_source

            step("generating")
            message = write_source(checked, source, args.output, args.fused)
        from archc.files import writes_stdout

        if writes_stdout(args.output):
            print(message, file=sys.stderr)  # stdout holds the source
            return 0
    except OSError as exc:
        from archc.diagnostics import visible

        target = visible(str(exc.filename or args.output))
        print(f"archc compile: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ArchcError as exc:  # a backend's own check (E501) on a graph the front end passed
        print_diagnostics(exc.diagnostics, exc.sources or checked.sources, args.color, sys.stderr)
        return 1
    print(message)
    if isinstance(weights, bytes):
        return _compile_weights(checked, args, weights)
    return 0


def _read_weights(checked: Checked, args: argparse.Namespace) -> bytes | int | None:
    """``--weights``' checked state_dict, None without --weights, 1 after the one line that
    says why the checkpoint does not fit."""
    if args.weights is None:
        return None
    import torch  # noqa: F401

    from archc.training.checkpoint import CheckpointError
    from archc.training.weights import checked_weights

    try:
        return checked_weights(checked, Path(args.weights))
    except CheckpointError as exc:
        print(f"archc compile: {exc}", file=sys.stderr)
        return 1


def _compile_weights(checked: Checked, args: argparse.Namespace, data: bytes) -> int:
    """``archc compile --weights``: the weights beside the source just written."""
    from archc.diagnostics import visible
    from archc.files import output_path
    from archc.training.checkpoint import CheckpointError
    from archc.training.weights import write_beside

    source = output_path(args.output, Path(locate(args.file)).stem)
    try:
        print(write_beside(checked, source, Path(args.weights), [locate(args.file)], data))
    except CheckpointError as exc:
        print(f"archc compile: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        target = visible(str(exc.filename or source.with_suffix(".pt")))
        print(f"archc compile: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
