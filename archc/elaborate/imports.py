"""The block table: every block a spec can call, from its own file and its imports.

Blocks are registered before any statement is expanded, so a block may be called above its
definition. Each block keeps the defaults and the lecture convention of the file (and the
place in it) where it is defined. Errors: a missing import (E204), an import cycle (E205), a
block defined twice (E214).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.elaborate.defaults import Convention, Defaults, apply_defaults, lecture_convention
from archc.elaborate.definitions import FileConstants, file_constants
from archc.elaborate.functions import Value
from archc.elaborate.params import Settings, param_constants
from archc.elaborate.problems import Problem
from archc.elaborate.values import Values
from archc.files import describe_kind, link_problem
from archc.library import SPECS_DIR

MAX_IMPORT_DEPTH = 32
"""Imports nested deeper than this are refused (E205): no library needs it, and a chain of
hundreds would overflow the recursion that registers them."""
IMPORT_HELP = (
    "imports name block libraries: `.arch` spec files, found relative to the importing file "
    "or in the shipped spec library"
)
# Problems with a file as a whole (archc.files, archc.frontend).
FILE_CODES = frozenset({"E001", "E002", "E004", "E005"})

Loader = Callable[[Path], "tuple[S.Spec | None, list[Diagnostic], str | None]"]
"""Reads and parses an imported file: (syntax tree, diagnostics, text or None if unreadable)."""


@dataclass(frozen=True)
class BlockInfo:
    definition: S.BlockDef
    defaults: Defaults
    convention: Convention


class BlockTable:
    """Blocks by name, filled from a spec and, recursively, the files it imports."""

    def __init__(self, loader: Loader, diags: list[Diagnostic]) -> None:
        self.loader = loader
        self.diags = diags
        self.blocks: dict[str, BlockInfo] = {}
        self.loaded: dict[Path, tuple[tuple[str, Value], ...]] = {}
        """Each file read, with the values of its ``param``s: a network holds one copy of a
        library's blocks, so a second import must give them the same values (E229)."""
        self.specs: dict[Path, S.Spec] = {}
        """The syntax of each library read, for a second import's settings."""
        self.import_stack: list[Path] = []
        self.import_failed = False
        """An import did not parse: calls to unknown blocks are then its consequence."""
        self.constants: dict[str, FileConstants] = {}
        """Each file's top-level constants (``param``s as set, variants columns, ``let``s,
        tables), by file name."""
        self.root = Path.cwd()
        """The directory of the spec being elaborated: an import through a symbolic link
        may not lead out of it (or out of the shipped specs)."""

    def get(self, name: str) -> BlockInfo | None:
        return self.blocks.get(name)

    def known(self) -> str:
        return ", ".join(f"`{b}`" for b in sorted(self.blocks)) or "none"

    def register_root(
        self, spec: S.Spec, convention: Convention, settings: Settings | None = None
    ) -> None:
        """The spec being elaborated: its own blocks, then its imports' as they come;
        ``settings``: the caller's values for its ``param``s."""
        if spec.file.startswith("<"):
            base = Path.cwd()
        else:
            path = Path(spec.file).resolve()
            self.loaded[path] = ()
            self.import_stack.append(path)
            base = path.parent
        self.root = base
        reported = len(self.diags)
        params = param_constants(spec, settings or {}, self.diags)
        if any(d.code == "E229" for d in self.diags[reported:]):
            # A setting the file cannot take (`variant=tiny`): its constants are not what the
            # caller meant, and every line reading a missing column would only say so again.
            return
        self.register(spec, convention, base, params)

    def register(
        self, spec: S.Spec, convention: Convention, base: Path, params: FileConstants
    ) -> None:
        """A file's constants (``params``: its ``param``s and variants columns, then its
        ``let``s and tables) and blocks, and its imports' as they come."""
        self.constants[spec.file] = file_constants(spec.body, self.diags, params)
        defaults: Defaults = {}
        for st in spec.body:
            if isinstance(st, S.Defaults):
                defaults = apply_defaults(defaults, st)
            elif isinstance(st, S.Import):
                self.import_file(st, base, self.constants[spec.file])
            elif isinstance(st, S.BlockDef):
                old = self.blocks.get(st.name)
                if old is not None:
                    self.diags.append(
                        error(
                            "E214",
                            f"block `{st.name}` is defined twice",
                            st.span,
                            f"the other definition is at {old.definition.span}; rename one",
                        )
                    )
                    continue
                self.blocks[st.name] = BlockInfo(st, dict(defaults), convention)

    def find(self, st: S.Import, base: Path) -> Path | None:
        """The imported file: beside the importing file, else in the shipped specs/. A path
        that exists but is no regular file (a directory, a FIFO, a device) is named as what it
        is; only `.arch` files are read (E005), so no other file is ever quoted."""
        spec_file = st.path.endswith(".arch")
        for candidate in (base / st.path, SPECS_DIR / st.path):
            try:
                kind = describe_kind(candidate.stat().st_mode)
            except OSError as e:
                if e.errno == errno.ELOOP:  # a link that leads back to itself
                    self.refuse(st, f"`{candidate}` is a loop of symbolic links", "E001")
                    return None
                continue  # not there: try the next place
            except ValueError:
                continue
            if kind is None and spec_file:
                problem = link_problem(candidate, [self.root, SPECS_DIR])
                if problem is not None:
                    self.refuse(st, problem, "E005")
                    return None
                return candidate.resolve()
            what = f"`{candidate}` is {kind}, not a spec file" if kind else None
            self.diags.append(
                error(
                    "E001" if kind else "E005",
                    f"cannot import `{st.path}`: {what or 'imports are `.arch` spec files'}",
                    st.span,
                    IMPORT_HELP,
                )
            )
            return None
        if not spec_file:
            self.diags.append(
                error(
                    "E005",
                    f"cannot import `{st.path}`: imports are `.arch` spec files",
                    st.span,
                    IMPORT_HELP,
                )
            )
            return None
        self.diags.append(
            error(
                "E204",
                f"cannot find the imported file `{st.path}`",
                st.span,
                f"looked in {base} and in {SPECS_DIR}",
            )
        )
        return None

    def refuse(self, st: S.Import, why: str, code: str) -> None:
        self.diags.append(error(code, f"cannot import `{st.path}`: {why}", st.span, IMPORT_HELP))
        self.import_failed = True  # calls of its blocks are this error's consequence

    def settings(self, st: S.Import, constants: FileConstants) -> dict[str, Value] | None:
        """An import's settings, evaluated in the importing file (None: an error, reported)."""
        values = Values(constants.env, None)
        settings: dict[str, Value] = {}
        try:
            for kw in st.settings:
                settings[kw.name] = values.value(kw.value)
        except Problem as p:
            self.diags.append(error(p.code, p.message, p.span, p.help))
            self.import_failed = True
            return None
        return settings

    def again(self, st: S.Import, found: Path, settings: dict[str, Value]) -> None:
        """A file imported a second time: one copy of its blocks serves both imports when
        they give its constants the same values (E229 otherwise)."""
        spec = self.specs.get(found)
        if spec is None:
            return
        values = param_constants(spec, settings, [], st.span)
        if tuple(sorted(values.env.items())) != self.loaded[found]:
            self.diags.append(
                error(
                    "E229",
                    f"`{st.path}` is imported again with other settings",
                    st.span,
                    "a network takes one copy of a library's blocks: import it once, with "
                    "the settings every block needs",
                )
            )
            self.import_failed = True

    def import_file(self, st: S.Import, base: Path, constants: FileConstants) -> None:
        if len(self.import_stack) > MAX_IMPORT_DEPTH:
            self.diags.append(
                error(
                    "E205",
                    f"imports are nested more than {MAX_IMPORT_DEPTH} deep",
                    st.span,
                    "import the block libraries from one file rather than through a chain",
                )
            )
            self.import_failed = True
            return
        found = self.find(st, base)
        if found is None:
            return
        if found in self.import_stack:
            chain = " → ".join(p.name for p in [*self.import_stack, found])
            self.diags.append(
                error("E205", f"recursive import: {chain}", st.span, "remove one of the imports")
            )
            return
        settings = self.settings(st, constants)
        if settings is None:
            return
        if found in self.loaded:
            self.again(st, found, settings)
            return
        self.loaded[found] = ()
        spec, diags, text = self.loader(found)
        # A problem with the imported file as a whole (unreadable, not text, too large) is
        # reported at the line that imports it: the file has no line to point at.
        self.diags += [
            d.model_copy(update={"span": st.span})
            if d.code in FILE_CODES and d.span.file == str(found)
            else d
            for d in diags
        ]
        if text is None:
            self.import_failed = True
            return
        self.import_failed |= any(d.severity == "error" for d in diags)
        if spec is None:
            return
        self.import_stack.append(found)
        try:
            through = f'`import "{st.path}"`'
            lib = param_constants(spec, settings, self.diags, st.span, through, st.span)
            self.loaded[found] = tuple(sorted(lib.env.items()))
            self.specs[found] = spec
            self.register(spec, lecture_convention(spec.body), found.parent, lib)
        finally:
            self.import_stack.pop()
