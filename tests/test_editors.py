"""The editor files in editors/: the TextMate grammar keeps up with the op registry, and the
VS Code extension points at files that exist and starts `archc lsp`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from archc.ops import WORDS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "editors"))
from update_grammar import kind_pattern  # noqa: E402

VSCODE = Path(__file__).resolve().parent.parent / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "arch.tmLanguage.json").read_text())


def rule(name: str) -> re.Pattern[str]:
    # The grammar's patterns keep to the part of Oniguruma's syntax that Python shares.
    return re.compile(GRAMMAR["repository"][name]["match"])


def test_every_layer_kind_the_registry_knows_is_highlighted():
    # Regenerated from the registry by tools/regenerate.py.
    assert GRAMMAR["repository"]["kind"]["match"] == kind_pattern()
    kind = rule("kind")
    for word in WORDS:
        for written in (word, word.lower(), word.replace(" ", "  ")):
            assert kind.fullmatch(written), written


def test_a_lecture_line_is_highlighted_piece_by_piece():
    line = "[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0  # the first layer"
    assert rule("declared").match(line).group() == "[55x55x96]"
    assert rule("comment").search(line).group() == "# the first layer"
    assert [m.group() for m in rule("keyword").finditer(line)] == ["filters", "at", "stride", "pad"]
    assert rule("paper").fullmatch("conv3-64") and rule("paper").fullmatch("FC-4096")
    assert rule("structure").match("    residual:").group(1) == "residual"
    assert rule("flags").search("CONV: 64 1x1 no bias, no relu").group() == "no bias"


def test_the_vscode_extension_starts_archc_lsp_for_arch_files():
    manifest = json.loads((VSCODE / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".arch"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.arch"
    for path in (grammar["path"], language["configuration"], manifest["main"]):
        assert (VSCODE / path).is_file(), path
    command = manifest["contributes"]["configuration"]["properties"]["archc.command"]
    assert command["default"] == ["archc", "lsp"]
    json.loads((VSCODE / "language-configuration.json").read_text())
