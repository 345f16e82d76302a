"""The Python API and the shell habits: archc.lint/summary without torch, `-` for stdin,
summary --depth, shipped specs by name, shell completion."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import archc
from archc.cli import main

ROOT = Path(__file__).resolve().parent.parent
WARN_ONLY = "input [224x224x3]\nCONV1: 96 11x11 stride 4\nFC: 10\n"


def test_lint_takes_text_or_a_path_and_returns_the_diagnostics(tmp_path):
    (d,) = archc.lint(WARN_ONLY)
    assert (d.code, d.line, d.severity) == ("W301", 2, "warning")
    path = tmp_path / "net.arch"
    path.write_text(WARN_ONLY)
    assert [x.code for x in archc.lint(path)] == ["W301"]
    assert archc.lint(str(ROOT / "specs/vgg16.arch")) == []


def test_a_line_expects_the_warnings_its_comment_names():
    expected = "input [224x224x3]\nCONV1: 96 11x11 stride 4  # expect W301\nFC: 10\n"
    assert archc.lint(expected) == []
    from archc.check import check_spec

    checked = check_spec(expected)
    assert [d.code for d in checked.expected] == ["W301"]
    # Another code: the warning stays, and the expectation no finding meets is E408.
    other = archc.lint(expected.replace("W301", "W219"))
    assert sorted((d.code, d.line) for d in other) == [("E408", 2), ("W301", 2)]
    # On another line it acknowledges nothing there.
    moved = "input [224x224x3]\nCONV1: 96 11x11 stride 4\nFC: 10  # expect W301\n"
    assert sorted((d.code, d.line) for d in archc.lint(moved)) == [("E408", 3), ("W301", 2)]
    # Errors and warnings alike, several on one line.
    wrong = "input [224x224x3]\nCONV1: 96 11x11 stride 4 -> [55x55x96]  # expect W301 E302\n"
    assert archc.lint(wrong) == []
    assert [d.code for d in archc.lint(wrong.replace(" E302", ""))] == ["E302"]


def test_summary_returns_the_json_fields():
    data = archc.summary("torchvision/resnet50")
    assert data["network"] == "resnet50"
    assert data["totals"]["params"] == 25_557_032
    assert data["layers"][1]["name"] == "conv1"
    assert data["layers"][1]["output_shape"] == [64, 112, 112]


def test_lint_and_summary_never_import_torch():
    code = (
        "import sys, archc\n"
        "archc.lint('torchvision/resnet18'); archc.summary('torchvision/resnet18')\n"
        "print('torch' in sys.modules, 'triton' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_missing_name_is_no_such_file_or_shipped_spec():
    (d,) = archc.lint("mynet")
    assert d.code == "E001"
    assert "`mynet`: no such file or shipped spec" in d.message
    with pytest.raises(archc.ArchcError, match="no such file or shipped spec"):
        archc.load("mynet")


def run(capsys, argv: list[str], stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_dash_reads_the_spec_from_stdin(capsys, monkeypatch):
    code, out, _ = run(capsys, ["lint", "-"], WARN_ONLY, monkeypatch)
    assert code == 0 and "<stdin>:2:1: warning[W301]" in out
    code, out, _ = run(capsys, ["summary", "--format", "json", "-"], WARN_ONLY, monkeypatch)
    assert code == 0 and json.loads(out)["layers"][1]["output_shape"] == [96, 54, 54]


def test_summary_of_a_shipped_spec_by_name(capsys):
    code, out, _ = run(capsys, ["summary", "torchvision/resnet50", "--format", "json"])
    assert code == 0 and json.loads(out)["totals"]["params"] == 25_557_032


def test_every_command_takes_a_shipped_spec_by_name(capsys, tmp_path, monkeypatch):
    # compile and ir once read only paths, though the docs promise every command the names.
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, ["ir", "torchvision/squeezenet1_0"])
    assert code == 0 and json.loads(out)["name"] == "squeezenet1_0"
    code, out, _ = run(capsys, ["compile", "torchvision/squeezenet1_0"])
    assert code == 0 and out.startswith("wrote squeezenet1_0.py: squeezenet1_0, 1,248,424")
    assert (tmp_path / "squeezenet1_0.py").is_file()  # in the current directory, not the library


def test_depth_rolls_resnet152_up_to_its_stages(capsys):
    code, out, _ = run(capsys, ["summary", "resnet152", "--depth", "1"])
    assert code == 0
    rows = out.split("\n\n")[1].splitlines()[2:]
    assert [r.split()[0] for r in rows] == [
        "input", "conv1", "bn1", "relu1", "pool1",
        "conv2_x", "conv3_x", "conv4_x", "conv5_x", "avgpool1", "fc1", "softmax1",
    ]  # fmt: skip
    conv4 = next(r for r in rows if r.startswith("conv4_x"))
    assert "36 × bottleneck_v1 (362 layers)" in conv4 and "[14x14x1024]" in conv4
    assert "40,613,888" in conv4  # the stage's parameters, summed
    assert "fusion plan: 155 groups (listed without --depth)" in out
    _, full, _ = run(capsys, ["summary", "resnet152"])
    assert len(full.splitlines()) == 697  # with the 10 lines of the training recipe
    _, blocks, _ = run(capsys, ["summary", "resnet152", "--depth", "2"])
    assert "conv4_x.35  bottleneck_v1 (10 layers)" in blocks


def test_specs_lists_every_shipped_spec_with_its_costs(capsys):
    code, out, _ = run(capsys, ["specs"])
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line and "  " in line}
    assert "torchvision/resnet" in lines and "blocks/resnet" in lines
    # A family spec's line names its default member; its builders follow, each a spec name.
    assert lines["torchvision/resnet"].split(None, 1)[1].startswith("resnet50: 25.6M params")
    assert "builders: torchvision/resnet18, torchvision/resnet34, torchvision/resnet50," in out
    assert lines["vgg16"].split(None, 1)[1] == "VGG16: 138.4M params, 15.5G MACs per image"
    assert "block library: basic, bottleneck_v1, bottleneck_v1_5" in lines["blocks/resnet"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_every_command(capsys, shell):
    code, out, _ = run(capsys, ["completion", shell])
    assert code == 0
    for command in ("lint", "summary", "compile", "specs", "completion"):
        assert command in out
    assert "--depth" in out or "-l depth" in out


def test_bash_completion_completes_commands_and_choices(capsys, tmp_path):
    _, script, _ = run(capsys, ["completion", "bash"])
    path = tmp_path / "archc.bash"
    path.write_text(script)
    probe = (
        f"source {path}\n"
        "COMP_WORDS=(archc su); COMP_CWORD=1; _archc; echo ${COMPREPLY[@]}\n"
        'COMP_WORDS=(archc summary --format ""); COMP_CWORD=3; _archc; echo ${COMPREPLY[@]}\n'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["summary", "text markdown json"]


def test_depth_names_one_sequential_block_once(capsys):
    # A sequential block numbers its own layers (features.0.0, features.0.1): one call, not two;
    # an SE block inside a `bneck` leaves the row the `bneck`'s.
    code, out, _ = run(capsys, ["summary", "torchvision/convnext_tiny", "--depth", "2"])
    rows = {r.split()[0]: r.split(None, 1)[1] for r in out.split("\n\n")[1].splitlines()[2:]}
    assert rows["features.0"].startswith("stem (2 layers)")
    assert rows["features.1"].startswith("3 × cnblock (30 layers)")
    code, out, _ = run(capsys, ["summary", "torchvision/mobilenet_v3_small", "--depth", "2"])
    rows = {r.split()[0]: r.split(None, 1)[1] for r in out.split("\n\n")[1].splitlines()[2:]}
    assert rows["features.0"].startswith("conv_bn_act (3 layers)")
    assert rows["features.1"].startswith("bneck (11 layers)")


def test_an_expectation_on_a_call_line_points_into_the_block():
    text = "input [9x9x3]\nblock b(s):\n    CONV 4 2x2 stride s\nb(2)  # expect W301\n"
    stale = {d.code: d for d in archc.lint(text)}
    assert stale["E408"].line == 4
    assert "reported inside the block, at line 3" in stale["E408"].help
    moved = "input [9x9x3]\nblock b(s):\n    CONV 4 2x2 stride s  # expect W301\nb(2)\n"
    assert archc.lint(moved) == []


def test_the_table_prints_a_channels_last_map_as_height_width_channels(capsys):
    # The tensor after `permute 0 2 3 1` is (H, W, C) = (56, 56, 384); printed as every shape,
    # it read [56x384x56]. The table prints the map, marked; the JSON keeps the tensor's shape.
    code, out, _ = run(capsys, ["summary", "torchvision/convnext_tiny"])
    row = next(r for r in out.splitlines() if r.startswith("features.1.0.block.3 "))
    assert "FC 384 channels last" in row and "[56x56x384] channels last" in row
    code, out, _ = run(capsys, ["summary", "torchvision/convnext_tiny", "--format", "json"])
    layer = next(la for la in json.loads(out)["layers"] if la["name"] == "features.1.0.block.3")
    assert layer["output_shape"] == [56, 56, 384]
