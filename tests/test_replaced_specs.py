"""Issue 23: a family spec replaces the per-member specs that specs/torchvision/ shipped before it
(efficientnet_b0.arch, convnext_tiny.arch, ...) only where its variant means the same network.
tests/golden/replaced/<old name>.json holds each removed spec's golden IR (tests/golden/golden.jsonl
as captured before the family landed, minus spans, origins and file names) and says which family
file and parameters replace it; the family's IR with those parameters must equal it node for node.
`declared` is left out too: the old files wrote the shape after most lines (`-> [56x56x24]`), which
a family spec, whose shapes depend on the variant, does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archc.frontend import read_spec

ROOT = Path(__file__).resolve().parent.parent
REPLACED = sorted((ROOT / "tests" / "golden" / "replaced").glob("*.json"))
IGNORED = {"span", "origin", "file", "declared"}


def comparable(value: object) -> object:
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in IGNORED}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def test_replaced_specs_are_gone_and_their_families_shipped() -> None:
    assert REPLACED, "no replaced specs recorded"
    for path in REPLACED:
        old = json.loads(path.read_text())
        assert old["spec"] == f"specs/torchvision/{path.stem}.arch"
        assert not (ROOT / old["spec"]).exists(), f"{old['spec']} is still shipped"
        assert (ROOT / old["family"]).is_file(), old["family"]


@pytest.mark.parametrize("path", REPLACED, ids=[p.stem for p in REPLACED])
def test_family_variant_has_the_replaced_specs_ir(path: Path) -> None:
    old = json.loads(path.read_text())
    result = read_spec(ROOT / old["family"], params=old["params"])
    assert result.graph is not None, [d.message for d in result.diagnostics]
    now = comparable(json.loads(result.graph.to_json()))
    then = comparable(old["ir"])
    assert then["name"] == path.stem == now["name"]
    assert [n["name"] for n in now["nodes"]] == [n["name"] for n in then["nodes"]]
    for a, b in zip(then["nodes"], now["nodes"]):
        assert a == b, a["name"]
    assert now == then
