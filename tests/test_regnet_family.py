"""specs/torchvision/regnet.arch is all fifteen of torchvision's RegNets, computed from their
design-space rows as torchvision's ``BlockParams.from_init_params`` computes them.

The stage widths, depths and group widths archc computes (exact fractions, Python doubles for
``log``) are torchvision's (float32 tensors) for every variant; the table below holds them and a
second test reads them from torchvision itself. The family's ``regnet_y_400mf`` is the IR of the
per-member spec it replaced (tests/golden/replaced/regnet_y_400mf.json, checked by
tests/test_replaced_specs.py).
Parameter counts, strict ``load_state_dict`` and outputs are tests/test_families.py's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc.frontend import read_spec

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ROOT / "specs" / "torchvision" / "regnet.arch"

# (stage widths, stage depths, stage group widths) of torchvision's RegNets (torchvision 0.29's
# BlockParams.from_init_params, after _adjust_widths_groups_compatibilty).
PLANS = {
    "y_400mf": ([48, 104, 208, 440], [1, 3, 6, 6], [8, 8, 8, 8]),
    "y_800mf": ([64, 144, 320, 784], [1, 3, 8, 2], [16, 16, 16, 16]),
    "y_1_6gf": ([48, 120, 336, 888], [2, 6, 17, 2], [24, 24, 24, 24]),
    "y_3_2gf": ([72, 216, 576, 1512], [2, 5, 13, 1], [24, 24, 24, 24]),
    "y_8gf": ([224, 448, 896, 2016], [2, 4, 10, 1], [56, 56, 56, 56]),
    "y_16gf": ([224, 448, 1232, 3024], [2, 4, 11, 1], [112, 112, 112, 112]),
    "y_32gf": ([232, 696, 1392, 3712], [2, 5, 12, 1], [232, 232, 232, 232]),
    "y_128gf": ([528, 1056, 2904, 7392], [2, 7, 17, 1], [264, 264, 264, 264]),
    "x_400mf": ([32, 64, 160, 400], [1, 2, 7, 12], [16, 16, 16, 16]),
    "x_800mf": ([64, 128, 288, 672], [1, 3, 7, 5], [16, 16, 16, 16]),
    "x_1_6gf": ([72, 168, 408, 912], [2, 4, 10, 2], [24, 24, 24, 24]),
    "x_3_2gf": ([96, 192, 432, 1008], [2, 6, 15, 2], [48, 48, 48, 48]),
    "x_8gf": ([80, 240, 720, 1920], [2, 5, 15, 1], [80, 120, 120, 120]),
    "x_16gf": ([256, 512, 896, 2048], [2, 6, 13, 1], [128, 128, 128, 128]),
    "x_32gf": ([336, 672, 1344, 2520], [2, 7, 13, 1], [168, 168, 168, 168]),
}
BLOCK_CONV = re.compile(r"^trunk_output\.block(\d+)\.block\1-(\d+)\.f\.b\.0$")


def graph(variant: str):
    result = read_spec(FAMILY, params={"variant": variant})
    assert result.graph is not None, [d.message for d in result.diagnostics]
    return result.graph


def stage_plan(variant: str) -> tuple[list[int], list[int], list[int]]:
    """Widths, depths and group widths of the stages, read off the grouped 3x3 conv (`f.b.0`)
    of every block the family's variant builds."""
    stages: dict[int, list[tuple[int, int, int]]] = {}
    for node in graph(variant).nodes:
        m = BLOCK_CONV.match(node.name)
        if m:
            stages.setdefault(int(m[1]), []).append((int(m[2]), node.out_channels, node.groups))
    assert sorted(stages) == list(range(1, len(stages) + 1))
    widths, depths, group_widths = [], [], []
    for s in sorted(stages):
        blocks = stages[s]
        assert [i for i, _, _ in blocks] == list(range(len(blocks)))  # block{s}-0, -1, …
        assert len({(w, g) for _, w, g in blocks}) == 1  # one width, one grouping per stage
        _, w, g = blocks[0]
        widths.append(w)
        depths.append(len(blocks))
        group_widths.append(w // g)
    return widths, depths, group_widths


@pytest.mark.parametrize("variant", sorted(PLANS))
def test_family_computes_torchvisions_stages(variant):
    assert stage_plan(variant) == PLANS[variant]


@pytest.mark.parametrize("variant", sorted(PLANS))
def test_the_table_is_torchvisions_own(variant, monkeypatch):
    """PLANS is what torchvision computes: its builder's BlockParams, caught before the model
    is built."""
    import torchvision
    from torchvision.models import regnet

    monkeypatch.setattr(regnet, "_regnet", lambda params, weights, progress, **kw: params)
    params = torchvision.models.get_model(f"regnet_{variant}", weights=None)
    assert (params.widths, params.depths, params.group_widths) == PLANS[variant]
    assert params.se_ratio == (0.25 if variant.startswith("y") else None)


@pytest.mark.parametrize("variant", ["x_400mf", "x_8gf", "y_400mf", "y_8gf"])
def test_only_regnet_y_squeezes_and_excites(variant):
    """RegNetY's blocks have `f.se` squeezing to a quarter of the block's input channels (the
    stem's 32 for the first: 8); RegNetX's have none."""
    nodes = graph(variant).nodes
    squeezes = [n.out_channels for n in nodes if n.name.endswith(".f.se.fc1")]
    blocks = [n for n in nodes if BLOCK_CONV.match(n.name)]
    if variant.startswith("x"):
        assert squeezes == []
    else:
        assert len(squeezes) == len(blocks) == sum(PLANS[variant][1])
        assert squeezes[0] == 8


def test_family_has_the_fifteen_variants():
    assert read_spec(FAMILY).family.variants == tuple(PLANS)
