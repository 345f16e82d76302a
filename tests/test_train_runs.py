"""What surrounds `archc train` on a tiny data set: a run is never lost (--resume, --overwrite,
Ctrl-C), a resumed run is the same network and recipe, and every bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapes_data import make_tiny

from archc.cli import main
from archc.training import loop

TINY = """input [8x8x3]
conv: bn, relu
train:
    lr 0.1
    batch size 4
    epochs 2
    augment none
CONV 4 3x3 pad 1
GAP
FC 2
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("tiny"))


def spec(tmp_path: Path, text: str = TINY, name: str = "tiny.arch") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def train(spec_path: str, data: Path, run: Path, *more: str) -> int:
    return main(["train", spec_path, "--data", str(data), "--out", str(run), "--workers", "0",
                 *more])  # fmt: skip


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def one_line(err: str) -> str:
    """The refusal: one `archc train:` line and no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("archc train: ")]
    assert lines, err
    return lines[-1]


def interrupted_run(spec_path: str, data: Path, run: Path, monkeypatch) -> None:  # noqa: ANN001
    """A run stopped by Ctrl-C during epoch 2 of 2 (validation raises KeyboardInterrupt)."""
    real = loop.validate

    def stop_in_epoch_2(r, epoch):  # noqa: ANN001, ANN202
        if epoch == 2:
            raise KeyboardInterrupt
        return real(r, epoch)

    with monkeypatch.context() as m:
        m.setattr(loop, "validate", stop_in_epoch_2)
        assert train(spec_path, data, run) == 130


def test_a_run_is_continued_or_replaced_only_when_asked(tiny, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert train(spec(tmp_path), tiny, run) == 0
    before = (run / "metrics.jsonl").read_bytes(), (run / "last.pt").read_bytes()
    capsys.readouterr()
    assert train(spec(tmp_path), tiny, run) == 1
    line = one_line(capsys.readouterr().err)
    assert "holds a run (last.pt, best.pt, metrics.jsonl)" in line and "--resume" in line
    assert ((run / "metrics.jsonl").read_bytes(), (run / "last.pt").read_bytes()) == before
    # --overwrite replaces the run only once the new one has been checked: bad data keeps it.
    assert train(spec(tmp_path), tmp_path / "nodata", run, "--overwrite") == 1
    assert "no data directory" in one_line(capsys.readouterr().err)
    assert ((run / "metrics.jsonl").read_bytes(), (run / "last.pt").read_bytes()) == before
    assert train(spec(tmp_path), tiny, run, "--overwrite", "--epochs", "1") == 0
    assert [r["epoch"] for r in rows(run)] == [1]


def test_ctrl_c_then_resume_trains_each_epoch_once(tiny, tmp_path, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    interrupted_run(spec(tmp_path), tiny, run, monkeypatch)
    err = capsys.readouterr().err
    assert "stopped in epoch 2 of 2 (last.pt holds epoch 1; resume with --resume)" in err
    assert [r["epoch"] for r in rows(run)] == [1]
    assert train(spec(tmp_path), tiny, run, "--resume") == 0
    assert f"resuming {run} at epoch 2 of 2" in capsys.readouterr().err
    assert [r["epoch"] for r in rows(run)] == [1, 2]
    # A finished run needs no data to say so.
    assert train(spec(tmp_path), tmp_path / "gone", run, "--resume") == 0
    assert f"`{run}` is finished: epoch 2 of 2; nothing to train" in capsys.readouterr().err
    assert [r["epoch"] for r in rows(run)] == [1, 2]


def test_resume_without_a_run_and_out_naming_a_file_are_refused(tiny, tmp_path, capsys) -> None:
    assert train(spec(tmp_path), tiny, tmp_path / "none", "--resume") == 1
    assert "holds no checkpoint (last.pt)" in one_line(capsys.readouterr().err)
    (tmp_path / "file").write_text("notes")
    assert train(spec(tmp_path), tiny, tmp_path / "file") == 1
    assert "is a file, not a run directory" in one_line(capsys.readouterr().err)
    assert (tmp_path / "file").read_text() == "notes"


@pytest.mark.parametrize(
    ("flags", "change"),
    [(["--lr", "0.5"], "lr 0.1 -> 0.5"), (["--batch-size", "2"], "batch_size 4 -> 2")],
)
def test_a_recipe_change_on_resume_is_refused_not_half_applied(
    tiny, tmp_path, capsys, monkeypatch, flags, change
) -> None:
    run = tmp_path / "run"
    interrupted_run(spec(tmp_path), tiny, run, monkeypatch)
    capsys.readouterr()
    assert train(spec(tmp_path), tiny, run, "--resume", *flags) == 1
    line = one_line(capsys.readouterr().err)
    assert f"the recipe differs from the run's ({change})" in line
    assert [r["epoch"] for r in rows(run)] == [1]


# The library sets its own defaults: an imported block takes those of the file it is defined in.
BLOCKS = "conv: relu\nblock unit(c):\n    CONV: c 3x3 pad 1\n"
NET = 'import "blocks.arch"\ninput [8x8x3]\nconv: bn, relu\ntrain:\n    batch size 4\n' \
      "    epochs 2\n    augment none\nb: unit(4)\nGAP\nFC 2\n"  # fmt: skip


@pytest.mark.parametrize(
    ("blocks", "net", "refused"),
    [
        (BLOCKS, NET.replace("GAP", "# a comment\n\nGAP"), None),
        (
            BLOCKS.replace("pad 1", "pad 1, no relu"),
            NET,
            "layers only in the run: b.relu1; only in the spec: none",
        ),
        (
            BLOCKS.replace("3x3 pad 1", "5x5 pad 2"),
            NET,
            "layer `b.conv1`: kernel 3x3 -> 5x5, padding 1x1 -> 2x2",
        ),
        (
            BLOCKS.replace("c 3x3", "2*c 3x3"),
            NET,
            "layer `b.conv1`: out_channels 4 -> 8, shape 4x8x8 -> 8x8x8",
        ),
    ],
    ids=["comment", "no-relu", "kernel", "width"],
)
def test_resume_identity_is_the_elaborated_network(
    tiny, tmp_path, capsys, monkeypatch, blocks, net, refused
) -> None:
    (tmp_path / "blocks.arch").write_text(BLOCKS)
    run = tmp_path / "run"
    interrupted_run(spec(tmp_path, NET, "net.arch"), tiny, run, monkeypatch)
    (tmp_path / "blocks.arch").write_text(blocks)
    capsys.readouterr()
    code = train(spec(tmp_path, net, "net.arch"), tiny, run, "--resume")
    err = capsys.readouterr().err
    if refused is None:
        assert code == 0, err
        assert [r["epoch"] for r in rows(run)] == [1, 2]
    else:
        assert code == 1
        line = one_line(err)
        assert "was trained on another network" in line and refused in line, line
