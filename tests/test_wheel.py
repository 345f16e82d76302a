"""The installed package: a wheel (not an editable install) carries the spec library, so
imports of shipped block libraries and shipped specs by name work from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_wheel_installs_the_spec_library(tmp_path):
    # Build the wheel from the checkout with this environment's setuptools (no download).
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(wheels), str(ROOT)],
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("archc-*.whl")
    # A fresh venv whose dependencies (lark, pydantic) come from this one's site-packages by a
    # .pth line, which adds the directory without running its .pth files: the editable archc
    # of the development install stays out, so only the wheel's archc can be imported.
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
