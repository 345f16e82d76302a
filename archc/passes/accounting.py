"""Accounting: what every layer costs, and the totals of the lecture table.

Per node: output shape, activation values, parameters (weights, biases; BN's affine gamma and
beta; BN running statistics apart, as buffers), multiply-accumulates, receptive field along the
height, and the fused group it runs in. docs/accounting.md states exactly what is counted; the
short version:

- MACs: conv K·C·R·S·OH·OW, linear in·out; every other op 0 (their work is not
  multiply-accumulates of weights).
- Activations: every op that makes a new tensor adds its output once; ReLU and add run in place,
  dropout is the identity at inference and flatten is a view, so they add none. The input counts.
- Training estimate: 2 × the batch's activations (kept for backward, plus their gradients)
  + 3 × parameters (weights, gradients, one optimizer state such as SGD momentum) + buffers.

Runs on a graph whose shapes are all known (after :func:`archc.passes.shapes.infer_shapes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from archc import ir
from archc.ops import op_of
from archc.ops.base import NO_COSTS
from archc.passes.fusion import FusionGroup
from archc.spans import Span

Dtype = Literal["fp32", "fp16", "bf16"]
DTYPE_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class LayerAccount:
    name: str
    op: str
    output_shape: ir.Shape
    values: int
    """Number of values in the output tensor (per image)."""
    activations: int
    """Values this layer adds to activation memory (0 for in-place ops and views)."""
    weights: int
    biases: int
    buffers: int
    macs: int
    rf_size: int | Fraction
    """Receptive field along the height, in input pixels (a fraction after an upsampling op)."""
    rf_jump: int | Fraction
    """Distance in input pixels between neighbouring outputs along the height: a fraction
    after an upsampling op (1/2 after a 2x upsample), a whole number otherwise."""
    group: str | None
    """Name of the fused group (its conv) this node runs in, if any."""
    span: Span | None = None

    @property
    def params(self) -> int:
        return self.weights + self.biases


@dataclass(frozen=True)
class Totals:
    params: int
    biases: int
    buffers: int
    macs: int
    activations: int
    """Activation values per image, the input included."""
    batch: int
    dtype: str
    dtype_bytes: int

    @property
    def activation_bytes(self) -> int:
        """Activation bytes per image."""
        return self.activations * self.dtype_bytes

    @property
    def batch_activation_bytes(self) -> int:
        return self.activations * self.batch * self.dtype_bytes

    @property
    def param_bytes(self) -> int:
        return self.params * self.dtype_bytes

    @property
    def buffer_bytes(self) -> int:
        return self.buffers * self.dtype_bytes

    @property
    def forward_bytes(self) -> int:
        """A forward pass of the batch keeping every activation, plus weights and buffers."""
        return self.batch_activation_bytes + self.param_bytes + self.buffer_bytes

    @property
    def train_bytes(self) -> int:
        """Activations kept for backward and their gradients, weights + grads + one optimizer
        state per parameter, and buffers."""
        return 2 * self.batch_activation_bytes + 3 * self.param_bytes + self.buffer_bytes


@dataclass(frozen=True)
class Accounting:
    layers: list[LayerAccount]
    totals: Totals

    def layer(self, name: str) -> LayerAccount:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def whole(value: Fraction) -> int | Fraction:
    """A whole number as an int (every receptive field without an upsampling op)."""
    return value.numerator if value.denominator == 1 else value


def account(
    graph: ir.Graph,
    shapes: dict[str, ir.Shape],
    fusion: list[FusionGroup],
    batch: int = 1,
    dtype: Dtype = "fp32",
) -> Accounting:
    """Per-layer costs and totals of a graph whose every node has a shape."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    group_of = {member: g.name for g in fusion for member in g.members}
    # (receptive field, jump, height of the map the values came from) per node.
    field: dict[str, tuple[Fraction, Fraction, int]] = {}
    layers: list[LayerAccount] = []
    for node in graph.nodes:
        out = shapes[node.name]
        x = shapes[node.inputs[0]] if node.inputs else out
        if node.inputs:
            rf = max(field[i][0] for i in node.inputs)
            jump = max(field[i][1] for i in node.inputs)
            height = field[node.inputs[0]][2]
        else:
            rf, jump, height = Fraction(1), Fraction(1), out[1] if len(out) == 3 else 1
        op = op_of(node) if not isinstance(node, ir.Input) else None
        window = op.window(node, x, height) if op else None
        if window is not None:
            k, s = window
            rf, jump = rf + (k - 1) * jump, jump * s
        if len(out) == 3:
            height = out[1]
        elif not (op and op.keeps_positions):
            height = 1
        field[node.name] = (rf, jump, height)
        costs = op.costs(node, x, out) if op else NO_COSTS
        values = math.prod(out)
        layers.append(
            LayerAccount(
                name=node.name,
                op=node.op,
                output_shape=out,
                values=values,
                activations=0 if op and op.in_place else values,
                weights=costs.weights,
                biases=costs.biases,
                buffers=costs.buffers,
                macs=costs.macs,
                rf_size=whole(rf),
                rf_jump=whole(jump),
                group=group_of.get(node.name),
                span=node.span,
            )
        )
    totals = Totals(
        params=sum(la.params for la in layers),
        biases=sum(la.biases for la in layers),
        buffers=sum(la.buffers for la in layers),
        macs=sum(la.macs for la in layers),
        activations=sum(la.activations for la in layers),
        batch=batch,
        dtype=dtype,
        dtype_bytes=DTYPE_BYTES[dtype],
    )
    return Accounting(layers=layers, totals=totals)
