"""Hostile input, round three (issue 24): the newer commands and scale. One test (at least) per
item of the issue this file covers; each fails on the code before the fix. Work that was
quadratic is shown linear by counting steps, not by timing."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import archc
from archc import ir, parser, pictures
from archc.check import check_source, check_spec
from archc.cli import main
from archc.diagnostics import ArchcError
from archc.frontend import parse_spec

TINY = "input [8x8x3]\nCONV 4 3x3\nFC 2\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def spec(tmp_path: Path, text: str = TINY, name: str = "net.arch") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- 1, 2: outputs never replace an input or a file that is not regular -------------------------


def test_export_refuses_to_overwrite_a_file_the_spec_imports(capsys, tmp_path):
    pytest.importorskip("onnx")
    lib = spec(tmp_path, "block b():\n    CONV 4 3x3\n", "lib.arch")
    net = spec(tmp_path, 'import "lib.arch"\ninput [8x8x3]\nx: b()\nFC 2\n')
    before = lib.read_bytes()
    code, out, err = run(capsys, "export", str(net), "-o", str(lib))
    assert code == 2
    assert "cannot write" in err and "a file the spec imports" in err
    assert lib.read_bytes() == before


def test_compile_writes_into_a_fifo_instead_of_replacing_it(capsys, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    code, _, err = run(capsys, "compile", str(spec(tmp_path)), "-o", str(fifo))
    thread.join(10)
    if thread.is_alive():  # the old code replaced the FIFO: open it once so the reader ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)) if fifo.exists() else None
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and b"class net(nn.Module)" in got[0]


def test_compile_to_a_character_device_writes_to_it_and_keeps_it(capsys, tmp_path):
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except (PermissionError, OSError):
        pytest.skip("making a device node needs root")
    code, _, err = run(capsys, "compile", str(spec(tmp_path)), "-o", str(null))
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_output_to_a_directory_is_refused_in_one_line(capsys, tmp_path):
    (tmp_path / "out.mmd").mkdir()
    code, out, err = run(capsys, "graph", str(spec(tmp_path)), "-o", str(tmp_path / "out.mmd"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "is a directory" in err


def test_dash_streams_the_output_to_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "compile", str(spec(tmp_path)), "-o", "-")
    assert code == 0
    assert "class net(nn.Module)" in out and "wrote -" in err
    assert not (tmp_path / "-").exists()


def test_dev_stdout_is_streamed_so_a_picture_can_be_piped(tmp_path):
    net = spec(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "archc", "graph", str(net), "-o", "/dev/stdout"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("flowchart TD") and done.stderr == ""


# --- 5: a symlink named *.arch never discloses the file it leads to -----------------------------


@pytest.fixture
def hostile_repo(tmp_path: Path) -> Path:
    secret = tmp_path / "git-credentials"
    secret.write_text("https://user:SECRET_TOKEN_123@github.com\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "blocks.arch").symlink_to(secret)
    (repo / "net.arch").write_text('import "blocks.arch"\ninput [8x8x3]\nCONV 4 3x3\n')
    return repo


def test_an_imported_link_to_a_secret_is_refused_unread(hostile_repo, capsys):
    with pytest.raises(ArchcError) as caught:
        archc.load(str(hostile_repo / "net.arch"))
    assert "SECRET" not in str(caught.value)
    assert [d.code for d in caught.value.diagnostics] == ["E005"]
    code, out, err = run(capsys, "lint", str(hostile_repo / "net.arch"))
    assert code == 1 and "SECRET" not in out + err
    assert "symbolic link to a file that is not a `.arch` spec file" in out


def test_directory_lint_and_a_glob_do_not_read_a_linked_secret(hostile_repo, capsys):
    code, out, err = run(capsys, "lint", str(hostile_repo))
    assert "SECRET" not in out + err
    assert f"{hostile_repo / 'blocks.arch'}:1:1: error[E005]" in out
    code, out, err = run(capsys, "lint", str(hostile_repo / "blocks.arch"))  # a shell glob
    assert "SECRET" not in out + err and "error[E005]" in out


def test_an_imported_link_out_of_the_spec_directory_is_refused(tmp_path):
    outside = spec(tmp_path, "block b():\n    CONV 4 3x3\n", "outside.arch")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "lib.arch").symlink_to(outside)
    net = spec(repo, 'import "lib.arch"\ninput [8x8x3]\nx: b()\nFC 2\n')
    checked = check_spec(net)
    assert [d.code for d in checked.diagnostics] == ["E005"]  # not also E202 for `b`
    assert "leads out of" in checked.diagnostics[0].message
    # A link that stays inside the directory is followed as before.
    (repo / "real.arch").write_text("block b():\n    CONV 4 3x3\n")
    (repo / "lib.arch").unlink()
    (repo / "lib.arch").symlink_to(repo / "real.arch")
    assert check_spec(net).ok


# --- 8: the parser stops at the node limit, before parsing the file -----------------------------


def test_a_file_past_the_statement_limit_is_refused_before_any_line_is_parsed(monkeypatch):
    monkeypatch.setattr(parser, "MAX_STATEMENTS", 1000)
    calls = []
    real = parser._parse_line
    monkeypatch.setattr(parser, "_parse_line", lambda *a: calls.append(1) or real(*a))
    result = parse_spec("input [8x8x3]\n# a comment\n\n" + "relu\n" * 5000)
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("E216", 1003)]
    assert calls == []
    assert check_source("input [8x8x3]\n" + "relu\n" * 998).ok  # at the limit: parsed


def test_long_lines_count_against_a_token_limit_before_parsing(monkeypatch):
    monkeypatch.setattr(parser, "MAX_TOKENS", 3000)
    calls = []
    real = parser._parse_line
    monkeypatch.setattr(parser, "_parse_line", lambda *a: calls.append(1) or real(*a))
    line = "CONV " + "+".join(["1"] * 150) + " 3x3  # comments are not counted: " + "x " * 999
    result = parse_spec("input [8x8x3]\n" + (line + "\n") * 20)
    # `input [8x8x3]` is 4 tokens, each conv line 301 (CONV, 150 ones, 149 pluses, 3x3): the
    # tenth conv line, line 11, brings 4 + 3,010 past 3,000.
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("E216", 11)]
    assert "3,000 words, numbers and signs" in result.diagnostics[0].message
    assert calls == []


def test_the_statement_limit_bounds_a_10mb_file_and_allows_the_node_limit() -> None:
    from archc.elaborate.expand import MAX_NODES

    assert parser.MAX_STATEMENTS <= 20_000 < MAX_NODES
    text = "input [8x8x3]\n" + "relu\n" * parser.MAX_STATEMENTS
    assert [d.code for d in parse_spec(text + "relu\n").diagnostics] == ["E216"]
    # Blocks still make networks up to the node limit from a short file.
    many = "input [8x8x4]\nblock b():\n    relu\nblock c():\n    x: b() x1000\ns: c() x50\n"
    assert check_source(many + "FC 2\n").ok


# --- 9: a note quotes a window of its line, not the whole line ----------------------------------


def test_notes_quote_at_most_a_window_of_a_huge_call_line(capsys, tmp_path):
    body = "".join("    CONV 0 3x3\n" for _ in range(50))
    text = f"input [8x8x3]\nblock b():\n{body}x: b() # {'c' * 100_000}\nFC 2\n"
    code, out, _ = run(capsys, "lint", str(spec(tmp_path, text)))
    assert code == 1 and out.count("error[E209]") == 50
    assert len(out) < 100 * 1000  # the old output quoted the 100 KB line 50 times: 5 MB
    assert "x: b() # ccc" in out and "…" in out


# --- 10: linear in block instances and in graph edges -------------------------------------------


class _CountingList(list):
    """A list that counts the passes over it."""

    passes = 0

    def __iter__(self):
        _CountingList.passes += 1
        return super().__iter__()


def _instances(n: int) -> str:
    return f"input [8x8x3]\nblock b():\n    CONV 4 3x3 pad 1\nx: b() x{n}\nFC 2\n"


def test_graph_node_lookup_does_not_scan_the_nodes():
    graph = check_source(_instances(200)).graph
    names = [n.name for n in graph.nodes]
    object.__setattr__(graph, "nodes", _CountingList(graph.nodes))  # a frozen model
    _CountingList.passes = 0
    assert [graph.node(n).name for n in names] == names
    assert _CountingList.passes <= 1  # one pass to index; the old lookup made one per name
    with pytest.raises(KeyError):
        graph.node("no such layer")


def test_the_module_plan_does_not_scan_the_graph_per_part():
    from archc.backends.plan import plan

    def passes(n: int) -> int:
        checked = check_source(_instances(n))
        object.__setattr__(checked.graph, "nodes", _CountingList(checked.graph.nodes))
        _CountingList.passes = 0
        plan(checked.graph, checked.shapes)
        return _CountingList.passes

    # The old plan passed over the graph once per part and once per lookup of a node.
    assert passes(200) == passes(50) <= 3


def test_block_classes_are_formed_without_merging_every_instance_with_every_other(monkeypatch):
    from archc.backends import source

    calls = []
    real = source.merge
    monkeypatch.setattr(source, "merge", lambda parts: calls.append(len(parts)) or real(parts))

    def merged_parts(n: int) -> int:
        calls.clear()
        source.generate_source(check_source(_instances(n)))
        return sum(calls)

    # Instances of one forward join their class by that forward: the parts merged do not grow
    # with their number (the old grouping merged each new instance with all before it: n*n/2).
    small, large = merged_parts(50), merged_parts(200)
    assert large - small == 200 - 50  # one last merge per class, over its members


class _Name(str):
    """A node name that counts comparisons with other names."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Name.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_graph_picture_edges_are_found_without_comparing_every_pair(monkeypatch):
    n = 2000
    names = [_Name(f"l{i}") for i in range(n)]
    nodes = [SimpleNamespace(name=names[0], inputs=[])]
    nodes += [SimpleNamespace(name=names[i], inputs=[names[i - 1]]) for i in range(1, n)]
    layers = [SimpleNamespace(name=x, output_shape=(1,), group=None) for x in names]
    checked = SimpleNamespace(
        graph=SimpleNamespace(nodes=nodes, name="g"),
        accounting=SimpleNamespace(layers=layers),
    )
    monkeypatch.setattr(pictures, "describe", lambda node: "layer")
    _Name.compared = 0
    pic = pictures.picture(checked)  # type: ignore[arg-type]
    assert len(pic.edges) == n - 1
    assert _Name.compared < 10 * n  # the old list membership test: n * n / 2


