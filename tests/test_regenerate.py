"""tools/regenerate.py, the one command that rewrites what the op registry determines (docs
tables and kind lists, the editor grammar): every checked-in file equals what it generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "tools" / "regenerate.py")
assert _spec is not None and _spec.loader is not None
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)


@pytest.mark.parametrize("path", sorted(regenerate.TARGETS))
def test_the_checked_in_file_is_what_the_command_generates(path: str) -> None:
    now, new = regenerate.regenerated()[path]
    assert now == new, f"{path} is stale: run python tools/regenerate.py"


def test_a_stale_region_is_rewritten_and_check_says_so(capsys, monkeypatch, tmp_path) -> None:
    doc = tmp_path / "docs" / "accounting.md"
    doc.parent.mkdir()
    doc.write_text(
        "adds nothing: <!-- regenerate: in-place -->relu, add, dropout and flatten"
        "<!-- /regenerate -->.\nthe rest: <!-- regenerate: not-in-place --><!-- /regenerate -->\n"
    )
    monkeypatch.setattr(regenerate, "ROOT", tmp_path)
    monkeypatch.setattr(regenerate, "TARGETS", {"docs/accounting.md": regenerate.accounting})
    assert regenerate.main(["--check"]) == 1
    assert "docs/accounting.md is not current" in capsys.readouterr().out
    assert regenerate.main([]) == 0
    text = doc.read_text()
    assert regenerate.main(["--check"]) == 0
    # The four that docs/accounting.md once called all of them, and what else a view or an
    # identity at inference is: split, permute, identity and stochastic depth add nothing.
    region = text.split("-->", 1)[1].split("<!--", 1)[0]
    for kind in ("relu", "add", "dropout", "flatten", "split", "permute", "identity"):
        assert f"`{kind}`" in region
    assert "`conv`" not in region and "`conv`" in text


def test_a_file_without_its_region_is_an_error() -> None:
    with pytest.raises(ValueError, match="in-place"):
        regenerate.between("no markers here", "in-place", "x")
