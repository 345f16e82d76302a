"""A failed claim is the author's number, not the network: summary still prints the table,
the diagnostics go to stderr, and the exit code is 1. compile and load refuse it unless asked."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import archc
from archc.cli import main

DATA = Path(__file__).parent / "data"
# The lecture's VGG-16 table as a PDF's text pastes it: `7*7*512*4096` loses a `*`.
PASTED = (DATA / "lecture_vgg16.arch").read_text().replace("7*7*512*4096", "77*512*4096")
NOT_A_CLAIM = "input [8x8x3]\nWIBBLE 3\n"


@pytest.fixture
def pasted(tmp_path: Path) -> str:
    path = tmp_path / "vgg16.arch"
    path.write_text(PASTED)
    return str(path)


def test_summary_of_the_pasted_vgg16_prints_the_table_and_the_one_error(capsys, pasted):
    code = main(["summary", "--color", "never", pasted])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith(f"VGG16 ({pasted}), input [224x224x3]")
    assert "params       138,357,544 (138.4M; 138,344,128 without biases)" in out
    assert "44 claims checked (22 memory, 22 params): 43 hold" in out
    assert err.count("error[") == 1
    assert "error[E401]: 77*512*4096 is 161,480,704, not 102,760,448" in err


def test_summary_json_with_a_failed_claim_marks_it_not_ok(capsys, pasted):
    assert main(["summary", "--format", "json", pasted]) == 1
    claims = json.loads(capsys.readouterr().out)["claims"]
    assert [c["line"] for c in claims if not c["ok"]] == [23]  # the FC line


def test_a_wrong_declared_shape_still_prints_the_table(capsys, tmp_path):
    path = tmp_path / "a.arch"
    path.write_text("input [224x224x3]\n[55x55x96] CONV1: 96 11x11 stride 4\nFC: 10\n")
    assert main(["summary", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "CONV1  conv 96 11x11 s4  [54x54x96]" in out
    assert "error[E302]" in err


def test_any_other_error_prints_no_table(capsys, tmp_path):
    path = tmp_path / "a.arch"
    path.write_text(NOT_A_CLAIM)
    assert main(["summary", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "error[E105]" in err


def test_summary_api_returns_the_data_with_the_failed_claim():
    data = archc.summary(PASTED)
    assert data["totals"]["params"] == 138_357_544
    assert sum(not c["ok"] for c in data["claims"]) == 1
    with pytest.raises(archc.ArchcError) as exc:
        archc.summary(NOT_A_CLAIM)
    assert [d.code for d in exc.value.diagnostics] == ["E105"]


SMALL_WRONG = "input [8x8x3]\nCONV1: 4 3x3 params: 3*3*3*4 = 100\nFC 10\n"


def test_compile_refuses_a_failed_claim_unless_allowed(capsys, tmp_path):
    spec = tmp_path / "small.arch"
    spec.write_text(SMALL_WRONG)
    out = tmp_path / "small.py"
    assert main(["compile", str(spec), "-o", str(out)]) == 1
    assert not out.exists()
    assert main(["compile", "--allow-claims", str(spec), "-o", str(out)]) == 0
    stdout, err = capsys.readouterr()
    assert "error[E401]" in err
    assert f"wrote {out}: small, " in stdout
    assert "self.CONV1 = nn.Conv2d(3, 4, kernel_size=3)" in out.read_text()


def test_load_refuses_a_failed_claim_unless_allowed_and_warns_it():
    with pytest.raises(archc.ArchcError):
        archc.load(SMALL_WRONG)
    with pytest.warns(archc.diagnostics.SpecWarning, match="E401"):
        model = archc.load(SMALL_WRONG, allow_claims=True)
    assert sum(p.numel() for p in model.parameters()) == 3 * 3 * 3 * 4 + 4 + 6 * 6 * 4 * 10 + 10


def test_load_turns_spec_warnings_into_python_warnings():
    text = "input [224x224x3]\nCONV1: 8 11x11 stride 4\nFC: 10\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        archc.load(text)
    assert [w.category.__name__ for w in caught] == ["SpecWarning"]
    assert "warning[W301]: stride 4 does not tile the input" in str(caught[0].message)
