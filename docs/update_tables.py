"""Rewrite docs/language.md's tables of layer kinds and of generated-name prefixes from the op
registry (tests/test_ops.py checks they are current), so a new kind's docs rows are regenerated,
not written:

    python docs/update_tables.py
"""

from __future__ import annotations

from pathlib import Path

from archc.ops import kind_table, name_table

DOC = Path(__file__).resolve().parent / "language.md"


def replace_table(text: str, table: str) -> str:
    """``text`` with the table that starts with ``table``'s header line replaced by ``table``."""
    start = text.index(table.split("\n", 1)[0])
    end = text.index("\n\n", start)
    return text[:start] + table + text[end:]


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    text = replace_table(replace_table(text, kind_table()), name_table())
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
