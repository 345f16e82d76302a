"""Bad inputs to `archc train`: each is one `archc train: ...` line (or is handled), exit 1 or 2,
no traceback, and the run directory keeps what it had."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from shapes_data import make_tiny
from test_train_runs import TINY, interrupted_run, one_line, rows, spec, train

from archc.training import checkpoint, rundir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def stopped(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped during epoch 2 of 2: last.pt holds epoch 1."""
    where = tmp_path_factory.mktemp("stopped")
    with pytest.MonkeyPatch.context() as m:
        interrupted_run(spec(where), tiny, where / "run", m)
    return where / "run"


def _copy(stopped: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    return run


def _resave(run: Path, change) -> None:  # noqa: ANN001
    state = torch.load(run / "last.pt", weights_only=True)
    torch.save(change(state), run / "last.pt")


def _drop(key: str):  # noqa: ANN202
    return lambda s: {k: v for k, v in s.items() if k != key}


def _with(key: str, value: object):  # noqa: ANN202
    return lambda s: {**s, key: value}


def _first_weight(s: dict) -> dict:
    model = dict(s["model"])
    model["conv1.weight"] = torch.zeros(7, 3, 3, 3)
    return {**s, "model": model}


DAMAGE = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), "is damaged or not a checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "is damaged or not a checkpoint"),
    "garbage": (lambda p: p.write_bytes(os.urandom(2000)), "is damaged or not a checkpoint"),
    "a list": (
        lambda p: torch.save([1, 2], p),
        "not an archc training checkpoint (it holds a list)",
    ),
    "no optimizer": (lambda p: _resave(p.parent, _drop("optimizer")), "it has no `optimizer`"),
    "metrics not rows": (
        lambda p: _resave(p.parent, _with("metrics", ["x"])),
        "its metrics are not epoch rows",
    ),
    "epoch a string": (lambda p: _resave(p.parent, _with("epoch", "1")), "`epoch` is a str"),
    "model a list": (lambda p: _resave(p.parent, _with("model", [1])), "`model` is a list"),
    "wrong shape": (lambda p: _resave(p.parent, _first_weight), "its model state does not fit"),
    "tampered rng": (
        lambda p: _resave(p.parent, lambda s: {**s, "rng": {**s["rng"], "torch": torch.zeros(3)}}),
        "is damaged: its random state",
    ),
    "optimizer of another": (
        lambda p: _resave(
            p.parent, lambda s: {**s, "optimizer": {"state": {}, "param_groups": []}}
        ),
        "its optimizer state does not fit",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_one_line(stopped, tiny, tmp_path, capsys, damage) -> None:
    run = _copy(stopped, tmp_path)
    spoil, message = DAMAGE[damage]
    spoil(run / "last.pt")
    kept = (run / "last.pt").read_bytes()
    assert train(spec(tmp_path), tiny, run, "--resume") == 1
    assert message in one_line(capsys.readouterr().err)
    assert (run / "last.pt").read_bytes() == kept
    assert [r["epoch"] for r in rows(run)] == [1]


def test_a_torn_metrics_line_does_not_stop_a_resume(stopped, tiny, tmp_path, capsys) -> None:
    run = _copy(stopped, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "lr": 0.1, "train_lo')  # what a full disk left
    assert train(spec(tmp_path), tiny, run, "--resume") == 0
    assert [r["epoch"] for r in rows(run)] == [1, 2]


def test_a_full_disk_while_appending_metrics_leaves_no_torn_line(
    stopped, tiny, tmp_path, capsys, monkeypatch
) -> None:
    run = _copy(stopped, tmp_path)
    before = (run / "metrics.jsonl").read_bytes()
    real = os.write

    def full(fd: int, data: bytes) -> int:
        real(fd, data[:10])
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(rundir.os, "write", full)
        assert train(spec(tmp_path), tiny, run, "--resume") == 1
    assert "No space left on device" in one_line(capsys.readouterr().err)
    assert (run / "metrics.jsonl").read_bytes() == before
    # The checkpoint was written first and holds the rows: the resumed run writes them again.
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    assert train(spec(tmp_path), tiny, run, "--resume") == 0
    assert "is finished: epoch 2 of 2" in capsys.readouterr().err
    assert [r["epoch"] for r in rows(run)] == [1, 2]


def test_torch_s_zip_writer_failing_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    target = tmp_path / "last.pt"
    checkpoint.save({"epoch": 1}, target)

    def full(obj: object, f: io.BufferedWriter) -> None:
        f.write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(checkpoint.CheckpointError, match="PytorchStreamWriter failed; the prev"):
        checkpoint.save({"epoch": 2}, target)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_ctrl_c_while_writing_a_checkpoint_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(obj: object, f: io.BufferedWriter) -> None:
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 2}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_images_are_skipped_when_decoded_and_counted_per_epoch(
    tiny, tmp_path, capsys
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(jpeg, "JPEG")
    # A JPEG cut after its header: PIL's verify() passes it, decoding fails.
    (data / "train" / "c0" / "cut.jpg").write_bytes(jpeg.getvalue()[:200])
    (data / "val" / "c1" / "text.png").write_bytes(b"not a png")
    run = tmp_path / "run"
    assert train(spec(tmp_path), data, run) == 0
    err = capsys.readouterr().err
    assert "epoch 1: skipped 2 unreadable images" in err
    assert [r["skipped_images"] for r in rows(run)] == [2, 2]


def test_a_symlink_loop_in_the_data_is_refused(tiny, tmp_path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    (data / "train" / "c0" / "again").symlink_to(data / "train" / "c0")
    assert train(spec(tmp_path), data, tmp_path / "run") == 1
    line = one_line(capsys.readouterr().err)
    assert "(a symlink loop, or two links to one folder)" in line
    assert "train/c0/again` is the folder" in line


def test_a_folder_linked_twice_is_not_counted_twice(tiny, tmp_path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    (data / "train" / "c1" / "more").symlink_to(data / "train" / "c0")
    assert train(spec(tmp_path), data, tmp_path / "run") == 1
    assert "is the folder" in one_line(capsys.readouterr().err)


def test_a_last_batch_of_one_image_through_bn_on_1x1_maps_trains(tiny, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    Image.new("RGB", (8, 8)).save(data / "train" / "c0" / "extra.png")  # 13 images, batch 4
    text = TINY.replace("GAP\n", "MAX POOL 8x8\nCONV 4 1x1\nGAP\n")
    assert train(spec(tmp_path, text), data, tmp_path / "run") == 0
    assert [r["epoch"] for r in rows(tmp_path / "run")] == [1, 2]


def test_a_batch_of_one_through_batch_norm_is_refused(tiny, tmp_path, capsys) -> None:
    assert train(spec(tmp_path), tiny, tmp_path / "run", "--batch-size", "1") == 1
    line = one_line(capsys.readouterr().err)
    assert "a batch of 1 image per process cannot train batch norm" in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TINY.replace("[8x8x3]", "[8x8x4]"), "this network's input has 4 channels"),
        (TINY.replace("[8x8x3]", "[8x8x2]"), "this network's input has 2 channels"),
        (TINY.replace("GAP\nFC 2\n", "CONV 2 1x1\n"), "ends in a feature map [8x8x2]"),
    ],
)
def test_a_network_images_cannot_train_is_one_line(tiny, tmp_path, capsys, text, message) -> None:
    assert train(spec(tmp_path, text), tiny, tmp_path / "run") == 1
    assert message in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number of at least 1"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not a whole number of at least 1"),
        ({"LOCAL_RANK": "-1"}, "LOCAL_RANK='-1' is not a whole number of at least 0"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 is not below WORLD_SIZE=2"),
        ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": ""}, "cannot join the 2 processes"),
    ],
)
def test_bad_torchrun_variables_are_one_line(tiny, tmp_path, capsys, monkeypatch, env, message):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert train(spec(tmp_path), tiny, tmp_path / "run") == 1
    assert message in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "99999999999999999999999"], "--seed: must be a whole number from 0 to 2**63"),
        (["--seed", "-1"], "--seed: must be a whole number"),
        (["--workers", "-1"], "--workers: must be a whole number from 0 to"),
    ],
)
def test_bad_numbers_are_usage_errors(tiny, tmp_path, capsys, flags, message) -> None:
    with pytest.raises(SystemExit) as exit:
        train(spec(tmp_path), tiny, tmp_path / "run", *flags)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


