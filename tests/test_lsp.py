"""`archc lsp` driven as an editor drives it: JSON-RPC over the stdio of a subprocess."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

TIMEOUT_S = 20.0

ALEXNET_224 = """\
network AlexNet224
input [224x224x3]
[55x55x96] CONV1: 96 11x11 stride 4 pad 0
MAX POOL1: 3x3 stride 2
"""

BLOCKS = """\
input [56x56x64]
conv: bn, relu

block pair(width):
    CONV: width 3x3 pad 1
    CONV: width 3x3 pad 1

stem: pair(64) x2
"""


def resnet152_written_out() -> str:
    """ResNet-152 with every layer on its own line, no blocks and no defaults: 711 lines."""
    lines = ["network ResNet152", "input [224x224x3]", ""]
    lines += ["conv1: 64 7x7 stride 2 pad 3 no bias -> [112x112x64]", "BN", "relu"]
    lines += ["MAX POOL: 3x3 stride 2 pad 1 -> [56x56x64]", ""]
    size = 56
    for stage, (width, blocks) in enumerate([(64, 3), (128, 8), (256, 36), (512, 3)], start=1):
        for b in range(blocks):
            stride = 2 if b == 0 and stage > 1 else 1
            size //= stride
            lines += [f"stage layer{stage}_{b}:", "    residual:"]
            lines += [
                f"        CONV: {width} 1x1 stride {stride} no bias",
                "        BN",
                "        relu",
            ]
            lines += [f"        CONV: {width} 3x3 pad 1 no bias", "        BN", "        relu"]
            lines += [f"        CONV: {4 * width} 1x1 no bias", "        BN"]
            lines += [
                "    shortcut: auto",
                f"    add -> [{size}x{size}x{4 * width}]",
                "    relu",
                "",
            ]
    lines += ["GLOBAL AVG POOL -> [1x1x2048]", "FC: 1000 -> [1000]", "softmax"]
    return "\n".join(lines) + "\n"


class Client:
    """The editor's side: Content-Length framed JSON-RPC, every wait bounded."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "archc", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = out.readline()
            if not header:
                return
            length = (
                int(header.split(b":")[1]) if header.lower().startswith(b"content-length") else 0
            )
            while header.strip():
                header = out.readline()
                if header.lower().startswith(b"content-length"):
                    length = int(header.split(b":")[1])
            self.messages.put(json.loads(out.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        reply = self.wait(lambda m: m.get("id") == self.next_id and "method" not in m)
        assert "error" not in reply, reply
        return reply["result"]

    def wait(self, match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such message from archc lsp")
            message = self.messages.get(timeout=left)
            if match(message):
                return message

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        message = self.wait(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
            )
        )
        return message["params"]["diagnostics"]

    def open(self, path: Path, text: str) -> str:
        uri = path.as_uri()
        document = {"uri": uri, "languageId": "arch", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})
        return uri

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.proc.wait(timeout=TIMEOUT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def client(tmp_path: Path):
    c = Client(tmp_path)
    result = c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert result["serverInfo"]["name"] == "archc"
    c.notify("initialized", {})
    yield c
    c.close()


def at(line: int, character: int, uri: str) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def test_declared_shape_error_is_published_with_lints_range_and_help(client, tmp_path):
    uri = client.open(tmp_path / "alexnet224.arch", ALEXNET_224)
    diagnostics = {d["code"]: d for d in client.diagnostics(uri)}
    e302 = diagnostics["E302"]
    # `[55x55x96]` on the third line (0-based line 2), as `archc lint` underlines it.
    assert e302["range"] == {
        "start": {"line": 2, "character": 0},
        "end": {"line": 2, "character": 10},
    }
    assert e302["severity"] == 1
    assert e302["message"].startswith(
        "declared shape [55x55x96] does not match the inferred [54x54x96]"
    )
    assert "help: (224 − 11 + 2·0)/4 + 1 = 54.25 → 54" in e302["message"]
    assert diagnostics["W301"]["severity"] == 2


def test_hover_shows_the_inferred_shape_and_costs(client, tmp_path):
    uri = client.open(tmp_path / "alexnet224.arch", ALEXNET_224)
    client.diagnostics(uri)
    hover = client.request("textDocument/hover", at(2, 14, uri))
    text = hover["contents"]["value"]
    assert "`CONV1`" in text
    assert "output `[54x54x96]`" in text
    assert "params 34,944" in text  # 11·11·3·96 weights + 96 biases
    assert "receptive field 11 (jump 4)" in text
    # The pool after it: 3x3 at stride 2 on 54x54 gives 26x26.
    assert (
        "output `[26x26x96]`"
        in client.request("textDocument/hover", at(3, 2, uri))["contents"]["value"]
    )


def test_hover_on_a_block_call_shows_the_blocks_totals(client, tmp_path):
    uri = client.open(tmp_path / "pair.arch", BLOCKS)
    client.diagnostics(uri)
    text = client.request("textDocument/hover", at(7, 8, uri))["contents"]["value"]
    # Two calls of two conv+BN+ReLU: 2 × (3·3·64·64 + 64 + 2·64) · 2 convs.
    assert "`pair`: 12 layers" in text
    assert f"params {4 * (3 * 3 * 64 * 64 + 64 + 2 * 64):,}" in text
    assert "output `[56x56x64]`" in text


def test_definition_of_a_block_call_is_the_blocks_line(client, tmp_path):
    uri = client.open(tmp_path / "pair.arch", BLOCKS)
    client.diagnostics(uri)
    location = client.request("textDocument/definition", at(7, 8, uri))
    assert location["uri"] == uri
    assert location["range"]["start"] == {"line": 3, "character": 0}


def test_definition_of_an_import_is_the_imported_file(client, tmp_path):
    text = 'input [56x56x64]\nimport "blocks/resnet.arch"\nlayer1: basic(64) x2\n'
    uri = client.open(tmp_path / "net.arch", text)
    assert client.diagnostics(uri) == []
    target = client.request("textDocument/definition", at(1, 10, uri))
    assert target["uri"].endswith("/blocks/resnet.arch")
    block = client.request("textDocument/definition", at(2, 10, uri))
    assert block["uri"] == target["uri"]
    # `block basic(width, stride = 1):` is the tenth line of specs/blocks/resnet.arch.
    assert block["range"]["start"]["line"] == 9


def test_completion_and_outline(client, tmp_path):
    uri = client.open(tmp_path / "pair.arch", BLOCKS)
    client.diagnostics(uri)
    items = client.request("textDocument/completion", at(8, 0, uri))["items"]
    labels = {i["label"]: i for i in items}
    assert labels["MAX POOL"]["detail"] == "max pool"
    assert labels["stride"]["kind"] == 14  # Keyword
    assert labels["pair"]["detail"] == "block pair(width)"
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    # input (Variable), the block (Class) with its two layers (Field), the call line (Object).
    assert [(s["name"], s["kind"]) for s in symbols] == [("input", 13), ("pair", 5), ("stem", 19)]
    block = symbols[1]
    assert block["range"]["end"]["line"] == 5  # the block folds its body
    assert [(c["kind"], c["detail"]) for c in block["children"]] == [(8, "conv [56x56x64]")] * 2
    assert symbols[2]["detail"] == "pair x2 [56x56x64]"


def test_resnet152_written_out_rechecks_in_well_under_a_second(client, tmp_path):
    text = resnet152_written_out()
    assert len(text.splitlines()) > 700
    uri = client.open(tmp_path / "resnet152.arch", text)
    assert client.diagnostics(uri) == []
    edited = text.replace("-> [7x7x2048]", "-> [7x7x2047]", 1)
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": edited}]},
    )
    log = client.wait(
        lambda m: m.get("method") == "window/logMessage" and "resnet152" in m["params"]["message"]
    )
    (wrong,) = client.diagnostics(uri)
    assert wrong["code"] == "E302"
    assert wrong["range"]["start"]["line"] == text[: text.index("-> [7x7x2048]")].count("\n")
    # The server times each check; the figure goes in the test output and docs/editors.md.
    ms = float(log["params"]["message"].rsplit(" in ", 1)[1].split()[0])
    print(f"\nresnet152 ({len(text.splitlines())} lines) re-checked in {ms:.0f} ms")
    assert ms < 1000


def test_the_server_never_imports_torch():
    code = (
        "import sys, archc.lsp\n"
        "from archc.editor import SpecView\n"
        "text = open('specs/resnet50.arch').read()\n"
        "view = SpecView(text, 'specs/resnet50.arch')\n"
        "line = [i for i, s in enumerate(text.splitlines(), 1) if s.startswith('conv1:')][0]\n"
        "assert view.hover(line, 1) and view.symbols() and view.completions()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'triton')))\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
