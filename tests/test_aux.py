"""Auxiliary classifiers (`aux NAME:`): GoogLeNet's aux1/aux2 and Inception-v3's AuxLogits.

An `aux` section is a side path from the current output whose layers are the network's own;
the module computes it in training mode only and then returns ``(main, aux…)`` (the aux outputs
from the last written to the first, torchvision's GoogLeNetOutputs(logits, aux_logits2,
aux_logits1)); in eval mode it returns the main output alone. The reference for every number
about the two torchvision specs is the torchvision model built with its default arguments
(``get_model(name, weights=None)``: aux classifiers on, transform_input off)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from shapes_data import make_tiny
from torch import nn

import archc
from archc.backends.torch_module import build_module
from archc.check import check_source, check_spec
from archc.frontend import parse_spec, read_spec
from archc.report import render_json, render_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs" / "torchvision"

TINY = """network tiny
input [14x14x8]
conv: bn, relu
fc: relu
c1: CONV 16 3x3 pad 1
aux a1:
    ADAPTIVE AVG POOL 4x4
    conv: CONV 4 1x1
    flatten
    fc1: FC 32
    dropout 0.5
    fc2: FC 10
c2: CONV 16 3x3 pad 1
aux a2:
    ADAPTIVE AVG POOL 2x2
    flatten
    fc: FC 10
