"""Network families by their builders' names: ``torchvision/efficientnet_b3`` is variant ``b3``
of ``torchvision/efficientnet.arch``.

A family spec declares ``param variant``, a ``variants(...)`` table and a name template
(``network efficientnet_{variant}``); its builder names are the template filled with each row
key. A spec name with no file of its own is looked up among the family specs of its directory
(the directory itself when it exists, else the shipped library's), and resolves to the family
file with ``variant`` set. The family information is the front end's (``FrontendResult.family``,
read off the file's own ``network``, ``param`` and ``variants`` lines): this module never reads
the syntax itself. No torch here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc import library
from archc.library import NoSuchSpec, find_spec

VARIANT = "variant"
"""The parameter a family's variant rows are chosen by."""


@dataclass(frozen=True)
class Member:
    """One builder of a family: its name, the family's file and the variant that builds it."""

    name: str
    family: Path
    variant: str


@dataclass(frozen=True)
class Family:
    """A family spec as ``archc specs`` lists it."""

    path: Path
    template: str
    variants: tuple[str, ...]
    names: tuple[str, ...]
    """The builder names, one per variant, in the order of the ``variants`` rows (none when
    the template's one hole is not ``{variant}``)."""


class ParamConflict(NoSuchSpec):
    """A builder name given with another value for ``variant`` than the one it names."""


_FAMILIES: dict[tuple[str, int, int], Family | None] = {}


def family(path: Path) -> Family | None:
    """The family that the spec at ``path`` defines, or None for a plain spec (or one that does
    not parse). Its lines are parsed once per process, and again when the file changes."""
    from archc.frontend import read_family

    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _FAMILIES:
        _FAMILIES[key] = of(path, read_family(path))
    return _FAMILIES[key]


def of(path: Path, info: Any) -> Family | None:
    """The family of the front end's family information ``info`` (``FrontendResult.family``,
    archc.elaborate.params.Family) of the spec at ``path``: None for a plain spec or one
    without ``variants`` rows."""
    if info is None or not info.variants:
        return None
    names = info.names()
    return Family(
        path,
        info.template or "",
        tuple(info.variants),
        tuple(names[k] for k in info.variants) if names else (),
    )


def effective(info: Any, given: Mapping[str, object]) -> dict[str, str]:
    """Every param of a family with the value it was read with (``given``, else its default),
    as the spec would write it: a run's record of the params it trained with."""
    from archc.elaborate.functions import show
    from archc.elaborate.params import convert
    from archc.spans import Span

    if info is None:
        return {}
    at = Span(file="<params>", line=1, column=1, end_line=1, end_column=1)
    values = {}
    for name, default in info.params.items():
        value = default if name not in given else convert(name, given[name], default, at)
        values[name] = show(value)
    return values


def _candidates(directory: Path, stem: str) -> list[Path]:
    """The specs of ``directory`` that may hold ``stem``'s family: those whose own name
    begins ``stem`` first (``efficientnet`` for ``efficientnet_b3``), then the rest."""
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix == ".arch" and not p.is_symlink())
    except OSError:
        return []
    return sorted((p for p in files if p.is_file()), key=lambda p: not stem.startswith(p.stem))


def _directories(name: str) -> tuple[str, list[Path]]:
    """A member name's own name and the directories to look for its family in: the directory
    it names (when it exists), then the shipped library's of that name."""
    relative = Path(name[: -len(".arch")] if name.endswith(".arch") else name)
    if not library.is_name(name) or not relative.name:
        return "", []
    local = relative.parent if str(relative.parent) else Path(".")
    found = [local] if local.is_dir() else []
    if not relative.is_absolute() and ".." not in relative.parts:
        shipped = library.SPECS_DIR / relative.parent
        found += [shipped] if shipped.is_dir() else []
    return relative.name, found


def member(name: str) -> Member | None:
    """The family member called ``name`` (``torchvision/efficientnet_b3``, ``.arch`` optional),
    looked up in the directory ``name`` names when it exists, then in the shipped library."""
    stem, directories = _directories(name)
    for directory in directories:
        for path in _candidates(directory, stem):
            found = family(path)
            if found is not None and stem in found.names:
                return Member(stem, path, found.variants[found.names.index(stem)])
    return None


