"""The language is a public interface: every shipped spec and every docs example keeps its
meaning through every redesign. tests/golden/golden.jsonl holds, captured before the op-registry
redesign (see tests/golden/capture.py), each shipped spec's IR JSON with its spans, its summary
JSON, its diagnostics and a digest of its generated source, and each docs example's IR JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "golden"))
import capture  # noqa: E402

GOLDEN = [
    json.loads(line)
    for line in (ROOT / "tests/golden/golden.jsonl").read_text().split("\n")
    if line
]
SPECS = {g["spec"]: g for g in GOLDEN if "spec" in g}
EXAMPLES = {g["example"]: g["ir"] for g in GOLDEN if "example" in g}


def first_difference(a: object, b: object, path: str = "") -> str | None:
    """Where two JSON values first differ, as a path, so a failure says which node changed."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'golden' if k in a else 'now'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None if len(a) == len(b) else f"{path}: length {len(a)} then, {len(b)} now"
    return None if a == b else f"{path}: {a!r} then, {b!r} now"


def test_every_shipped_spec_is_captured() -> None:
    assert sorted(SPECS) == [str(p) for p in capture.shipped_specs()]


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_shipped_spec_unchanged(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    now = {"spec": spec, **capture.snapshot(Path(spec))}
    assert first_difference(SPECS[spec], now) is None


def test_docs_examples_unchanged() -> None:
    """Every captured example is still in the docs and still means the same; new examples may
    join them."""
    examples = capture.doc_examples()
    for text, golden in EXAMPLES.items():
        assert text in examples, f"a docs example was removed or changed:\n{text}"
        diff = first_difference(golden, capture.example_snapshot(text))
        assert diff is None, f"{diff} in:\n{text}"
