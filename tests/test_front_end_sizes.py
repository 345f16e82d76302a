"""Issue 22's size limits over the front end (the parser, the construct registry, the
elaborator, the editor): no class over 300 lines and no function over 80, measured with ast."""

from __future__ import annotations

import ast
from pathlib import Path

ARCHC = Path(__file__).resolve().parent.parent / "archc"
FRONT_END = [
    ARCHC / "parser.py",
    ARCHC / "editor.py",
    *sorted((ARCHC / "parsing").glob("*.py")),
    *sorted((ARCHC / "constructs").glob("*.py")),
    *sorted((ARCHC / "elaborate").glob("*.py")),
]
LIMITS = {ast.ClassDef: 300, ast.FunctionDef: 80}


def oversized(path: Path, root: Path = ARCHC) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        limit = LIMITS.get(type(node))
        if limit is not None:
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                found.append(f"{path.relative_to(root)}: {node.name} has {lines} lines (> {limit})")
    return found


def test_the_front_end_keeps_classes_under_300_lines_and_functions_under_80():
    assert len(FRONT_END) > 20
    assert [problem for path in FRONT_END for problem in oversized(path)] == []


def test_the_measure_counts_a_long_function(tmp_path):
    (tmp_path / "long.py").write_text("def f():\n" + "    x = 1\n" * 80, encoding="utf-8")
    assert oversized(tmp_path / "long.py", tmp_path) == ["long.py: f has 81 lines (> 80)"]
