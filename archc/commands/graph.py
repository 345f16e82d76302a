"""``archc graph``, its arguments and its handler: draw the network: Mermaid, DOT, SVG or PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archc.commands.common import (
    add_color,
    add_set_option,
    checked_file,
    depth,
    exit_code,
    plural,
    print_diagnostics,
    refuse_library,
)


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    graph = sub.add_parser(
        "graph",
        help="draw the network: Mermaid, DOT, SVG or PNG",
        description="Draw the network as a graph: each layer with its output shape, stages and "
        "blocks as clusters, branches and residuals as edges, fused groups shaded. mermaid "
        "pastes into GitHub markdown; dot, svg and png need pydot (archc[graph]); svg and png "
        "also Graphviz's dot program. A failed claim still draws (exit 1).",
    )
    graph.add_argument(
        "file", metavar="FILE", help="a spec file (.arch), a shipped spec's name, or - for stdin"
    )
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg", "png"),
        default="mermaid",
        help="mermaid (default), dot, or svg/png drawn by Graphviz",
    )
    graph.add_argument(
        "--depth",
        type=depth,
        default=None,
        metavar="N|all",
        help="collapse everything below the first N parts of the names (1: one node per stage); "
        "all: every layer (default: every layer up to 50, else the deepest N that fits in 50 "
        "boxes, said on stderr)",
    )
    graph.add_argument("--costs", action="store_true", help="add params and MACs to each node")
    graph.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default=None,
        help="write here (default: stdout; - is stdout too). A FIFO or a device is written to, "
        "never replaced; the spec and the files it imports are never overwritten",
    )
    add_set_option(graph)
    add_color(graph)
    return graph


def handle(args: argparse.Namespace) -> int:
    """A picture of the network: Mermaid or DOT text, or SVG/PNG drawn by Graphviz."""
    import shutil

    if args.format == "png" and args.output is None:
        print("archc graph: --format png is binary; write it to a file with -o", file=sys.stderr)
        return 2
    if args.format != "mermaid":
        try:
            import pydot  # noqa: F401
        except ImportError:
            print(
                f"archc graph: --format {args.format} needs pydot: pip install 'archc[graph]'",
                file=sys.stderr,
            )
            return 2
    if args.format in ("svg", "png") and shutil.which("dot") is None:
        print(
            f"archc graph: --format {args.format} needs Graphviz's `dot` program, which is not "
            "installed (apt-get install graphviz, brew install graphviz); --format mermaid or "
            "dot need nothing more",
            file=sys.stderr,
        )
        return 2
    from archc.pictures import dot_graph, mermaid, overview_depth, picture

    checked = checked_file(args, "graph")
    if checked is None:
        return 2
    code = exit_code(checked.diagnostics)
    print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
    if checked.library:
        return refuse_library(args.file, checked.blocks, "draw")
    if checked.accounting is None or (code and not checked.only_claims_fail):
        return code or 1
    depth = None if args.depth == "all" else args.depth
    if args.depth is None:
        overview = overview_depth(checked)
        if overview is not None:
            depth, boxes = overview
            layers = len(checked.graph.nodes) if checked.graph is not None else 0
            print(
                f"archc graph: {plural(layers, 'layer')} drawn as {boxes} boxes "
                f"(--depth {depth}); --depth all draws every layer",
                file=sys.stderr,
            )
    pic = picture(checked, depth, args.costs)
    drawing: str | bytes
    if args.format == "mermaid":
        drawing = mermaid(pic)
    elif args.format == "dot":
        drawing = dot_graph(pic).to_string()
    else:
        drawing = dot_graph(pic).create(format=args.format)
    if args.output is None:
        print(drawing if isinstance(drawing, str) else drawing.decode("utf-8"))
        return code

    from archc.diagnostics import visible
    from archc.files import write_output

    try:
        write_output(Path(args.output), drawing, [args.file, *checked.sources])
    except OSError as exc:
        target = visible(str(exc.filename or args.output))
        print(f"archc graph: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return code
