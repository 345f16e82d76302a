"""``archc specs``, its arguments and its handler: list the shipped specs, families and block
libraries, or the specs of a directory of the user's own (``archc specs DIR``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archc.check import Checked
    from archc.diagnostics import Diagnostic


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    specs = sub.add_parser(
        "specs",
        help="list the shipped specs, families and block libraries (or those of DIR)",
        description="List the specs shipped with archc, one line each (params, MACs); a family "
        "(a spec with `param variant` and `variants` rows) also lists its variants and the "
        "names of its builders. Any command that takes FILE takes these names: archc summary "
        "torchvision/resnet50; a builder's name is the family's spec with --set variant=KEY. "
        "Given DIR, list the .arch files under it instead (hidden directories skipped), named "
        "as a FILE argument takes them from here: archc summary DIR/mynet.arch, and a family's "
        "builders DIR/mynet_large. A file with errors is listed as such (exit 1).",
    )
    specs.add_argument(
        "directory",
        nargs="?",
        metavar="DIR",
        help="a directory of your own specs to list instead of the shipped library",
    )
    specs.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one line each; json: a list of objects (default: text)",
    )
    return specs


def handle(args: argparse.Namespace) -> int:
    """The shipped spec library (or DIR's specs), one line each: name, network, params, MACs;
    a family's variants and builder names below its line."""
    from archc.check import check_file
    from archc.library import SPECS_DIR, shipped_names

    if args.directory is not None:
        return _directory(args.directory, args.format)
    names = shipped_names()
    entries = [
        _entry(name, SPECS_DIR / f"{name}.arch", check_file(SPECS_DIR / f"{name}.arch"))
        for name in names
    ]
    _show(entries, args.format)
    if args.format == "text":
        print(
            f"\n(in {SPECS_DIR}; use a name where a FILE goes: archc summary torchvision/resnet50; "
            "a family's builders too: archc summary torchvision/efficientnet_b3)"
        )
    return 0


def _show(entries: list[dict[str, Any]], format: str) -> None:
    import json

    from archc.diagnostics import visible

    if format == "json":
        print(json.dumps(entries, indent=2))
        return
    width = max(len(visible(e["name"])) for e in entries)
    for entry in entries:
        print(f"{visible(entry['name']).ljust(width)}  {visible(_line(entry))}")
        family = entry.get("family")
        if family:
            keys = ", ".join(v["variant"] for v in family["variants"])
            print(f"{'':{width}}    variants ({family['template']}): {keys}")
            builders = ", ".join(v["name"] for v in family["variants"] if v["name"])
            if builders:
                print(f"{'':{width}}    builders: {builders}")


def _directory(directory: str, format: str) -> int:
    """``archc specs DIR``: the ``.arch`` files under DIR, named as a FILE argument takes them
    from the working directory, with their builders' names; exit 1 when one has errors, 2 when
    DIR is no directory."""
    from archc.check import check_file
    from archc.diagnostics import visible

    if not os.path.isdir(directory):
        why = (
            "a file, not a directory (`archc summary FILE` shows one spec)"
            if os.path.exists(directory)
            else "no such directory"
        )
        print(f"archc specs: `{visible(directory)}`: {why}", file=sys.stderr)
        return 2
    entries = []
    for name, problem in _files_under(directory):
        if problem is not None:
            entries.append(_unread(name, problem))
            continue
        try:
            entries.append(_entry(name, Path(name), check_file(name)))
        except (OSError, UnicodeError) as e:  # a file that vanished or cannot be decoded
            entries.append({"name": name, "kind": "error", "error": {"message": str(e)}})
    if not entries:
        if format == "json":
            print("[]")
        print(f"archc specs: no .arch files under {visible(directory)}", file=sys.stderr)
        return 0
    _show(entries, format)
    if format == "text":
        network = next((e["name"] for e in entries if e["kind"] == "network"), None)
        builder = next((v["name"] for e in entries for v in _variants(e) if v["name"]), None)
        uses = [f"archc summary {n}" for n in (network, builder) if n]
        print(f"\n(in {visible(directory)}" + ("; " + ", ".join(uses) if uses else "") + ")")
    return 1 if any(e["kind"] == "error" for e in entries) else 0


def _variants(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return entry["family"]["variants"] if entry.get("family") else []


def _files_under(directory: str) -> list[tuple[str, Diagnostic | None]]:
    """The ``.arch`` files under ``directory`` (sorted, hidden directories skipped), each as
    the directory's path joined with its own, and what keeps it from being read: a directory
    under it that cannot be listed (E001), a symbolic link that leads out of it or to a file
    that is not a spec (E005)."""
    from archc.diagnostics import error
    from archc.files import link_problem
    from archc.spans import Span

    def at(where: str) -> Span:
        return Span(file=where, line=1, column=1, end_line=1, end_column=1)

    found: list[str] = []
    problems: list[OSError] = []
    for root, dirs, names in os.walk(directory, onerror=problems.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, n) for n in names if n.endswith(".arch")]
    out: list[tuple[str, Diagnostic | None]] = []
    for file in sorted(found):
        name = Path(file).as_posix()
        why = link_problem(file, [Path(directory)]) if os.path.islink(file) else None
        if why is not None:
            out.append((name, error("E005", f"`{name}` is not read: {why}", at(name))))
        elif os.path.isfile(file):
            out.append((name, None))
    for e in problems:
        where = str(e.filename)
        out.append((where, error("E001", f"cannot read `{where}`: {e.strerror or e}", at(where))))
    return out


def _unread(name: str, problem: Diagnostic) -> dict[str, Any]:
    return {"name": name, "kind": "error", "error": _first_error([problem])}


def _first_error(diagnostics: list[Diagnostic]) -> dict[str, Any] | None:
    first = next((d for d in diagnostics if d.severity == "error"), None)
    if first is None:
        return None
    return {
        "code": first.code,
        "line": first.line,
        "column": first.column,
        "message": first.message,
    }


def _entry(name: str, path: Path, checked: Checked) -> dict[str, Any]:
    """One spec as ``--format json`` lists it (``name``: how a FILE argument names it)."""
    from archc.elaborate.values import name_text
    from archc.families import of

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
        entry.update(kind="error", error=_first_error(list(checked.diagnostics)))
    family = of(path, checked.family)
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
        first = entry.get("error") or {}
        where = f" {first['code']} at {first['line']}:{first['column']}" if "code" in first else ""
        if not where and first.get("message"):
            where = f" {first['message']}"
        return f"has errors{where}: run `archc lint {entry['name']}`"
    return (
        f"{entry['network']}: {fmt_count(entry['params'])} params, "
        f"{fmt_count(entry['macs'])} MACs per image"
    )
