"""The plain module outside eager inference: torch.export, torch.compile, training."""

from __future__ import annotations

from pathlib import Path

import torch
from test_torch_module import assert_close, randomize_bn, tiny_resnet_graph

import archc
from archc.backends.torch_module import build_graph

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"


def test_torch_export_of_resnet50_reproduces_the_module():
    model = archc.load(SPECS / "resnet50.arch").eval()
    x = torch.randn(1, 3, 224, 224)
    exported = torch.export.export(model, (x,))
    convs = [n for n in exported.graph.nodes if "aten.conv" in str(n.target)]
    assert len(convs) == 53
    with torch.no_grad():
        assert_close(exported.module()(x), model(x), rel=1e-5)


def test_torch_compile_captures_the_whole_network_in_one_graph():
    torch.manual_seed(0)
    model = build_graph(tiny_resnet_graph(16, 10, (8, 16, 16, 16))).eval()
    # fullgraph: no graph breaks anywhere; aot_eager: traced by dynamo and AOTAutograd
    # without spending a minute in inductor's C++ compiler.
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-6)


def test_one_sgd_step_of_resnet18_lowers_the_loss_on_its_batch():
    torch.manual_seed(0)
    model = archc.load(SPECS / "resnet18.arch").train()
    x = torch.randn(8, 3, 64, 64)
    y = torch.randint(0, 1000, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    optimizer.step()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(model(x), y)
    assert after < loss.detach() - 0.1, (loss.item(), after.item())
    assert model.get_submodule("bn1").num_batches_tracked.item() == 2


def test_the_plain_module_ignores_the_kernel_switch(monkeypatch):
    # ARCHC_KERNELS chooses the fused module's op (archc.fuse); the plain module is plain torch.
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    model = build_graph(tiny_resnet_graph(16, 10, (8, 8, 8, 8))).eval()
    randomize_bn(model)
    exported = torch.export.export(model, (torch.randn(1, 3, 16, 16),))
    ops = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert {"aten.conv2d.default", "aten.batch_norm.default"} <= ops
    assert not any("archc" in op or "triton" in op for op in ops)
