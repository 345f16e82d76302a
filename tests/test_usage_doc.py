"""docs/usage.md's examples, run (issue 25: the docs said what archc does not)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
USAGE = (ROOT / "docs" / "usage.md").read_text()
DATA = ROOT / "tests" / "data"


def archc(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "archc", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**_plain_env(), **(env or {})},
    )
    return done.stdout + done.stderr


def _plain_env() -> dict[str, str]:
    """The environment without the caller's choices of encoding, which the locale test sets."""
    dropped = ("PYTHONIOENCODING", "PYTHONUTF8", "PYTHONCOERCECLOCALE", "LC_ALL", "LC_CTYPE")
    return {k: v for k, v in os.environ.items() if k not in dropped}


def block_after(marker: str, fence: str = "```") -> str:
    """The first fenced block after ``marker``, dedented by its indentation."""
    start = USAGE.index(fence, USAGE.index(marker))
    body = USAGE[USAGE.index("\n", start) + 1 : USAGE.index(fence, start + len(fence))]
    indent = len(body) - len(body.lstrip(" "))
    return "\n".join(line[indent:] for line in body.splitlines())


def test_the_lint_example_is_what_lint_prints(tmp_path):
    text = (DATA / "lecture_alexnet.arch").read_text().replace("[227x227x3]", "[224x224x3]")
    (tmp_path / "alexnet224.arch").write_text(text)
    out = archc("lint", "--color", "never", "alexnet224.arch", cwd=tmp_path)
    shown, _, last = block_after("- `--format text` (default)").partition("\n…\n")
    # The example's diagnostics are the first of the output, in its order (W301 first).
    assert out.startswith(shown.strip() + "\n")
    assert shown.index("warning[W301]") < shown.index("error[E302]")
    assert out.rstrip().splitlines()[-1] == last.strip()


def test_the_summary_json_sample_is_what_summary_prints():
    sample = block_after("- `--format json`: one object, for programs")
    out = json.loads(
        archc("summary", "--format", "json", str(DATA / "lecture_vgg16.arch"), cwd=ROOT)
    )
    # Every top-level key, and nothing the output lacks.
    assert _top_level_keys(sample) == list(out)
    assert '"network": "VGG16"' in sample and out["network"] == "VGG16"
    objects = [json.loads(m) for m in re.findall(r"\{\"(?:name|node)\": [^{}]*\}", sample)]
    layer, fusion, claim = objects
    assert layer.items() <= next(x for x in out["layers"] if x["name"] == "conv1").items()
    assert fusion in out["fusion"]
    assert claim in out["claims"]


def _top_level_keys(text: str) -> list[str]:
    """The keys of the outermost object of a JSON-like sample (with … for elided values)."""
    keys, depth = [], 0
    for m in re.finditer(r'[{}\[\]]|"(\w+)":', text):
        token = m.group()
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
        elif depth == 1:
            keys.append(m.group(1))
    return keys


def test_the_graph_overview_line_is_what_graph_prints(tmp_path):
    example = block_after("draws every layer. By default a network of up to 50 layers")
    command, line = example.splitlines()
    assert command == "$ archc graph torchvision/resnet18 > resnet18.mmd"
    done = subprocess.run(
        [sys.executable, "-m", "archc", "graph", "torchvision/resnet18"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.stderr == line + "\n"


def test_the_pre_commit_local_hook_runs_the_repositorys_hook():
    config = yaml.safe_load(block_after("this `.pre-commit-config.yaml` runs as written"))
    (repo,) = config["repos"]
    (hook,) = repo["hooks"]
    (provided,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert repo["repo"] == "local"
    assert (hook["id"], hook["entry"], hook["files"]) == (
        provided["id"],
        provided["entry"],
        provided["files"],
    )
    remote = yaml.safe_load(block_after("and `rev` a commit of it"))["repos"][0]
    # A commit id, not a tag archc does not have.
    assert re.fullmatch(r"[0-9a-f]{40}", remote["rev"])


def test_a_c_locale_writes_utf_8_unless_pythons_utf_8_mode_is_off(tmp_path):
    text = (DATA / "lecture_alexnet.arch").read_text().replace("[227x227x3]", "[224x224x3]")
    (tmp_path / "a.arch").write_text(text)
    utf8 = archc("lint", "a.arch", cwd=tmp_path, env={"LC_ALL": "C"})
    assert "(224 − 11 + 2·0)/4 + 1 = 54.25 → 54" in utf8
    off = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    ascii_ = archc("lint", "a.arch", cwd=tmp_path, env=off)
    assert "(224 - 11 + 2*0)/4 + 1 = 54.25 -> 54" in ascii_
    assert "PYTHONUTF8=0 PYTHONCOERCECLOCALE=0" in " ".join(USAGE.split())


def test_the_compile_synopsis_has_every_option():
    synopsis = block_after("## archc compile")
    for option in ("--allow-claims", "--fused", "-o OUT"):
        assert option in synopsis


def test_the_missing_torch_line_is_the_programs(tmp_path):
    code = (
        "import sys\nsys.modules['torch'] = None\n"
        "from archc import cli\nsys.exit(cli.main(['compile', 'vgg16']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2
    assert f"`{done.stderr.strip()}`" in " ".join(USAGE.split())
