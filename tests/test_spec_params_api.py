"""Spec params from the outside (issue 23): ``--set NAME=VALUE`` on every command that takes a
spec, keyword arguments of the Python API, a family member's builder name (``tiny_b``)
resolved to its family's spec with ``variant`` set, ``archc specs`` listing families, and the
params of a trained run checked on ``--resume``.

The family here has two variants of different widths: CONV w 3x3 (27w weights + w biases),
global average pooling and FC 10 (10w + 10): 38w + 10 parameters, 314 for w = 8 and 618 for
w = 16.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archc
from archc import families
from archc.cli import main

FAMILY = """network tiny_{variant}
param variant = "a"
param scores = 10
variants(width):
    a: 8
    b: 16

input [8x8x3]
CONV width 3x3 pad 1
GAP
FC scores
"""


def params_of(width: int, scores: int = 10) -> int:
    return 27 * width + width + width * scores + scores


@pytest.fixture
def family(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.arch"
    path.write_text(FAMILY)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def summary_params(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    code, out, err = run(["summary", *argv, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)["totals"]["params"]


def test_the_arithmetic_of_the_two_variants() -> None:
    assert (params_of(8), params_of(16), params_of(16, 4)) == (314, 618, 516)


# --- the Python API ------------------------------------------------------------------------------


def test_summary_takes_the_specs_params_as_keywords(family: Path) -> None:
    assert archc.summary(family)["totals"]["params"] == params_of(8)
    assert archc.summary(family, variant="b")["totals"]["params"] == params_of(16)
    assert archc.summary(str(family), variant="b", scores=4)["totals"]["params"] == 516
    # classes still resizes the class-score layer, beside the spec's own params
    assert archc.summary(family, variant="b", classes=3)["totals"]["params"] == params_of(16, 3)
    assert archc.summary(family, variant="b")["network"] == "tiny_b"


def test_load_builds_the_variant_asked_for(family: Path) -> None:
    torch = pytest.importorskip("torch")
    del torch
    model = archc.load(family, variant="b")
    assert sum(p.numel() for p in model.parameters()) == params_of(16)
    model = archc.load(family.parent / "tiny_b")
    assert sum(p.numel() for p in model.parameters()) == params_of(16)
    model = archc.recipe(family, variant="b", scores=4)["model"]
    assert sum(p.numel() for p in model.parameters()) == params_of(16, 4)
    with pytest.raises(archc.ArchcError) as e:
        archc.load(family.parent / "tiny_b", variant="a")
    assert [d.code for d in e.value.diagnostics] == ["E001"]


def test_lint_reports_a_param_the_spec_does_not_have(family: Path) -> None:
    assert archc.lint(family, variant="b") == []
    (d,) = archc.lint(family, varient="b")
    assert d.code == "E229" and "varient" in d.message, d.message
    assert "variant" in d.message + (d.help or ""), d


def test_a_variant_that_is_no_row_lists_the_keys(family: Path) -> None:
    (d,) = archc.lint(family, variant="c")
    text = d.message + (d.help or "")
    assert d.code == "E229", text
    assert "a, b" in text, text


def test_a_string_for_a_number_param_is_an_error(family: Path) -> None:
    (d,) = archc.lint(family, scores="ten")
    assert d.code == "E229" and "scores" in d.message, d.message


def test_summary_of_a_spec_with_errors_raises(family: Path) -> None:
    with pytest.raises(archc.ArchcError) as e:
        archc.summary(family, variant="zz")
    assert [d.code for d in e.value.diagnostics] == ["E229"]


# --- the builder names of a family ---------------------------------------------------------------


def test_a_builder_name_resolves_to_its_family_and_variant(family: Path) -> None:
    found = families.member(str(family.parent / "tiny_b"))
    assert found is not None
    assert (found.name, found.family, found.variant) == ("tiny_b", family, "b")
    assert families.member(str(family.parent / "tiny_c")) is None
    path, params = families.resolve(str(family.parent / "tiny_a.arch"))
    assert (path, params) == (family, {"variant": "a"})
    assert families.family(family).names == ("tiny_a", "tiny_b")


def test_a_family_that_does_not_parse_is_named_for_its_members(tmp_path: Path, capsys) -> None:
    (tmp_path / "tiny.arch").write_text(FAMILY.replace("GAP", "GAP ]]"))
    code, _, err = run(["summary", str(tmp_path / "tiny_b")], capsys)
    assert code == 2 and "E001" in err and "no such file or shipped spec" in err, err
    assert f"`{tmp_path / 'tiny.arch'}` may define it, but does not parse" in err, err
    with pytest.raises(families.NoSuchSpec, match="may define it, but does not parse"):
        families.resolve(str(tmp_path / "tiny_b"))


def test_a_builder_name_given_another_variant_is_refused(family: Path, capsys) -> None:
    with pytest.raises(families.ParamConflict, match="variant b of `tiny`"):
        families.resolve(str(family.parent / "tiny_b"), {"variant": "a"})
    # the same variant again is no conflict
    assert families.resolve(str(family.parent / "tiny_b"), {"variant": "b"})[1] == {"variant": "b"}
    code, _, err = run(["summary", str(family.parent / "tiny_b"), "--set", "variant=a"], capsys)
    assert code == 2 and "E001" in err and "variant b of `tiny`" in err, err


def test_today_s_shipped_names_still_resolve_to_their_files() -> None:
    path, params = families.resolve("torchvision/resnet50")
    assert path is not None and path.name == "resnet50.arch" and params == {}
    path, params = families.resolve("vgg16")
    assert path is not None and path.name == "vgg16.arch"
    with pytest.raises(families.NoSuchSpec, match="no such file or shipped spec"):
        families.resolve("torchvision/resnet_nonsense")


# --- --set on the command line -------------------------------------------------------------------


def test_summary_set_chooses_the_variant(family: Path, capsys) -> None:
    assert summary_params([str(family)], capsys) == params_of(8)
    assert summary_params([str(family), "--set", "variant=b"], capsys) == params_of(16)
    assert summary_params([str(family), "--set", 'variant="b"'], capsys) == params_of(16)
    assert summary_params([str(family), "--set", "variant=b", "--set", "scores=4"], capsys) == 516
    assert summary_params([str(family.parent / "tiny_b")], capsys) == params_of(16)
    assert summary_params([str(family), "--set", "classes=3"], capsys) == params_of(8, 3)


@pytest.mark.parametrize("command", ["lint", "summary", "ir", "graph"])
def test_every_light_command_takes_set(family: Path, capsys, command: str) -> None:
    code, out, err = run([command, str(family), "--set", "variant=b"], capsys)
    assert code == 0, err
    code, out, err = run([command, str(family), "--set", "varient=b"], capsys)
    assert code == 1 and "E229" in out + err, out + err


def test_ir_prints_the_variants_graph(family: Path, capsys) -> None:
    code, out, err = run(["ir", str(family), "--set", "variant=b"], capsys)
    assert code == 0, err
    graph = json.loads(out)
    convs = [n for n in graph["nodes"] if n["op"] == "conv"]
    assert [n["out_channels"] for n in convs] == [16]
    assert graph["name"] == "tiny_b"
    code, _, err = run(["ir", str(family), "--set", "classes=3"], capsys)
    assert code == 2 and "archc ir: --set classes/input" in err
    code, out, err = run(["ir", str(family.parent / "tiny_b")], capsys)
    assert code == 0 and json.loads(out)["name"] == "tiny_b", err
    code, out, err = run(["ir", str(family.parent / "tiny_b"), "--set", "variant=a"], capsys)
    assert code == 2 and "is variant b of `tiny`" in err, err


@pytest.mark.parametrize(
    ("item", "said"),
    [
        ("variant", "write NAME=VALUE"),
        ("=b", "write NAME=VALUE"),
        ("1x=2", "`1x` is no name"),
        ("classes=zero", "classes=zero"),
    ],
)
def test_a_malformed_set_is_one_usage_line(family: Path, capsys, item: str, said: str) -> None:
    code, out, err = run(["summary", str(family), "--set", item], capsys)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("archc summary: --set") and said in line, line


def test_a_name_set_twice_is_a_usage_error(family: Path, capsys) -> None:
    code, _, err = run(["lint", str(family), "--set", "variant=a", "--set", "variant=b"], capsys)
    assert code == 2 and "`variant` is set twice" in err, err


def test_compile_takes_set(family: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "tiny_b.py"
    code, _, err = run(["compile", str(family), "--set", "variant=b", "-o", str(out)], capsys)
    assert code == 0, err
    assert "nn.Conv2d(3, 16" in out.read_text()


# --- archc specs ----------------------------------------------------------------------------------


def test_specs_lists_a_family_with_its_variants_and_builders(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from archc import library

    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "tiny.arch").write_text(FAMILY)
    (tmp_path / "plain.arch").write_text("network plain\ninput [8x8x3]\nCONV 8 3x3\n")
    monkeypatch.setattr(library, "SPECS_DIR", tmp_path)
    code, out, err = run(["specs"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("nets/tiny") and "tiny_a: 314 params" in lines[0], lines
    assert lines[1].split() == ["variants", "(tiny_{variant}):", "a,", "b"]
    assert lines[2].split() == ["builders:", "nets/tiny_a,", "nets/tiny_b"]
    assert lines[3].startswith("plain ") and "plain: 224 params" in lines[3]
    code, out, err = run(["specs", "--format", "json"], capsys)
    tiny, plain = json.loads(out)
    assert tiny["family"] == {
        "template": "tiny_{variant}",
        "default": "a",
        "variants": [
            {"variant": "a", "name": "nets/tiny_a"},
            {"variant": "b", "name": "nets/tiny_b"},
        ],
    }
    assert (tiny["params"], plain["params"]) == (314, 224)
    assert "family" not in plain
    # the builder names load from the shipped library too, and completion offers them
    path, params = families.resolve("nets/tiny_b")
    assert (path, params) == (tmp_path / "nets" / "tiny.arch", {"variant": "b"})
    assert families.spec_names() == ["nets/tiny", "nets/tiny_a", "nets/tiny_b", "plain"]


# --- a trained run keeps its params ---------------------------------------------------------------

TRAINED = """network tiny_{variant}
param variant = "a"
param note = "x"
variants(width):
    a: 4
    b: 8
