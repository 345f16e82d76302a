"""The parser: each notation of docs/language.md becomes the syntax tree it should."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from lark import Lark

from archc import syntax as S
from archc.parser import lark_parser, parse


def one(text: str) -> S.Stmt:
    spec, diags = parse(text, "t.arch")
    assert diags == [] and spec is not None
    (stmt,) = spec.body
    return stmt


def num(arg: S.Arg) -> Fraction:
    assert isinstance(arg.value, S.Num)
    return arg.value.value


def pair(arg: S.Arg) -> tuple[int, int]:
    assert isinstance(arg.value, S.Pair)
    return arg.value.values


def test_lecture_conv_line() -> None:
    layer = one("[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0")
    assert isinstance(layer, S.Layer)
    assert (layer.kind, layer.name) == ("conv", "CONV1")
    assert num(layer.options["filters"]) == 96
    assert pair(layer.options["kernel"]) == (11, 11)
    assert num(layer.options["stride"]) == 4
    assert num(layer.options["pad"]) == 0
    assert layer.declared is not None and layer.declared.dims == (55, 55, 96)
    assert (layer.declared.span.column, layer.declared.span.end_column) == (1, 11)


def test_multi_word_kind_label_is_a_name_with_underscores() -> None:
    layer = one("[27x27x96] MAX POOL1: 3x3 filters at stride 2")
    assert isinstance(layer, S.Layer)
    assert (layer.kind, layer.name) == ("maxpool", "MAX_POOL1")
    assert pair(layer.options["kernel"]) == (3, 3)
    assert layer.name_span is not None and layer.name_span.column == 12


def test_norm_and_fc_lines_with_a_remark() -> None:
    norm = one("[27x27x96] NORM1: Normalization layer")
    assert isinstance(norm, S.Layer) and (norm.kind, norm.name, norm.options) == (
        "lrn",
        "NORM1",
        {},
    )
    fc = one("[1000] FC8: 1000 neurons (class scores)")
    assert isinstance(fc, S.Layer)
    assert (fc.kind, fc.name, num(fc.options["features"])) == ("linear", "FC8", 1000)
    assert fc.declared is not None and fc.declared.dims == (1000,)


def test_declared_shape_after_arrow() -> None:
    layer = one("CONV1: 96 11x11 stride 4 -> [55x55x96]")
    assert isinstance(layer, S.Layer) and layer.declared is not None
    assert layer.declared.dims == (55, 55, 96)
    assert layer.declared.span.column == 29


@pytest.mark.parametrize(
    ("text", "dims"),
    [
        ("[227x227x3] INPUT", (227, 227, 3)),
        ("input [224x224x3]", (224, 224, 3)),
        ("INPUT: [224x224x3]", (224, 224, 3)),
        ("input (224 × 224 RGB image)", (224, 224, 3)),
        ("input (28 x 28 gray image)", (28, 28, 1)),
        ("Input [4096]", (4096,)),
        ("input 32x32x3", (32, 32, 3)),
    ],
)
def test_input_forms(text: str, dims: tuple[int, ...]) -> None:
    stmt = one(text)
    assert isinstance(stmt, S.InputStmt) and stmt.dims == dims


def test_table_line_with_claims() -> None:
    stmt = one("CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728")
    assert isinstance(stmt, S.Layer)
    assert (stmt.kind, stmt.name, stmt.paper) == ("conv", None, True)
    assert num(stmt.options["filters"]) == 64 and pair(stmt.options["kernel"]) == (3, 3)
    memory, params = stmt.claims
    assert (memory.kind, memory.printed) == ("memory", "3.2M")
    assert isinstance(memory.expression, S.BinOp)
    assert (params.kind, params.printed) == ("params", "1,728")
    assert isinstance(params.expression, S.BinOp) and isinstance(params.expression.left, S.Paren)


def test_claim_sides_may_stand_alone() -> None:
    stmt = one("POOL2: [112x112x64] memory: 112*112*64=800K params: 0")
    assert isinstance(stmt, S.Layer)
    assert [(c.kind, c.printed, c.expression is None) for c in stmt.claims] == [
        ("memory", "800K", False),
        ("params", "0", True),
    ]
    fc = one("FC: [1x1x4096] memory: 4096 params: 4096*4096 = 16,777,216")
    assert isinstance(fc, S.Layer)
    assert [c.printed for c in fc.claims] == ["4096", "16,777,216"]


def test_table_input_with_claims_and_remark() -> None:
    stmt = one("INPUT: [224x224x3] memory: 224*224*3=150K params: 0 (not counting biases)")
    assert isinstance(stmt, S.InputStmt)
    assert stmt.dims == (224, 224, 3)
    assert [c.printed for c in stmt.claims] == ["150K", "0"]


@pytest.mark.parametrize(
    ("text", "kind", "values"),
    [
        ("conv3-64", "conv", {"filters": 64, "kernel": (3, 3)}),
        ("conv1-256", "conv", {"filters": 256, "kernel": (1, 1)}),
        ("conv7-64/2", "conv", {"filters": 64, "kernel": (7, 7), "stride": 2}),
        ("FC-4096", "linear", {"features": 4096}),
        ("maxpool", "maxpool", {}),
        ("soft-max", "softmax", {}),
        ("SOFTMAX", "softmax", {}),
    ],
)
def test_paper_column_notation(text: str, kind: str, values: dict[str, object]) -> None:
    stmt = one(text)
    assert isinstance(stmt, S.Layer) and stmt.kind == kind and stmt.name is None
    got = {
        k: pair(a) if isinstance(a.value, S.Pair) else int(num(a)) for k, a in stmt.options.items()
    }
    assert got == values


def test_explicit_forms() -> None:
    pool = one("MAX POOL 3x3 stride 2 pad 1 ceil")
    assert isinstance(pool, S.Layer) and pool.flags == {"ceil"}
    conv = one("conv 64 3x3 pad same, no bias, no relu")
    assert isinstance(conv, S.Layer)
    assert conv.options["pad"].value == "same" and conv.flags == {"no_bias", "no_relu"}
    lrn = one("LRN size 5 alpha 1e-4 beta 0.75 k 2")
    assert isinstance(lrn, S.Layer)
    assert {k: float(num(a)) for k, a in lrn.options.items()} == {
        "size": 5,
        "alpha": 1e-4,
        "beta": 0.75,
        "k": 2,
    }
    bn = one("BN eps 0.001 momentum=0.01")
    assert isinstance(bn, S.Layer)
    assert {k: float(num(a)) for k, a in bn.options.items()} == {"eps": 0.001, "momentum": 0.01}
    assert isinstance(d := one("dropout p 0.3"), S.Layer) and num(d.options["p"]) == Fraction(3, 10)
    adaptive = one("ADAPTIVE AVG POOL 7x7")
    assert isinstance(adaptive, S.Layer) and pair(adaptive.options["size"]) == (7, 7)
    for text, kind in [
        ("GAP", "global_avgpool"),
        ("GLOBAL AVG POOL", "global_avgpool"),
        ("flatten", "flatten"),
        ("AVG POOL 2x2", "avgpool"),
    ]:
        stmt = one(text)
        assert isinstance(stmt, S.Layer) and stmt.kind == kind


def test_two_layers_on_one_line() -> None:
    spec, diags = parse("add, relu")
    assert diags == [] and spec is not None
    assert [(s.kind, s.span.column) for s in spec.body if isinstance(s, S.Layer)] == [
        ("add", 1),
        ("relu", 6),
    ]


def test_block_header_and_call_line() -> None:
    spec, diags = parse(
        "block bottleneck(width, stride = 1):\n"
        "    CONV: 4*width 1x1\n"
        "layer2: bottleneck(128, stride 2), bottleneck(128) x3\n"
    )
    assert diags == [] and spec is not None
    block, line = spec.body
    assert isinstance(block, S.BlockDef)
    assert [(p.name, p.default is not None) for p in block.params] == [
        ("width", False),
        ("stride", True),
    ]
    (conv,) = block.body
    assert isinstance(conv, S.Layer) and isinstance(conv.options["filters"].value, S.BinOp)
    assert isinstance(line, S.CallLine) and line.name == "layer2"
    first, second = line.calls
    assert (first.block, len(first.args), [k.name for k in first.kwargs], first.repeat) == (
        "bottleneck",
        1,
        ["stride"],
        1,
    )
    assert (second.repeat, second.span.column) == (3, 36)


def test_defaults_lines() -> None:
    stmt = one("conv: bn(eps 0.001), relu")
    assert isinstance(stmt, S.Defaults) and stmt.kind == "conv"
    assert [f.kind for f in stmt.followers] == ["bn", "relu"]
    assert float(num(stmt.followers[0].options["eps"])) == 0.001
    both = one("conv: bn(eps 0.001, momentum 0.01)")
    assert isinstance(both, S.Defaults)
    assert {k: float(num(a)) for k, a in both.followers[0].options.items()} == {
        "eps": 0.001,
        "momentum": 0.01,
    }
    none = one("FC: none")
    assert isinstance(none, S.Defaults) and none.kind == "linear"


def test_headers() -> None:
    assert one("network ResNet50") == S.Network("ResNet50", one("network ResNet50").span)
    assert isinstance(i := one('import "blocks/resnet.arch"'), S.Import)
    assert i.path == "blocks/resnet.arch"
    assert isinstance(init := one("init Xavier"), S.InitStmt) and init.scheme == "xavier"


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("residual:", "header"),
        ("Inline Branch:   # a comment", "header"),
        ("sequential block conv_bn:", "header"),
        ("stage features:", "header"),
        ("if se:", "header"),
        ("shortcut proj: projection", "shortcut_header"),
        ("shortcut:", "shortcut_header"),
        ("block bottleneck(width, stride = 1):", "block_header"),
        ("sequential block conv_bn(out):", "block_header"),
        ("if stride == 1 and in.c == out:", "if_header"),
        ("if(a):", "if_header"),
        # The same words followed by a layer are a label; words that only start like a
        # keyword are a word.
        ("residual: CONV 64 3x3", "line"),
        ("gate: relu", "line"),
        ("shortcut: CONV 64 1x1", "line"),
        ("iffy: CONV 3 1x1", "line"),
        ("blockade: CONV 3 1x1", "line"),
        ("block1: CONV 3 1x1", "line"),
        ("[8x8x3] residual:", "line"),
    ],
)
def test_the_grammar_knows_header_lines_by_their_terminals(line: str, rule: str) -> None:
    (tree,) = lark_parser().parse(line, start="start").children
    assert tree.data == rule


def test_a_header_without_its_colon_says_so() -> None:
    for text, column in (("if x\n    relu\n", 5), ("block foo(a)\n    relu\n", 13)):
        spec, diags = parse("input [8x8x3]\n" + text)
        ((code, line, col, help),) = [(d.code, d.span.line, d.span.column, d.help) for d in diags]
        assert (code, line, col, help) == ("E102", 2, column, "expected `:`")


def test_header_words_before_a_layer_are_its_label() -> None:
    layer = one("residual: CONV 64 3x3")
    assert isinstance(layer, S.Layer) and (layer.kind, layer.name) == ("conv", "residual")
    cond = one("if(a):\n    relu\n")
    assert isinstance(cond, S.If) and cond.condition == S.Name("a", cond.condition.span)


def test_indented_table_is_not_a_body() -> None:
    spec, diags = parse("    input [8x8x3]\n      conv3-4\n    maxpool\n")
    assert diags == [] and spec is not None
    assert [type(s).__name__ for s in spec.body] == ["InputStmt", "Layer", "Layer"]


def test_comments_blank_lines_and_keyword_case() -> None:
    spec, diags = parse("# a net\n\nINPUT [8x8x3]   # the input\n\n\nConv 4 3X3\n")
    assert diags == [] and spec is not None
    _, conv = spec.body
    assert isinstance(conv, S.Layer) and pair(conv.options["kernel"]) == (3, 3)
    assert conv.span.line == 6


def test_stage_residual_shortcut_branch_bodies() -> None:
    spec, diags = parse(
        "stage features:\n"
        "    residual:\n"
        "        relu\n"
        "    shortcut:\n"
        "        conv1-8\n"
        "    add\n"
        "    branch:\n"
        "        relu\n"
        "    branch:\n"
        "        relu\n"
        "    concat\n"
        "    shortcut: projection\n"
    )
    assert diags == [] and spec is not None
    (stage,) = spec.body
    assert isinstance(stage, S.Stage) and stage.name == "features"
    kinds = [type(s).__name__ for s in stage.body]
    assert kinds == ["Residual", "Shortcut", "Layer", "Branch", "Branch", "Layer", "Shortcut"]
    assert isinstance(sc := stage.body[-1], S.Shortcut) and sc.mode == "projection"


@pytest.mark.parametrize(
    ("line", "kind", "name"),
    [
        ("CONV1_1: 64 3x3", "conv", "CONV1_1"),
        ("conv2a: 64 3x3", "conv", "conv2a"),
        ("FC1000: 1000", "linear", "FC1000"),
        ("MAX POOL1: 3x3", "maxpool", "MAX_POOL1"),
        ("layer1: CONV 64 3x3", "conv", "layer1"),
    ],
)
def test_indexed_labels_are_kind_and_name(line: str, kind: str, name: str) -> None:
    stmt = one(line)
    assert isinstance(stmt, S.Layer) and (stmt.kind, stmt.name) == (kind, name)


def test_indexed_label_before_a_call_is_a_name() -> None:
    stmt = one("conv2_x: bottleneck_v1(64) x3")
    assert isinstance(stmt, S.CallLine) and stmt.name == "conv2_x"
    assert [(c.block, c.repeat) for c in stmt.calls] == [("bottleneck_v1", 3)]


# --- the grammar cache -------------------------------------------------------------------------

# A family spec: variants, lists and `for` in the cached grammar too.
RESNET = Path(__file__).resolve().parent.parent / "specs" / "torchvision" / "resnet.arch"


@pytest.fixture
def fresh_parser(tmp_path, monkeypatch):
    """lark_parser() rebuilt under a private cache directory, and rebuilt again afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lark_parser.cache_clear()
    yield tmp_path / "cache" / "archc"
    lark_parser.cache_clear()


