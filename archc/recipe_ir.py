"""The training recipe of a spec's ``train:`` section, as the IR keeps it.

Plain values only (no torch): ``archc summary`` prints it and ``archc ir`` dumps it without
importing torch. archc.training builds the optimizer, scheduler, loss and data loaders from it,
and the generated source's ``recipe()`` builds the same objects (archc.backends.recipe_source).
Unwritten settings take the defaults below (docs/language.md, "The training recipe").
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Monitor = Literal["val_acc1", "val_loss", "val_error"]


class Optimizer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["sgd", "adamw"] = "sgd"
    momentum: float = 0.9
    """SGD only."""
    nesterov: bool = False
    """SGD only."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW only."""


class Schedule(BaseModel):
    """How the learning rate changes from epoch to epoch."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["constant", "plateau", "step", "cosine"] = "constant"
    factor: float = 0.1
    """plateau and step: the learning rate is multiplied by it."""
    monitor: Monitor = "val_loss"
    """plateau: the metric that must stop improving (accuracy up, loss and error down)."""
    patience: int = 10
    """plateau: epochs without improvement before the cut (torch's default)."""
    every: int = 30
    """step: epochs between cuts."""
    warmup: int = 0
    """epochs of linear warm-up before the schedule (step and cosine)."""


class Recipe(BaseModel):
    """Everything ``archc train`` needs beyond the network and the data."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    optimizer: Optimizer = Optimizer()
    lr: float = 0.1
    weight_decay: float = 0.0
    decay_bn: bool = True
    """Whether weight decay applies to batch norm's scale and shift."""
    decay_bias: bool = True
    """Whether weight decay applies to biases."""
    batch_size: int = 128
    """The global batch: under torchrun each process takes batch_size / world size."""
    epochs: int = 90
    schedule: Schedule = Schedule()
    label_smoothing: float = 0.0
    augment: Literal["none", "standard", "lecture"] = "standard"
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    """Autocast dtype on CUDA; the CPU trains in fp32."""
    sync_bn: bool = False
    ema: float = Field(0.0, exclude_if=lambda v: not v)
    """The decay of an exponential moving average of the weights (0: none); validation,
    checkpoints' ``ema`` and everything that reads a checkpoint use the average. Left out of
    the IR's JSON when off."""
    clip_grad_norm: float = Field(0.0, exclude_if=lambda v: not v)
    """Gradients are scaled down to this total L2 norm before each step (0: not clipped)."""
    loss: Literal["cross_entropy", "nll"] = "cross_entropy"
    """nll for a network that ends in softmax: it trains on log-probabilities (its final
    softmax becomes a log-softmax), never softmax followed by cross-entropy."""
    line: int = 0
    """The line of the ``train:`` header."""


_AUGMENT = {
    "none": "none (resize and centre crop only, no flips)",
    "standard": "standard (random-resized crop + horizontal flip)",
    "lecture": "lecture (AlexNet's random crops of the resized image + horizontal flip)",
}
_METRIC = {"val_acc1": "val accuracy", "val_loss": "val loss", "val_error": "val error"}


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def describe(recipe: Recipe, init: str) -> list[tuple[str, str]]:
    """The recipe as (setting, value) rows, as ``archc summary`` prints them."""
    opt = recipe.optimizer
    if opt.kind == "sgd":
        optimizer = f"SGD, momentum {opt.momentum:g}" + (", Nesterov" if opt.nesterov else "")
    else:
        optimizer = f"AdamW, betas {opt.betas[0]:g}, {opt.betas[1]:g}"
    s = recipe.schedule
    cut = f"x{s.factor:g}"
    schedule = {
        "constant": "constant",
        "plateau": f"{cut} when {_METRIC[s.monitor]} stops improving for {s.patience} epochs",
        "step": f"{cut} every {s.every} epochs",
        "cosine": "cosine to 0",
    }[s.kind]
    if s.warmup:
        schedule += f", after {s.warmup} epochs of linear warm-up"
    excluded = [w for w, on in (("BN", recipe.decay_bn), ("biases", recipe.decay_bias)) if not on]
    decay = f"{recipe.weight_decay:g}" + (f" (not on {' or '.join(excluded)})" if excluded else "")
    loss = (
        "NLL on log-probabilities (the network ends in softmax)"
        if recipe.loss == "nll"
        else "cross-entropy on the class scores"
    )
    if recipe.label_smoothing:
        loss += f", label smoothing {recipe.label_smoothing:g}"
    rows = [
        ("optimizer", optimizer),
        ("learning rate", f"{recipe.lr:g}, {schedule}"),
        ("weight decay", decay),
        ("batch", f"{recipe.batch_size} (global), {recipe.epochs} epoch{_s(recipe.epochs)}"),
        ("loss", loss),
        ("augmentation", _AUGMENT[recipe.augment]),
        (
            "precision",
            f"{recipe.precision} autocast on CUDA" if recipe.precision != "fp32" else "fp32",
        ),
        ("init", init + (", SyncBatchNorm under torchrun" if recipe.sync_bn else "")),
    ]
    if recipe.ema:
        rows.append(("weight average", f"EMA, decay {recipe.ema:g}"))
    if recipe.clip_grad_norm:
        rows.append(("gradient clipping", f"total norm {recipe.clip_grad_norm:g}"))
    return rows
