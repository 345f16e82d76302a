"""The block table: every block a spec can call, from its own file and its imports.

Blocks are registered before any statement is expanded, so a block may be called above its
definition. Each block keeps the defaults and the lecture convention of the file (and the
place in it) where it is defined. Errors: a missing import (E204), an import cycle (E205), a
block defined twice (E214).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.elaborate.defaults import Convention, Defaults, apply_defaults, lecture_convention

SPECS_DIR = Path(__file__).resolve().parent.parent.parent / "specs"

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
        self.loaded: set[Path] = set()
        self.import_stack: list[Path] = []
        self.import_failed = False
        """An import did not parse: calls to unknown blocks are then its consequence."""

    def get(self, name: str) -> BlockInfo | None:
        return self.blocks.get(name)

    def known(self) -> str:
        return ", ".join(f"`{b}`" for b in sorted(self.blocks)) or "none"

    def register_root(self, spec: S.Spec, convention: Convention) -> None:
        """The spec being elaborated: its own blocks, then its imports' as they come."""
        if spec.file.startswith("<"):
            base = Path.cwd()
        else:
            path = Path(spec.file).resolve()
            self.loaded.add(path)
            self.import_stack.append(path)
            base = path.parent
        self.register(spec, convention, base)

    def register(self, spec: S.Spec, convention: Convention, base: Path) -> None:
        defaults: Defaults = {}
        for st in spec.body:
            if isinstance(st, S.Defaults):
                defaults = apply_defaults(defaults, st)
            elif isinstance(st, S.Import):
                self.import_file(st, base)
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

    def import_file(self, st: S.Import, base: Path) -> None:
        candidates = [base / st.path, SPECS_DIR / st.path]
        found = next((c.resolve() for c in candidates if c.is_file()), None)
        if found is None:
            self.diags.append(
                error(
                    "E204",
                    f"cannot find the imported file `{st.path}`",
                    st.span,
                    f"looked in {base} and in {SPECS_DIR}",
                )
            )
            return
        if found in self.import_stack:
            chain = " → ".join(p.name for p in [*self.import_stack, found])
            self.diags.append(
                error("E205", f"recursive import: {chain}", st.span, "remove one of the imports")
            )
            return
        if found in self.loaded:
            return
        self.loaded.add(found)
        spec, diags, text = self.loader(found)
        self.diags += diags
        if text is None:
            self.import_failed = True
            return
        self.import_failed |= any(d.severity == "error" for d in diags)
        if spec is None:
            return
        self.import_stack.append(found)
        try:
            self.register(spec, lecture_convention(spec.body), found.parent)
        finally:
            self.import_stack.pop()
