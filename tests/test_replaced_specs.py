"""Specs replaced by a family spec, or rewritten with rules, keep their meaning.

A per-member spec of specs/torchvision/ (resnet50.arch, vgg16_bn.arch, ...) was deleted when its
family spec (resnet.arch with `variant = "50"`, ...) came to say the same; alexnet.arch and
mobilenet_v2.arch were rewritten in place with params (their defaults: the old network).
tests/golden/replaced/ holds, for each, the entry tests/golden/golden.jsonl had for it before (its
IR and summary as captured, spans and block origins left out, since those name lines of a file
that is gone or changed), with the family file and the parameters that stand for it. Here the family with those parameters must
give the same IR and the same summary, node for node and layer for layer, but for the lines, the
file's name and the declared shapes (`-> [56x56x256]`): a family spec declares only the shapes
all its variants share, and the summary's output shapes, compared here, are what was declared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "golden"))
import capture  # noqa: E402
from test_golden import first_difference  # noqa: E402

REPLACED = sorted((ROOT / "tests" / "golden" / "replaced").glob("*.json"))
# What names a place in a file, not the network (spans, block call origins, summary lines), and
# the declared shapes (checks of the shapes the summary holds).
PLACES = {"span", "origin", "line", "file", "declared"}


def without_places(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_places(v) for k, v in value.items() if k not in PLACES}
    if isinstance(value, list):
        return [without_places(v) for v in value]
    return value


def test_replaced_specs_are_gone_and_their_families_are_there() -> None:
    assert len(REPLACED) >= 17
    for path in REPLACED:
        entry = json.loads(path.read_text())
        rewritten = entry["spec"] == entry["family"]
        assert rewritten or not (ROOT / entry["spec"]).exists(), entry["spec"]
        assert (ROOT / entry["family"]).is_file(), entry["family"]
        assert entry["diagnostics"] == []


@pytest.mark.parametrize("path", REPLACED, ids=lambda p: p.stem)
def test_family_variant_means_what_the_replaced_spec_meant(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archc.check import check_file
    from archc.frontend import read_spec
    from archc.report import render_json

    monkeypatch.chdir(ROOT)
    entry = json.loads(path.read_text())
    family, params = Path(entry["family"]), entry["params"]
    checked = check_file(family, params=params)
    assert [d.code for d in checked.diagnostics] == []
    graph = read_spec(family, params=params).graph
    assert graph is not None and graph.name == path.stem
    ir = capture.portable(json.loads(graph.to_json()))
    assert first_difference(without_places(entry["ir"]), without_places(ir)) is None
    summary = capture.portable(json.loads(render_json(checked)))
    assert first_difference(without_places(entry["summary"]), without_places(summary)) is None