HUGE = TINY.replace("[8x8x3]", "[16384x16384x3]")


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_anything(tiny, tmp_path, capsys):
    assert train(spec(tmp_path, HUGE), tiny, tmp_path / "run") == 1
    line = one_line(capsys.readouterr().err)
    # Kept for backward and their gradients (2x): the input, the conv's and BN's outputs (ReLU
    # is in place), 3 + 4 + 4 values a pixel, then GAP's 4 and FC's 2; 4 bytes each, 4 images.
    activations = 2 * ((3 + 4 + 4) * 16384**2 + 4 + 2) * 4 * 4
    assert "a batch of 4 needs about 88 GB (" in line, line
    assert f"({activations:,} bytes) of activations and their gradients" in line, line
    assert not (tmp_path / "run").exists()


LIMITED = """
import resource, sys
import torch
from archc.memory import process_room
with open("/proc/self/status") as f:
    used = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, resource.RLIM_INFINITY))
room, source = process_room()
print(room <= 2**30, source)
from archc.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_the_size_check_uses_the_process_s_address_space_limit(tiny, tmp_path) -> None:
    import subprocess
    import sys

    # As above at 256x256 and 320 images: 1.7 GB, which fits the machine, not the 1 GB of
    # address space left beside what importing torch mapped.
    activations = 2 * ((3 + 4 + 4) * 256**2 + 4 + 2) * 4 * 320
    text = TINY.replace("[8x8x3]", "[256x256x3]").replace("batch size 4", "batch size 320")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LIMITED,
            "train",
            spec(tmp_path, text),
            "--data",
            str(tiny),
            "--out",
            str(tmp_path / "run"),
            "--workers",
            "0",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.stdout.startswith("True the address-space limit (RLIMIT_AS"), done.stdout
    assert done.returncode == 1, done.stderr
    line = one_line(done.stderr)
    assert f"({activations:,} bytes) of activations" in line, line
    assert "that the address-space limit (RLIMIT_AS, ulimit -v) leaves" in line


def test_the_listing_is_torchvision_s_imagefolder_s(tiny, tmp_path) -> None:
    from torchvision import datasets

    from archc.recipe_ir import Recipe
    from archc.training import data

    root = tmp_path / "data"
    shutil.copytree(tiny, root)
    (root / "train" / "c1" / "deeper" / "b").mkdir(parents=True)
    for name in ("Z.PNG", "a.jpg", "notes.txt"):
        (root / "train" / "c1" / "deeper" / name).write_bytes(b"x")
    (root / "train" / "c1" / "deeper" / "b" / "0.png").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "1.png").write_bytes(b"x")
    (root / "train" / "c0" / "linked").symlink_to(tmp_path / "outside")  # followed, as there
    sets = data.folders(root, Recipe(augment="none"), (3, 8, 8), 2, ("train", "val"))
    for part in ("train", "val"):
        assert sets[part].samples == datasets.ImageFolder(str(root / part)).samples


def test_the_cgroup_s_memory_limit_is_read(tmp_path) -> None:
    from archc.memory import cgroup_room

    (tmp_path / "memory.max").write_text("1073741824\n")
    (tmp_path / "memory.current").write_text("73741824\n")
    assert cgroup_room(str(tmp_path)) == 1_000_000_000
    (tmp_path / "memory.max").write_text("max\n")
    assert cgroup_room(str(tmp_path)) is None
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("2000000000\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("500000000\n")
    assert cgroup_room(str(v1)) == 1_500_000_000
    (v1 / "memory" / "memory.limit_in_bytes").write_text(str(2**63 - 4096))  # v1's "no limit"
    assert cgroup_room(str(v1)) is None


def test_a_checkpoint_torch_refuses_or_a_directory_says_why_in_its_own_words(tmp_path) -> None:
    """Not torch's advice to retry with weights_only=False (archc never does), and a directory
    is not called missing."""
    import argparse

    from archc.training.checkpoint import CheckpointError, read

    torch.save({"a": argparse.Namespace()}, tmp_path / "obj.pt")
    (tmp_path / "text.pt").write_bytes(b"PK not a zip\n")
    with pytest.raises(CheckpointError) as got:
        read(tmp_path / "obj.pt")
    assert "torch's weights-only loader: Unsupported global" in str(got.value)
    with pytest.raises(CheckpointError) as got:
        read(tmp_path / "text.pt")
    assert "is damaged or not a checkpoint (torch's weights-only loader: Unsupported" in str(
        got.value
    )
    assert "weights_only" not in str(got.value) and "\n" not in str(got.value)
    with pytest.raises(CheckpointError, match=r"is a directory, not a checkpoint$"):
        read(tmp_path)
