"""The layer-kind rule of the TextMate grammar, from the op registry, so that a new kind is
highlighted without editing the grammar by hand (tests/test_editors.py checks it is current).
``python tools/regenerate.py`` rewrites it, with everything else the registry determines."""

from __future__ import annotations

import re

from archc.ops import WORDS


def kind_pattern() -> str:
    """Every registry word, longest first, spaces matching any run of blanks."""
    words = sorted(WORDS, key=lambda w: (-len(w), w))
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return rf"(?i)\b(?:{alternatives})\b"