def unparsed_hint(name: str) -> str:
    """For a name no family holds: the specs whose file name begins it (``resnet.arch`` for
    ``resnet18``) that do not parse, and so might be its family."""
    from archc.frontend import read_syntax

    stem, directories = _directories(name)
    broken = [
        str(p)
        for d in directories
        for p in _candidates(d, stem)
        if stem.startswith(p.stem) and read_syntax(p) is None
    ]
    if broken:
        return f"; `{broken[0]}` may define it, but does not parse: run `archc lint {broken[0]}`"
    return _near_name(name, stem, directories)


def _near_name(name: str, stem: str, directories: list[Path]) -> str:
    """``"; did you mean `mydir/mynet_small`?"`` for a name near a builder of a family in
    ``directories`` (``torchvision/resnet19``), or ``mydir/mynet.arch`` for ``mydir/mynet``."""
    from archc.suggest import closest

    if not stem:
        return ""
    folder = Path(name).parent.as_posix()
    prefix = "" if folder == "." and not name.startswith("./") else f"{folder}/"
    own = directories[0] / f"{stem}.arch" if directories else None
    if own is not None and own.is_file() and not name.endswith(".arch"):
        return f"; did you mean `{prefix}{stem}.arch`?"
    builders: dict[str, Family] = {}
    for directory in directories:
        for path in _candidates(directory, stem):
            found = family(path)
            for builder in found.names if found is not None else ():
                builders.setdefault(builder, found)  # type: ignore[arg-type]
    near = closest(stem, list(builders))
    if near is None:
        # `mynet_tiny`: too far from every builder, but `mynet.arch` is its family all the same.
        owner = next((f for f in builders.values() if stem.startswith(f.path.stem)), None)
        if owner is None:
            return ""
        names = ", ".join(f"`{prefix}{n}`" for n in owner.names)
        return f"; `{owner.path.name}` builds {names}"
    fam = builders[near]
    keys = ", ".join(fam.variants)
    return f"; did you mean `{prefix}{near}`? (`{fam.path.name}` builds the variants {keys})"


def resolve(
    spec: str | os.PathLike[str], params: Mapping[str, object] | None = None
) -> tuple[Path | None, dict[str, object]]:
    """The file to read for ``spec`` and the spec params to read it with: ``params``, plus
    ``variant`` for a family member's name. None for spec text (as
    :func:`archc.library.find_spec`). Raises :class:`NoSuchSpec` for a name that is no file, no
    shipped spec and no family member, and :class:`ParamConflict` for a member's name given
    another ``variant``."""
    chosen = dict(params or {})
    try:
        path = find_spec(spec)
    except NoSuchSpec as missing:
        found = member(os.fspath(spec))
        if found is None:
            raise NoSuchSpec(f"{missing}{unparsed_hint(os.fspath(spec))}") from None
    else:
        # A path object is taken as given: one that names no file may still be a member's.
        found = None if path is None or os.path.lexists(path) else member(os.fspath(spec))
        if found is None:
            return path, chosen
    given = chosen.get(VARIANT)
    if given is not None and str(given).strip().strip("\"'") != found.variant:
        raise ParamConflict(
            f"`{spec}` is variant {found.variant} of `{found.family.stem}`, not {VARIANT}="
            f"{given}: name the family (`{found.family.stem}`) to choose another variant"
        )
    chosen[VARIANT] = found.variant
    return found.family, chosen


def spec_names() -> list[str]:
    """Every name a command takes for a shipped spec: each file's (``blocks/resnet``,
    ``torchvision/efficientnet``) and each family member's (``torchvision/efficientnet_b3``),
    sorted. Parses the family specs' lines (not elaborated)."""
    names = library.shipped_names()
    members = []
    for name in names:
        found = family(library.SPECS_DIR / f"{name}.arch")
        folder = name.rpartition("/")[0]
        members += [f"{folder}/{m}" if folder else m for m in found.names] if found else []
    return sorted(set(names) | set(members))
