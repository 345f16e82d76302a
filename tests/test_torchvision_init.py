"""`init torchvision` against torchvision's own initialisation, tensor by tensor.

For every counterpart in specs/torchvision/ (tests/torchvision_models.py's MODELS: a spec's file
stem, or a builder of a family spec, its variant, is torchvision's model name), the
model torchvision builds and the module ``archc.load`` builds are seeded differently and then
compared key by key: a tensor torchvision fills with a constant (BN and LayerNorm 1/0, zeroed
biases, running statistics, ConvNeXt's layer scale) must be that constant exactly; a random one
must be random, and -- where it has enough elements for the sample to say something -- have the
same mean and variance within ``Z`` standard errors of the difference of two independent samples
(computed here from the sample sizes and fourth moments), the same distribution by a two-sample
Kolmogorov-Smirnov test, and, where torchvision's sample is bounded (uniform), lie within that
bound. A random bias must lie within PyTorch's default bound, 1/sqrt(fan_in), as torchvision's
random biases (PyTorch's default) do. Nothing here comes from archc's init code: the reference is
the torchvision model itself.

``archc.load`` builds on the meta device and materialises with ``to_empty``, whose memory is
whatever it was; here ``to_empty`` fills it with NaN (and integers with -7) first, so a tensor
the init does not write shows.
"""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision_models import MODELS, build

import archc
from archc import families, ir

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"
# The models of tests/torchvision_models.py (every plain spec of specs/torchvision/ is one), each
# built by its name: its file, or the family that holds it (regnet_y_400mf: regnet.arch).
NAMES = sorted(MODELS)
# Small models that build in well under a second each: the fast part of the set.
FAST = ("mobilenet_v3_small", "squeezenet1_0", "shufflenet_v2_x1_0", "mnasnet1_0")

Z = 6.0  # tolerance in standard errors: a false alarm is a ~1e-9 event per check
MIN_STATS = 256  # fewer elements: no statistics (exact constants, bias bounds and randomness only)
MIN_BOUNDED = 512  # from here a normal sample practically never has max|x| < 2 std
MOMENT_SAMPLE = 1 << 20  # moments from at most this many elements (an evenly strided subset)
KS_SAMPLE = 1 << 15  # the Kolmogorov-Smirnov test on at most this many
KS_C = math.sqrt(-0.5 * math.log(1e-9 / 2))  # its critical coefficient at alpha = 1e-9


