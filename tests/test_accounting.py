"""Accounting on hand-built graphs: params, MACs, activations, bytes, receptive field, groups.

Every expected number is worked out by hand in the test from the layer sizes.
"""

from __future__ import annotations

import pytest

from archc import ir
from archc.check import check_graph
from archc.passes.accounting import account
from archc.passes.fusion import plan_fusion
from archc.passes.shapes import infer_shapes


def chain(input_shape: ir.Shape, *nodes: ir.Node) -> ir.Graph:
    built: list[ir.Node] = [ir.Input(name="input", shape=input_shape)]
    for node in nodes:
        built.append(node.model_copy(update={"inputs": [built[-1].name]}))
    return ir.Graph(name="net", nodes=built, output=built[-1].name)


def accounted(graph: ir.Graph, batch: int = 1, dtype: str = "fp32"):
    shaped = infer_shapes(graph)
    assert shaped.diagnostics == []
    return account(shaped.graph, shaped.shapes, plan_fusion(shaped.graph), batch, dtype)


def alexnet_head() -> ir.Graph:
    return chain(
        (3, 227, 227),
        ir.Conv(name="conv1", out_channels=96, kernel=(11, 11), stride=(4, 4)),
        ir.ReLU(name="relu1"),
        ir.MaxPool(name="pool1", kernel=(3, 3), stride=(2, 2)),
        ir.LRN(name="norm1"),
        ir.Conv(name="conv2", out_channels=256, kernel=(5, 5), padding=(2, 2)),
        ir.ReLU(name="relu2"),
        ir.MaxPool(name="pool2", kernel=(3, 3), stride=(2, 2)),
        ir.Flatten(name="flatten"),
        ir.Dropout(name="drop"),
        ir.Linear(name="fc", out_features=10),
        ir.Softmax(name="prob"),
    )


def test_conv_and_linear_params_and_macs():
    acc = accounted(alexnet_head())
    conv1, conv2, fc = acc.layer("conv1"), acc.layer("conv2"), acc.layer("fc")
    # conv1: 96 filters of 11x11x3 = 34,848 weights + 96 biases; 55x55 outputs each
    assert (conv1.weights, conv1.biases, conv1.params) == (34_848, 96, 34_944)
    assert conv1.macs == 34_848 * 55 * 55 == 105_415_200
    # conv2: 256 filters of 5x5x96 on 27x27
    assert conv2.weights == 256 * 96 * 5 * 5 == 614_400
    assert conv2.macs == 614_400 * 27 * 27
    # fc: 13*13*256 = 43,264 inputs (flattened), 10 outputs
    assert (fc.weights, fc.biases, fc.macs) == (43_264 * 10, 10, 432_640)
    for name in ("relu1", "pool1", "norm1", "pool2", "flatten", "drop", "prob"):
        assert (acc.layer(name).params, acc.layer(name).macs) == (0, 0), name
    assert acc.totals.params == 34_944 + 614_656 + 432_650
    assert acc.totals.macs == 105_415_200 + 614_400 * 729 + 432_640


def test_activations_count_new_tensors_only():
    acc = accounted(alexnet_head())
    assert acc.layer("conv1").values == acc.layer("relu1").values == 96 * 55 * 55
    # relu in place, flatten a view, dropout the identity at inference: no new memory
    for name in ("relu1", "relu2", "flatten", "drop"):
        assert acc.layer(name).activations == 0, name
    expected = (
        3 * 227 * 227  # input
        + 96 * 55 * 55  # conv1
        + 96 * 27 * 27  # pool1
        + 96 * 27 * 27  # norm1
        + 256 * 27 * 27  # conv2
        + 256 * 13 * 13  # pool2
        + 10  # fc
        + 10  # softmax
    )
    assert acc.totals.activations == expected


def test_bytes_per_dtype_and_batch_and_the_training_formula():
    acc = accounted(alexnet_head(), batch=8, dtype="fp16")
    t = acc.totals
    values = accounted(alexnet_head()).totals.activations
    params = 34_944 + 614_656 + 432_650
    assert t.activation_bytes == values * 2
    assert t.batch_activation_bytes == values * 8 * 2
    assert t.param_bytes == params * 2
    assert t.forward_bytes == values * 8 * 2 + params * 2
    # 2 x activations (kept + their gradients) + 3 x params (weights, grads, momentum)
    assert t.train_bytes == 2 * values * 8 * 2 + 3 * params * 2
    with pytest.raises(ValueError):
        accounted(alexnet_head(), batch=0)


