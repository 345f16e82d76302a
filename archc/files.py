"""Reading spec files and writing outputs, safely against hostile paths.

A spec is read only when it is a regular file of at most ``MAX_SPEC_BYTES``: a FIFO would block
the read forever, ``/dev/zero`` or a huge sparse file would fill memory before the decoder saw
a byte. The check is made on the opened descriptor (``fstat``), so a path swapped between a
check and the read cannot slip through, and the read itself stops one byte past the limit.

An output is written to a temporary file beside it and renamed over the target, so an
interrupted compile leaves the old file or the new one, never half of one; and it is never
written over one of the inputs it was made from (``archc compile self.arch -o self.arch``).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

MAX_SPEC_BYTES = 10 * 1024 * 1024
"""Spec files (and spec text given to the API) larger than this are refused (E004). The
largest shipped spec is under 4 KB; 10 MB leaves room for generated specs."""


class SpecFileError(Exception):
    """A spec path that cannot be read as a spec: ``code`` is E001 (unreadable, not a regular
    file) or E004 (too large)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def describe_kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def fmt_size(n: int) -> str:
    """``10485760`` -> ``10 MB (10,485,760 bytes)``."""
    units = (("EB", 1 << 60), ("PB", 1 << 50), ("TB", 1 << 40), ("GB", 1 << 30))
    for unit, scale in (*units, ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def read_spec_bytes(path: str | Path, limit: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; raises :class:`SpecFileError`."""
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise SpecFileError("E001", f"cannot read `{name}`: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        kind = describe_kind(info.st_mode)
        if kind is not None:
            raise SpecFileError("E001", f"cannot read `{name}`: it is {kind}, not a spec file")
        if info.st_size > limit:
            raise SpecFileError("E004", too_large(name, info.st_size, limit))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # a file that grew since fstat still stops here
    except OSError as e:
        raise SpecFileError("E001", f"cannot read `{name}`: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SpecFileError("E004", too_large(name, len(data), limit))
    return data


def too_large(name: str, size: int, limit: int) -> str:
    return f"`{name}` is {fmt_size(size)}; a spec may have at most {fmt_size(limit)}"


def link_problem(path: str | os.PathLike[str], trees: Sequence[Path] = ()) -> str | None:
    """Why a spec reached through a symbolic link must not be read (None when it may be, and
    for a path with no link in it): the file it leads to is not a ``.arch`` file (a cloned
    repository's ``blocks.arch -> ~/.git-credentials``), or it lies outside every one of
    ``trees`` (when given). Such a file is never opened, so none of its text is quoted."""
    real = os.path.realpath(path)
    if real == os.path.normpath(os.path.abspath(path)):
        return None
    if not real.endswith(".arch"):
        return "it is a symbolic link to a file that is not a `.arch` spec file"
    if trees and not any(Path(real).is_relative_to(os.path.realpath(t)) for t in trees):
        where = " or ".join(f"`{t}`" for t in trees)
        return f"it is a symbolic link that leads out of {where}"
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def output_path(out: str | Path | None, stem: str) -> Path:
    """Where ``archc compile -o OUT`` writes: ``OUT``, or ``OUT/<stem>.py`` when ``OUT`` is an
    existing directory or is written with a trailing slash (``-o build/``: a directory to be
    made, not a file named ``build``); by default ``<stem>.py`` in the current directory."""
    name = stem + ".py"
    if out is None:
        return Path(name)
    text = os.fspath(out)
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return Path(text) / name
    return Path(text)


STDOUT = "-"
"""The output name that writes to standard output (``-o -``)."""


def write_output(target: Path, text: str | bytes, inputs: Sequence[str]) -> None:
    """Write ``text`` (or bytes: a PNG) to ``target``, refusing to replace any of ``inputs``
    (the spec first, then the files it imports).

    A regular file (or a new one) is written atomically: to a temporary file beside it, renamed
    over it. Anything else is never replaced: ``-`` and the process's own standard output
    (``/dev/stdout``, ``/dev/fd/1``) are written to stdout, a FIFO or a character device
    (``/dev/null``) is opened and written to as it is, and a directory, a block device or a
    socket is refused. Raises ``OSError`` (``FileExistsError`` for an input) naming the target.
    A symlink target is followed: the file it points to is replaced and the link kept.
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    if os.fspath(target) == STDOUT:
        _write_stdout(data)
        return
    try:
        info = os.stat(target)
    except OSError:
        info = None
    if info is not None:
        _refuse_inputs(target, inputs)
        if _is_stdout(info):
            _write_stdout(data)
            return
        kind = describe_kind(info.st_mode)
        if kind is not None:
            _write_in_place(target, data, info.st_mode, kind)
            return
    _write_replacing(target, data)


def check_target(target: Path, inputs: Sequence[str]) -> None:
    """Raise what :func:`write_output` would for ``target`` before anything is written (an
    input, a directory, a block device, a socket), so that a slow export fails first."""
    if os.fspath(target) == STDOUT:
        return
    try:
        info = os.stat(target)
    except OSError:
        return
    _refuse_inputs(target, inputs)
    mode = info.st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise IsADirectoryError(
            errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
            f"it is {describe_kind(mode)}, which archc does not replace",
            str(target),
        )


def writes_stdout(target: str | os.PathLike[str] | None) -> bool:
    """Whether writing ``target`` writes to this process's standard output (``-``,
    ``/dev/stdout``, or the file stdout is redirected to)."""
    if target is None:
        return False
    if os.fspath(target) == STDOUT:
        return True
    try:
        return _is_stdout(os.stat(target))
    except OSError:
        return False


def _refuse_inputs(target: Path, inputs: Sequence[str]) -> None:
    for i, source in enumerate(inputs):
        if _same_file(target, Path(source)):
            what = "the spec being compiled" if i == 0 else "a file the spec imports"
            raise FileExistsError(
                errno.EEXIST, f"it is {what}; choose another output with -o", str(target)
            )


def _is_stdout(info: os.stat_result) -> bool:
    try:
        out = os.fstat(1)
    except OSError:
        return False
    return (out.st_dev, out.st_ino) == (info.st_dev, info.st_ino)


def _write_stdout(data: bytes) -> None:
    import sys

    stream = sys.stdout
    stream.flush()
    stream = getattr(stream, "stream", stream)  # archc.cli's wrapper of the real stream
    out = getattr(stream, "buffer", None)
    if out is None:
        raise OSError(errno.EBADF, "standard output takes no bytes", STDOUT)
    out.write(data)
    out.flush()


def _write_in_place(target: Path, data: bytes, mode: int, kind: str) -> None:
    """A FIFO or character device is written to, never replaced by a regular file."""
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise IsADirectoryError(
            errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
            f"it is {kind}, which archc does not replace",
            str(target),
        )
    fd = os.open(target, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_replacing(target: Path, data: bytes) -> None:
    real = Path(os.path.realpath(target))
    real.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as b:
            b.write(data)
        # mkstemp makes the file private (0600); an output gets the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, real)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