def _subset(x: torch.Tensor, limit: int) -> torch.Tensor:
    """An evenly strided subset of at most ``limit`` elements, in float64. The elements of one
    initialised tensor are independent draws from one distribution, so any fixed subset is a
    sample of it."""
    flat = x.detach().reshape(-1)
    step = max(1, -(-flat.numel() // limit))
    return flat[::step].double()


def _moments(x: torch.Tensor) -> tuple[int, float, float, float]:
    mean = x.mean()
    centred = x - mean
    var = centred.square().mean()
    return x.numel(), mean.item(), var.item(), centred.pow(4).mean().item()


def _ks_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.sort().values, b.sort().values
    points = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, points, right=True) / a.numel()
    cdf_b = torch.searchsorted(b, points, right=True) / b.numel()
    return (cdf_a - cdf_b).abs().max().item()


def _compare(key: str, ref: torch.Tensor, ours: torch.Tensor, weights: dict) -> list[str]:
    """What is wrong with ``ours`` as a draw of the distribution ``ref`` was drawn from."""
    if ours.shape != ref.shape:
        return [f"{key}: shape {tuple(ours.shape)}, torchvision's {tuple(ref.shape)}"]
    if not ref.is_floating_point():
        return [] if torch.equal(ours, ref) else [f"{key}: {ours.tolist()}, torchvision's {ref}"]
    if not bool(torch.isfinite(ours).all()):
        return [f"{key}: not finite (unwritten memory?)"]
    if bool((ref == ref.reshape(-1)[0]).all()):
        value = ref.reshape(-1)[0].item()
        if torch.equal(ours, ref):
            return []
        return [f"{key}: torchvision's is all {value:g}; ours spans {_span(ours)}"]
    if bool((ours == ours.reshape(-1)[0]).all()):
        return [f"{key}: all {ours.reshape(-1)[0].item():g}; torchvision's is random, {_span(ref)}"]
    problems = []
    top_ref, top_ours = ref.abs().max().item(), ours.abs().max().item()
    if key.endswith("bias") and ref.dim() == 1:
        # PyTorch's default bias: uniform within 1/sqrt(fan_in) of the layer's weight.
        fan_in = weights[key[: -len("bias")] + "weight"][0].numel()
        bound = fan_in**-0.5
        assert top_ref <= bound, f"{key}: torchvision's random bias is not PyTorch's default"
        if top_ours > bound:
            problems.append(f"{key}: max |b| {top_ours:.4g} > 1/sqrt(fan_in) = {bound:.4g}")
    n = ref.numel()
    if n < MIN_STATS:
        return problems
    r = _subset(ref, MOMENT_SAMPLE)
    o = _subset(ours, MOMENT_SAMPLE)
    n_r, mean_r, var_r, m4_r = _moments(r)
    n_o, mean_o, var_o, m4_o = _moments(o)
    se_mean = math.sqrt(var_r / n_r + var_o / n_o)
    if abs(mean_o - mean_r) > Z * se_mean:
        problems.append(f"{key}: mean {mean_o:.4g}, torchvision's {mean_r:.4g} (se {se_mean:.2g})")
    se_var = math.sqrt((m4_r - var_r**2) / n_r + (m4_o - var_o**2) / n_o)
    if abs(var_o - var_r) > Z * se_var:
        problems.append(
            f"{key}: std {math.sqrt(var_o):.4g}, torchvision's {math.sqrt(var_r):.4g} (n = {n})"
        )
    r, o = _subset(ref, KS_SAMPLE), _subset(ours, KS_SAMPLE)
    distance = _ks_distance(r, o)
    critical = KS_C * math.sqrt((r.numel() + o.numel()) / (r.numel() * o.numel()))
    if distance > critical:
        problems.append(f"{key}: Kolmogorov-Smirnov distance {distance:.3g} > {critical:.3g}")
    if n >= MIN_BOUNDED and top_ref < 2 * math.sqrt(var_r):
        # Bounded (uniform): n draws fall short of the bound B by more than 30 B / n with
        # probability ~e^-30, so B <= max|ref| / (1 - 30 / n).
        bound = top_ref / (1 - 30 / n)
        if top_ours > bound:
            problems.append(f"{key}: max |w| {top_ours:.4g} beyond torchvision's bound {bound:.4g}")
    return problems


def _span(x: torch.Tensor) -> str:
    return f"[{x.min().item():.3g}, {x.max().item():.3g}]"


def _poison(model: nn.Module) -> None:
    with torch.no_grad():
        for t in itertools.chain(model.parameters(), model.buffers()):
            t.fill_(math.nan if t.is_floating_point() else -7)


@pytest.fixture
def poisoned(monkeypatch):
    """``nn.Module.to_empty`` leaves NaN (integers: -7) in every tensor it materialises."""
    to_empty = nn.Module.to_empty

    def poisoned_to_empty(self, *args, **kwargs):
        module = to_empty(self, *args, **kwargs)
        _poison(module)
        return module

    monkeypatch.setattr(nn.Module, "to_empty", poisoned_to_empty)


def _problems(name: str, theirs: dict, ours: dict) -> list[str]:
    assert set(ours) == set(theirs)
    return [p for key in theirs for p in _compare(key, theirs[key], ours[key], theirs)]


def check_init(name: str) -> None:
    torch.manual_seed(0)
    theirs = build(name).state_dict()
    torch.manual_seed(1)  # another stream: the two samples are independent
    ours = archc.load(f"torchvision/{name}").state_dict()
    problems = _problems(name, theirs, ours)
    assert not problems, f"{name}: " + "\n".join(problems)


def test_the_fast_set_is_in_the_set():
    assert set(FAST) <= set(NAMES)


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in NAMES]
)
def test_init_torchvision_draws_as_torchvision_does(name, poisoned):
    check_init(name)


def test_the_poison_shows_through_to_empty(poisoned):
    # The fixture is in effect where archc.load materialises: a module left unwritten is NaN.
    with torch.device("meta"):
        layer = nn.Linear(4, 4)
    layer.to_empty(device="cpu")
    assert bool(layer.weight.isnan().all())


@pytest.mark.parametrize("scheme", ["kaiming", "xavier"])
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v2_x1_0"])
def test_every_scheme_writes_every_tensor(name, scheme, poisoned, tmp_path):
    # The spec with another init line, beside a copy of the blocks it imports.
    shutil.copytree(SPECS.parent / "blocks", tmp_path / "blocks")
    (tmp_path / "torchvision").mkdir()
    # A builder of a family spec: the family's file, read with the builder's variant.
    member = families.member(f"torchvision/{name}")
    path, params = (
        (member.family, {"variant": member.variant}) if member else (SPECS / f"{name}.arch", {})
    )
    spec = tmp_path / "torchvision" / path.name
    text = path.read_text()
    assert "\ninit torchvision\n" in text
    spec.write_text(text.replace("\ninit torchvision\n", f"\ninit {scheme}\n"))
    model = archc.load(spec, **params)
    for key, t in model.state_dict().items():
        if t.is_floating_point():
            assert bool(t.isfinite().all()), key
        else:
            assert bool((t == 0).all()), key  # num_batches_tracked


# Networks whose schemes are in archc's table before their specs are: the scheme applied to
# torchvision's own modules (poisoned first), against a fresh torchvision model. Once a spec
# `network NAME` is in specs/torchvision/, the test above covers it through archc.load too.
@pytest.mark.parametrize("name", ["efficientnet_b0", "regnet_y_400mf"])
def test_schemes_of_networks_without_a_spec_yet(name):
    from archc.backends.init import initialize

    torch.manual_seed(0)
    theirs = build(name).state_dict()
    torch.manual_seed(1)
    model = build(name)
    _poison(model)
    graph = ir.Graph(
        name=name, init="torchvision", nodes=[ir.Input(name="input", shape=(3, 224, 224))],
        output="input",
    )  # fmt: skip
    initialize(model, graph)
    problems = _problems(name, theirs, model.state_dict())
    assert not problems, f"{name}: " + "\n".join(problems)
