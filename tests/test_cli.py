"""The archc command: exit codes, output formats, many files, unreadable files, lean imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archc import __version__, ir
from archc.cli import main

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
VGG16 = str(DATA / "lecture_vgg16.arch")
ALEXNET = str(DATA / "lecture_alexnet.arch")

# (224 - 11)/4 + 1 = 54.25: a warning, and no declared shape to contradict.
WARN_ONLY = "input [224x224x3]\nCONV1: 96 11x11 stride 4\nFC: 10\n"
# The declared [55x55x96] is wrong at 224: an error on line 2.
ERROR = "input [224x224x3]\n[55x55x96] CONV1: 96 11x11 stride 4\nFC: 10\n"


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in (("warn", WARN_ONLY), ("error", ERROR)):
        path = tmp_path / f"{name}.arch"
        path.write_text(text)
        paths[name] = str(path)
    paths["missing"] = str(tmp_path / "missing.arch")
    return paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_clean_file_exits_0(capsys):
    code, out, _ = run(capsys, "lint", VGG16)
    assert code == 0
    assert out.strip() == "1 file checked: 0 errors, 0 warnings, 44 of 44 claims hold"


def test_lint_warnings_alone_exit_0_and_show_the_source(capsys, specs):
    code, out, _ = run(capsys, "lint", "--color", "never", specs["warn"])
    assert code == 0
    assert f"{specs['warn']}:2:" in out and "warning[W301]" in out
    assert "2 | CONV1: 96 11x11 stride 4" in out
    assert "= help: an input of 227 or 223 tiles exactly" in out
    assert "\033[" not in out
    assert out.rstrip().endswith("1 file checked: 0 errors, 1 warning")


def test_lint_error_exits_1(capsys, specs):
    code, out, _ = run(capsys, "lint", specs["warn"], specs["error"])
    assert code == 1
    assert "error[E302]" in out
    assert "2 files checked: 1 error, 2 warnings" in out


def test_lint_unreadable_file_exits_2_and_still_reports_the_others(capsys, specs):
    code, out, _ = run(capsys, "lint", "--format", "json", specs["error"], specs["missing"])
    assert code == 2
    found = json.loads(out)
    assert {(d["file"], d["code"]) for d in found} >= {
        (specs["missing"], "E001"),
        (specs["error"], "E302"),
    }


def test_lint_binary_file_exits_2(capsys, tmp_path):
    binary = tmp_path / "weights.arch"
    binary.write_bytes(b"\x80\x02\x00PK")
    code, out, _ = run(capsys, "lint", "--format", "json", str(binary))
    assert code == 2
    assert [d["code"] for d in json.loads(out)] == ["E002"]


def test_lint_json_is_one_list_over_all_files(capsys, specs):
    code, out, _ = run(capsys, "lint", "--format", "json", specs["warn"], specs["error"], VGG16)
    assert code == 1
    found = json.loads(out)
    assert isinstance(found, list)
    assert [(Path(d["file"]).name, d["line"], d["code"]) for d in found] == [
        ("warn.arch", 2, "W301"),
        ("error.arch", 2, "W301"),
        ("error.arch", 2, "E302"),
    ]
    for d in found:
        assert {"file", "line", "column", "severity", "code", "message", "help"} <= d.keys()
    assert [d["severity"] for d in found] == ["warning", "warning", "error"]


def test_lint_json_of_a_clean_file_is_an_empty_list(capsys):
    code, out, _ = run(capsys, "lint", "--format", "json", VGG16)
    assert (code, json.loads(out)) == (0, [])


def test_lint_github_annotations(capsys, specs):
    code, out, _ = run(capsys, "lint", "--format", "github", specs["error"])
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"::warning file={specs['error']},line=2,col=1,")
    assert lines[1].startswith(f"::error file={specs['error']},line=2,col=1,")
    assert "title=E302::declared shape [55x55x96] does not match" in lines[1]


def test_lint_colour_only_when_asked_or_on_a_tty(capsys, specs):
    _, out, _ = run(capsys, "lint", "--color", "always", specs["warn"])
    assert "\033[33mwarning[W301]" in out
    _, out, _ = run(capsys, "lint", specs["warn"])  # auto, and capsys is not a tty
    assert "\033[" not in out


def test_usage_errors_exit_2(capsys):
    for argv in (["lint"], ["summary", VGG16, "--batch", "0"], ["lint", "--format", "xml", VGG16]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def test_summary_json(capsys):
    code, out, _ = run(capsys, "summary", VGG16, "--format", "json", "--batch", "2")
    assert code == 0
    summary = json.loads(out)
    first_conv = next(la for la in summary["layers"] if la["op"] == "conv")
    # (3*3*3)*64 weights + 64 biases; 224x224x64 outputs; MACs 1,728 per output position
    assert first_conv["output_shape"] == [64, 224, 224]
    assert first_conv["params"] == 1_792
    assert first_conv["macs"] == 1_728 * 224 * 224
    assert first_conv["activations"] == 224 * 224 * 64
    fc = summary["layers"][-1]
    assert (fc["op"], fc["output_shape"], fc["params"]) == ("linear", [1000], 4_097_000)
    totals = summary["totals"]
    assert totals["params"] == 138_357_544
    assert totals["activations"] == 15_237_608
    assert totals["forward_bytes"] == 15_237_608 * 2 * 4 + 138_357_544 * 4
    assert totals["train_bytes"] == 2 * 15_237_608 * 2 * 4 + 3 * 138_357_544 * 4
    assert {"params", "macs", "activations", "forward_bytes", "train_bytes"} <= totals.keys()


def test_summary_text_and_markdown(capsys):
    code, out, _ = run(capsys, "summary", VGG16)
    assert code == 0
    assert "name" in out and "fused group" in out
    assert "3.2M" in out and "1,792" in out
    assert "fusion plan (13 groups)" in out
    assert "138,357,544" in out
    code, out, _ = run(capsys, "summary", VGG16, "--format", "markdown", "--dtype", "fp16")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| name |"))
    assert lines[header + 1].startswith("| --- | --- |")
    assert "fp16" in out


def test_summary_with_errors_prints_diagnostics_and_exits_1(capsys, specs):
    # A wrong declared shape is a failed claim: the table still prints (test_failed_claims.py).
    code, out, err = run(capsys, "summary", specs["error"])
    assert code == 1 and out.startswith("error (")
    assert "error[E302]" in err


def test_ir_prints_the_graph_and_schema_prints_its_schema(capsys, specs):
    code, out, _ = run(capsys, "ir", ALEXNET)
    assert code == 0
    graph = ir.Graph.from_json(out)
    assert graph.nodes[0].shape == (3, 227, 227)
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out)["title"] == "Graph"
    code, out, err = run(capsys, "ir", specs["missing"])
    assert code == 2 and out == "" and "E001" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"archc {__version__}"


def test_python_dash_m_and_no_torch_on_the_lint_path(specs):
    # lint, summary and ir must not import torch or triton (editor and pre-commit speed).
    probe = (
        "import sys, contextlib, io\n"
        "from archc.cli import main\n"
        "codes = []\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    codes.append(main(['lint', {VGG16!r}, {specs['warn']!r}]))\n"
        f"    codes.append(main(['summary', {VGG16!r}, '--format', 'json']))\n"
        f"    codes.append(main(['ir', {ALEXNET!r}]))\n"
        "print(codes, sorted(m for m in ('torch', 'triton') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[0, 0, 0] []"
    done = subprocess.run(
        [sys.executable, "-m", "archc", "lint", specs["error"]],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 1 and "error[E302]" in done.stdout


def test_compile_reports_spec_errors_with_exit_1(capsys, specs, tmp_path):
    code, out, err = run(capsys, "compile", specs["error"], "-o", str(tmp_path / "x.py"))
    assert code == 1 and "error[E302]" in err
    assert not (tmp_path / "x.py").exists()


def test_compile_into_an_existing_directory_writes_the_stem_there(capsys, tmp_path):
    code, out, err = run(capsys, "compile", VGG16, "-o", str(tmp_path))
    assert code == 0 and err == ""
    assert out == f"wrote {tmp_path / 'lecture_vgg16.py'}: VGG16, 138,357,544 parameters\n"
    assert (tmp_path / "lecture_vgg16.py").read_text().startswith("# Generated by archc from")


def test_compile_to_a_path_it_cannot_write_is_one_line_and_exit_2(capsys, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    code, out, err = run(capsys, "compile", VGG16, "-o", str(blocker / "vgg16.py"))
    assert (code, out) == (2, "")
    assert err.startswith(f"archc compile: cannot write {blocker}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_lint_of_a_directory_checks_the_arch_files_under_it(capsys, tmp_path):
    (tmp_path / "nets" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    shutil.copy(ALEXNET, tmp_path / "nets" / "a.arch")
    shutil.copy(VGG16, tmp_path / "nets" / "deep" / "b.arch")
    (tmp_path / "nets" / "deep" / "bad.arch").write_text("input [8x8x3]\nCONV: 4 3x3 $\n")
    (tmp_path / "nets" / "notes.txt").write_text("not a spec")
    (tmp_path / ".hidden" / "c.arch").write_text("not read: hidden directories are skipped")
    code, out, _ = run(capsys, "lint", str(tmp_path))
    assert code == 1
    assert out.rstrip().splitlines()[-1].startswith("3 files checked: 1 error,")
    assert f"{tmp_path / 'nets' / 'deep' / 'bad.arch'}:2:" in out
    assert "c.arch" not in out


def test_lint_of_a_directory_without_specs_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "lint", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"archc lint: no .arch files under {tmp_path}\n"


@pytest.mark.parametrize("command", ["lint", "summary", "ir", "schema", "compile"])
def test_every_subcommand_has_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: archc {command}")


def test_summary_bytes_follow_dtype_and_batch(capsys):
    _, out, _ = run(capsys, "summary", VGG16, "--format", "json", "--dtype", "bf16", "--batch", "4")
    totals = json.loads(out)["totals"]
    # bf16: 2 bytes a value
    assert totals["activation_bytes"] == 15_237_608 * 2
    assert totals["batch_activation_bytes"] == 15_237_608 * 4 * 2
    assert totals["param_bytes"] == 138_357_544 * 2


RESNET_BLOCKS = str(ROOT / "specs" / "blocks" / "resnet.arch")
LIBRARY_MESSAGE = (
    "a block library (4 blocks: basic, bottleneck_v1, bottleneck_v1_5, bottleneck_x): nothing to"
)


def test_lint_checks_a_block_library_and_exits_0(capsys):
    code, out, err = run(capsys, "lint", RESNET_BLOCKS)
    assert (code, err) == (0, "")
    assert out.strip() == "1 file checked: 0 errors, 0 warnings"


@pytest.mark.parametrize(("command", "verb"), [("summary", "summarise"), ("ir", "print")])
def test_summary_and_ir_of_a_block_library_say_so_and_exit_2(capsys, command, verb):
    code, out, err = run(capsys, command, RESNET_BLOCKS)
    assert (code, out) == (2, "")
    assert err == f"{RESNET_BLOCKS}: {LIBRARY_MESSAGE} {verb}; import it from a network spec\n"


def test_compile_of_a_block_library_says_so_and_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "compile", RESNET_BLOCKS, "-o", str(tmp_path / "x.py"))
    assert (code, out) == (2, "")
    assert err.startswith(f"{RESNET_BLOCKS}: {LIBRARY_MESSAGE} compile;")
    assert not (tmp_path / "x.py").exists()


def test_a_library_with_an_error_is_reported_as_an_error(capsys, tmp_path):
    path = tmp_path / "lib.arch"
    path.write_text("block b(w):\n    CONV: w 3x3 $\n")
    code, out, err = run(capsys, "summary", str(path))
    assert (code, out) == (1, "")
    assert "error[E101]" in err and "block library" not in err


def test_main_leaves_the_cycle_collector_as_it_found_it(capsys):
    # main() turns the collector off for the command (start-up speed); a caller in a longer
    # process, like this test session, gets it back on, or off if it was off.
    import gc

    assert gc.isenabled()
    assert run(capsys, "lint", VGG16)[0] == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert run(capsys, "summary", RESNET_BLOCKS)[0] == 2
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_program_exits_with_mains_status_and_freezes_only_then(monkeypatch, specs, capsys):
    # `archc.cli.run` is the console script: main's exit status, then gc.freeze() so that the
    # interpreter's last collection does not rescan what the imports left; main() alone does not
    # freeze (tests and other programs call it in a longer-lived process).
    import archc.cli

    frozen: list[bool] = []
    monkeypatch.setattr(archc.cli.gc, "freeze", lambda: frozen.append(True))
    assert main(["lint", specs["warn"]]) == 0
    assert frozen == []
    for spec, status in ((specs["warn"], 0), (specs["error"], 1)):
        monkeypatch.setattr(sys, "argv", ["archc", "lint", spec])
        with pytest.raises(SystemExit) as exc:
            archc.cli.run()
        assert exc.value.code == status
    assert frozen == [True, True]
    capsys.readouterr()


def test_the_console_script_and_python_dash_m_are_the_program():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["archc"] == "archc.cli:run"
    assert "run()" in (ROOT / "archc" / "__main__.py").read_text()


def test_a_misspelt_command_gets_the_nearest(capsys) -> None:
    assert main(["sumary", "specs/vgg16.arch"]) == 2
    assert capsys.readouterr().err == "archc: unknown command `sumary`: did you mean `summary`?\n"
    with pytest.raises(SystemExit) as done:  # nothing near: argparse's list of the commands
        main(["frobnicate"])
    assert done.value.code == 2
    assert "invalid choice: 'frobnicate' (choose from 'lint'" in capsys.readouterr().err


def test_the_help_names_every_exit_code(capsys) -> None:
    """130 (Ctrl-C, test_hostile's test_ctrl_c_exits_130_without_a_traceback) was left out."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes: 0 clean" in out and "130 stopped by Ctrl-C" in out
