"""``archc specs``, its arguments and its handler: list the shipped specs, families and block
libraries."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archc.check import Checked


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    specs = sub.add_parser(
        "specs",
        help="list the shipped specs, families and block libraries",
        description="List the specs shipped with archc, one line each (params, MACs); a family "
        "(a spec with `param variant` and `variants` rows) also lists its variants and the "
        "names of its builders. Any command that takes FILE takes these names: archc summary "
        "torchvision/resnet50; a builder's name is the family's spec with --set variant=KEY.",
    )
    specs.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one line each; json: a list of objects (default: text)",
    )
    return specs


def handle(args: argparse.Namespace) -> int:
    """The shipped spec library, one line each: name, network, params, MACs; a family's
    variants and builder names below its line."""
    import json

    from archc.check import check_file
    from archc.library import SPECS_DIR, shipped_names

    names = shipped_names()
    entries = [_entry(name, check_file(SPECS_DIR / f"{name}.arch")) for name in names]
    if args.format == "json":
        print(json.dumps(entries, indent=2))
        return 0
    width = max(len(n) for n in names)
    for entry in entries:
        print(f"{entry['name'].ljust(width)}  {_line(entry)}")
        family = entry.get("family")
        if family:
            keys = ", ".join(v["variant"] for v in family["variants"])
            print(f"{'':{width}}    variants ({family['template']}): {keys}")
            builders = ", ".join(v["name"] for v in family["variants"] if v["name"])
            if builders:
                print(f"{'':{width}}    builders: {builders}")
    print(
        f"\n(in {SPECS_DIR}; use a name where a FILE goes: archc summary torchvision/resnet50; "
        "a family's builders too: archc summary torchvision/efficientnet_b3)"
    )
    return 0


def _entry(name: str, checked: Checked) -> dict[str, Any]:
    """One spec as ``--format json`` lists it."""
    from archc.elaborate.values import name_text
    from archc.families import of
    from archc.library import SPECS_DIR

    entry: dict[str, Any] = {"name": name}
    acc = checked.accounting
    if checked.library:
        entry.update(kind="library", blocks=list(checked.blocks))
    elif acc is not None and checked.graph is not None:
        entry.update(
            kind="network",
            network=checked.graph.name,
            params=acc.totals.params,
            macs=acc.totals.macs,
        )
    else:
        entry["kind"] = "error"
    family = of(SPECS_DIR / f"{name}.arch", checked.family)
    if family is not None:
        folder = name.rpartition("/")[0]
        default = checked.family.params.get("variant")
        entry["family"] = {
            "template": family.template,
            "default": name_text(default) if default is not None else None,
            "variants": [
                {"variant": key, "name": _builder(folder, family.names, k)}
                for k, key in enumerate(family.variants)
            ],
        }
    return entry


def _builder(folder: str, names: tuple[str, ...], k: int) -> str | None:
    """The k-th builder's spec name (None when the template does not hold ``{variant}``)."""
    if not names:
        return None
    return f"{folder}/{names[k]}" if folder else names[k]


def _line(entry: dict[str, Any]) -> str:
    from archc.numbers import fmt_count

    if entry["kind"] == "library":
        return f"block library: {', '.join(entry['blocks'])}"
    if entry["kind"] == "error":
        return "has errors: run `archc lint` on it"
    return (
        f"{entry['network']}: {fmt_count(entry['params'])} params, "
        f"{fmt_count(entry['macs'])} MACs per image"
    )
