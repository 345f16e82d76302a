"""Rewrite every file derived from the op registry, so that a new layer kind's docs rows, editor
highlighting and kind lists are regenerated, never written by hand:

    python tools/regenerate.py          rewrite them
    python tools/regenerate.py --check  list the ones that are not current (exit 1), write nothing

What it rewrites (tests/test_regenerate.py checks that each checked-in file equals what this
generates):

- docs/language.md: the table of layer kinds and the table of generated-name prefixes
  (``archc.ops.kind_table`` and ``name_table``);
- editors/vscode/syntaxes/arch.tmLanguage.json: the layer-kind rule (editors/update_grammar.py);
- docs/accounting.md: the kinds that add no activation memory (the registry's ``in_place``) and
  those that do, each between ``<!-- regenerate: NAME -->`` and ``<!-- /regenerate -->``.

A kind's tests are not generated: their expected values are written from torch, the papers or
arithmetic (CONTRIBUTING.md names the tables a new kind adds a row to).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _script(path: str) -> ModuleType:
    """One of the repository's scripts (docs/, editors/), imported by its path."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def between(text: str, name: str, body: str) -> str:
    """``text`` with what stands between ``<!-- regenerate: name -->`` and the next
    ``<!-- /regenerate -->`` replaced by ``body``."""
    start = f"<!-- regenerate: {name} -->"
    match = re.search(re.escape(start) + r"(.*?)<!-- /regenerate -->", text, re.S)
    if match is None:
        raise ValueError(f"no `{start}` … `<!-- /regenerate -->` region")
    return text[: match.start(1)] + body + text[match.end(1) :]


def listed(words: list[str]) -> str:
    """``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def replace_table(text: str, table: str) -> str:
    """``text`` with the table that starts with ``table``'s header line replaced by ``table``."""
    start = text.index(table.split("\n", 1)[0])
    end = text.index("\n\n", start)
    return text[:start] + table + text[end:]


def language(text: str) -> str:
    from archc.ops import kind_table, name_table

    return replace_table(replace_table(text, kind_table()), name_table())


def grammar(text: str) -> str:
    rules = json.loads(text)
    rules["repository"]["kind"]["match"] = _script("editors/update_grammar.py").kind_pattern()
    return json.dumps(rules, indent=2, ensure_ascii=False) + "\n"


def accounting(text: str) -> str:
    from archc.ops import OPS

    for name, in_place in (("in-place", True), ("not-in-place", False)):
        kinds = [f"`{kind}`" for kind, op in OPS.items() if op.in_place == in_place]
        text = between(text, name, f"{listed(kinds)} ({len(kinds)} kinds)")
    return text


TARGETS: dict[str, Callable[[str], str]] = {
    "docs/language.md": language,
    "editors/vscode/syntaxes/arch.tmLanguage.json": grammar,
    "docs/accounting.md": accounting,
}
"""Each derived file (relative to the repository) and how its new text follows from its old."""


def regenerated() -> dict[str, tuple[str, str]]:
    """Each target: (its text now, the text the registry gives it)."""
    found = {}
    for path, rewrite in TARGETS.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        found[path] = (text, rewrite(text))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = [path for path, (now, new) in regenerated().items() if now != new]
    if args.check:
        for path in stale:
            print(f"{path} is not current: run python tools/regenerate.py")
        return 1 if stale else 0
    for path, (now, new) in regenerated().items():
        if now != new:
            (ROOT / path).write_text(new, encoding="utf-8")
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