# --- 12: export refuses example batches larger than the process may use -------------------------


def test_export_refuses_a_batch_that_would_not_fit_in_one_line(capsys, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    import archc.memory

    monkeypatch.setattr(archc.memory, "process_memory", lambda: 4096)
    code, out, err = run(capsys, "export", str(spec(tmp_path)), "-o", str(tmp_path / "x.onnx"))
    assert code == 2 and out == ""
    assert err.startswith("archc export: exporting needs about") and err.count("\n") == 1
    assert "more than the 4 KB (4,096 bytes)" in err
    assert not (tmp_path / "x.onnx").exists()


def test_process_memory_counts_rlimit_as_and_the_cgroup_limit(monkeypatch, tmp_path):
    import resource

    import archc.memory as memory

    monkeypatch.setattr(resource, "getrlimit", lambda which: (3 << 30, resource.RLIM_INFINITY))
    monkeypatch.setattr(memory, "_CGROUP_LIMITS", ())
    assert memory.process_memory() <= 3 << 30
    limit = tmp_path / "memory.max"
    limit.write_text("1048576\n")
    monkeypatch.setattr(memory, "_CGROUP_LIMITS", (str(limit),))
    assert memory.process_memory() == 1 << 20
    limit.write_text("max\n")  # cgroup v2's "no limit"
    assert memory.process_memory() <= 3 << 30
    assert memory.device_memory() == memory.process_memory()


# --- 13, 15: lint-clean specs that could not be built -------------------------------------------


def test_a_vector_input_with_a_train_section_is_not_augmented(capsys, tmp_path):
    text = "input [12]\nFC 2\ntrain:\n    epochs 1\n"
    checked = check_source(text)
    assert checked.ok and checked.graph.recipe.augment == "none"
    assert run(capsys, "lint", str(spec(tmp_path, text)))[0] == 0
    # Written out, image augmentation of a vector is still E221.
    bad = check_source(text + "    augment standard\n")
    assert [d.code for d in bad.diagnostics] == ["E221"]


def test_a_network_named_recipe_with_a_train_section_builds():
    import torch

    model = archc.load("network recipe\n" + TINY + "train:\n    epochs 1\n")
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 2)


