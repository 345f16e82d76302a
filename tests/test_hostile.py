"""Hostile input (issue 11): no spec is ever lost, no tiny file hangs, nothing is disclosed,
nothing ends in a traceback. One test per case the issue lists; each asserts the code, the exit
status, and where time could run away, that the work is bounded by the file, not its numbers."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import pytest

import archc
from archc import diagnostics, ir
from archc.check import check_graph, check_source
from archc.cli import main
from archc.frontend import read_spec
from archc.numbers import fmt_int
from archc.passes import shapes
from archc.passes.shapes import unread_rows


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@contextmanager
def guard(seconds: int = 20) -> Iterator[None]:
    """A generous backstop so that a regression fails instead of hanging the suite; the tests
    prove boundedness by counting steps, not by timing."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- 2: time bounded by the file, not the numbers in it -----------------------------------------


def _brute_tiling(size: int, k: int, s: int, p: int) -> tuple[int | None, int, int | None]:
    """The scans the closed forms replaced, kept as their specification."""
    below = next((h for h in range(size - 1, 0, -1) if unread_rows(h, k, s, p) == 0), None)
    above = next(h for h in range(size + 1, size + s + 1) if unread_rows(h, k, s, p) == 0)
    pads = [q for q in range(p + 1, p + s + 1) if 2 * q <= k and unread_rows(size, k, s, q) == 0]
    return below, above, pads[0] if pads else None


def test_tiling_hint_closed_form_agrees_with_the_scan() -> None:
    cases = 0
    for size, k, s, p in itertools.product(range(1, 25), range(1, 14), range(1, 11), range(9)):
        if k <= size + 2 * p and unread_rows(size, k, s, p):
            below, above = shapes._tiling_inputs(size, k, s, p)
            assert (below, above, shapes._tiling_padding(size, k, s, p)) == _brute_tiling(
                size, k, s, p
            ), (size, k, s, p)
            cases += 1
    assert cases > 3000


