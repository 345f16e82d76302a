"""``archc export``, its arguments and its handler: export the model to ONNX, checked against
onnxruntime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archc.commands.common import (
    STDIN,
    add_color,
    add_set_option,
    lacks,
    positive_int,
    refused,
    settings,
    spec_argument,
)


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    export = sub.add_parser(
        "export",
        help="export the model to ONNX, checked against onnxruntime",
        description="Export the spec's module (eval mode, dynamic batch) to ONNX with "
        "torch.onnx.export(dynamo=True), nodes named after the spec's layers, and check "
        "onnxruntime's output against the module's when onnxruntime is installed (exit 1 if "
        "they differ). Imports torch; needs archc[onnx].",
    )
    export.add_argument(
        "file",
        metavar="FILE",
        help="a spec file (.arch), a shipped spec's name, or - for stdin (then -o is needed)",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default=None,
        help="default: FILE's stem + .onnx; - (or /dev/stdout) writes the file to stdout and "
        "the report to stderr. Never the spec or a file it imports",
    )
    export.add_argument(
        "--opset",
        type=positive_int,
        default=None,
        metavar="N",
        help="ONNX opset (default: torch's, 18); one that torch's exporter cannot convert the "
        "model to (below 17 for most models) is refused, and nothing is written",
    )
    export.add_argument(
        "--weights",
        metavar="CKPT",
        help="export these trained weights: last.pt or best.pt of archc train (their averaged "
        "weights when the recipe keeps them) or a state_dict; onnxruntime is checked against "
        "the module holding them",
    )
    add_set_option(export)
    add_color(export)
    return export


def handle(args: argparse.Namespace) -> int:
    """The spec's module as ONNX, checked against onnxruntime when it is installed."""

    from archc.diagnostics import ArchcError, visible

    if lacks("export", "onnx"):
        return 2
    from archc.export import ExportError, export_onnx, report
    from archc.files import writes_stdout
    from archc.parameters import SettingError
    from archc.training.checkpoint import CheckpointError

    source = spec_argument("export", args.file, args.output, args.color)
    if source is None:
        return 2
    target = Path(args.output) if args.output else Path(Path(source).stem + ".onnx")
    sets = settings(args.set, "export")
    if sets is None:
        return 2
    weights = Path(args.weights) if args.weights else None
    inputs = ([] if args.file == STDIN else [source]) + ([str(weights)] if weights else [])
    try:
        result = export_onnx(source, target, inputs, opset=args.opset, weights=weights, sets=sets)
    except ArchcError as exc:
        return refused(exc, args, "export")
    except ExportError as exc:
        print(f"archc export: {visible(str(exc))}", file=sys.stderr)
        return 2
    except (CheckpointError, SettingError) as exc:
        print(f"archc export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = visible(str(exc.filename or target))
        print(f"archc export: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    text, agreed = report(result)
    # With the file on stdout (-o -, -o /dev/stdout), the report goes to stderr.
    print(text, file=sys.stderr if writes_stdout(target) else sys.stdout)
    return 0 if agreed else 1