def test_a_layer_named_self_is_reserved():
    text = "input [8x8x3]\nblock b():\n    self: CONV 4 3x3\nx: b()\nFC 2\n"
    (d,) = check_source(text).diagnostics
    assert (d.code, d.span.line) == ("E218", 3) and "`self`" in d.message


def test_a_network_of_blocks_that_expand_to_nothing_is_e003():
    text = "input [8x8x3]\nblock b():\n    conv: bn\nx: b()\n"
    (d,) = check_source(text).diagnostics
    assert (d.code, d.span.line) == ("E003", 4)
    with pytest.raises(ArchcError):
        archc.load(text)


# --- 14, 21: imports: depth, symlink loops ------------------------------------------------------


def test_a_chain_of_500_imports_stops_at_the_depth_limit(tmp_path):
    from archc.elaborate.imports import MAX_IMPORT_DEPTH

    for i in range(500):
        (tmp_path / f"l{i}.arch").write_text(
            f'import "l{i + 1}.arch"\nblock b{i}():\n    CONV 4 3x3\n'
        )
    (tmp_path / "l500.arch").write_text("block last():\n    CONV 4 3x3\n")
    net = spec(tmp_path, 'import "l0.arch"\ninput [8x8x3]\nx: b0()\nFC 2\n')
    codes = [(d.code, d.message) for d in check_spec(net).diagnostics]
    assert codes == [("E205", f"imports are nested more than {MAX_IMPORT_DEPTH} deep")]