def test_projection_stride_closed_form_agrees_with_the_scan() -> None:
    for size in range(1, 80):
        for out in range(-1, 82):
            scan = next((s for s in range(1, size + 1) if (size - 1) // s + 1 == out), None)
            assert shapes._least_stride(size, out) == scan, (size, out)


def test_huge_stride_residual_resolves_in_constant_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3.9 s before: every stride up to 16,777,216 was tried on each axis.
    calls = []
    least = shapes._least_stride
    monkeypatch.setattr(shapes, "_least_stride", lambda n, o: calls.append(n) or least(n, o))
    text = (
        "input [16777216x16777216x1]\nblock b():\n    residual:\n"
        "        CONV: 1 1x1 stride 16777216\n    shortcut: auto\n    add\nb()\n"
    )
    with guard():
        checked = check_source(text, "proj.arch")
    assert checked.ok
    conv = next(n for n in checked.graph.nodes if n.name.endswith("downsample.0"))
    assert isinstance(conv, ir.Conv) and conv.stride == (16777216, 16777216)
    assert calls == [16777216, 16777216]


def test_512_nested_shortcuts_lint_quickly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # > 600 s before: 512 projections, each searching 2^24 strides per axis.
    spec = tmp_path / "nest.arch"
    spec.write_text(
        "input [16777216x16777216x1]\nblock b0():\n    residual:\n        CONV: 1 1x1 stride 2\n"
        "    shortcut: auto\n    add\nblock b1():\n    b0() x8\nblock b2():\n    b1() x8\n"
        "b2() x8\n"
    )
    with guard():
        code, out, _ = run(capsys, "lint", str(spec))
    assert (code, out) == (0, "1 file checked: 0 errors, 0 warnings\n")


def test_w301_hint_on_huge_numbers_is_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    # 9.3 s before: the hint scanned 8,388,608 sizes and paddings. Now unread_rows runs once
    # per axis of the layer, whatever the numbers.
    calls = []
    monkeypatch.setattr(shapes, "unread_rows", lambda *a: calls.append(a) or unread_rows(*a))
    with guard():
        checked = check_source(
            "input [16777216x16777216x1]\nCONV 1 8388609x8388609 stride 8388608\n", "w.arch"
        )
    (w301,) = checked.diagnostics
    assert len(calls) == 2
    # The exact fraction, not `= 2 → 1`; and no suggested input above ir.MAX_SIZE (16777217).
    assert "(16777216 − 8388609 + 2·0)/8388608 + 1 = 1.99999988079071044921875 → 1" in w301.message
    assert w301.help == "an input of 8388609 tiles exactly, and so does padding 1"


def test_w301_prints_a_repeating_fraction_exactly() -> None:
    (w301,) = check_source("input [10x10x3]\nCONV 4 3x3 stride 3\n").diagnostics
    assert "(10 − 3 + 2·0)/3 + 1 = 10/3 → 3" in w301.message
    assert shapes.exact_number(shapes.window_out(8, 3, 2, 0)) == "3.5"


def test_a_3x9_window_is_called_3x9() -> None:
    (e303,) = check_source("input [8x8x3]\nCONV 4 3x9\n").diagnostics
    assert (e303.code, e303.message) == (
        "E303",
        "a 3x9 window does not fit in the padded input of 8",
    )


# --- 1: never write over an input; atomic writes ------------------------------------------------

SMALL = "network Small\ninput [8x8x3]\nCONV 4 3x3\n"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "self.arch"
    path.write_text(SMALL)
    return path


def test_compile_onto_its_own_spec_is_refused(capsys, spec: Path) -> None:
    code, out, err = run(capsys, "compile", str(spec), "-o", str(spec))
    assert (code, out) == (2, "")
    assert err == (
        f"archc compile: cannot write {spec}: it is the spec being compiled; "
        "choose another output with -o\n"
    )
    assert spec.read_text() == SMALL


def test_compile_through_a_symlink_to_its_spec_is_refused(capsys, spec: Path) -> None:
    link = spec.parent / "link.py"
    link.symlink_to(spec)
    code, _, err = run(capsys, "compile", str(spec), "-o", str(link))
    assert code == 2 and "it is the spec being compiled" in err
    assert spec.read_text() == SMALL and link.is_symlink()


def test_a_spec_named_model_py_is_not_replaced_by_its_default_output(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.py").write_text(SMALL)
    code, _, err = run(capsys, "compile", "model.py")
    assert code == 2 and "cannot write model.py: it is the spec being compiled" in err
    assert Path("model.py").read_text() == SMALL


def test_compile_onto_an_imported_file_is_refused(capsys, tmp_path: Path) -> None:
    lib = tmp_path / "lib.arch"
    lib.write_text("block b(w):\n    CONV: w 3x3\n")
    net = tmp_path / "net.arch"
    net.write_text('import "lib.arch"\ninput [8x8x3]\nb(4)\n')
    code, _, err = run(capsys, "compile", str(net), "-o", str(lib))
    assert code == 2 and "it is a file the spec imports" in err
    assert lib.read_text() == "block b(w):\n    CONV: w 3x3\n"


def test_o_with_a_trailing_slash_makes_the_directory(capsys, spec: Path) -> None:
    out = spec.parent / "newdir"
    code, stdout, _ = run(capsys, "compile", str(spec), "-o", f"{out}/")
    assert code == 0 and stdout == f"wrote {out}/self.py: Small, 112 parameters\n"
    assert (out / "self.py").read_text().startswith("# Generated by archc from")


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archc import files
    from archc.backends.source import compile_file

    target = spec.parent / "out.py"
    target.write_text("# the previous output\n")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compile_file(spec, target)
    assert target.read_text() == "# the previous output\n"
    assert sorted(p.name for p in spec.parent.iterdir()) == ["out.py", "self.arch"]


# --- 3: file size, file kinds, diagnostics per file --------------------------------------------


def test_a_fifo_is_refused_without_blocking(capsys, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    with guard():
        code, out, _ = run(capsys, "lint", str(fifo))
    assert code == 2
    assert f"{fifo}:1:1: error[E001]: cannot read `{fifo}`: it is a named pipe (FIFO)" in out


def test_dev_zero_is_refused_before_reading(capsys) -> None:
    with guard():
        code, out, _ = run(capsys, "lint", "/dev/zero")
    assert code == 2
    assert "error[E001]: cannot read `/dev/zero`: it is a character device, not a spec" in out


def test_a_file_over_the_size_limit_is_refused_before_reading(capsys, tmp_path: Path) -> None:
    big = tmp_path / "big.arch"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # sparse: 3 GB that take no disk
    with guard():
        code, out, _ = run(capsys, "lint", str(big))
    assert code == 2
    assert (
        f"error[E004]: `{big}` is 3 GB (3,221,225,472 bytes); a spec may have at most "
        "10 MB (10,485,760 bytes)"
    ) in out


def test_spec_text_over_the_size_limit_is_refused() -> None:
    from archc.files import MAX_SPEC_BYTES

    (d,) = check_source("#" * (MAX_SPEC_BYTES + 1)).diagnostics
    assert d.code == "E004"


def test_a_fifo_and_an_unlistable_directory_inside_a_linted_directory_are_reported(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.arch").write_text(SMALL)
    os.mkfifo(tmp_path / "pipe.arch")
    locked = tmp_path / "locked"
    locked.mkdir()
    scandir = os.scandir

    # The tests may run as root, whom permissions do not stop; refuse the listing instead.
    def refusing(path: str | os.PathLike[str] = ".") -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with guard():
        code, out, _ = run(capsys, "lint", str(tmp_path))
    assert code == 2
    assert f"error[E001]: cannot read `{tmp_path / 'pipe.arch'}`: it is a named pipe" in out
    assert f"error[E001]: cannot read `{locked}`: Permission denied" in out
    assert out.endswith("3 files checked: 2 errors, 0 warnings\n")


def test_diagnostics_are_capped_per_run_and_the_totals_count_them_all(
    capsys, tmp_path: Path
) -> None:
    path = tmp_path / "many.arch"
    path.write_text("input [8x8x3]\n" + "CONV 0 3x3\n" * 1000)
    code, out, _ = run(capsys, "lint", str(path))
    assert code == 1
    assert out.count("error[E209]") == 200
    assert (
        f"{path}:202:6: info[I001]: 800 more diagnostics are not shown "
        "(800 errors): archc shows the first 200 of a run"
    ) in out
    assert out.endswith("1 file checked: 1000 errors, 0 warnings\n")
    # Issue 24: the cap is per run, not per file (20 files of 200 printed 4,000).
    other = tmp_path / "more.arch"
    other.write_text("input [8x8x3]\n" + "CONV 0 3x3\n" * 150)
    code, out, _ = run(capsys, "lint", str(path), str(other))
    assert out.count("error[E209]") == 200 and out.count("info[I001]") == 1
    assert "950 more diagnostics are not shown" in out
    assert out.endswith("2 files checked: 1150 errors, 0 warnings\n")
    code, out, _ = run(capsys, "lint", "--format", "json", str(path))
    shown = json.loads(out)
    assert len(shown) == 201 and shown[-1]["code"] == "I001"


# --- 4: rendering is linear in the diagnostics --------------------------------------------------


def test_rendering_splits_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "input [8x8x3]\n" + "CONV 0 3x3\n" * 2000
    checked = check_source(text, "bad.arch")
    assert len(checked.diagnostics) == 2000
    splits = []
    real = diagnostics.source_lines
    monkeypatch.setattr(diagnostics, "source_lines", lambda t: splits.append(1) or real(t))
    rendered = diagnostics.render_text(checked.diagnostics, checked.sources, limit=10**6)
    assert rendered.count("error[E209]") == 2000 and len(splits) == 1


def test_a_form_feed_does_not_shift_the_quoted_line() -> None:
    text = "input [8x8x3]\n# a\x0c comment\nCONV 4 3x3\nCONV 64 3x3 $\n"
    checked = check_source(text, "ff.arch")
    rendered = diagnostics.render_text(checked.diagnostics, checked.sources)
    assert rendered.split("\n")[:4] == [
        "ff.arch:4:13: error[E101]: unexpected character `$`",
        "  |",
        "4 | CONV 64 3x3 $",
        "  |             ^",
    ]


# --- 5: numbers out of range are diagnostics ----------------------------------------------------


def test_a_printed_claim_of_4301_digits_is_e404() -> None:
    (d,) = check_source("input [8x8x3]\nFC 3 params: " + "1" * 4301 + "\n").diagnostics
    assert d.code == "E404" and d.message.endswith("of this params claim: 4,301 digits")
    assert len(d.message) < 150


def test_an_infinite_or_huge_claim_value_is_e405() -> None:
    checked = check_source("input [8x8x3]\nFC 3 params: 579\n", "c.arch")
    graph = checked.graph
    for value in (float("inf"), 1e300, 10**4400):
        nodes = [
            n.model_copy(
                update={"claims": [c.model_copy(update={"value": value}) for c in n.claims]}
            )
            if n.claims
            else n
            for n in graph.nodes
        ]
        result = check_graph(graph.model_copy(update={"nodes": nodes}))
        (d,) = result.diagnostics
        assert (d.code, d.span.line) == ("E405", 2)
        assert d.message.startswith("the arithmetic of this params claim is out of range")


def test_huge_numbers_print_in_scientific_notation() -> None:
    assert fmt_int(10**4400 + 7) == "≈1.00e4400"
    assert fmt_int(Fraction(-(10**400), 3)) == "≈-3.33e399"
    assert fmt_int(1234567) == "1,234,567"


@pytest.mark.parametrize("batch", ["9" * 321, "1" * 5000, "1000000001", "0"])
def test_summary_batch_out_of_range_is_a_usage_error(capsys, batch: str) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["summary", "--batch", batch, "x.arch"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "argument --batch: must be" in err and "Traceback" not in err
    assert len(err.splitlines()[-1]) < 200


# --- 6: imports are .arch regular files; nothing else is quoted ---------------------------------


def test_importing_etc_passwd_is_refused_without_reading_it(capsys, tmp_path: Path) -> None:
    net = tmp_path / "net.arch"
    net.write_text('import "/etc/passwd"\ninput [8x8x3]\nCONV 4 3x3\n')
    code, out, _ = run(capsys, "lint", str(net))
    assert code == 1
    assert out.split("\n")[:3] == [
        f"{net}:1:1: error[E005]: cannot import `/etc/passwd`: imports are `.arch` spec files",
        "  |",
        '1 | import "/etc/passwd"',
    ]
    assert "root:" not in out
    with pytest.raises(archc.ArchcError) as info:
        archc.load('import "/etc/passwd"\ninput [8x8x3]\nCONV 4 3x3\n')
    assert [d.code for d in info.value.diagnostics] == ["E005"] and "root:" not in str(info.value)


def test_an_imported_file_that_does_not_parse_is_quoted_at_one_line(capsys, tmp_path: Path) -> None:
    secret = tmp_path / "secret.arch"
    secret.write_text("".join(f"user{i}:x:{i}:{i}:/home/user{i}\n" for i in range(20)))
    net = tmp_path / "net.arch"
    net.write_text('import "secret.arch"\ninput [8x8x3]\nCONV 4 3x3\n')
    code, out, _ = run(capsys, "lint", str(net))
    assert code == 1
    assert out.count("user") == 2  # the one line quoted: `user0:x:0:0:/home/user0`
    assert "= note: 19 more syntax errors in" in out


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: p.mkdir(), "a directory"),
        (os.mkfifo, "a named pipe (FIFO)"),
    ],
)
def test_importing_a_directory_or_fifo_says_what_it_is(tmp_path: Path, make, kind: str) -> None:
    make(tmp_path / "lib.arch")
    net = tmp_path / "net.arch"
    net.write_text('import "lib.arch"\ninput [8x8x3]\nCONV 4 3x3\n')
    with guard():
        (d,) = read_spec(net).diagnostics
    assert (d.code, d.line) == ("E001", 1)
    assert (
        d.message
        == f"cannot import `lib.arch`: `{tmp_path / 'lib.arch'}` is {kind}, not a spec file"
    )


def test_importing_dev_zero_says_it_is_a_device(tmp_path: Path) -> None:
    net = tmp_path / "net.arch"
    net.write_text('import "/dev/zero"\ninput [8x8x3]\nCONV 4 3x3\n')
    with guard():
        (d,) = read_spec(net).diagnostics
    assert (
        d.message == "cannot import `/dev/zero`: `/dev/zero` is a character device, not a spec file"
    )


# --- 7: exit codes and streams ------------------------------------------------------------------

BAD = "input [224x224x3]\n[55x55x96] CONV1: 96 11x11 stride 4\nFC: 10\n"


def _archc(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "archc", *args],
        env={**os.environ, **(env or {})},
        stderr=subprocess.PIPE,
        **kw,  # type: ignore[arg-type]
    )


def test_a_closed_pipe_keeps_the_real_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text(BAD)
    # The reader is gone before archc writes a byte: `archc lint bad.arch | head -0`.
    proc = _archc("lint", str(bad), stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    assert proc.stderr.read() == b""


def test_an_ascii_stream_gets_ascii_arithmetic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text(BAD)
    proc = _archc("lint", str(bad), env={"PYTHONIOENCODING": "ascii"}, stdout=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (1, b"")
    assert b"= help: (224 - 11 + 2*0)/4 + 1 = 54.25 -> 54" in out


def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys, time\n"
        # As at a terminal: a shell's background job starts with SIGINT ignored, and Python then
        # raises no KeyboardInterrupt at all.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from archc import cli\n"
        "from archc.commands import lint\n"
        "def slow(args):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        "lint.handle = slow\n"
        "sys.exit(cli.main(['lint', 'x.arch']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, cwd=tmp_path
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, b"", b"")


def test_control_characters_from_a_spec_are_escaped(capsys, tmp_path: Path) -> None:
    path = tmp_path / "e\x1bsc.arch"
    path.write_text("input [8x8x3]\nCONV\x1b[31m 4 3x3\n\u202eCONV 4 3x3\x07\n")
    code, out, _ = run(capsys, "lint", str(path))
    assert code == 1
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    shown = str(tmp_path / "e\\x1bsc.arch")
    assert f"{shown}:2:5: error[E101]" in out
    assert "2 | CONV\\x1b[31m 4 3x3\n  |     ^^^^\n" in out
    assert "3 | \\u202eCONV 4 3x3\\x07\n  | ^^^^^^\n" in out


# --- 8: transfer_weights is all or nothing ------------------------------------------------------


def test_transfer_weights_checks_devices_and_dtypes_before_copying() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    dst = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    src = {k: torch.ones_like(v) for k, v in dst.state_dict().items()}
    last = list(src)[-1]
    for bad, why in (
        (torch.empty(4, device="meta"), "the source is on the meta device"),
        (torch.ones(4, dtype=torch.complex64), "cannot be cast"),
    ):
        with pytest.raises(ValueError, match=why):
            archc.transfer_weights({**src, last: bad}, dst)
        assert all(torch.equal(dst.state_dict()[k], v) for k, v in before.items())
    meta = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4)).to("meta")
    with pytest.raises(ValueError, match="the destination is on the meta device"):
        archc.transfer_weights(src, meta)
    archc.transfer_weights(src, dst)  # and a good source copies every tensor
    assert all(torch.equal(v, torch.ones_like(v)) for v in dst.state_dict().values())


# --- 9: absurd sizes are refused before allocating ----------------------------------------------


def test_load_refuses_a_module_larger_than_the_machine() -> None:
    pytest.importorskip("torch")
    # 16384·16384·3 inputs to 1,048,576 outputs: 3,377,699,720,527,872 weights of 4 bytes.
    with pytest.raises(archc.ArchcError) as info:
        archc.load("input [16384x16384x3]\nFLATTEN\nFC 1048576\n")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == ("E502", 3)
    assert "(3,377,699,724,722,176 bytes)" in d.message


def test_load_takes_a_byte_limit() -> None:
    pytest.importorskip("torch")
    # CONV 4 3x3 on 3 channels: 108 weights + 4 biases of 4 bytes.
    assert archc.load("input [8x8x3]\nCONV 4 3x3\n", max_bytes=448) is not None
    with pytest.raises(archc.ArchcError) as info:
        archc.load("input [8x8x3]\nCONV 4 3x3\n", max_bytes=447)
    assert info.value.diagnostics[0].message == (
        "the module's parameters and buffers need 448 bytes, more than the 447 bytes allowed"
    )
