"""``archc summary``, its arguments and its handler: print the lecture table: output shapes,
memory, params, MACs, receptive field."""

from __future__ import annotations

import argparse
import sys

from archc.commands.common import (
    MAX_BATCH,
    add_color,
    add_set_option,
    checked_file,
    exit_code,
    positive_int,
    print_diagnostics,
    refuse_library,
)


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    summary = sub.add_parser(
        "summary",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="print the lecture table: output shapes, memory, params, MACs, receptive field",
        description=(
            "Print one spec's table: per layer the output shape (HxWxC), memory (activation\n"
            "values it adds), params, multiply-accumulates, receptive field and fused group;\n"
            "then totals (params, MACs, activations, forward and training bytes), the fusion\n"
            "plan and the claims checked. docs/accounting.md defines every number.\n\n"
            "Diagnostics go to stderr. A failed claim (E302 declared shape, E4xx numbers)\n"
            "still prints the table, and exits 1; any other error prints nothing to stdout\n"
            "and exits 1."
        ),
    )
    summary.add_argument(
        "file", metavar="FILE", help="a spec file (.arch), a shipped spec's name, or - for stdin"
    )
    summary.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        metavar="N",
        help="roll layers up into the first N parts of their dotted names: 1 = stages, "
        "2 = blocks, as torchinfo's depth (text and markdown; default: every layer)",
    )
    summary.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for a terminal, markdown to paste, json for programs (default: text)",
    )
    summary.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help=f"batch size for the byte totals, 1 to {MAX_BATCH:,} (default: 1)",
    )
    summary.add_argument(
        "--dtype",
        choices=("fp32", "fp16", "bf16"),
        default="fp32",
        help="element type for the byte totals (default: fp32)",
    )
    add_set_option(summary)
    add_color(summary)
    return summary


def handle(args: argparse.Namespace) -> int:
    from archc import report

    checked = checked_file(args, "summary", args.batch, args.dtype)
    if checked is None:
        return 2
    code = exit_code(checked.diagnostics)
    # Errors and warnings go to stderr, so stdout holds only the table (or the JSON object).
    print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
    if checked.library:
        return refuse_library(args.file, checked.blocks, "summarise")
    # A failed claim (a wrong declared shape or number) leaves the network and its accounting
    # standing: the table still prints, so the author sees the true numbers beside the error.
    if checked.accounting is None or (code and not checked.only_claims_fail):
        return code or 1
    if args.format == "json":
        print(report.render_json(checked))
    elif args.format == "markdown":
        print(report.render_markdown(checked, args.depth))
    else:
        print(report.render_text(checked, args.depth))
    return code
