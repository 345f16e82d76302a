"""PyTorch's tools treat archc's modules as they treat torchvision's: TorchScript compiles an FX
trace of one, a whole pickled module loads in a fresh interpreter, and FX graph-mode
post-training quantization makes the int8 model it makes of torchvision's. The reference for
every number is the torchvision model with the same weights."""

from __future__ import annotations

import collections
import copy
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import fx, nn
from torchvision_models import MODELS, build, min_size

import archc
from archc.backends.torch_module import rebuild

QUICK = {"resnet18", "mobilenet_v3_small"}
"""The fast run's representatives: a residual network, and one with squeeze-and-excitation
gates, hard-swish and dropout."""


def models(name: str) -> tuple[nn.Module, nn.Module]:
    """torchvision's model with eval-mode BN statistics that do something, and archc's with
    its weights (loaded strictly), both in eval mode."""
    torch.manual_seed(0)
    theirs = build(name).eval()
    g = torch.Generator().manual_seed(2)
    for m in theirs.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    ours = archc.load(f"torchvision/{name}", device="meta").to_empty(device="cpu").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def side(name: str) -> int:
    """A small input side the network takes (64, or its weights' minimum where that is more)."""
    return max(64, min_size(name))


@pytest.fixture(
    scope="module",
    params=[pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in MODELS],
)
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    """(name, torchvision's model, archc's): module-scoped, so pytest runs every test of one
    network before it builds the next (neither test changes the models)."""
    return (request.param, *models(request.param))


# --- TorchScript of an FX trace -----------------------------------------------------------------


