"""Progress on a terminal for the few operations that take seconds (compile, export, the
benchmarks): a tqdm bar of named stages on stderr, and nothing at all when stderr is not a
terminal, so logs, pipes and CI output stay exactly as they were."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


@contextmanager
def stages(
    what: str, names: Sequence[str], stream: TextIO | None = None
) -> Iterator[Callable[[str], None]]:
    """Yields ``step(name)``, which says that stage ``name`` has begun. The bar is removed when
    the block ends, so the command's own last line stands alone."""
    # disable=None: tqdm shows the bar only when the stream is a terminal.
    bar = tqdm(
        total=len(names),
        desc=what,
        file=stream or sys.stderr,
        disable=None,
        leave=False,
        bar_format="{desc}, {elapsed}",
    )

    def step(name: str) -> None:
        bar.update()
        bar.set_description_str(f"{what}: {name} ({bar.n}/{len(names)})")

    try:
        yield step
    finally:
        bar.close()


def counted(items: Iterable[T], what: str, total: int | None = None) -> Iterable[T]:
    """``items``, counted on a terminal as they are worked through (a benchmark's cases)."""
    return tqdm(items, desc=what, total=total, file=sys.stderr, disable=None, leave=False)
