"""``archc specs``, its arguments and its handler: list the shipped specs and block libraries."""

from __future__ import annotations

import argparse


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    specs = sub.add_parser(
        "specs",
        help="list the shipped specs and block libraries",
        description="List the specs shipped with archc, one line each (params, MACs). Any "
        "command that takes FILE takes their names: archc summary torchvision/resnet50.",
    )
    return specs


def handle(args: argparse.Namespace) -> int:
    """The shipped spec library, one line each: name, network, params, MACs."""
    from archc.check import check_file
    from archc.library import SPECS_DIR, shipped_names
    from archc.numbers import fmt_count

    names = shipped_names()
    width = max(len(n) for n in names)
    for name in names:
        checked = check_file(SPECS_DIR / f"{name}.arch")
        acc = checked.accounting
        if checked.library:
            what = f"block library: {', '.join(checked.blocks)}"
        elif acc is not None and checked.graph is not None:
            t = acc.totals
            what = (
                f"{checked.graph.name}: {fmt_count(t.params)} params, "
                f"{fmt_count(t.macs)} MACs per image"
            )
        else:
            what = "has errors: run `archc lint` on it"
        print(f"{name.ljust(width)}  {what}")
    print(f"\n(in {SPECS_DIR}; use a name where a FILE goes: archc summary torchvision/resnet50)")
    return 0