def test_receptive_field_along_the_height():
    acc = accounted(alexnet_head())
    rf = {la.name: (la.rf_size, la.rf_jump) for la in acc.layers}
    assert rf["input"] == (1, 1)
    assert rf["conv1"] == (11, 4)  # 1 + (11-1)*1, jump 4
    assert rf["relu1"] == (11, 4)
    assert rf["pool1"] == (19, 8)  # 11 + (3-1)*4
    assert rf["conv2"] == (51, 8)  # 19 + (5-1)*8
    assert rf["pool2"] == (67, 16)  # 51 + (3-1)*8
    # The FC sees the whole 13x13 map: a 13-high window at jump 16.
    assert rf["fc"] == (67 + 12 * 16, 16)


def test_batchnorm_affine_params_and_running_stats_as_buffers():
    graph = chain(
        (3, 32, 32),
        ir.Conv(name="conv", out_channels=16, kernel=(3, 3), padding=(1, 1), bias=False),
        ir.BatchNorm(name="bn"),
        ir.ReLU(name="relu"),
        ir.GlobalAvgPool(name="gap"),
        ir.Linear(name="fc", out_features=10),
    )
    acc = accounted(graph)
    bn = acc.layer("bn")
    assert (bn.weights, bn.biases, bn.buffers, bn.macs) == (16, 16, 32, 0)
    assert acc.layer("conv").params == 16 * 3 * 9
    assert acc.totals.params == 432 + 32 + 16 * 10 + 10
    assert acc.totals.buffers == 32
    assert acc.totals.biases == 16 + 10
    # gap: a window of the whole 32-high map: rf 3 + 31*1 = 34
    assert acc.layer("gap").rf_size == 34
    # conv -> bn -> relu run as one fused group named after the conv
    assert [acc.layer(n).group for n in ("conv", "bn", "relu", "gap", "fc")] == [
        "conv",
        "conv",
        "conv",
        None,
        None,
    ]


def test_residual_add_is_in_place_and_projection_is_counted():
    nodes = [
        ir.Input(name="input", shape=(64, 8, 8)),
        ir.Conv(
            name="conv",
            inputs=["input"],
            out_channels=128,
            kernel=(3, 3),
            stride=(2, 2),
            padding=(1, 1),
            bias=False,
        ),
        ir.BatchNorm(name="bn", inputs=["conv"]),
        ir.Shortcut(name="downsample", inputs=["input"]),
        ir.Add(name="add", inputs=["bn", "downsample"]),
        ir.ReLU(name="relu", inputs=["add"]),
    ]
    acc = accounted(ir.Graph(name="res", nodes=nodes, output="relu"))
    proj = acc.layer("downsample.0")
    assert (proj.params, proj.macs) == (64 * 128, 64 * 128 * 4 * 4)
    assert acc.layer("downsample.1").params == 256
    assert acc.layer("add").activations == 0
    assert acc.layer("add").group == "conv"  # conv -> bn -> add -> relu fuse
    # input 64x8x8; conv, bn, projection conv and projection bn each 128x4x4; add/relu in place
    assert acc.totals.activations == 64 * 8 * 8 + 4 * 128 * 4 * 4


def test_check_graph_skips_accounting_when_shapes_fail():
    graph = chain((3, 4, 4), ir.Conv(name="big", out_channels=8, kernel=(7, 7)))
    checked = check_graph(graph)
    assert [d.code for d in checked.diagnostics] == ["E303"]
    assert checked.accounting is None and not checked.ok


def test_a_fractional_stride_gives_an_exact_fractional_jump(monkeypatch) -> None:
    # No upsampling kind ships yet: identity stands in for a 2x upsample (pixel shuffle 2),
    # whose window is (1, 1/2): neighbouring outputs half an input pixel apart.
    import json
    from fractions import Fraction

    from archc import report
    from archc.check import check_source
    from archc.ops import OPS

    half = Fraction(1, 2)
    monkeypatch.setattr(type(OPS["identity"]), "window", lambda self, node, x, h: (1, half))
    spec = "input [8x8x4]\nCONV 4 3x3 pad 1 no relu\nidentity\nCONV 4 3x3 pad 1 no relu\n"
    checked = check_source(spec, "t.arch")
    assert checked.ok and checked.accounting is not None
    # conv: rf 1 + 2·1 = 3, jump 1; upsample: rf 3, jump 1·1/2; conv: rf 3 + 2·(1/2) = 4.
    conv2 = checked.accounting.layer("conv2")
    assert (conv2.rf_size, conv2.rf_jump) == (4, Fraction(1, 2))
    assert type(conv2.rf_size) is int
    layers = json.loads(report.render_json(checked))["layers"]
    assert [(la["receptive_field"], la["jump"]) for la in layers[1:]] == [
        (3, 1),
        (3, "1/2"),
        (4, "1/2"),
    ]
    assert " 1/2 " in report.render_text(checked, None)
