"""Rewrite the layer-kind rule of the TextMate grammar from the op registry, so that a new kind
is highlighted without editing the grammar by hand (tests/test_editors.py checks it is current):

    python editors/update_grammar.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from archc.ops import WORDS

GRAMMAR = Path(__file__).resolve().parent / "vscode" / "syntaxes" / "arch.tmLanguage.json"


def kind_pattern() -> str:
    """Every registry word, longest first, spaces matching any run of blanks."""
    words = sorted(WORDS, key=lambda w: (-len(w), w))
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return rf"(?i)\b(?:{alternatives})\b"


def main() -> None:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    grammar["repository"]["kind"]["match"] = kind_pattern()
    GRAMMAR.write_text(json.dumps(grammar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