def test_torchscript_compiles_the_fx_trace(pair: tuple[str, nn.Module, nn.Module]) -> None:
    # The generated classes' annotations are types, not strings (the source is compiled without
    # torch_module.py's `from __future__ import annotations`), so the trace's code names them.
    name, theirs, ours = pair
    x = torch.randn(1, 3, side(name), side(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit is deprecated, still used
        # FX's GraphModule annotates an empty dict in its __init__ (torchvision's trace too).
        warnings.filterwarnings("ignore", "The TorchScript type system", UserWarning)
        scripted = torch.jit.script(fx.symbolic_trace(ours))
    with torch.no_grad():
        expected = theirs(x)
        actual = scripted(x)
    assert actual.shape == expected.shape == (1, 1000)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


# --- a whole module through pickle -------------------------------------------------------------

FRESH = """
import sys
import torch

path, inputs, expected = sys.argv[1:]
assert not any(m.startswith("archc") for m in sys.modules)
x, y = torch.load(inputs), torch.load(expected)
model = torch.load(path, weights_only=False)
with torch.no_grad():
    torch.testing.assert_close(model(x), y, rtol=1e-5, atol=1e-5 * y.abs().max().item())

import archc  # the safe route: allow what archc.safe_globals lists, for any model of the spec

allowed = archc.safe_globals(archc.load("torchvision/efficientnet_b0", device="meta"))
with torch.serialization.safe_globals(allowed):
    safe = torch.load(path, weights_only=True)
assert type(safe) is type(model)
with torch.no_grad():
    torch.testing.assert_close(safe(x), y, rtol=1e-5, atol=1e-5 * y.abs().max().item())
print(type(model).__module__, type(model).__name__, len(allowed))
"""


def test_a_saved_whole_module_loads_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # EfficientNet-B0: generated block classes and a helper class (StochasticDepth) beside
    # torch.nn's.
    theirs, ours = models("efficientnet_b0")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = theirs(x)
    torch.save(ours, tmp_path / "whole.pt")
    torch.save(x, tmp_path / "x.pt")
    torch.save(expected, tmp_path / "y.pt")
    args = [str(tmp_path / f) for f in ("whole.pt", "x.pt", "y.pt")]
    run = subprocess.run(
        [sys.executable, "-c", FRESH, *args], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    module, cls, allowed = run.stdout.split()
    assert module.startswith("archc.generated.efficientnet_b0_") and cls == "efficientnet_b0"
    # rebuild, and torch.nn's classes (Conv2d, BatchNorm2d, SiLU, ...): no generated class.
    classes = {type(m) for m in ours.modules()}
    generated = {c for c in classes if c.__module__.startswith("archc.generated.")}
    assert len(generated) > 2 and int(allowed) == len(classes) - len(generated) + 1
    assert rebuild in archc.safe_globals(ours)
    assert not generated & set(archc.safe_globals(ours))


def test_copies_and_pickles_in_the_process_keep_the_class() -> None:
    # archc.fuse deep-copies the model it fuses; within the process nothing is compiled again.
    theirs, ours = models("resnet18")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = theirs(x)
    for again in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert type(again) is type(ours)
        assert type(again.layer1[0]) is type(ours.layer1[0])
        assert again.conv1.weight is not ours.conv1.weight
        with torch.no_grad():
            torch.testing.assert_close(again(x), expected, rtol=1e-5, atol=1e-5)


def test_rebuild_makes_only_the_graphs_generated_classes() -> None:
    # What a pickle names is looked up among the classes generated from its graph: not the
    # module's other globals (torch, nn, ...), which weights_only loading must not reach.
    ours = archc.load("torchvision/resnet18", device="meta")
    graph_json, cls, _ = ours.__reduce_ex__(2)[1]
    assert cls == "resnet18"
    for name in ("torch", "nn", "Tensor", "__builtins__", "NoSuchBlock"):
        with pytest.raises(TypeError, match="no such module class"):
            rebuild(graph_json, name, {})


# --- FX graph-mode post-training quantization -------------------------------------------------

DIFFERS = {
    "densenet121": "torchvision's dense layers each concatenate the list of all earlier "
    "features (62 torch.cat); the spec's `concat input` concatenates onto the running map (58)",
    "mnasnet1_0": "torchvision pools with x.mean([2, 3]); the spec with an adaptive average "
    "pool, which the quantizer rounds differently",
    "regnet_y_400mf": "torchvision flattens with the method x.flatten(start_dim=1), which the "
    "quantizer runs in float; the spec's flatten is torch.flatten(x, 1), which it does not",
    "shufflenet_v2_x1_0": "torchvision pools with x.mean([2, 3]) and passes the split's first "
    "half on without a module; the spec has a global average pool and an `identity` layer",
}
"""Networks whose spec says something torchvision's forward says otherwise: the same float
model, a different int8 one. Making them agree needs a change to the spec (and its IR)."""


def quantize(model: nn.Module, batches: list[torch.Tensor]) -> fx.GraphModule:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (batches[0],))
        with torch.no_grad():
            for batch in batches:
                prepared(batch)
        return convert_fx(prepared)


def calls(model: fx.GraphModule) -> collections.Counter[str]:
    """How often the converted graph calls each function and method (by name)."""
    return collections.Counter(
        getattr(n.target, "__name__", str(n.target))
        for n in model.graph.nodes
        if n.op in ("call_function", "call_method")
    )


def test_fx_quantization_makes_torchvisions_int8_model(
    pair: tuple[str, nn.Module, nn.Module], request: pytest.FixtureRequest
) -> None:
    name, theirs, ours = pair
    if name in DIFFERS:
        request.applymarker(pytest.mark.xfail(reason=DIFFERS[name], strict=True))
    g = torch.Generator().manual_seed(3)
    s = side(name)
    batches = [torch.randn(2, 3, s, s, generator=g) for _ in range(2)]
    x = torch.randn(1, 3, s, s, generator=g)
    q_theirs, q_ours = quantize(theirs, batches), quantize(ours, batches)
    with torch.no_grad(), warnings.catch_warnings():
        # Inception-v3's int8 concatenations of inputs with different scales: torch warns for
        # torchvision's model as for archc's.
        warnings.filterwarnings("ignore", "All inputs of this cat operator", UserWarning)
        expected, actual = q_theirs(x), q_ours(x)
    assert torch.equal(actual, expected), (actual - expected).abs().max()
    theirs_calls, ours_calls = calls(q_theirs), calls(q_ours)
    # torchvision's StochasticDepth calls a function that FX keeps whole (torch.fx.wrap), which
    # the quantizer then runs in float: one dequantize and quantize more per call whose input
    # is int8, around the identity it is at inference (none where the input is a float already:
    # EfficientNetV2's first blocks end in a SiLU, which runs in float). archc's layer is traced
    # through, to nothing.
    assert (theirs_calls["stochastic_depth"] > 0) == name.startswith(("convnext", "efficientnet"))
    wrapped = sum(
        getattr(n.args[0], "target", None) == "dequantize"
        for n in q_theirs.graph.nodes
        if getattr(n.target, "__name__", None) == "stochastic_depth"
    )
    for op in ("quantize_per_tensor", "dequantize"):
        assert ours_calls[op] == theirs_calls[op] - wrapped, op
    assert ours_calls["quantize_per_tensor"] > 0
    # The residual adds are quantized adds as in torchvision's (add_relu where a ReLU follows).
    for op in ("add", "add_relu", "mul"):
        assert ours_calls[op] == theirs_calls[op], op
