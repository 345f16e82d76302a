"""Differential fuzzers (issue 24): generated and mutated specs, built and run.

Two fuzzers, seeded and bounded so that they are reproducible and take seconds, in the slow
suite:

- generative: random small networks (convs of random kernel, stride, padding, groups;
  pools; BN; activations; residual blocks with `shortcut: auto`; branches joined by concat;
  FC at the end), written as spec text;
- mutation: the shipped specs with a line deleted, duplicated or swapped, a number changed, or
  the input made small.

Every spec must check without raising (errors are diagnostics). One that checks clean is
loaded and run, and four things are compared, each with something computed apart from the
code that made the other: the output's shape with the shape inference; the module's parameter
count with the accounting; ``archc.fuse(model)`` with the eval-mode model; and a backward pass
that reaches every parameter.
"""

from __future__ import annotations

import random
import re
import warnings

import pytest

import archc
from archc.backends.torch_module import build_module
from archc.check import check_source
from archc.diagnostics import SpecWarning
from archc.library import SPECS_DIR

pytestmark = pytest.mark.slow

GENERATED = 40
MUTANTS = 40
MAX_MACS = 200_000_000  # a spec bigger than this is checked, not run (keeps the suite fast)
MAX_PARAMS = 15_000_000


def _conv(rng: random.Random, channels: int) -> tuple[str, int]:
    out = rng.choice([4, 8, 12, 16])
    k = rng.choice([1, 3, 5])
    parts = [f"CONV {out} {k}x{k}"]
    if rng.random() < 0.3:
        parts.append("stride 2")
    if k > 1 and rng.random() < 0.7:
        parts.append(f"pad {k // 2}")
    if rng.random() < 0.2 and channels % 4 == 0 and out % 4 == 0:
        parts.append("groups 4")
    return " ".join(parts), out


def generated_spec(seed: int) -> str:
    rng = random.Random(seed)
    train = "train:\n    epochs 1\n" if rng.random() < 0.3 else ""
    if rng.random() < 0.15:  # a vector input: FC layers only (issue 24's KeyError 'augment')
        return f"input [{rng.randint(1, 40)}]\nFC {rng.randint(1, 20)}\nFC 2\n{train}"
    channels = rng.choice([1, 3, 4])
    size = rng.choice([8, 12, 16, 17])
    lines = [f"input [{size}x{size}x{channels}]"]
    if rng.random() < 0.5:
        lines.append("conv: bn, relu")
    lines += [
        "block res(width, stride = 1):",
        "    residual:",
        "        CONV: width 3x3 stride stride pad 1",
        "        CONV: width 3x3 pad 1, no relu",
        "    shortcut: auto",
        "    add, relu",
    ]
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if roll < 0.4:
            line, channels = _conv(rng, channels)
            lines.append(line)
        elif roll < 0.55:
            lines.append(rng.choice(["MAX POOL 2x2 stride 2", "AVG POOL 3x3 stride 1 pad 1"]))
        elif roll < 0.7:
            channels = rng.choice([4, 8])
            lines.append(f"res({channels}, stride {rng.choice([1, 2])})")
        elif roll < 0.85:
            a, b = rng.choice([2, 4]), rng.choice([2, 6])
            lines += [
                "branch:",
                f"    CONV {a} 1x1",
                "branch:",
                f"    CONV {b} 3x3 pad 1",
                "concat",
            ]
            channels = a + b
        else:
            lines.append(rng.choice(["BN", "relu", "sigmoid", "hardswish", "dropout 0.1"]))
    if rng.random() < 0.5:
        lines.append("global avg pool")
    lines.append(f"FC {rng.choice([2, 5, 10])}")
    return "\n".join(lines) + "\n" + train


_NUMBER = re.compile(r"(?<![A-Za-z_])\d+")


def mutant(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    kind = rng.choice(["delete", "duplicate", "swap", "number", "nothing"])
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "number":
        numbers = [
            m for k, line in enumerate(lines) for m in [(k, n) for n in _NUMBER.finditer(line)]
        ]
        if numbers:
            k, m = rng.choice(numbers)
            value = rng.choice(["0", "1", "2", "3", str(int(m.group()) * 2), "999999"])
            lines[k] = lines[k][: m.start()] + value + lines[k][m.end() :]
    # And the input made small, so that the network can be run in the suite's time: its
    # declared shapes then fail (E302), which leaves the network standing.
    size = rng.choice([32, 33, 64])
    small = re.compile(r"^(\s*input\s*)\[\d+x\d+x3\]", re.I)
    paper = re.compile(r"^(\s*input\s*\()\d+ × \d+", re.I)  # `input (224 × 224 RGB image)`
    lines = [small.sub(rf"\g<1>[{size}x{size}x3]", line) for line in lines]
    lines = [paper.sub(rf"\g<1>{size} × {size}", line) for line in lines]
    return "\n".join(lines)


def differential(text: str, file: str = "<fuzz>") -> str:
    """Check ``text``; when it checks clean and is small, build it and compare. Returns what
    happened: ``errors``, ``big`` or ``ran``."""
    import torch

    checked = check_source(text, file)
    if not (checked.ok or checked.only_claims_fail):
        return "errors"
    assert checked.graph is not None and checked.accounting is not None
    totals = checked.accounting.totals
    if totals.macs > MAX_MACS or totals.params > MAX_PARAMS:
        return "big"
    torch.manual_seed(0)
    if file == "<fuzz>":  # no imports: archc.load itself, from the text
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)
            model = archc.load(text)
    else:  # a mutant checked as if beside its spec (for its imports): what load builds
        model = build_module(checked)
    shape = checked.shapes[checked.graph.nodes[0].name]
    x = torch.randn(2, *shape)
    out = model.train()(x)
    assert tuple(out.shape[1:]) == tuple(checked.shapes[checked.graph.output]), text
    assert sum(p.numel() for p in model.parameters()) == totals.params, text
    out.float().pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, (missing, text)
    model.eval()
    with torch.no_grad():
        want = model(x)
        got = archc.fuse(model)(x)
    scale = max(float(want.abs().max()), 1e-6)
    assert float((got - want).abs().max()) <= 1e-4 * scale + 1e-5, text
    return "ran"


def test_generated_specs_build_run_fuse_and_backpropagate() -> None:
    outcomes = [differential(generated_spec(seed)) for seed in range(GENERATED)]
    # The generator writes mostly valid networks: most must really run.
    assert outcomes.count("ran") >= GENERATED // 2, outcomes


def test_mutated_shipped_specs_never_raise_and_the_clean_ones_agree() -> None:
    rng = random.Random(24)
    sources = sorted(SPECS_DIR.glob("*.arch"))
    outcomes = []
    for _ in range(MUTANTS):
        path = rng.choice(sources)
        text = mutant(path.read_text(), rng)
        # Imports are relative to the spec: the mutant is checked as if it stood beside it.
        outcomes.append(differential(text, str(path)))
    assert outcomes.count("ran") >= 1 and outcomes.count("errors") >= 1, outcomes
