"""Issue 23 tried as a new (and a hostile) user: what a first family spec of one's own runs into."""

from __future__ import annotations

import pytest

from archc.check import check_source


def errors(text: str) -> list[tuple[str, int, int, str, str]]:
    result = check_source(text, "net.arch")
    return [
        (d.code, d.span.line, d.span.column, d.message, d.help or "")
        for d in result.diagnostics
        if d.severity == "error"
    ]


def test_act_after_add_on_one_line_says_to_give_it_a_line_of_its_own():
    # `add, relu` is allowed, so `add, act(activation)` is the natural next step; a call cannot
    # share a line with layers, and the message said it "does not belong in an add line" with
    # help about joins.
    text = (
        'input [8x8x8]\nlet a = "silu"\nresidual:\n    CONV 8 3x3 pad 1 no relu\n'
        "shortcut: identity\nadd, act(a)\nFC 3\n"
    )
    # (the residual left unjoined, E211, follows from the rejected line)
    [(code, line, column, message, help)] = [e for e in errors(text) if e[1] == 6]
    assert (code, line, column) == ("E106", 6, 6)
    assert "cannot share a line with layers" in message
    assert help == "put `act(…)` on a line of its own, below the layers it follows"


def test_a_call_before_a_layer_on_one_line_is_not_an_unknown_kind():
    text = 'input [8x8x8]\nlet a = "silu"\nCONV 8 1x1 no relu\nact(a), BN\nFC 3\n'
    [(code, line, column, message, help)] = errors(text)
    assert (code, line, column) == ("E106", 4, 1)
    assert "cannot share a line with layers" in message
    assert "unknown layer kind" not in message


def test_a_builder_name_with_a_typo_points_at_the_nearest_builder(tmp_path, monkeypatch):
    # `mydir/mynet_tiny` (no such variant) and `torchvision/resnet19` said only "no such file or
    # shipped spec": nothing about the family that is right there.
    from archc.families import resolve
    from archc.library import NoSuchSpec

    (tmp_path / "mydir").mkdir()
    family = (
        'network mynet_{variant}\nparam variant = "small"\nvariants(depth):\n'
        "    small: 1\n    large: 2\ninput [8x8x3]\nFC 3 x depth\n"
    )
    (tmp_path / "mydir" / "mynet.arch").write_text(family)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NoSuchSpec) as typo:
        resolve("mydir/mynet_smal")
    assert str(typo.value).endswith(
        "; did you mean `mydir/mynet_small`? (`mynet.arch` builds the variants small, large)"
    )
    with pytest.raises(NoSuchSpec) as far:
        resolve("mydir/mynet_xyzzyq")
    assert str(far.value).endswith("; `mynet.arch` builds `mydir/mynet_small`, `mydir/mynet_large`")
    with pytest.raises(NoSuchSpec) as bare:
        resolve("mydir/mynet")
    assert str(bare.value).endswith("; did you mean `mydir/mynet.arch`?")
    with pytest.raises(NoSuchSpec) as shipped:
        resolve("torchvision/resnet19")
    assert "did you mean `torchvision/resnet18`? (`resnet.arch` builds the variants 18, 34," in (
        str(shipped.value)
    )


def test_a_variant_that_is_no_row_is_one_error_not_a_cascade_of_unknown_names():
    # With `variant=tiny` the columns are undefined, and every `let` reading them said
    # "unknown name `mult`" with help listing `variant`, `width`: noise after the real error.
    from archc.frontend import parse_spec

    text = (
        'network mynet_{variant}\nparam variant = "small"\nparam width = 16\n'
        "variants(depth, mult):\n    small: 1, 1\n    large: 2, 2\n"
        "let base = round(width * mult)\ninput [8x8x3]\nCONV base 1x1 x depth\nFC 3\n"
    )
    result = parse_spec(text, "net.arch", {"variant": "tiny"})
    assert [(d.code, d.span.line, d.message) for d in result.diagnostics] == [
        ("E229", 2, "variant `tiny` (the caller sets it) is no row of the `variants` table")
    ]
    assert result.graph is None
    assert [d.code for d in parse_spec(text, "net.arch", {"variant": "large"}).diagnostics] == []


