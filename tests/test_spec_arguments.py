"""FILE as every command takes it (issue 25): `-` for standard input, a shipped spec's name,
and an unknown name said as such; shell completion offers the shipped names."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from archc.cli import build_parser, main
from archc.completion import script
from archc.families import spec_names

SMALL = "network small\ninput [8x8x3]\nCONV: 4 3x3\n"


def run_stdin(monkeypatch, capsys, text: str, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ir_reads_stdin(monkeypatch, capsys):
    code, out, err = run_stdin(monkeypatch, capsys, SMALL, "ir", "-")
    assert (code, err) == (0, "")
    graph = json.loads(out)
    assert graph["file"] == "<stdin>" and graph["name"] == "small"


def test_compile_reads_stdin_into_the_file_named_by_o(monkeypatch, capsys, tmp_path):
    pytest.importorskip("torch")
    target = tmp_path / "small.py"
    code, out, err = run_stdin(monkeypatch, capsys, SMALL, "compile", "-", "-o", str(target))
    assert (code, err) == (0, "")
    # 3·3·3·4 weights + 4 biases.
    assert out.strip() == f"wrote {target}: small, 112 parameters"
    assert "class Small" in target.read_text() or "class small" in target.read_text()


@pytest.mark.parametrize("command", ["compile", "export"])
def test_stdin_without_o_is_a_usage_error(monkeypatch, capsys, tmp_path, command):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_stdin(monkeypatch, capsys, SMALL, command, "-")
    assert (code, out) == (2, "")
    assert err == f"archc {command}: the spec comes from stdin, so name the output with -o\n"
    assert list(tmp_path.iterdir()) == []


def test_train_reads_stdin(monkeypatch, capsys, tmp_path):
    pytest.importorskip("torchvision")
    missing = tmp_path / "no-data"
    classifier = SMALL + "GLOBAL AVG POOL\nFC 2\n"  # training needs class scores
    code, _, err = run_stdin(monkeypatch, capsys, classifier, "train", "-", "--data", str(missing))
    # The spec was read: what stops it is the data, not `-`.
    assert code == 1
    assert err.startswith("archc train: ") and "no-data" in err
    assert "`-`" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["lint", "no-such-net"],
        ["summary", "no-such-net"],
        ["graph", "no-such-net"],
        ["ir", "no-such-net"],
        ["compile", "no-such-net"],
    ],
)
def test_an_unknown_name_is_no_such_file_or_shipped_spec(capsys, argv):
    if argv[0] == "compile":
        pytest.importorskip("torch")
    code = main([*argv, "--color", "never"])
    out, err = capsys.readouterr()
    assert code == 2
    said = out + err
    assert (
        "no-such-net:1:1: error[E001]: `no-such-net`: no such file or shipped spec "
        "(`archc specs` lists the shipped ones)"
    ) in said
    assert "No such file or directory" not in said


def test_bash_completion_offers_the_shipped_names(tmp_path):
    completion = tmp_path / "archc.bash"
    completion.write_text(script("bash", build_parser()))
    names = spec_names()
    assert "torchvision/resnet50" in names
    probe = (
        f"source {completion}\n"
        "COMP_WORDS=(archc summary torchvision/res); COMP_CWORD=2\n"
        "_archc\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    offered = set(done.stdout.split())
    assert {n for n in names if n.startswith("torchvision/res")} <= offered
    assert "torchvision/resnet50" in offered


def test_fish_and_zsh_completion_name_the_shipped_specs():
    fish = script("fish", build_parser())
    assert "torchvision/resnet50" in fish
    zsh = script("zsh", build_parser())
    assert "torchvision/resnet50" in zsh


def test_the_docs_say_every_command_takes_stdin():
    usage = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text()
    for command in ("lint", "summary", "graph", "ir", "compile", "export", "train"):
        help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
        assert "- for stdin" in " ".join(help_text.split()), command
    assert "no such file or shipped spec" in usage
