"""The run directory of ``archc train``: never replaced unless asked, its metrics file never left
torn.

A directory that holds a run (``last.pt`` or ``metrics.jsonl``) is continued with ``--resume``
or replaced with ``--overwrite``; without either the run is refused and left as it was. Each
epoch's metrics line is written with one ``write`` call and, when that fails (a full disk), the
file is cut back to its previous length: no torn line. A torn line written by an older archc or
another program is dropped when the run is resumed, never a crash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


class RunError(Exception):
    """The run directory cannot be used as asked."""


def check(out: Path, resume: bool, overwrite: bool) -> list[str]:
    """Check ``out`` for a new run (``resume`` False) or a resumed one, changing nothing; the
    run files that :func:`start` deletes (``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out `{out}` is a file, not a run directory: name a directory")
    holds = [name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if not (out / "last.pt").exists():
            start = "--overwrite" if holds else "no --resume"
            raise RunError(
                f"--resume: `{out}` holds no checkpoint (last.pt): start the run with {start}"
            )
        return []
    if holds and not overwrite:
        raise RunError(
            f"`{out}` holds a run ({', '.join(holds)}): continue it with --resume, "
            "replace it with --overwrite, or name another --out"
        )
    return holds


def start(out: Path, replaced: list[str]) -> None:
    """Make ``out`` and delete the ``replaced`` run files of an old run (nothing else): done
    once everything else has been checked, so a refused run replaces nothing."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in replaced:
            (out / name).unlink()
    except OSError as e:
        raise RunError(f"cannot use `{out}` as the run directory: {e.strerror or e}") from None


def append(path: Path, row: dict[str, Any]) -> None:
    """Add ``row`` as one line; on a failed write the file is cut back to what it was."""
    data = (json.dumps(row) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    size = os.fstat(fd).st_size
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(28, "No space left on device")
    except OSError as e:
        os.ftruncate(fd, size)
        raise RunError(
            f"cannot write `{path}`: {e.strerror or e}; the run stops here, and resumes from "
            "its last checkpoint with --resume"
        ) from None
    finally:
        os.close(fd)


def rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """``path`` as exactly ``rows`` (a resumed run's, from its checkpoint): the epochs after the
    checkpoint are trained again, and a line torn by a full disk goes."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write `{path}`: {e.strerror or e}") from None