@pytest.mark.parametrize(
    "expression",
    [
        "[[k] * 100000 for k in range(100000)]",  # 10^10 values: ate memory until killed
        "[count(xs, k) for k in xs]",  # 10^10 comparisons: no memory, hours of time
        "[xs == xs for k in xs]",
        "[len(xs[k:]) for k in xs]",
    ],
)
def test_an_expression_that_handles_too_many_list_values_is_e209(expression):
    from archc.frontend import parse_spec

    text = f"input [8x8x3]\nlet xs = range(100000)\nlet z = {expression}\nFC 3\n"
    result = parse_spec(text, "net.arch")
    [(code, line, message)] = [(d.code, d.span.line, d.message) for d in result.diagnostics][:1]
    assert (code, line) == ("E209", 3)
    assert message == "this expression handles more than 2,000,000 list values"


def test_a_list_of_references_to_a_long_list_is_counted_whole():
    # Lists share their elements: `[a for k in range(100000)]` of a 900,000-value `a` holds
    # 9 * 10^10 values, which printing, comparing or hashing (`distinct`) would walk.
    from archc.frontend import parse_spec

    text = (
        "input [8x8x3]\nlet a0 = [0] * 100000\nlet a = [a0, a0, a0, a0, a0, a0, a0, a0, a0]\n"
        "let b = [a for k in range(100000)]\nFC 3\n"
    )
    result = parse_spec(text, "net.arch")
    assert [(d.code, d.span.line, d.message) for d in result.diagnostics] == [
        ("E209", 4, "this expression handles more than 2,000,000 list values")
    ]


def test_a_template_makes_no_name_longer_than_255_characters():
    from archc.frontend import parse_spec

    result = parse_spec("input [8x8x3]\n\"b{'a' * 100000}\": FC 3\n", "net.arch")
    assert [(d.code, d.span.line, d.message) for d in result.diagnostics] == [
        ("E110", 2, "the template `b{'a' * 100000}` makes a name of more than 255 characters")
    ]
    ok = parse_spec("input [8x8x3]\n\"b{'a' * 200}\": FC 3\n", "net.arch")
    assert [n.name for n in ok.graph.nodes][1] == "b" + "a" * 200


def test_the_expressions_of_a_loop_share_one_budget():
    # Each pass's `a == a` (1,800,000 values) fits one expression's budget; 1,000 passes of it
    # ran for minutes.
    from archc.frontend import parse_spec

    text = (
        "input [8x8x3]\nlet a0 = [0] * 100000\nlet a = [a0, a0, a0, a0, a0, a0, a0, a0, a0]\n"
        "for k in range(1000):\n    let c = a == a\nFC 3\n"
    )
    result = parse_spec(text, "net.arch")
    assert {(d.code, d.span.line, d.message) for d in result.diagnostics} == {
        ("E209", 5, "the expressions of this spec make more than 10,000,000 list values in all")
    }


def test_fc_n_x_count_says_how_to_repeat():
    # `x EXPR` repeats an item, but `FC 3 x 2` is the size 3x2: the help only listed FC's
    # arguments, and the user was left wondering why `x 2` works after `CONV 8 3x3`.
    [(code, line, column, message, help)] = errors("input [8x8x3]\nFC 3 x 2\n")
    assert (code, line, column, message) == ("E106", 2, 4, "unexpected size in an FC line")
    assert help.endswith("; to repeat the layer, write `x2` or `x (2)` (`10 x 2` is a size)")


def test_a_line_reading_a_failed_let_says_the_let_failed():
    # It said "unexpected word `xs`", help: names are "defined with `let NAME = VALUE`" —
    # which is just what the user had written.
    from archc.frontend import parse_spec

    text = "input [8x8x3]\nlet xs = range(10**9)\nFC len(xs)\n"
    result = parse_spec(text, "net.arch")
    assert [(d.code, d.span.line, d.message) for d in result.diagnostics] == [
        ("E209", 2, "`range` of 1,000,000,000 values"),
        ("E207", 3, "`xs` has no value: its definition (net.arch:2) is in error"),
    ]
