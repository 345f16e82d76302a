"""What the notation means, for the readings that once built a different network than they said
(issue: a grammar that carries the structure). Each test failed before the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.check import check_file, check_source
from archc.frontend import parse_spec
from archc.ops import OPS
from archc.ops.layout import CHANNELS_FIRST, channels_first_shape, permute_to
from archc.report import describe

ROOT = Path(__file__).resolve().parent.parent
INPUT = "input [16x16x3]\n"


def nodes(text: str) -> list[tuple[str, str]]:
    result = parse_spec(text)
    assert result.diagnostics == [], result.diagnostics
    assert result.graph is not None
    return [(n.name, n.op) for n in result.graph.nodes]


def filters(text: str) -> list[int]:
    result = parse_spec(text)
    assert result.graph is not None, result.diagnostics
    return [n.out_channels for n in result.graph.nodes if n.op == "conv"]


@pytest.mark.parametrize(
    ("written", "value"),
    [("w-2*2", 10 - 4), ("w - 2*2", 10 - 4), ("(w-2)*2", (10 - 2) * 2), ("w-2-2", 10 - 2 - 2)],
)
def test_minus_keeps_its_precedence_with_or_without_spaces(written: str, value: int) -> None:
    text = INPUT + f"block b(w):\n    CONV {written} 3x3\nx: b(10)\n"
    assert filters(text) == [value]


def test_a_minus_before_a_number_after_a_space_is_a_sign() -> None:
    (d,) = parse_spec(INPUT + "CONV -1 3x3\n").diagnostics
    assert (d.code, d.span.column) == ("E209", 6)


@pytest.mark.parametrize(
    ("line", "op"),
    [
        ("maxpool: MAX POOL 3x3 stride 2 pad 1", "maxpool"),
        ("avgpool: ADAPTIVE AVG POOL 1x1", "adaptive_avgpool"),
        ("dropout: dropout 0.2", "dropout"),
        ("flatten: flatten", "flatten"),
        ("gap: GAP", "global_avgpool"),
        ("lrn: LRN", "lrn"),
        ("fc: FC 1000", "linear"),
        ("conv: CONV 8 1x1", "conv"),
        ("relu: relu", "relu"),
        ("bn: BN", "batchnorm"),
    ],
)
def test_a_label_that_is_a_kind_word_is_only_a_name(line: str, op: str) -> None:
    name = line.split(":")[0]
    built = nodes(INPUT + line + "\n")
    assert [(n, o) for n, o in built if o not in ("input", "relu") or n == name] == [(name, op)]


def test_a_named_pool_has_the_size_written() -> None:
    graph = parse_spec(INPUT + "maxpool: MAX POOL 3x3 stride 2 pad 1\n").graph
    assert graph is not None
    pool = graph.node("maxpool")
    assert (pool.kernel, pool.stride, pool.padding) == ((3, 3), (2, 2), (1, 1))


def test_defaults_lines_are_for_kinds_that_take_followers() -> None:
    # `conv: bn, relu` sets defaults; `relu: relu` builds a layer and leaves the file's
    # lecture convention to the explicit activation.
    assert nodes(INPUT + "conv: bn, relu\nCONV 4 3x3\n") == [
        ("input", "input"), ("conv1", "conv"), ("bn1", "batchnorm"), ("relu1", "relu")
    ]  # fmt: skip
    assert nodes(INPUT + "relu: relu\nCONV 4 3x3\nrelu\n") == [
        ("input", "input"), ("relu", "relu"), ("conv1", "conv"), ("relu2", "relu")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "kernel", "stride", "padding"),
    [
        ("CONV 64 7x7 s2 p3", (7, 7), (2, 2), (3, 3)),
        ("conv 8 3x3 s2x1 p1x0", (3, 3), (2, 1), (1, 0)),
        ("maxpool 3x3/2", (3, 3), (2, 2), (0, 0)),
        ("MAX POOL 3x3 s1 p1", (3, 3), (1, 1), (1, 1)),
        ("CONV 8 7x7/2 pad 3", (7, 7), (2, 2), (3, 3)),
    ],
)
def test_the_notation_archc_prints_it_reads(
    line: str, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> None:
    graph = parse_spec(INPUT + line + "\n").graph
    assert graph is not None
    node = graph.nodes[1]
    assert (node.kernel, node.stride, node.padding) == (kernel, stride, padding)


SHIPPED = sorted(p for p in (ROOT / "specs").rglob("*.arch") if "blocks" not in p.parts)


@pytest.mark.parametrize("spec", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_every_summary_row_reads_back_as_the_same_layer(spec: Path) -> None:
    """Each layer of each shipped spec, printed as the summary prints it and read on its own
    (after an input of the layer's input shape, and in its layout: a channels-last layer after
    `permute 0 2 3 1`), has the same kind, output shape and params."""
    checked = check_file(spec)
    assert checked.graph is not None and checked.accounting is not None
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for node in checked.graph.nodes:
        if node.op not in OPS or len(node.inputs) != 1:
            continue
        x = checked.shapes[node.inputs[0]]
        key = (describe(node), x)
        if key in seen:
            continue
        seen.add(key)
        layout = checked.layouts[node.inputs[0]]
        permute = "" if layout == CHANNELS_FIRST else permute_to(CHANNELS_FIRST, layout) + "\n"
        c, h, w = channels_first_shape(x, layout) if len(x) == 3 else (x[0], 0, 0)
        shape = f"[{h}x{w}x{c}]" if len(x) == 3 else f"[{c}]"
        # `no relu` keeps the lecture convention's ReLU off a conv or FC (the only kinds it
        # applies to: anywhere else it is E106).
        off = " no relu" if OPS[node.op].followed else ""
        again = check_source(f"input {shape}\n{permute}{describe(node)}{off}\n")
        assert again.ok and again.graph is not None, (describe(node), again.diagnostics)
        back = again.graph.nodes[2 if permute else 1]
        assert back.op == node.op, describe(node)
        assert again.shapes[back.name] == checked.shapes[node.name], describe(node)
        assert again.accounting is not None
        params = again.accounting.layer(back.name).params
        assert params == checked.accounting.layer(node.name).params, describe(node)