conv: bn, relu
train:
    lr 0.1
    batch size 4
    epochs 2
    augment none

input [8x8x3]
CONV width 3x3 pad 1
GAP
FC 2
"""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torchvision")
    from shapes_data import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny"))


def test_resume_refuses_other_params(tiny_data: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from archc.training import loop

    spec = tmp_path / "tiny.arch"
    spec.write_text(TRAINED)
    out = tmp_path / "run"
    base = ["train", str(spec), "--data", str(tiny_data), "--out", str(out), "--workers", "0"]
    real = loop.validate

    def stop_in_epoch_2(r, epoch):  # noqa: ANN001, ANN202
        if epoch == 2:
            raise KeyboardInterrupt
        return real(r, epoch)

    with monkeypatch.context() as m:
        m.setattr(loop, "validate", stop_in_epoch_2)
        assert main([*base, "--set", "variant=b"]) == 130
    capsys.readouterr()
    # another variant: refused, naming the params
    code, _, err = run([*base, "--resume"], capsys)
    assert code == 1 and 'variant "b" -> "a"' in err, err
    # a param that leaves the network as it is still makes another run
    code, _, err = run([*base, "--resume", "--set", "variant=b", "--set", "note=y"], capsys)
    assert code == 1 and 'note "x" -> "y"' in err, err
    # the builder's name is the same params as --set variant=b
    code, out, err = run(["train", str(tmp_path / "tiny_b"), *base[2:], "--resume"], capsys)
    assert code == 0, err
    assert "resuming" in out + err, out + err


def test_export_takes_a_member_name_and_set(family: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "tiny_b.onnx"
    code, _, err = run(["export", str(family.parent / "tiny_b"), "-o", str(out)], capsys)
    assert code == 0 and out.is_file(), err
    code, _, err = run(["export", str(family), "--set", "scores=zero", "-o", str(out)], capsys)
    assert code == 1 and "E229" in err and "scores" in err, err
