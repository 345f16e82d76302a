"""The lecture's own tables (tests/data/lecture_*.arch), linted and summarised.

Reference numbers are the CS231n lecture's (AlexNet's 55x55x96 after CONV1, VGG16's memory and
params columns) and arithmetic written in the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.check import check_file, check_source
from archc.numbers import read_printed
from archc.report import summary_dict

DATA = Path(__file__).parent / "data"
ALEXNET = DATA / "lecture_alexnet.arch"
VGG16 = DATA / "lecture_vgg16.arch"


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_lecture_alexnet_at_227_is_clean():
    checked = check_file(ALEXNET)
    assert checked.diagnostics == []
    layers = {la["name"]: la for la in summary_dict(checked)["layers"]}
    assert layers["CONV1"]["output_shape"] == [96, 55, 55]
    assert layers["MAX_POOL1"]["output_shape"] == [96, 27, 27]
    assert layers["MAX_POOL3"]["output_shape"] == [256, 6, 6]
    assert layers["FC8"]["output_shape"] == [1000]
    # (3*11*11)*96 + 96 = 34,944 parameters in CONV1 (no groups in the lecture's version)
    assert layers["CONV1"]["params"] == 34_944


def test_lecture_alexnet_at_224_warns_at_conv1_and_rejects_the_declared_shapes():
    text = ALEXNET.read_text().replace("[227x227x3]", "[224x224x3]")
    checked = check_source(text, "alexnet224.arch")
    found = [(d.code, d.line) for d in checked.diagnostics]
    conv1 = line_of(text, "CONV1:")
    pool3 = line_of(text, "MAX POOL3:")
    # Every declared map from CONV1 to MAX POOL3 no longer matches; the FC sizes still do.
    expected = [("W301", conv1)] + [("E302", line) for line in range(conv1, pool3 + 1)]
    assert sorted(found, key=lambda f: (f[1], f[0])) == sorted(expected, key=lambda f: (f[1], f[0]))
    w301 = next(d for d in checked.diagnostics if d.code == "W301")
    assert "(224 − 11 + 2·0)/4 + 1 = 54.25 → 54" in w301.message
    assert "the last 1 row and column of the input are never read" in w301.message
    assert "227" in w301.help
    e302 = next(d for d in checked.diagnostics if d.code == "E302")
    assert e302.message == "declared shape [55x55x96] does not match the inferred [54x54x96]"
    assert e302.column == 1  # at the declared `[55x55x96]` that starts the line


def test_lecture_vgg16_claims_verify_one_by_one():
    checked = check_file(VGG16)
    assert checked.diagnostics == []
    assert len(checked.claims) == 44  # memory and params on each of 22 lines
    assert all(c.ok for c in checked.claims)


# (needle on the line, the claim as printed, the same claim wrong)
WRONG = [
    ("(3*3*64)*64 = 36,864", "36,864", "36,846"),  # a typo in the printed value
    ("memory: 56*56*256=800K", "56*56*256=800K", "56*56*256=8.0M"),
    ("(3*3*256)*512 = 1,179,648", "(3*3*256)*512", "(3*3*256)*256"),  # arithmetic of another
    ("4096*1000 = 4,096,000", "4,096,000", "4,096,001"),
]


@pytest.mark.parametrize(("needle", "right", "wrong"), WRONG)
def test_one_wrong_claim_is_reported_alone_at_its_line(needle, right, wrong):
    text = VGG16.read_text()
    line = line_of(text, needle)
    lines = text.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(right, wrong, 1)
    changed = "".join(lines)
    assert changed != text
    checked = check_source(changed, "vgg16.arch")
    assert [(d.line, d.severity) for d in checked.diagnostics] == [(line, "error")]
    assert checked.diagnostics[0].code in {"E401", "E402", "E403"}
    assert [c.ok for c in checked.claims].count(False) == 1


def test_vgg16_summary_reproduces_the_lecture_memory_column():
    checked = check_file(VGG16)
    summary = summary_dict(checked)
    rows = [la for la in summary["layers"] if la["op"] in {"input", "conv", "maxpool", "linear"}]
    # The lecture's memory column, as its own arithmetic and as its printed rounding.
    lecture = [
        (224 * 224 * 3, "150K"),
        *[(224 * 224 * 64, "3.2M")] * 2,
        (112 * 112 * 64, "800K"),
        *[(112 * 112 * 128, "1.6M")] * 2,
        (56 * 56 * 128, "400K"),
        *[(56 * 56 * 256, "800K")] * 3,
        (28 * 28 * 256, "200K"),
        *[(28 * 28 * 512, "400K")] * 3,
        (14 * 14 * 512, "100K"),
        *[(14 * 14 * 512, "100K")] * 3,
        (7 * 7 * 512, "25K"),
        (4096, "4096"),
        (4096, "4096"),
        (1000, "1000"),
    ]
    assert [r["activations"] for r in rows] == [exact for exact, _ in lecture]
    assert all(read_printed(p).admits(r["activations"]) for r, (_, p) in zip(rows, lecture))
    totals = summary["totals"]
    # The true sum of the column: the lecture's "24M" total overstates its own column.
    assert totals["activations"] == sum(exact for exact, _ in lecture) == 15_237_608
    assert totals["activation_bytes"] == 15_237_608 * 4  # 61.0 MB (58.1 MiB) per image at fp32
    # 138M parameters: the lecture's weights, plus 13,416 biases it leaves out.
    weights = (
        3 * 3 * 3 * 64
        + 3 * 3 * 64 * 64
        + 3 * 3 * 64 * 128
        + 3 * 3 * 128 * 128
        + 3 * 3 * 128 * 256
        + 2 * 3 * 3 * 256 * 256
        + 3 * 3 * 256 * 512
        + 5 * 3 * 3 * 512 * 512
        + 7 * 7 * 512 * 4096
        + 4096 * 4096
        + 4096 * 1000
    )
    biases = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512 + 4096 + 4096 + 1000
    assert totals["params_without_biases"] == weights == 138_344_128
    assert totals["params"] == weights + biases == 138_357_544
