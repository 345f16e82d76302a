"""The pre-commit hook: its entry, run as pre-commit runs it, on the shipped specs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def hook() -> dict:
    (only,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return only


def test_the_hook_lints_arch_files_only():
    h = hook()
    assert (h["id"], h["entry"], h["language"]) == ("archc-lint", "archc lint", "python")
    pattern = re.compile(h["files"])
    assert pattern.search("specs/torchvision/resnet50.arch")
    assert not pattern.search("README.md") and not pattern.search("archc/cli.py")


def _entry(files: list[str]) -> subprocess.CompletedProcess[str]:
    # pre-commit appends the matching staged files to the entry; the entry's command is the
    # archc script installed beside this interpreter.
    command, *args = shlex.split(hook()["entry"])
    script = Path(sys.executable).parent / command
    return subprocess.run([str(script), *args, *files], capture_output=True, text=True, cwd=ROOT)


def test_the_hook_passes_on_every_shipped_spec():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").rglob("*.arch"))
    pattern = re.compile(hook()["files"])
    assert all(pattern.search(f) for f in files)
    done = _entry(files)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().startswith(f"{len(files)} files checked: 0 errors, 0 warnings")


def test_the_hook_fails_a_commit_with_a_wrong_declared_shape(tmp_path):
    bad = tmp_path / "alexnet224.arch"
    bad.write_text("input [224x224x3]\n[55x55x96] CONV1: 96 11x11 stride 4\nFC 10\n")
    done = _entry([str(bad)])
    assert done.returncode == 1 and "error[E302]" in done.stdout
