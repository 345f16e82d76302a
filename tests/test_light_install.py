"""The light install (issue 25): `pip install archc` brings lark and pydantic, and the commands
that never import torch work with it; the ones that need torch say which extra in one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

NO_TORCH = "import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"


def _without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH + code], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["compile", "vgg16", "-o", "out.py"], "torch"),
        (["export", "vgg16", "-o", "out.onnx"], "onnx"),
        (["train", "vgg16", "--data", "."], "train"),
        (["eval", "vgg16", "--weights", "w.pt", "--data", "."], "train"),
    ],
)
def test_a_command_that_needs_torch_says_which_extra_in_one_line(tmp_path, argv, extra):
    done = _without_torch(f"from archc import cli\nsys.exit(cli.main({argv!r}))\n", tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"archc {argv[0]} needs torch, which is not installed: pip install 'archc[{extra}]'\n"
    )
    assert not (tmp_path / argv[3]).exists() if "-o" in argv else True


def test_the_api_that_needs_torch_says_which_extra(tmp_path):
    code = (
        "import archc\n"
        "try:\n"
        "    archc.load('vgg16')\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    done = _without_torch(code, tmp_path)
    assert done.stdout == (
        "MissingExtra archc.load needs torch, which is not installed: pip install 'archc[torch]'\n"
    )


def _lsp_session(archc: Path, cwd: Path) -> tuple[int, list[dict]]:
    messages = [
        {"id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"method": "initialized", "params": {}},
        {"id": 2, "method": "shutdown"},
        {"method": "exit"},
    ]
    stream = b""
    for m in messages:
        body = json.dumps({"jsonrpc": "2.0", **m}).encode()
        stream += b"Content-Length: %d\r\n\r\n" % len(body) + body
    done = subprocess.run([str(archc), "lsp"], input=stream, capture_output=True, cwd=cwd)
    replies, out = [], done.stdout
    while out:
        header, _, out = out.partition(b"\r\n\r\n")
        length = int(header.split(b":")[1])
        replies.append(json.loads(out[:length]))
        out = out[length:]
    return done.returncode, replies


@pytest.mark.slow
def test_the_light_install_in_a_fresh_environment(tmp_path):
    """A wheel of this checkout in a new virtual environment with its dependencies only (the
    wheel is built here without build isolation, so this takes seconds, not a download of
    setuptools)."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(wheels), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python, archc = venv / "bin" / "python", venv / "bin" / "archc"
    (wheel,) = wheels.glob("archc-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)],
        check=True,
    )
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"archc", "lark", "pydantic"} <= installed
    assert not installed & {"torch", "triton", "numpy", "tqdm", "pygls"}
    site = next(venv.glob("lib/python*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert size < 150 * 2**20, f"{size / 2**20:.0f} MB"

    def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(archc), *argv], capture_output=True, text=True, cwd=tmp_path, input=stdin
        )

    assert run("lint", "vgg16").returncode == 0
    summary = run("summary", "resnet18")
    assert summary.returncode == 0 and "11.7M" in summary.stdout  # torchvision: 11,689,512
    graph = run("graph", "--format", "mermaid", "-", stdin="input [8x8x3]\nCONV: 4 3x3\n")
    assert graph.returncode == 0 and graph.stdout.startswith("flowchart")
    code, replies = _lsp_session(archc, tmp_path)
    assert code == 0 and replies[0]["result"]["serverInfo"]["name"] == "archc"
    compiled = run("compile", "vgg16", "-o", "vgg16.py")
    assert compiled.returncode == 2
    assert compiled.stderr == (
        "archc compile needs torch, which is not installed: pip install 'archc[torch]'\n"
    )


# --- what pyproject.toml and the README say ----------------------------------------------------


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


README = (ROOT / "README.md").read_text()


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.\[\]-]+", r).group().lower() for r in requirements}


def _extra(name: str) -> set[str]:
    """Every distribution an extra brings, following `archc[...]` references."""
    found: set[str] = set()
    for requirement in _names(_project()["optional-dependencies"][name]):
        inner = re.fullmatch(r"archc\[(\w+)\]", requirement)
        found |= _extra(inner.group(1)) if inner else {requirement}
    return found


def test_the_light_install_is_lark_and_pydantic_and_torch_is_an_extra():
    project = _project()
    assert _names(project["dependencies"]) == {"lark", "pydantic"}
    assert {"torch", "numpy", "tqdm"} <= _extra("torch")
    # triton comes with torch where torch brings it; archc never asks for it itself.
    every = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    assert not any("triton" in r for r in every + project["dependencies"])
    assert _extra("torch") <= _extra("dev") and _extra("train") <= _extra("dev")


def test_the_readme_quick_start_is_light_and_its_python_example_names_its_extra():
    first, second = re.findall(r"```sh\n(.*?)\n```", README, re.S)[:2]
    assert "pip install -e . &&" in first and "archc summary" in first
    assert 'pip install -e ".[dev]" && python -m pytest' in second
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci and "python -m pytest" in ci
    before, example = README.split("```python\n", 1)
    named = re.findall(r'pip install -e "\.\[(\w+)\]"', before.rstrip().rsplit("\n\n", 1)[-1])
    assert named, "the paragraph before the Python example names no extra"
    imported = set(re.match(r"import (.*)", example).group(1).replace(" ", "").split(","))
    assert imported - {"archc"} <= _extra(named[0])
