"""Claims on the network's totals: the lecture's `TOTAL memory:` and `TOTAL params:` lines."""

from __future__ import annotations

from pathlib import Path

from archc.check import check_source
from archc.frontend import parse_spec
from archc.report import summary_dict

VGG16 = (Path(__file__).parent / "data" / "lecture_vgg16.arch").read_text()
# The CS231n slide's last two lines, as printed under its VGG-16 table.
SLIDE_TOTALS = (
    "TOTAL memory: 24M * 4 bytes ~= 96MB / image (only forward! ~*2 for bwd)\n"
    "TOTAL params: 138M parameters\n"
)


def test_the_slides_params_total_holds_and_its_memory_total_does_not():
    checked = check_source(VGG16 + SLIDE_TOTALS, "vgg16.arch")
    totals = [c for c in checked.claims if c.node == "TOTAL"]
    assert [(c.claim.kind, c.claim.printed, c.ok) for c in totals] == [
        ("memory", "24M", False),
        ("params", "138M", True),
    ]
    # 138,357,544 parameters with biases: 138M at the precision printed.
    assert totals[1].matched == "with biases"
    (d,) = checked.diagnostics
    assert (d.code, d.line, d.column) == ("E402", 26, 7)
    assert d.message == (
        "TOTAL memory claim 24M does not match the network's total: archc counts 15,237,608 "
        "(the input included) or 15,087,080 (the input left out) activation values per image"
    )
    # The true sum, and what it means in bytes forward and with the backward pass.
    assert d.help is not None
    assert "24M means 23,500,000 ≤ v < 24,500,000" in d.help
    assert "60,950,432 bytes (58.1 MiB) per image at fp32 for a forward pass" in d.help
    assert "121,900,864 bytes (116.3 MiB) with the backward pass" in d.help


def test_total_claims_appear_in_the_summary_data():
    checked = check_source(VGG16 + "TOTAL params: 138,357,544\n", "vgg16.arch")
    assert checked.ok
    claims = summary_dict(checked)["claims"]
    assert claims[-1] == {
        "node": "TOTAL",
        "kind": "params",
        "claim": "138,357,544",
        "ok": True,
        "matched": "with biases",
        "line": 26,
    }


def test_a_params_total_without_biases_holds_too():
    checked = check_source(VGG16 + "TOTAL params: 138,344,128\n", "vgg16.arch")
    assert checked.ok and checked.claims[-1].matched == "without biases"


def test_a_total_line_without_a_number_is_an_unreadable_claim():
    checked = check_source(VGG16 + "TOTAL params: lots\n", "vgg16.arch")
    assert [(d.code, d.line) for d in checked.diagnostics] == [("E404", 26)]


def test_a_total_inside_a_block_belongs_at_the_top():
    text = "block b:\n    CONV 4 3x3\n    TOTAL params: 5\ninput [8x8x3]\nx: b\n"
    assert [(d.code, d.line) for d in parse_spec(text).diagnostics] == [("E217", 3)]


def test_other_total_lines_still_get_the_comment_hint():
    (d,) = parse_spec("input [8x8x3]\nFC 10\nTOTAL flops: 15.5G\n").diagnostics
    assert (d.code, d.line) == ("E105", 3)
    assert d.help is not None and "TOTAL params:" in d.help and "comment" in d.help