def test_an_import_of_a_symlink_loop_says_so(tmp_path):
    (tmp_path / "loop.arch").symlink_to("loop.arch")
    net = spec(tmp_path, 'import "loop.arch"\n' + TINY)
    (d,) = check_spec(net).diagnostics
    assert d.code == "E001" and "loop of symbolic links" in d.message


def test_bidi_controls_in_a_comment_are_warned(capsys, tmp_path):
    text = "input [8x8x3]\nCONV 4 3x3 # ok \u202e } evil\nFC 2\n"
    checked = check_source(text)
    assert [(d.code, d.span.line) for d in checked.diagnostics] == [("W006", 2)]
    code, out, _ = run(capsys, "lint", str(spec(tmp_path, text)))
    assert code == 0 and "\\u202e" in out and "\u202e" not in out


def test_bidi_warnings_are_one_per_line_and_bounded():
    text = "input [8x8x3]\n" + "relu # \u2066\u2066\u2069\n" * 100 + "FC 2\n"
    found = [d for d in check_source(text).diagnostics if d.code == "W006"]
    assert [d.span.line for d in found] == list(range(2, 2 + parser.MAX_BIDI_WARNINGS))


# --- 18: stdin is decoded as strictly as a file -------------------------------------------------


@pytest.mark.parametrize("data", [b"input [8x8x3]\n# \x00\nrelu\n", b"input [8x8x3]\n# \xff\n"])
def test_stdin_with_nul_or_invalid_utf8_is_e002(capsys, monkeypatch, data):
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(data)))
    code, out, _ = run(capsys, "lint", "-")
    assert code == 2
    assert "<stdin>:2:3: error[E002]: `<stdin>` is not UTF-8 text" in out


def test_stdin_text_still_lints(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(TINY.encode())))
    assert run(capsys, "lint", "-")[0] == 0


# --- 19: graph node ids are unique --------------------------------------------------------------


def test_graph_ids_never_merge_two_layers(capsys, tmp_path):
    text = 'input [8x8x3]\n"a-b": CONV 4 3x3\na_b: CONV 4 3x3\nFC 2\n'
    code, out, _ = run(capsys, "graph", str(spec(tmp_path, text)))
    assert code == 0
    ids = [line.split("[")[0].strip() for line in out.splitlines() if '["' in line]
    assert len(ids) == len(set(ids)) == len(check_source(text).graph.nodes)
    edges = [tuple(line.split(" --> ")) for line in out.splitlines() if " --> " in line]
    order = {name: i for i, name in enumerate(ids)}
    assert all(order[a.strip()] < order[b.strip()] for a, b in edges)  # no cycle


def test_ids_are_unique_against_suffixed_names():
    ids = pictures._Ids().assign(["a-b", "a_b", "a_b_2", "a.b"])
    assert len(set(ids.values())) == 4


# --- 20: --opset is honoured or refused ---------------------------------------------------------


def test_an_opset_the_exporter_did_not_write_is_refused():
    from archc.export import ExportError, _check_written_opset

    proto = SimpleNamespace(opset_import=[SimpleNamespace(domain="", version=18)])
    _check_written_opset(proto, None)
    _check_written_opset(proto, 18)
    with pytest.raises(ExportError, match="--opset 7 is not supported"):
        _check_written_opset(proto, 7)


@pytest.mark.slow
def test_export_opset_7_is_refused_and_writes_nothing(capsys, tmp_path):
    pytest.importorskip("onnxscript")
    target = tmp_path / "x.onnx"
    code, out, err = run(capsys, "export", str(spec(tmp_path)), "--opset", "7", "-o", str(target))
    assert code == 2 and out == ""
    assert err.startswith("archc export: --opset 7 is not supported") and err.count("\n") == 1
    assert not target.exists()


def test_ir_graph_is_used_as_before():
    graph = check_source(TINY).graph
    assert isinstance(graph, ir.Graph) and graph.node("fc1").op == "linear"
