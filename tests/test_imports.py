"""The pipeline runs one way (README.md, Layout): each stage imports only the stages before it.

``ops`` <- ``syntax/ir`` <- ``elaborate`` <- ``passes`` <- ``backends`` <- ``cli``. The test reads
every module of ``archc/`` with :mod:`ast` and fails on an import of a later stage, whether at
the top of the module or inside a function (both run); imports under ``if TYPE_CHECKING:``
only name types and never run, so they are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ARCHC = Path(__file__).resolve().parent.parent / "archc"

STAGES = ["base", "ops", "syntax/ir", "elaborate", "passes", "backends", "cli"]
"""The stages in pipeline order; a module may import its own stage and the ones before it."""

MODULES = {
    # What every stage shares: source spans, diagnostics, numbers, files, the IR's node base
    # and the syntax tree's data classes (which the ops' paper forms build).
    "base": [
        "archc.spans",
        "archc.diagnostics",
        "archc.numbers",
        "archc.files",
        "archc.library",
        "archc.nodes",
        "archc.syntax",
        "archc.recipe_ir",
        "archc.progress",
        "archc.kernels",
        "archc.version",
        "archc.suggest",
        "archc.extras",
    ],
    "ops": ["archc.ops"],
    # constructs: the statement registry, which the parser reads headers with; parsing: the
    # parser's parts (lines, statements, layer binding).
    "syntax/ir": ["archc.ir", "archc.parser", "archc.table", "archc.constructs", "archc.parsing"],
    "elaborate": ["archc.elaborate", "archc.frontend", "archc.families"],
    # check.py runs the passes over the front end's graph: the checked graph every backend reads.
    # parameters: --set values applied to a spec, which it then checks.
    "passes": ["archc.passes", "archc.check", "archc.parameters"],
    "backends": [
        "archc.backends",
        "archc.report",
        "archc.pictures",
        "archc.memory",
        "archc.export",
        "archc.training",
    ],
    "cli": [
        "archc.cli",
        "archc.commands",
        "archc.completion",
        "archc.editor",
        "archc.lsp",
        "archc.lsp_convert",
        "archc.jsonrpc",
        "archc.__main__",
        "archc",
    ],
}


def stage_of(module: str) -> str:
    """The stage of a module: the one whose longest listed prefix it falls under."""
    best, stage = "", None
    for name, prefixes in MODULES.items():
        for prefix in prefixes:
            # The package itself names only archc/__init__.py: a new module must be placed.
            inside = prefix != "archc" and module.startswith(prefix + ".")
            if (module == prefix or inside) and len(prefix) > len(best):
                best, stage = prefix, name
    if stage is None:
        raise KeyError(f"{module} is in no stage: add it to MODULES")
    return stage


def module_name(path: Path) -> str:
    parts = path.relative_to(ARCHC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def archc_imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of an archc module that runs (``from archc import
    ir`` names ``archc.ir``; relative imports are resolved against ``package``)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.startswith("archc"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base == "archc" or base.startswith("archc."):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append((node.lineno, sub if _is_module(sub) else base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _is_module(name: str) -> bool:
    """Whether ``name`` is a module (``archc.kernels`` is installed from ``kernels/``)."""
    path = ARCHC.parent.joinpath(*name.split("."))
    listed = any(name in prefixes for prefixes in MODULES.values())
    return listed or path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def backward_imports() -> list[str]:
    problems = []
    for path in sorted(ARCHC.rglob("*.py")):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        here = STAGES.index(stage_of(module))
        for line, target in archc_imports(ast.parse(path.read_text()), package):
            there = STAGES.index(stage_of(target))
            if there > here:
                problems.append(
                    f"{path.relative_to(ARCHC.parent)}:{line}: {module} ({STAGES[here]}) "
                    f"imports {target} ({STAGES[there]})"
                )
    return problems


def test_imports_run_one_way() -> None:
    assert backward_imports() == []


def test_every_module_has_a_stage() -> None:
    for path in ARCHC.rglob("*.py"):
        stage_of(module_name(path))


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from archc.passes.shapes import extent", "archc.elaborate.entry", "passes"),
        ("from archc import check", "archc.backends.source", "passes"),
        ("def f():\n    from archc.cli import main", "archc.ops.base", "cli"),
        ("from . import plan", "archc.backends.source", "backends"),
    ],
)
def test_an_import_is_read_with_its_stage(source: str, module: str, expected: str) -> None:
    """The reader the test relies on: top-level, in-function and relative imports are seen."""
    package = module.rpartition(".")[0]
    ((_, target),) = archc_imports(ast.parse(source), package)
    assert stage_of(target) == expected


def test_a_type_checking_import_is_left_out() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from archc.cli import x\n"
    assert archc_imports(ast.parse(source), "archc.ops") == []


def test_elaboration_and_the_shape_pass_report_e306_alike() -> None:
    """One shape-check helper (archc.ops.base.ShapeContext): the E306 that elaboration reports
    when a block asks for ``in.c`` past the error is the shape pass's, word for word."""
    from archc.check import check_source

    head = "network N\ninput [8x8x3]\n"
    early = head + "block b():\n    CONV in.c 3x3 pad 1\nFC 10\nMAX POOL 2x2\nx: b()\n"
    late = head + "FC 10\nMAX POOL 2x2\n"
    message = "a max pool needs a feature map [HxWxC], but its input is the vector [10]"
    for text in (early, late):
        found = [(d.code, d.message) for d in check_source(text).diagnostics]
        assert found == [("E306", message)]
