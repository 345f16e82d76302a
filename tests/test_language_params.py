"""Issue 23's family language: `param`, `variants`, `x EXPR`, `i`, name templates, the family
info, re-parameterised imports — with exact names, counts and widths."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from archc.check import check_spec
from archc.frontend import parse_spec, read_spec

FAMILY = """\
network resnet{variant}
param variant = "b"
param width = 16
variants(depth, mult):
    a: 1, 1
    b: 3, 2
conv: relu
block unit(c):
    CONV c 3x3 pad 1
input [32x32x3]
stem: CONV width * mult 3x3 pad 1
layer1: unit(width) x depth
"block4-{i}": unit(8 + i) x (depth - 1)
stage "s{depth + 1}":
    CONV 8 1x1
FC 10
"""


def convs(result) -> list[tuple[str, int]]:
    return [(n.name, n.out_channels) for n in result.graph.nodes if n.op == "conv"]


def errors(text: str, params=None) -> list[tuple[str, int, int, str]]:
    result = parse_spec(text, "net.arch", params)
    return [
        (d.code, d.span.line, d.span.column, d.message)
        for d in result.diagnostics
        if d.severity == "error"
    ]


def test_a_family_builds_its_default_variant() -> None:
    result = parse_spec(FAMILY, "net.arch")
    assert result.diagnostics == []
    assert result.graph is not None and result.graph.name == "resnetb"
    assert convs(result) == [
        ("stem", 32),
        ("layer1.0.conv1", 16),
        ("layer1.1.conv1", 16),
        ("layer1.2.conv1", 16),
        ("block4-0.conv1", 8),
        ("block4-1.conv1", 9),
        ("s4.conv1", 8),
    ]


def test_params_set_by_the_caller_as_python_values_and_text() -> None:
    for params in ({"variant": "a", "width": 8}, {"variant": "a", "width": "8"}):
        result = parse_spec(FAMILY, "net.arch", params)
        assert result.diagnostics == []
        assert result.graph.name == "resneta"
        # depth 1: one unnamed-index call, zero `block4-{i}` instances (x 0 emits nothing).
        assert convs(result) == [("stem", 8), ("layer1.conv1", 8), ("s2.conv1", 8)]
    quoted = parse_spec(FAMILY, "net.arch", {"variant": '"a"', "width": Fraction(4)})
    assert convs(quoted)[0] == ("stem", 4)
    floats = parse_spec(FAMILY, "net.arch", {"width": 0.5, "variant": "a"})
    # 0.5 is kept exact: half a filter is reported, in the stem and in the block.
    assert [(d.code, d.message) for d in floats.diagnostics] == [
        ("E208", "number of filters `c` = 1/2 is not an integer"),
        ("E208", "number of filters `width*mult` = 1/2 is not an integer"),
    ]


def test_the_family_info_is_read_from_the_files_own_lines() -> None:
    family = parse_spec(FAMILY, "net.arch").family
    assert family is not None
    assert family.template == "resnet{variant}"
    assert family.params == {"variant": "b", "width": Fraction(16)}
    assert family.variants == ("a", "b")
    assert family.names() == {"a": "resneta", "b": "resnetb"}
    assert parse_spec("input [8x8x3]\nCONV 4 3x3\n").family is None


def test_an_unknown_setting_lists_the_params_with_did_you_mean() -> None:
    result = parse_spec(FAMILY, "net.arch", {"widht": 8})
    (d,) = result.diagnostics
    assert (d.code, d.span.line) == ("E229", 1)  # the network line
    assert d.message == (
        "the caller sets `widht`, which is no parameter of `net.arch`: did you mean `width`?"
    )
    assert d.help == "its parameters are: `variant`, `width`"
    assert result.graph is None


def test_a_variant_that_is_no_key_lists_the_keys() -> None:
    (d,) = parse_spec(FAMILY, "net.arch", {"variant": "c"}).diagnostics
    assert (d.code, d.span.line) == ("E229", 2)  # the param line
    assert d.message == (
        "variant `c` (the caller sets it) is no row of the `variants` table: did you mean `a`?"
    )
    assert d.help == "the variants are: a, b"


def test_a_caller_setting_that_does_not_fit_is_one_error_not_a_cascade() -> None:
    # The file's lets and import settings read the variant's columns; with no row chosen they
    # are not there, and saying so again for each line that reads them would bury the cause.
    text = FAMILY.replace("input", "let doubled = [2 * n for n in range(depth)]\ninput", 1)
    assert parse_spec(text, "net.arch").diagnostics == []
    for params in ({"variant": "c"}, {"width": "wide"}, {"depht": 2}):
        (d,) = parse_spec(text, "net.arch", params).diagnostics
        assert d.code == "E229", params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": "wide"}, "parameter `width` is a number, but the caller sets it to `wide`"),
        ({"width": True}, "parameter `width` is a number, but the caller sets it to True"),
        ({"variant": 1.5}, "parameter `variant` is a string, but the caller sets it to 1.5"),
    ],
)
def test_a_setting_of_the_wrong_kind_is_an_error(params, message) -> None:
    (d,) = parse_spec(FAMILY, "net.arch", params).diagnostics
    assert (d.code, d.message) == ("E229", message)


def test_an_int_for_a_string_param_is_its_text() -> None:
    text = FAMILY.replace('"b"', '"3"').replace("a: 1, 1", "1: 1, 1").replace("b: 3", "3: 3")
    result = parse_spec(text, "net.arch", {"variant": 1})
    assert result.diagnostics == [] and result.graph.name == "resnet1"


@pytest.mark.parametrize("name", ["classes", "input"])
def test_classes_and_input_are_reserved(name: str) -> None:
    assert errors(f"param {name} = 10\ninput [8x8x3]\nCONV 4 3x3\n") == [
        (
            "E106",
            1,
            7,
            f"`{name}` cannot be a parameter: `--set {name}=…` already sets the network's "
            + ("class count" if name == "classes" else "input size"),
        )
    ]


def test_param_stands_at_the_top_level_only() -> None:
    text = "input [8x8x3]\nstage s:\n    param w = 4\n    CONV 4 3x3\n"
    assert errors(text) == [("E217", 3, 5, "a `param` line stands at the top level of a file")]


def test_a_param_defined_twice_and_a_shadowing_block_parameter() -> None:
    text = "param w = 4\nparam w = 8\ninput [8x8x3]\nCONV w 3x3\n"
    assert errors(text) == [("E228", 2, 7, "`w` is already defined on line 1")]
    text = "param w = 4\nblock b(w):\n    CONV w 3x3\ninput [8x8x3]\nb(2)\n"
    assert errors(text)[0][:3] == ("E228", 2, 9)


def test_variants_need_param_variant() -> None:
    text = "variants(w):\n    a: 4\ninput [8x8x3]\nCONV w 3x3\n"
    assert errors(text)[0][:3] == ("E229", 1, 1)


def test_a_variants_row_needs_one_value_per_column() -> None:
    text = 'param variant = "a"\nvariants(w, d):\n    a: 4\ninput [8x8x3]\nCONV w 3x3\n'
    assert errors(text)[0] == ("E106", 3, 5, "row `a` has 1 value, the table 2 columns (w, d)")


def test_variant_keys_take_digits_dots_and_underscores() -> None:
    text = (
        'param variant = "1_0"\nvariants(w):\n    0_5: 8\n    1_0: 16\n    50_32x4d: 32\n'
        "    x_400mf: 4\n    1.5: 2\ninput [8x8x3]\nCONV w 3x3\n"
    )
    result = parse_spec(text)
    assert result.diagnostics == []
    assert result.family.variants == ("0_5", "1_0", "50_32x4d", "x_400mf", "1.5")
    assert convs(result) == [("conv1", 16)]
    assert convs(parse_spec(text, params={"variant": "50_32x4d"})) == [("conv1", 32)]


def test_strings_compare_in_conditions() -> None:
    text = (
        'param variant = "basic"\ninput [8x8x3]\nif variant == "basic":\n    CONV 4 3x3\n'
        'if variant != "basic":\n    CONV 8 3x3\n'
    )
    assert convs(parse_spec(text)) == [("conv1", 4)]
    assert convs(parse_spec(text, params={"variant": "other"})) == [("conv1", 8)]
    bad = 'param v = "a"\ninput [8x8x3]\nCONV v 3x3\n'
    assert errors(bad)[0][:3] == ("E226", 3, 6)  # a string where a number belongs


# --- repetition -------------------------------------------------------------------------------


def test_computed_counts_and_the_repetition_index() -> None:
    text = (
        "param n = 3\nconv: relu\nblock b(c):\n    CONV c 3x3 pad 1\ninput [8x8x3]\n"
        "layer: b(4 + i) x n\nCONV 2 + i 1x1 x (n - 1)\nb(1) x n - 3\n"
    )
    result = parse_spec(text)
    assert result.diagnostics == []
    assert convs(result) == [
        ("layer.0.conv1", 4),
        ("layer.1.conv1", 5),
        ("layer.2.conv1", 6),
        ("conv1", 2),
        ("conv2", 3),
    ]


@pytest.mark.parametrize(
    ("count", "code", "message"),
    [
        ("n - 5", "E209", "repetition count `n - 5` = -2 is out of range (0 to 1000)"),
        ("n / 2", "E208", "repetition count `n / 2` = 3/2 is not a whole number"),
        ("n * 1000", "E216", "repetition count `n * 1000` = 3000 is out of range (0 to 1000)"),
    ],
)
def test_a_bad_computed_count(count: str, code: str, message: str) -> None:
    text = f"param n = 3\nblock b(c):\n    CONV c 3x3\ninput [8x8x3]\nb(4) x {count}\n"
    assert errors(text) == [(code, 5, 8, message)]


def test_i_may_not_shadow_a_visible_name() -> None:
    text = "param i = 3\nblock b(c):\n    CONV c 3x3\ninput [8x8x3]\nb(4 + i) x2\n"
    assert errors(text)[0][:2] == ("E228", 5)
    # A repeated item that does not read `i` is no shadow.
    assert errors("param i = 3\nblock b(c):\n    CONV c 3x3\ninput [8x8x3]\nb(i) x1\n") == []


def test_quoted_templates_name_each_instance() -> None:
    text = 'block b(c):\n    CONV c 1x1\ninput [8x8x3]\n"block4-{i}": b(4) x3\n'
    result = parse_spec(text)
    assert [n.name for n in result.graph.nodes][1:] == [
        "block4-0.conv1",
        "block4-0.relu1",
        "block4-1.conv1",
        "block4-1.relu1",
        "block4-2.conv1",
        "block4-2.relu1",
    ]
    twice = 'block b(c):\n    CONV c 1x1\ninput [8x8x3]\n"x{i // 2}": b(4) x3\n'
    assert errors(twice)[0][:2] == ("E210", 4)


def test_stage_and_sequential_headers_take_templates() -> None:
    text = (
        'param s = 1\ninput [8x8x3]\nstage "block{s + 1}":\n    CONV 4 3x3\n'
        'sequential "f{s}":\n    CONV 4 3x3\n'
    )
    result = parse_spec(text)
    assert result.diagnostics == []
    assert [n.name for n in result.graph.nodes][1:] == [
        "block2.conv1",
        "block2.relu1",
        "f1.0",
        "f1.1",
    ]


# --- imports --------------------------------------------------------------------------------


def test_an_import_sets_a_librarys_params(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text(
        "param bn_eps = 1e-5\nparam act_width = 8\nconv: bn(eps bn_eps), relu\n"
        "block b():\n    CONV act_width 3x3\n"
    )
    spec = tmp_path / "net.arch"
    spec.write_text('import "lib.arch" (bn_eps = 0.001)\ninput [8x8x3]\nb()\n')
    result = read_spec(spec)
    assert result.diagnostics == []
    bns = [n for n in result.graph.nodes if n.op == "batchnorm"]
    assert [n.eps for n in bns] == [0.001]
    assert [n.out_channels for n in result.graph.nodes if n.op == "conv"] == [8]
    spec.write_text('import "lib.arch"\ninput [8x8x3]\nb()\n')
    assert [n.eps for n in read_spec(spec).graph.nodes if n.op == "batchnorm"] == [1e-5]
    spec.write_text('import "lib.arch" (bn_epz = 0.001)\ninput [8x8x3]\nb()\n')
    (d,) = [d for d in read_spec(spec).diagnostics if d.severity == "error"]
    assert (d.code, d.span.line) == ("E229", 1)
    assert d.message.startswith('`import "lib.arch"` sets `bn_epz`, which is no parameter')
    assert "did you mean `bn_eps`?" in d.message


def test_check_spec_passes_params() -> None:
    checked = check_spec(FAMILY, {"variant": "a"})
    assert checked.graph is not None and checked.graph.name == "resneta"


# --- the docs' examples (docs/language.md, Families) ------------------------------------------


def doc_example(marker: str) -> str:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text()
    import re

    (text,) = [t for t in re.findall(r"```arch\n(.*?)```", doc, re.S) if marker in t]
    return text


def test_the_family_example_of_the_docs() -> None:
    text = doc_example("network resnet{variant}")
    result = parse_spec(text, "example.arch")
    assert result.diagnostics == [] and result.graph.name == "resnet26"
    blocks = sorted({".".join(n.name.split(".")[:2]) for n in result.graph.nodes if "." in n.name})
    assert [b for b in blocks if b.startswith("layer2")] == ["layer2.0", "layer2.1", "layer2.2"]
    (conv,) = [n for n in result.graph.nodes if n.name == "layer4.2.conv2"]
    assert conv.out_channels == 512
    small = parse_spec(text, "example.arch", {"variant": "18"})
    assert small.graph.name == "resnet18"
    names = {".".join(n.name.split(".")[:2]) for n in small.graph.nodes}
    assert sorted(b for b in names if b.startswith("layer3")) == ["layer3.0", "layer3.1"]
    assert result.family.names() == {"18": "resnet18", "26": "resnet26", "34": "resnet34"}


def test_the_import_settings_example_of_the_docs() -> None:
    text = doc_example("(bn_eps = 0.001)")
    nodes = parse_spec(text, "example.arch").graph.nodes
    assert [(n.name, n.eps) for n in nodes if n.op == "batchnorm"] == [
        ("stem.1", 0.001),
        ("head.1", 0.001),
    ]
    plain = parse_spec(text.replace(" (bn_eps = 0.001)", ""), "example.arch").graph.nodes
    assert [n.eps for n in plain if n.op == "batchnorm"] == [1e-5, 1e-5]


def test_the_repetition_example_of_the_docs() -> None:
    result = parse_spec(doc_example('"unit{i}": unit(8 + 4 * i) x depth'), "example.arch")
    assert convs(result) == [("unit0.conv1", 8), ("unit1.conv1", 12), ("unit2.conv1", 16)]
    assert not any(n.name.startswith("extra") for n in result.graph.nodes)


def test_shipped_libraries_take_bn_params(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        'import "blocks/mobilenet_v3.arch" (bn_eps = 0.002, bn_momentum = 0.1)\n'
        "input [32x32x3]\nstem: conv_bn_act(16, kernel 3, stride 2)\n"
    )
    (bn,) = [n for n in read_spec(spec).graph.nodes if n.op == "batchnorm"]
    assert (bn.eps, bn.momentum) == (0.002, 0.1)
    spec.write_text(
        'import "blocks/inception.arch" (bn_eps = 0.01)\ninput [32x32x3]\nbasic_conv(8, 3)\n'
    )
    (bn,) = [n for n in read_spec(spec).graph.nodes if n.op == "batchnorm"]
    assert bn.eps == 0.01


def test_act_chooses_an_activation_by_a_value() -> None:
    text = (
        'param activation = "silu"\nconv: bn, act(activation)\ninput [32x32x3]\n'
        "CONV 16 3x3 pad 1 no bias\nCONV 16 3x3 pad 1 no bias\nGAP\nFC 10\n"
    )
    ops = [n.op for n in parse_spec(text, "example.arch").graph.nodes]
    assert ops == [
        "input",
        "conv",
        "batchnorm",
        "silu",
        "conv",
        "batchnorm",
        "silu",
        "global_avgpool",
        "linear",
    ]
    relu = parse_spec(text, "example.arch", {"activation": "relu"}).graph.nodes
    assert [n.name for n in relu if n.op == "relu"] == ["relu1", "relu2"]
    layer = "param a = 'hard swish'\ninput [8x8x3]\nCONV 4 3x3\nact(a)\n"
    assert [n.op for n in parse_spec(layer).graph.nodes][-1] == "hardswish"
    bad = parse_spec(text, "example.arch", {"activation": "rellu"}).diagnostics
    assert bad[0].code == "E226"
    assert bad[0].message == (
        "`act` builds an activation: `rellu` is not one: did you mean `relu`?"
    )


def test_a_library_imported_twice_is_one_copy_when_its_params_agree(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("param eps = 1e-5\nblock b():\n    BN eps eps\n")
    (tmp_path / "mid.arch").write_text('import "lib.arch" (eps = 0.00001)\nblock m():\n    b()\n')
    spec = tmp_path / "net.arch"
    spec.write_text('import "mid.arch"\nimport "lib.arch"\ninput [8x8x3]\nm()\n')
    result = read_spec(spec)
    assert result.diagnostics == []
    assert [n.eps for n in result.graph.nodes if n.op == "batchnorm"] == [1e-5]
    spec.write_text('import "mid.arch"\nimport "lib.arch" (eps = 0.001)\ninput [8x8x3]\nm()\n')
    (d,) = [d for d in read_spec(spec).diagnostics if d.severity == "error"]
    assert (d.code, d.span.line) == ("E229", 2)
    assert d.message == "`lib.arch` is imported again with other settings"


def test_read_family_reads_the_syntax_only(tmp_path: Path) -> None:
    from archc.frontend import read_family

    spec = tmp_path / "fam.arch"
    spec.write_text(FAMILY)
    family = read_family(spec)
    assert family is not None and family.names() == {"a": "resneta", "b": "resnetb"}
    assert read_family(Path(__file__).resolve().parent.parent / "specs/alexnet.arch") is None
    lib = read_family(Path(__file__).resolve().parent.parent / "specs/blocks/mobilenet_v3.arch")
    assert lib is not None and lib.template is None and lib.variants == ()
    assert lib.params == {"bn_eps": Fraction(1, 1000), "bn_momentum": Fraction(1, 100)}


def test_param_lines_that_are_not_params() -> None:
    assert errors("param w\ninput [8x8x3]\nCONV 4 3x3\n")[0][:2] == ("E106", 1)
    assert errors("param w = \ninput [8x8x3]\nCONV 4 3x3\n")[0][0] in ("E102", "E106")


def test_builder_names_fill_the_template_with_each_variants_constants() -> None:
    text = (
        'network resnet{depth}\nparam variant = "small"\nvariants(depth):\n'
        "    small: 18\n    large: 50\ninput [8x8x3]\nCONV 4 3x3\n"
    )
    result = parse_spec(text)
    assert result.graph.name == "resnet18"
    assert result.family.names() == {"small": "resnet18", "large": "resnet50"}
    vgg = (
        'network {variant}\nparam variant = "vgg11"\nvariants(bn):\n    vgg11: 0\n    vgg11_bn: 1\n'
    )
    family = parse_spec(vgg + "input [8x8x3]\nCONV 4 3x3\n").family
    assert family.names() == {"vgg11": "vgg11", "vgg11_bn": "vgg11_bn"}


def test_template_errors_point_into_the_template() -> None:
    text = 'param s = 1\ninput [8x8x3]\nstage "block{s + t}":\n    CONV 4 3x3\n'
    assert errors(text) == [("E207", 3, 18, "unknown name `t`: did you mean `s`?")]
    text = 'param s = 1\ninput [8x8x3]\n"c{s * 2 + q}": CONV 4 3x3\n'
    assert errors(text)[0][:3] == ("E207", 3, 12)
