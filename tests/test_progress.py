"""Progress shows on a terminal only: pipes, logs and CI see exactly what they saw before."""

from __future__ import annotations

import io

from archc.progress import stages


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stages_are_shown_on_a_terminal_and_cleared_at_the_end():
    screen = Terminal()
    with stages("archc export", ("checking", "exporting"), screen) as step:
        step("checking the spec")
        step("exporting")
        shown = screen.getvalue()
    assert "archc export: checking the spec (1/2), 00:00" in shown
    assert "archc export: exporting (2/2), 00:00" in shown
    # leave=False: the bar's line is blanked, so the command's own last line stands alone.
    assert screen.getvalue().endswith("\r")


def test_nothing_is_written_when_the_stream_is_not_a_terminal():
    pipe = io.StringIO()
    with stages("archc compile", ("importing torch", "generating"), pipe) as step:
        step("importing torch")
        step("generating")
    assert pipe.getvalue() == ""


def test_archc_compile_writes_only_its_result_when_piped(capsys, tmp_path):
    from archc.cli import main

    assert main(["compile", "specs/resnet18.arch", "-o", str(tmp_path / "r.py")]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote {tmp_path / 'r.py'}: ResNet18, 11,689,512 parameters\n"
    assert err == ""
