"""archc train on a tiny synthetic ImageFolder: accuracy, checkpoints and resume, torchrun,
and data that cannot be trained on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from shapes_data import make_shapes

from archc.cli import main
from archc.recipe_ir import Recipe, Schedule
from archc.training import checkpoint
from archc.training import recipe as parts

SPEC = """network Shapes
input [32x32x3]
conv: bn, relu
train:
    optimizer sgd momentum 0.9
    lr 0.05
    batch size 32
    epochs 8
    schedule cosine
    weight decay 5e-4 except bn bias
    augment none
CONV 16 3x3 pad 1
MAX POOL 2x2
CONV 32 3x3 pad 1
MAX POOL 2x2
CONV 32 3x3 pad 1
GLOBAL AVG POOL
FC 4
"""

# No BN and no dropout: one process and two see the same global batches, so with nothing that
# depends on the per-process batch their updates agree up to rounding.
PLAIN = """input [32x32x3]
train:
    lr 0.05
    batch size 16
    epochs 4
    schedule step every 2 factor 0.1
    augment none
CONV 8 3x3 pad 1
MAX POOL 4x4
CONV 16 3x3 pad 1
GLOBAL AVG POOL
FC 4
"""

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("shapes"))


def _spec(tmp_path: Path, text: str = SPEC) -> str:
    path = tmp_path / "shapes.arch"
    path.write_text(text)
    return str(path)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_reaches_90_percent_in_8_epochs(shapes: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(["train", _spec(tmp_path), "--data", str(shapes), "--out", str(run),
                 "--workers", "0"])  # fmt: skip
    assert code == 0
    rows = _metrics(run)
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    assert {"epoch", "lr", "train_loss", "val_loss", "val_acc1", "val_acc5", "seconds"} <= set(
        rows[0]
    )
    assert rows[-1]["val_acc1"] >= 90.0, rows[-1]
    assert rows[-1]["val_acc5"] == 100.0  # 4 classes: the top 4 always hold the answer
    assert rows[0]["lr"] == 0.05 and rows[1]["lr"] == pytest.approx(0.05 * (1 + 0.9239) / 2, 1e-3)
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 8 and len(state["graph_hash"]) == 64
    # best.pt holds the epoch of the best top-1 (the first of equals).
    best = max(rows, key=lambda r: r["val_acc1"])["epoch"]
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best
    assert not list(run.glob(".*tmp"))  # the temporary checkpoint was renamed


def test_plateau_divides_the_learning_rate_by_10_when_the_metric_stops_improving() -> None:
    recipe = Recipe(lr=0.1, schedule=Schedule(kind="plateau", monitor="val_acc1", patience=1))
    model = torch.nn.Linear(2, 2)
    opt = parts.optimizer(recipe, model)
    sched = parts.scheduler(recipe, opt)
    accuracy = [50, 60, 70, 70, 69, 80, 80, 80, 80]
    lrs = []
    for acc in accuracy:
        sched.step(acc)
        lrs.append(opt.param_groups[0]["lr"])
    # 70 then two epochs without a better accuracy (patience 1): cut after the second; 80 is
    # a new best, then again two epochs without improvement.
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001])
    loss = Recipe(schedule=Schedule(kind="plateau", monitor="val_loss", patience=0))
    opt = parts.optimizer(loss, model)
    sched = parts.scheduler(loss, opt)
    for value in (1.0, 0.5, 0.6):
        sched.step(value)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)  # loss went up: cut at once


def test_a_checkpoint_of_another_spec_is_refused(shapes: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = ["--data", str(shapes), "--out", str(run), "--workers", "0", "--epochs", "1"]
    assert main(["train", _spec(tmp_path, PLAIN), *args]) == 0
    other = _spec(tmp_path / "..", PLAIN.replace("CONV 16", "CONV 12"))
    capsys.readouterr()
    assert main(["train", other, *args, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "was trained on another network (layer `conv2`: out_channels 16 -> 12" in err


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "last.pt"
    checkpoint.save({"epoch": 1}, target)

    def full(obj: object, f) -> None:  # noqa: ANN001
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(checkpoint.CheckpointError, match="No space left.*previous checkpoint"):
        checkpoint.save({"epoch": 2}, target)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: shutil.rmtree(d), "no data directory"),
        (lambda d: shutil.rmtree(d / "val"), "has no class folders"),
        (lambda d: (d / "val" / "disc").rename(d / "val" / "circle"), "only in val/: ['circle']"),
        (lambda d: shutil.rmtree(d / "train" / "disc"), "only in val/: ['disc']"),
    ],
)
def test_data_that_cannot_be_trained_on_is_refused(
    shapes: Path,
    tmp_path: Path,
    capsys,
    damage,
    message: str,  # noqa: ANN001
) -> None:
    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    damage(data)
    code = main(["train", _spec(tmp_path, PLAIN), "--data", str(data), "--out",
                 str(tmp_path / "run"), "--workers", "0"])  # fmt: skip
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_unreadable_images_are_skipped_and_counted(shapes: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    (data / "train" / "disc" / "0.png").write_bytes(b"not a png")
    (data / "val" / "cross" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run = tmp_path / "run"
    code = main(["train", _spec(tmp_path, PLAIN), "--data", str(data), "--out", str(run),
                 "--workers", "0", "--epochs", "1"])  # fmt: skip
    assert code == 0
    assert "skipped 2 unreadable images" in capsys.readouterr().err
    assert _metrics(run)[0]["skipped_images"] == 2


def test_the_network_must_have_one_output_per_class(shapes: Path, tmp_path: Path, capsys) -> None:
    code = main(["train", _spec(tmp_path, PLAIN.replace("FC 4", "FC 10")), "--data",
                 str(shapes), "--out", str(tmp_path / "run"), "--workers", "0"])  # fmt: skip
    assert code == 1
    assert "the data has 4 classes and the network 10 outputs" in capsys.readouterr().err


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_a_killed_run_resumes_at_the_right_epoch_and_learning_rate(
    shapes: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, PLAIN.replace("epochs 4", "epochs 6"))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "archc", "train", spec, "--data", str(shapes), "--out",
           str(run), "--workers", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(), stderr=subprocess.DEVNULL)
    metrics = run / "metrics.jsonl"
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(metrics.read_text().splitlines())
    assert written < 6  # killed during training
    saved = torch.load(run / "last.pt", weights_only=True)["epoch"]
    assert subprocess.run([*cmd, "--resume"], env=_env(), stderr=subprocess.DEVNULL).returncode == 0
    rows = _metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]  # each epoch once
    # step every 2 epochs, factor 0.1: the resumed epochs have the learning rate they would have
    # had without the kill.
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.05, 0.005, 0.005, 5e-4, 5e-4])
    assert saved >= 1 and rows[saved]["epoch"] == saved + 1


RANKS = """
import sys, torch, torch.distributed as dist
from pathlib import Path
from archc.training.loop import Options, train
model, rows = train(sys.argv[1], Options(Path(sys.argv[2]), Path(sys.argv[3]), workers=0))
rank = int(__import__("os").environ["RANK"])
torch.save(model.state_dict(), Path(sys.argv[3]) / f"rank{rank}.pt")
"""


@pytest.mark.slow
def test_torchrun_on_two_processes_matches_one(shapes: Path, tmp_path: Path) -> None:
    spec = _spec(tmp_path, PLAIN)
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    two, one = tmp_path / "two", tmp_path / "one"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--standalone", str(script), spec, str(shapes), str(two)]  # fmt: skip
    subprocess.run(torchrun, env=_env(), check=True, capture_output=True)
    assert main(["train", spec, "--data", str(shapes), "--out", str(one), "--workers", "0"]) == 0
    rank0 = torch.load(two / "rank0.pt", weights_only=True)
    rank1 = torch.load(two / "rank1.pt", weights_only=True)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name  # DDP keeps the ranks identical
    assert sorted(p.name for p in two.glob("*.pt")) == [
        "best.pt",
        "last.pt",
        "rank0.pt",
        "rank1.pt",
    ]
    single = torch.load(one / "last.pt", weights_only=True)["model"]
    # The same global batches, no BN, no dropout: the runs differ only by the order in which
    # float32 sums are taken (each rank's batch mean, then the all-reduce average), a few ulps
    # per step; 4 epochs of 60 steps keep that far below 1e-4.
    for name in rank0:
        torch.testing.assert_close(rank0[name], single[name], rtol=1e-4, atol=1e-5)
    two_rows, one_rows = _metrics(two), _metrics(one)
    assert [r["world_size"] for r in two_rows] == [2] * 4
    for a, b in zip(two_rows, one_rows):
        assert a["val_acc1"] == b["val_acc1"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