def _tree() -> S.Spec:
    lark_parser.cache_clear()
    spec, diags = parse(RESNET.read_text(), "r.arch")
    assert diags == [] and spec is not None
    return spec


def test_the_grammar_cache_is_written_once_and_read_back(fresh_parser) -> None:
    first = _tree()
    (cache,) = fresh_parser.iterdir()  # no temporary file left behind
    assert cache.name.startswith("grammar-") and cache.suffix == ".lark-cache"
    stamp = cache.stat().st_mtime_ns
    assert _tree() == first
    assert cache.stat().st_mtime_ns == stamp  # loaded, not rewritten


@pytest.mark.parametrize("damage", ["garbage", "truncated", "stale key", "empty"])
def test_a_damaged_grammar_cache_never_breaks_parsing(fresh_parser, damage) -> None:
    first = _tree()
    (cache,) = fresh_parser.iterdir()
    data = cache.read_bytes()
    cache.write_bytes(
        {
            "garbage": b"\x80\x04not a pickle\n" * 50,
            "truncated": data[: len(data) // 2],
            "stale key": b"0" * 64 + data[data.index(b"\n") :],
            "empty": b"",
        }[damage]
    )
    assert _tree() == first
    assert _tree() == first  # and again, from whatever the first rebuild left


def test_no_usable_cache_directory_means_no_cache(fresh_parser, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    first = _tree()
    assert blocker.is_file() and not fresh_parser.exists()
    assert isinstance(lark_parser(), Lark)
    assert _tree() == first