pool: ADAPTIVE AVG POOL 1x1
flatten
fc: FC 10
"""


def tiny_graph():
    result = parse_spec(TINY, "tiny.arch")
    assert result.graph is not None, [d.message for d in result.diagnostics]
    return result.graph


def tiny_module() -> nn.Module:
    checked = check_source(TINY, "tiny.arch")
    assert checked.ok, [d.message for d in checked.diagnostics]
    torch.manual_seed(0)
    return build_module(checked)


# --- the IR -------------------------------------------------------------------------------------


def test_aux_outputs_are_listed_last_written_first_and_the_main_output_is_unchanged() -> None:
    graph = tiny_graph()
    assert graph.output == "fc"
    assert graph.aux == ["a2.fc", "a1.fc2"]
    names = [n.name for n in graph.nodes]
    # The side path reads the current output; the main path goes on from that same value.
    assert graph.node("a1.avgpool1").inputs == ["relu1"]
    assert graph.node("c2").inputs == ["relu1"]
    assert graph.node("a2.avgpool1").inputs == ["relu2"]
    assert graph.node("pool").inputs == ["relu2"]
    assert names.index("a1.fc2") < names.index("c2")
    # The defaults' follower stays on the aux's inner FC and leaves its last FC (scores), as on
    # the network's last FC.
    assert graph.node("a1.relu2").inputs == ["a1.fc1"]
    assert graph.node("a1.dropout1").inputs == ["a1.relu2"]
    assert graph.node("a1.fc2").inputs == ["a1.dropout1"]
    assert not any(n.inputs == ["a1.fc2"] or n.inputs == ["a2.fc"] for n in graph.nodes)


def test_the_json_of_a_network_without_aux_has_no_aux_key_and_aux_round_trips() -> None:
    plain = parse_spec("input [8x8x3]\nCONV 4 3x3\nGAP\nFC 2\n", "plain.arch").graph
    assert plain is not None and "aux" not in json.loads(plain.to_json())
    graph = tiny_graph()
    data = json.loads(graph.to_json())
    assert data["aux"] == ["a2.fc", "a1.fc2"]
    assert type(graph).from_json(graph.to_json()).aux == graph.aux


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        (
            "block b(w):\n    CONV w 3x3\n    aux a:\n        FC 2\n"
            "input [8x8x3]\nb(4)\nGAP\nFC 2\n",
            "E217",
            "top level",
        ),
        (
            "input [8x8x3]\nstage s:\n    CONV 4 3x3\n    aux a:\n        GAP\n        FC 2\n"
            "GAP\nFC 2\n",
            "E217",
            "top level",
        ),
        ("input [8x8x3]\nc: CONV 4 3x3\naux c:\n    GAP\n    FC 2\nGAP\nFC 2\n", "E210", "c"),
    ],
)
def test_misplaced_or_clashing_aux_sections_are_errors(text: str, code: str, words: str) -> None:
    result = parse_spec(text, "bad.arch")
    assert result.graph is None
    found = [d for d in result.diagnostics if d.code == code]
    assert found and words in found[0].message, [(d.code, d.message) for d in result.diagnostics]


# --- the module ---------------------------------------------------------------------------------


def test_eval_returns_the_main_output_and_training_the_tuple_main_first() -> None:
    model = tiny_module()
    calls: list[str] = []
    for name in ("a1", "a2"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, n=name: calls.append(n))
    x = torch.randn(3, 8, 14, 14)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 10)
    assert calls == []  # eval mode does not run the aux classifiers
    model.train()
    model.get_submodule("a1.dropout1").p = 0.0  # deterministic aux outputs to recompute
    with torch.no_grad():
        main, aux2, aux1 = model(x)
    assert calls == ["a1", "a2"]
    # Each aux output is its classifier applied to the value it branches from.
    with torch.no_grad():
        relu1 = torch.relu(model.bn1(model.c1(x)))
        relu2 = torch.relu(model.bn2(model.c2(relu1)))
        torch.testing.assert_close(aux1, model.a1(relu1))
        torch.testing.assert_close(aux2, model.a2(relu2))
        torch.testing.assert_close(main, model.fc(torch.flatten(model.pool(relu2), 1)))
    assert main.shape == aux1.shape == aux2.shape == (3, 10)


def test_the_eval_module_traces_scripts_and_exports_to_the_main_output() -> None:
    model = tiny_module().eval()
    x = torch.randn(2, 8, 14, 14)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), expected)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)


def test_the_generated_file_returns_the_same_outputs(tmp_path: Path) -> None:
    import importlib.util

    from archc.backends.source import generate_source

    checked = check_source(TINY, "tiny.arch")
    path = tmp_path / "tiny_generated.py"
    path.write_text(generate_source(checked))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    theirs = module.tiny()
    ours = tiny_module()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 8, 14, 14)
    for mode in (False, True):
        ours.train(mode)
        theirs.train(mode)
        torch.manual_seed(3)
        a = ours(x)
        torch.manual_seed(3)
        b = theirs(x)
        if mode:
            assert isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 3
            for u, v in zip(a, b):
                torch.testing.assert_close(u, v)
        else:
            torch.testing.assert_close(a, b)


# --- the tools ----------------------------------------------------------------------------------


def test_the_summary_counts_the_aux_layers_and_marks_their_rows() -> None:
    checked = check_source(TINY, "tiny.arch")
    model = tiny_module()
    total = sum(p.numel() for p in model.parameters())
    aux = {k: sum(p.numel() for p in model.get_submodule(k).parameters()) for k in ("a1", "a2")}
    # a1: conv 16*4 + 4, BN 8, fc1 64*32 + 32, fc2 32*10 + 10; a2: fc 64*10 + 10.
    assert aux == {"a1": 68 + 8 + 2080 + 330, "a2": 650}
    data = json.loads(render_json(checked))
    assert data["totals"]["params"] == total
    assert data["aux"] == [
        {"name": "a2", "output": "a2.fc", "params": 650, "macs": 640},
        {"name": "a1", "output": "a1.fc2", "params": 2486, "macs": 1024 + 2048 + 320},
    ]
    text = render_text(checked)
    rows = [line for line in text.splitlines() if line.startswith(("a1.", "a2.", "c1 ", "fc "))]
    assert all(("[aux]" in r) == r.startswith(("a1.", "a2.")) for r in rows) and len(rows) == 14
    assert "2 auxiliary classifiers (a1, a2; rows marked [aux]): 3,136 params" in text
    assert "aux" not in json.loads(render_json(check_source("input [8x8x3]\nFC 2\n", "p.arch")))


def test_set_classes_resizes_the_aux_classifiers_too() -> None:
    from archc.parameters import apply

    checked = apply(check_source(TINY, "tiny.arch"), {"classes": "7"})
    assert checked.ok and checked.graph is not None
    outs = {n: checked.shapes[n] for n in (checked.graph.output, *checked.graph.aux)}
    assert outs == {"fc": (7,), "a2.fc": (7,), "a1.fc2": (7,)}
    assert checked.shapes["a1.fc1"] == (32,)


def test_the_graph_picture_labels_the_aux_clusters() -> None:
    from archc.pictures import mermaid, picture

    text = mermaid(picture(check_source(TINY, "tiny.arch")))
    assert 'subgraph n_a1_c["a1 (aux: training only)"]' in text
    assert 'subgraph n_a2_c["a2 (aux: training only)"]' in text
    assert "n_relu1 --> n_a1_avgpool1" in text


def test_the_training_loss_adds_the_aux_losses_at_weight_0_3() -> None:
    from archc.recipe_ir import Recipe
    from archc.training.recipe import WithAux, loss

    criterion = loss(Recipe(loss="cross_entropy"), tiny_graph())
    assert isinstance(criterion, WithAux) and criterion.weight == 0.3
    plain = parse_spec("input [8x8x3]\nGAP\nFC 2\n", "p.arch").graph
    assert isinstance(loss(Recipe(loss="cross_entropy"), plain), nn.CrossEntropyLoss)
    g = torch.Generator().manual_seed(0)
    main, a2, a1 = (torch.randn(4, 10, generator=g) for _ in range(3))
    y = torch.tensor([1, 2, 3, 4])
    ce = nn.functional.cross_entropy
    expected = ce(main, y) + 0.3 * ce(a2, y) + 0.3 * ce(a1, y)
    torch.testing.assert_close(criterion((main, a2, a1), y), expected)
    torch.testing.assert_close(criterion(main, y), ce(main, y))  # eval mode: the main output


def test_archc_train_trains_a_network_with_aux_classifiers(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from archc.cli import main

    data = make_tiny(tmp_path / "data", size=16)
    spec = tmp_path / "aux.arch"
    spec.write_text(
        "input [16x16x3]\nconv: bn, relu\ntrain:\n    lr 0.05\n    batch size 4\n    epochs 2\n"
        "    augment none\nCONV 8 3x3 pad 1\naux side:\n    GAP\n    flatten\n    FC 2\n"
        "CONV 8 3x3 pad 1\nGAP\nflatten\nFC 2\n"
    )
    run = tmp_path / "run"
    code = main(["train", str(spec), "--data", str(data), "--out", str(run), "--workers", "0"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["train_loss"] > 0 and r["val_loss"] > 0 for r in rows)


# --- torchvision's GoogLeNet and Inception-v3 ---------------------------------------------------


def torchvision_model(name: str, **kwargs: object) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # init_weights' future default
        return torchvision.models.get_model(name, weights=None, **kwargs)


def randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def pair(name: str, **params: object) -> tuple[nn.Module, nn.Module]:
    """torchvision's model (default arguments, or aux_logits=False for ``aux=0``) and ours
    with its weights loaded strictly, BN statistics randomised."""
    torch.manual_seed(0)
    kwargs = {"aux_logits": False} if params.get("aux") == 0 else {}
    theirs = torchvision_model(name, **kwargs)
    randomize_bn(theirs)
    checked = check_spec(SPECS / f"{name}.arch", params)
    assert checked.ok, [d.message for d in checked.diagnostics]
    ours = build_module(checked)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


# GoogLeNet: 224x224 (the aux classifiers pool a 14x14 map to 4x4); Inception-v3 needs its
# 299x299 (AuxLogits pools 17x17 by 5x5 stride 3 to 5x5 and convolves that by 5x5): slow.
CASES = [
    pytest.param("googlenet", 224, 13_004_888, id="googlenet"),
    pytest.param("inception_v3", 299, 27_161_264, id="inception_v3", marks=pytest.mark.slow),
]


def test_the_defaults_of_torchvision_are_aux_on_and_no_input_transform() -> None:
    for name in ("googlenet", "inception_v3"):
        with torch.device("meta"):
            model = torchvision_model(name)
        assert model.aux_logits is True and model.transform_input is False, name


@pytest.mark.parametrize(("name", "side", "count"), CASES)
def test_keys_shapes_and_parameter_count_equal_torchvisions(name: str, side: int, count: int):
    with torch.device("meta"):
        theirs = torchvision_model(name)
    ours = archc.load(SPECS / f"{name}.arch", device="meta")
    a, b = theirs.state_dict(), ours.state_dict()
    assert sorted(a) == sorted(b)
    assert all(a[k].shape == b[k].shape for k in a)
    # Inception-v3 registers AuxLogits where it branches off, as the spec writes it; GoogLeNet
    # registers aux1/aux2 after inception5b, so only its order differs (load_state_dict is by
    # name).
    assert (list(a) == list(b)) == (name == "inception_v3")
    assert sum(p.numel() for p in ours.parameters()) == count
    assert sum(p.numel() for p in theirs.parameters()) == count
    summary = json.loads(render_json(check_spec(SPECS / f"{name}.arch")))
    assert summary["totals"]["params"] == count
    aux = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}[name]
    expected = {k: sum(p.numel() for p in theirs.get_submodule(k).parameters()) for k in aux}
    assert {a["name"]: a["params"] for a in summary["aux"]} == expected


@pytest.mark.parametrize(("name", "side", "count"), CASES)
def test_outputs_equal_torchvisions_in_eval_and_training(name: str, side: int, count: int):
    theirs, ours = pair(name)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        theirs.eval()
        ours.eval()
        expected, actual = theirs(x), ours(x)
        assert isinstance(actual, torch.Tensor) and actual.shape == (2, 1000)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
        # Training mode: batch statistics and dropout on; the same seed draws the same dropout
        # masks, since both run the aux classifiers and the main dropout in the same order.
        theirs.train()
        ours.train()
        torch.manual_seed(7)
        expected = theirs(x)
        torch.manual_seed(7)
        actual = ours(x)
    assert type(expected).__name__ == {"googlenet": "GoogLeNetOutputs"}.get(
        name, "InceptionOutputs"
    )
    assert isinstance(actual, tuple) and len(actual) == len(expected) == (
        3 if name == "googlenet" else 2
    )
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape == (2, 1000)
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
    # The aux outputs are not the main one (a wrong order would show here).
    assert not torch.allclose(actual[0], actual[1])


def test_googlenet_aux_outputs_come_aux2_then_aux1() -> None:
    torch.manual_seed(0)
    ours = archc.load(SPECS / "googlenet.arch")
    randomize_bn(ours)
    ours.train()
    for m in ours.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    seen: dict[str, torch.Tensor] = {}
    for name in ("aux1", "aux2"):
        ours.get_submodule(name).register_forward_hook(
            lambda m, i, o, n=name: seen.__setitem__(n, o.detach())
        )
    with torch.no_grad():
        _, second, third = ours(x)
    torch.testing.assert_close(second, seen["aux2"])
    torch.testing.assert_close(third, seen["aux1"])


def strip(value: object) -> object:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in ("span", "origin", "file")}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_aux_0_has_the_ir_the_spec_had_before_the_aux_classifiers(name: str) -> None:
    """tests/golden/aux_off/<name>.json: the spec's golden IR as captured at a34a36d, before it
    had aux classifiers (spans, origins and file names left out)."""
    old = json.loads((ROOT / "tests" / "golden" / "aux_off" / f"{name}.json").read_text())
    assert old["spec"] == f"specs/torchvision/{name}.arch" and old["params"] == {"aux": 0}
    now = read_spec(ROOT / old["spec"], params=old["params"]).graph
    assert now is not None
    assert strip(json.loads(now.to_json())) == old["ir"]


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_aux_0_is_the_network_without_its_aux_classifiers(name: str) -> None:
    """`param aux = 0` gives the spec's meaning before the aux classifiers: the IR with aux on,
    less the aux sections' nodes and the aux list, and torchvision's aux_logits=False."""
    full = read_spec(SPECS / f"{name}.arch").graph
    bare = read_spec(SPECS / f"{name}.arch", params={"aux": 0}).graph
    assert full is not None and bare is not None and bare.aux == []
    sections = {a.split(".")[0] for a in full.aux}
    kept = [n for n in full.nodes if n.name.split(".")[0] not in sections]
    less = full.model_copy(update={"nodes": kept, "aux": []})
    assert strip(json.loads(bare.to_json())) == strip(json.loads(less.to_json()))
    assert len(full.nodes) - len(bare.nodes) == {"googlenet": 18, "inception_v3": 10}[name]
    with torch.device("meta"):
        theirs = torchvision_model(name, aux_logits=False)
    checked = check_spec(SPECS / f"{name}.arch", {"aux": 0})
    ours = build_module(checked, device="meta")
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_googlenet_aux_0_matches_torchvision_without_aux_in_training_mode() -> None:
    theirs, ours = pair("googlenet", aux=0)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    theirs.train()
    ours.train()
    with torch.no_grad():
        torch.manual_seed(8)
        expected = theirs(x)
        torch.manual_seed(8)
        actual = ours(x)
    assert isinstance(actual, torch.Tensor)  # no aux classifiers: a plain tensor in training
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_the_compiled_recipe_has_the_same_aux_loss(tmp_path: Path) -> None:
    import importlib.util

    from archc.backends.source import generate_source
    from archc.training.recipe import build

    text = TINY.replace("fc: relu\n", "fc: relu\ntrain:\n    epochs 2\n", 1)
    checked = check_source(text, "tiny.arch")
    assert checked.ok and checked.graph is not None and checked.graph.recipe is not None
    path = tmp_path / "tiny_recipe.py"
    path.write_text(generate_source(checked))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiled = module.recipe(module.tiny())["loss"]
    built = build(checked.graph.recipe, checked.graph, tiny_module())["loss"]
    assert repr(compiled) == repr(built)
    g = torch.Generator().manual_seed(1)
    outs = tuple(torch.randn(3, 10, generator=g) for _ in range(3))
    y = torch.tensor([0, 5, 9])
    torch.testing.assert_close(compiled(outs, y), built(outs, y))
    torch.testing.assert_close(compiled(outs[0], y), built(outs[0], y))


def test_an_aux_section_written_last_leaves_the_main_output_and_its_scores_alone() -> None:
    """The main path's last FC is its class scores even when an aux classifier's FC is written
    after it: the lecture convention's ReLU skips both."""
    text = "input [8x8x3]\nCONV 4 3x3 pad 1\nGAP\nflatten\nfc: FC 5\naux side:\n    FC 5\n"
    graph = parse_spec(text, "end.arch").graph
    assert graph is not None
    assert graph.output == "fc" and graph.aux == ["side.fc1"]
    assert [n.name for n in graph.nodes][-3:] == ["flatten1", "fc", "side.fc1"]
    assert graph.node("side.fc1").inputs == ["fc"]
    checked = check_source(text, "end.arch")
    torch.manual_seed(0)
    model = build_module(checked)
    x = torch.randn(2, 3, 8, 8)
    model.train()
    main, side = model(x)
    torch.testing.assert_close(side, model.side(main))
    model.eval()
    torch.testing.assert_close(model(x), main)
