"""The installed package: a wheel (not an editable install) carries the spec library, so
imports of shipped block libraries and shipped specs by name work from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The wheel built from the checkout and installed in a fresh venv outside it: the wheel,
    the venv, and an empty working directory."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    # Build the wheel from the checkout with this environment's setuptools (no download).
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(wheels), str(ROOT)],
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("archc-*.whl")
    # A fresh venv whose dependencies (lark, pydantic, torch, torchvision, onnx) come from this
    # one's site-packages by a .pth line, which adds the directory without running its .pth
    # files: the editable archc of the development install stays out, so only the wheel's archc
    # can be imported, and nothing is downloaded or copied (seconds, not minutes).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=tmp_path).strip()  # fmt: skip
    Path(site, "dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        cwd=tmp_path,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    return wheel, venv, empty


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_the_wheel_holds_every_package(installed) -> None:
    wheel, venv, empty = installed
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    packages = [p.relative_to(ROOT).as_posix() for p in ROOT.glob("archc/**/__init__.py")]
    packages += ["archc/kernels/" + p.relative_to(ROOT / "kernels").as_posix()
                 for p in (ROOT / "kernels").glob("**/__init__.py")]  # fmt: skip
    assert "archc/training/__init__.py" in packages
    assert [p for p in packages if p not in names] == []
    python = str(venv / "bin" / "python")
    where = _run([python, "-c", "import archc.training.loop as t, archc; print(t.__file__); "
                  "print(archc.recipe)"], empty, _env())  # fmt: skip
    assert Path(where.splitlines()[0]).is_relative_to(venv), where


@pytest.mark.slow
def test_the_wheel_installs_the_spec_library(installed):
    _, venv, empty = installed
    python = venv / "bin" / "python"
    (empty / "net.arch").write_text(
        'import "blocks/resnet.arch"\ninput [56x56x64]\nlayer1: basic(64) x2\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    archc = str(venv / "bin" / "archc")
    where = _run([str(python), "-c", "import archc.library as l; print(l.SPECS_DIR)"], empty, env)
    assert Path(where.strip()).is_relative_to(venv)
    lint = _run([archc, "lint", "net.arch"], empty, env)
    assert lint.strip() == "1 file checked: 0 errors, 0 warnings"
    summary = json.loads(_run([archc, "summary", "torchvision/resnet50", "--format", "json"],
                              empty, env))  # fmt: skip
    assert summary["totals"]["params"] == 25_557_032
    assert "torchvision/resnet50" in _run([archc, "specs"], empty, env)


LIFE = """input [8x8x3]
conv: bn, relu
train:
    lr 0.05
    batch size 4
    epochs 2
    augment none
CONV 8 3x3 pad 1
GAP
FC 2
"""

ONNX_CHECK = """
import sys, numpy, onnxruntime, torch, archc
model = archc.load(sys.argv[1]).eval()
model.load_state_dict(torch.load(sys.argv[2], weights_only=True)["model"])
x = torch.randn(7, 3, 8, 8, generator=torch.Generator().manual_seed(3))
session = onnxruntime.InferenceSession(sys.argv[3], providers=["CPUExecutionProvider"])
(got,) = session.run(None, {"input": x.numpy()})
want = model(x).detach().numpy()
print(float(numpy.abs(got - want).max() / numpy.abs(want).max()))
"""


@pytest.mark.slow
def test_a_run_s_whole_life_from_the_wheel(installed) -> None:
    import signal
    import time

    from shapes_data import make_tiny

    _, venv, empty = installed
    work = empty / "life"
    make_tiny(work / "data", train=150, val=10)
    (work / "net.arch").write_text(LIFE)
    archc, env = str(venv / "bin" / "archc"), _env()
    cmd = [archc, "train", "net.arch", "--data", "data", "--out", "run", "--workers", "0"]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stderr=subprocess.DEVNULL)
    metrics = work / "run" / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):  # epoch 1 done
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # during epoch 2 (75 steps)
    proc.wait()
    assert metrics.read_text().count("\n") == 1
    again = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1
    assert "holds a run" in again.stderr and "Traceback" not in again.stderr
    assert metrics.read_text().count("\n") == 1
    _run([*cmd, "--resume"], work, env)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    evaluate = [archc, "eval", "net.arch", "--weights", "run/last.pt", "--data", "data"]
    evaluated = json.loads(_run([*evaluate, "--format", "json", "--workers", "0"], work, env))
    assert evaluated["val_acc1"] == rows[-1]["val_acc1"]
    out = _run([archc, "export", "net.arch", "--weights", "run/last.pt", "-o", "net.onnx"],
               work, env)  # fmt: skip
    assert "onnxruntime's output equals the module's" in out
    python = str(venv / "bin" / "python")
    relative = float(_run([python, "-c", ONNX_CHECK, "net.arch", "run/last.pt", "net.onnx"],
                          work, env))  # fmt: skip
    assert relative <= 1e-4
