"""The shipped spec library: the lecture and paper networks, torchvision's, and block libraries.

In a checkout (and an editable install) they are ``specs/`` at the repository root; a wheel
installs the same files as the package ``archc.specs``. ``import "blocks/resnet.arch"`` falls
back to them, and a command or ``archc.load`` given a name that is no file
(``torchvision/resnet50``) finds the shipped spec of that name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
SPECS_DIR = _PACKAGE / "specs" if (_PACKAGE / "specs").is_dir() else _PACKAGE.parent / "specs"

# What a file name or a spec's name looks like, as opposed to spec text: one line, no spaces,
# brackets or colons (`input [8x8x3]` is text; `mynet`, `nets/a.arch` are names).
_NAME = re.compile(r"[\w.~/\\-]+")


def is_name(text: str) -> bool:
    """Whether ``text`` looks like a file or spec name (``nets/a``, ``vgg16.arch``), not text."""
    return bool(_NAME.fullmatch(text)) and len(text) <= 255


def shipped(name: str) -> Path | None:
    """The shipped spec called ``name`` (``torchvision/resnet50``, ``.arch`` optional), or None.
    Only names inside the library count: no absolute paths, no ``..``."""
    if not _NAME.fullmatch(name) or len(name) > 255:
        return None
    relative = Path(name if name.endswith(".arch") else name + ".arch")
    if relative.is_absolute() or ".." in relative.parts:
        return None
    path = SPECS_DIR / relative
    return path if path.is_file() else None


def shipped_names() -> list[str]:
    """Every shipped spec and block library by name (``blocks/resnet``, ``vgg16``), sorted."""
    return sorted(p.relative_to(SPECS_DIR).with_suffix("").as_posix() for p in _files())


def _files() -> list[Path]:
    return [p for p in SPECS_DIR.rglob("*.arch") if p.is_file()]


class NoSuchSpec(LookupError):
    """A name that is neither a file nor a shipped spec."""


def find_spec(spec: str | os.PathLike[str]) -> Path | None:
    """The file to read for ``spec``: a path that exists, else the shipped spec of that name;
    None when ``spec`` is spec text. Raises :class:`NoSuchSpec` for a name that is neither, so
    that a typo is not read as a one-word spec."""
    if isinstance(spec, os.PathLike):
        return Path(spec)
    if "\n" in spec or len(spec) > 4096:
        return None
    if os.path.exists(spec):
        return Path(spec)
    found = shipped(spec)
    if found is not None:
        return found
    if _NAME.fullmatch(spec) or spec.endswith(".arch"):
        raise NoSuchSpec(
            f"`{spec}`: no such file or shipped spec (`archc specs` lists the shipped ones)"
        )
    return None
