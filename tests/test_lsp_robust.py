"""`archc lsp` on what editors and hostile clients send (issue 24, items 6, 7 and 17) and on the
files a user is in the middle of typing (issue 25): a broken file still answers hovers,
definitions and the outline on the lines that elaborate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_lsp import Client, at

ROOT = Path(__file__).resolve().parent.parent

# An add of different shapes (E305) on line 11 (the identity shortcut of the block `bad` calls
# with 32 filters on 64 channels); an unknown layer kind (E105) on the last line, 15.
TYPING = """\
network Typing
input [56x56x64]
CONV1: 64 3x3 pad 1
conv: bn, relu

block pair(width):
    # two convs beside an identity shortcut
    residual:
        CONV: width 3x3 pad 1
        CONV: width 3x3 pad 1
    shortcut: identity
    add
stem: pair(64)
bad: pair(32)
WIBBLE 3
"""


@pytest.fixture
def client(tmp_path: Path):
    c = Client(tmp_path)
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    yield c
    if c.proc.poll() is None:
        c.close()


def raw(c: Client, data: bytes) -> None:
    assert c.proc.stdin is not None
    c.proc.stdin.write(data)
    c.proc.stdin.flush()


def reply(c: Client, method: str, params: Any) -> dict[str, Any]:
    """The whole response (result or error) to one request."""
    c.next_id += 1
    wanted = c.next_id
    c.send({"id": wanted, "method": method, "params": params})
    return c.wait(lambda m: m.get("id") == wanted and "method" not in m)


# --- a file with errors still answers (issue 25) ---------------------------------------------


def test_a_broken_file_still_answers_on_the_lines_that_elaborate(client, tmp_path):
    uri = client.open(tmp_path / "typing.arch", TYPING)
    codes = {(d["code"], d["range"]["start"]["line"] + 1) for d in client.diagnostics(uri)}
    assert ("E105", 15) in codes
    # The E105 stops elaboration, so lint reports the E305 once the last line is fixed.
    fixed = TYPING.replace("WIBBLE 3\n", "")
    fixed_codes = {(d["code"], d["range"]["start"]["line"] + 1) for d in _lint_json(fixed)}
    assert ("E305", 11) in fixed_codes
    # Line 3 (0-based 2): CONV1, 64 filters of 3x3 over 64 channels, pad 1 keeps 56x56.
    text = client.request("textDocument/hover", at(2, 3, uri))["contents"]["value"]
    assert "output `[56x56x64]`" in text
    assert f"params {3 * 3 * 64 * 64 + 64:,}" in text
    # The call on line 13 elaborates too (its pair of 64 keeps the shape).
    assert "`pair`" in client.request("textDocument/hover", at(12, 8, uri))["contents"]["value"]
    location = client.request("textDocument/definition", at(12, 8, uri))
    assert location["uri"] == uri and location["range"]["start"]["line"] == 5
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = [(s["name"], s.get("detail")) for s in symbols]
    assert ("CONV1", "conv [56x56x64]") in names
    assert [n for n, _ in names] == ["input", "CONV1", "pair", "stem", "bad"]


def _lint_json(text: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "archc", "lint", "--format", "json", "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return [
        {"code": d["code"], "range": {"start": {"line": d["line"] - 1}}}
        for d in json.loads(done.stdout)
    ]


def test_completion_ranks_the_files_own_blocks_first(client, tmp_path):
    text = 'input [56x56x64]\nimport "blocks/resnet.arch"\nblock mine(w):\n    CONV: w 1x1\n'
    uri = client.open(tmp_path / "net.arch", text)
    client.diagnostics(uri)
    items = client.request("textDocument/completion", at(4, 0, uri))["items"]
    ranked = sorted(items, key=lambda i: i.get("sortText", i["label"]))
    assert ranked[0]["label"] == "mine"
    # Then the imported library's blocks, then the layer kinds and keywords.
    blocks = {i["label"] for i in items if i["kind"] == 3}
    assert {i["label"] for i in ranked[: len(blocks)]} == blocks
    assert "basic" in blocks and ranked[len(blocks)]["kind"] != 3


# --- the life cycle (issue 24, item 17) -------------------------------------------------------


def test_shutdown_then_exit_ends_the_server_with_0(client):
    client.request("shutdown", {})
    client.notify("exit", {})
    assert client.proc.wait(timeout=20) == 0


def test_exit_without_shutdown_is_1(client):
    client.notify("exit", {})
    assert client.proc.wait(timeout=20) == 1


def test_ctrl_c_exits_130_without_a_traceback(tmp_path):
    script = (
        "import signal, sys\n"
        # As at a terminal: a background job starts with SIGINT ignored.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from archc import cli\n"
        "sys.argv = ['archc', 'lsp']\n"
        "cli.run()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).encode()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()
    assert proc.stdout.readline().startswith(b"Content-Length")  # it is up and answering
    time.sleep(1.0)  # idle, waiting for the editor
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert b"Traceback" not in err


# --- what the server reads (issue 24, item 6) -------------------------------------------------


def test_a_document_never_opened_is_never_read(client, tmp_path):
    secret = tmp_path / "secret.arch"
    secret.write_text("input [8x8x3]\nCONV: 4 3x3\n")
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    for target in (secret, fifo, Path("/dev/zero")):
        uri = target.as_uri()
        assert client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}}) is None
        assert client.request("textDocument/hover", at(1, 0, uri)) is None
        client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    # Still answering (a FIFO would have blocked it), and nothing was published for them.
    uri = client.open(tmp_path / "open.arch", "input [8x8x3]\nCONV: 4 3x3\n")
    message = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    assert message["params"]["uri"] == uri


def test_an_import_that_is_not_an_arch_file_is_never_read(client, tmp_path):
    (tmp_path / "secret.txt").write_text("block leaked(token):\n    CONV: token 1x1\n")
    uri = client.open(tmp_path / "net.arch", 'input [8x8x3]\nimport "secret.txt"\n')
    (e005,) = client.diagnostics(uri)
    assert e005["code"] == "E005"
    items = client.request("textDocument/completion", at(2, 0, uri))["items"]
    assert "leaked" not in {i["label"] for i in items}
    assert client.request("textDocument/definition", at(1, 10, uri)) is None


# --- hostile streams and sizes (issue 24, item 7) ---------------------------------------------


def test_requests_are_answered_while_a_10_mb_document_is_checked(client, tmp_path):
    """The check of a big document runs beside the request loop: hovers sent after it is opened
    are all answered before its diagnostics are published (an order, not a time: a server that
    checked on its request thread would answer them only after)."""
    small = client.open(tmp_path / "small.arch", "input [8x8x3]\nCONV: 4 3x3\n")
    client.diagnostics(small)
    big = "input [8x8x3]\n" + "relu\n" * (2_000_000 - 1)
    assert len(big.encode()) > 9.9e6
    big_uri = client.open(tmp_path / "big.arch", big)
    first = client.next_id + 1
    for _ in range(5):
        client.next_id += 1
        client.send(
            {"id": client.next_id, "method": "textDocument/hover", "params": at(1, 0, small)}
        )
    order = []
    while True:
        message = client.wait(
            lambda m: "id" in m or m.get("method") == "textDocument/publishDiagnostics"
        )
        if message.get("method") == "textDocument/publishDiagnostics":
            if message["params"]["uri"] == big_uri:
                break
            continue
        order.append(message["id"])
        assert "output `[6x6x4]`" in message["result"]["contents"]["value"]
    assert order == list(range(first, first + 5))


def test_diagnostics_are_capped(client, tmp_path):
    text = "input [8x8x3]\n" + "WIBBLE 3\n" * 1000
    uri = client.open(tmp_path / "many.arch", text)
    diagnostics = client.diagnostics(uri)
    assert len(diagnostics) == 200
    assert diagnostics[-1]["message"].startswith("801 more problems not shown")


def test_invalid_params_get_an_error_response_without_a_traceback(client, tmp_path):
    uri = client.open(tmp_path / "net.arch", "input [8x8x3]\nCONV: 4 3x3\n")
    for params in (
        {"textDocument": {"uri": uri}, "position": {"line": "x", "character": 0}},
        {"position": {"line": 0, "character": 0}},
        [1, 2],
        None,
    ):
        answer = reply(client, "textDocument/hover", params)
        assert answer["error"]["code"] == -32602, answer
        assert "Traceback" not in answer["error"]["message"]
        assert "\n" not in answer["error"]["message"]
    answer = reply(client, "no/such/method", {})
    assert answer["error"]["code"] == -32601


def test_a_header_without_content_length_and_a_huge_length_do_not_derail_it(client, tmp_path):
    uri = client.open(tmp_path / "net.arch", "input [8x8x3]\nCONV: 4 3x3\n")
    client.diagnostics(uri)
    raw(client, b'X-Junk: 1\r\n\r\n{"jsonrpc": "2.0", "id": 999, "method": "shutdown"}')
    raw(client, b"Content-Length: 99999999999\r\n\r\n")
    hover = client.request("textDocument/hover", at(1, 0, uri))
    assert "output `[6x6x4]`" in hover["contents"]["value"]
    raw(client, b"Content-Length: 5\r\n\r\n{bad}")
    answer = client.wait(lambda m: "error" in m)
    assert answer["error"]["code"] == -32700
    assert client.request("textDocument/hover", at(1, 0, uri)) is not None


def test_an_incremental_edit_counts_utf_16_columns(client, tmp_path):
    # `𝑥` is two UTF-16 code units: the edit's columns are the protocol's, not characters.
    text = "input [8x8x3]  # 𝑥 here\nCONV: 4 3x3\n"
    uri = client.open(tmp_path / "net.arch", text)
    client.diagnostics(uri)
    # Replace `4` (line 1, character 6) by `16`.
    change = {
        "range": {"start": {"line": 1, "character": 6}, "end": {"line": 1, "character": 7}},
        "text": "16",
    }
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]},
    )
    hover = client.request("textDocument/hover", at(1, 0, uri))
    assert "output `[6x6x16]`" in hover["contents"]["value"]
    # And after the astral character on line 0: `here` starts at UTF-16 column 19.
    change = {
        "range": {"start": {"line": 0, "character": 19}, "end": {"line": 0, "character": 23}},
        "text": "there",
    }
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [change]},
    )
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert symbols[0]["name"] == "input"


def test_a_check_that_fails_is_answered_with_an_error(monkeypatch):
    import io

    import archc.lsp as lsp
    from archc.jsonrpc import Writer

    def broken(text, file):
        raise RuntimeError("boom")

    monkeypatch.setattr(lsp, "SpecView", broken)
    out = io.BytesIO()
    server = lsp.Server(Writer(out))
    uri = "file:///tmp/x.arch"
    for message in (
        {"id": 1, "method": "initialize", "params": {}},
        {
            "method": "textDocument/didOpen",
            "params": {"textDocument": {"uri": uri, "text": "input [8x8x3]\n"}},
        },
        {"id": 2, "method": "textDocument/hover", "params": at(0, 0, uri)},
    ):
        server.handle(json.dumps({"jsonrpc": "2.0", **message}).encode())
    deadline = time.monotonic() + 10
    while b'"id": 2' not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = next(m for m in _frames(out.getvalue()) if m.get("id") == 2)
    assert answer["error"]["code"] == -32603
    assert "Traceback" not in answer["error"]["message"]


def _frames(data: bytes) -> list[dict[str, Any]]:
    messages = []
    while data:
        header, _, data = data.partition(b"\r\n\r\n")
        length = int(header.split(b":")[1])
        messages.append(json.loads(data[:length]))
        data = data[length:]
    return messages


def test_lines_below_an_error_answer_from_the_last_good_check_marked_stale(client, tmp_path):
    good = "input [56x56x64]\nconv: bn, relu\nCONV1: 64 3x3 pad 1\nCONV2: 32 3x3 pad 1\nFC 10\n"
    uri = client.open(tmp_path / "net.arch", good)
    assert client.diagnostics(uri) == []
    # A line being typed above (an unknown kind), and the FC line changed.
    broken = (
        "input [56x56x64]\nconv: bn, relu\nWIBB\nCONV1: 64 3x3 pad 1\nCONV2: 32 3x3 pad 1\nFC 20\n"
    )
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": broken}]},
    )
    (error,) = [d for d in client.diagnostics(uri) if d["severity"] == 1]
    assert error["range"]["start"]["line"] == 2
    # CONV2, unchanged, moved from line 4 to 5: its shape from the last good check, marked.
    text = client.request("textDocument/hover", at(4, 2, uri))["contents"]["value"]
    assert "output `[56x56x32]`" in text
    assert text.endswith("*from the last check without errors: this file has errors now*")
    # The changed FC line has no answer: the old one would be wrong.
    assert client.request("textDocument/hover", at(5, 1, uri)) is None


def test_a_request_on_a_document_closed_while_it_is_checked_gets_an_error(monkeypatch):
    import io
    import threading

    import archc.lsp as lsp
    from archc.jsonrpc import Writer

    release = threading.Event()

    def slow(text, file, last_good=None):
        release.wait(10)
        raise RuntimeError("checked too late")

    monkeypatch.setattr(lsp, "SpecView", slow)
    out = io.BytesIO()
    server = lsp.Server(Writer(out))
    uri = "file:///tmp/x.arch"
    document = {"uri": uri, "text": "input [8x8x3]\n"}
    for message in (
        {"id": 1, "method": "initialize", "params": {}},
        {"method": "textDocument/didOpen", "params": {"textDocument": document}},
        {"id": 2, "method": "textDocument/hover", "params": at(0, 0, uri)},
        {"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}},
    ):
        server.handle(json.dumps({"jsonrpc": "2.0", **message}).encode())
    release.set()
    deadline = time.monotonic() + 10
    while b'"id": 2' not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    answers = [m for m in _frames(out.getvalue()) if m.get("id") == 2]
    assert len(answers) == 1 and answers[0]["error"]["code"] == -32603
