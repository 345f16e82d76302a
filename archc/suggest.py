""" "Did you mean …?": the closest known word to a misspelt one, by edit distance.

Used by the diagnostics for an unknown layer kind, keyword, flag or block: the candidates are
the registry's words (archc.ops.WORDS, each op's keywords and flags) and the blocks a file can
call. Case is ignored; a swap of two neighbouring letters counts as one edit.
"""

from __future__ import annotations

from collections.abc import Iterable


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    two neighbouring characters, each one edit."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest ``word`` (ignoring case), if it is near enough to be a typo: one
    edit for words up to 4 letters, two up to 8, three beyond. Ties go to the first candidate
    in sorted order, so the answer does not depend on the order of ``candidates``."""
    w = word.lower()
    limit = 1 if len(w) <= 4 else 2 if len(w) <= 8 else 3
    best: tuple[int, str] | None = None
    for c in sorted(set(candidates)):
        if c.lower() == w or abs(len(c) - len(w)) > limit:
            continue  # the length alone rules it out (and a huge word costs nothing)
        d = distance(w, c.lower())
        if d <= limit and (best is None or d < best[0]):
            best = (d, c)
    return best[1] if best is not None else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``": did you mean `tanh`?"`` for the nearest candidate, or ``""`` when none is near."""
    found = closest(word, candidates)
    return f": did you mean `{found}`?" if found is not None else ""
