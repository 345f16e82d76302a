"""A recipe's torch objects: the optimizer, the learning-rate schedule and the loss.

The generated source's ``recipe()`` (archc.backends.recipe_source) builds the same objects from
the same values; tests/test_train_recipe.py holds the two equal.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from archc import ir
from archc.recipe_ir import Recipe

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)


def parameter_groups(recipe: Recipe, model: nn.Module) -> list[dict[str, Any]]:
    """Weight decay for every parameter but those the recipe exempts (BN's scale and shift,
    biases); each group only when it has parameters."""
    decay: list[nn.Parameter] = []
    exempt: list[nn.Parameter] = []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            norm = isinstance(module, NORMS)
            free = (norm and not recipe.decay_bn) or (name == "bias" and not recipe.decay_bias)
            (exempt if free else decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}]
    groups.append({"params": exempt, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    opt = recipe.optimizer
    groups = parameter_groups(recipe, model)
    if opt.kind == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=opt.momentum, nesterov=opt.nesterov)
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=opt.betas)


def scheduler(recipe: Recipe, opt: torch.optim.Optimizer) -> Any:
    """Stepped once per epoch; a plateau schedule with the monitored metric (``monitor``)."""
    s = recipe.schedule
    if s.kind == "plateau":
        mode = "max" if s.monitor == "val_acc1" else "min"
        return lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=s.factor, patience=s.patience)
    if s.kind == "step":
        main: lr_scheduler.LRScheduler = lr_scheduler.StepLR(opt, step_size=s.every, gamma=s.factor)
    elif s.kind == "cosine":
        main = lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs - s.warmup)
    else:
        main = lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    if not s.warmup:
        return main
    warm = lr_scheduler.LinearLR(opt, start_factor=1 / s.warmup, total_iters=s.warmup)
    return lr_scheduler.SequentialLR(opt, [warm, main], milestones=[s.warmup])


def monitor(recipe: Recipe) -> str | None:
    """The metric a plateau schedule's ``step`` takes; None for the others."""
    return recipe.schedule.monitor if recipe.schedule.kind == "plateau" else None


AUX_WEIGHT = 0.3
"""The weight of each auxiliary classifier's loss (GoogLeNet, Szegedy et al. 2015, section 5:
"the losses of the auxiliary classifiers were weighted by 0.3"; torchvision's references use
the same for Inception-v3)."""


class WithAux(nn.Module):
    """The loss of a network with auxiliary classifiers (``aux NAME:``): in training mode the
    network returns ``(main, aux…)`` and the loss is ``loss(main) + 0.3 × Σ loss(aux)``; in eval
    mode it returns the main output alone, whose loss is the plain one."""

    def __init__(self, criterion: nn.Module, weight: float = AUX_WEIGHT) -> None:
        super().__init__()
        self.criterion = criterion
        self.weight = weight

    def forward(self, out: Any, target: torch.Tensor) -> torch.Tensor:
        if not isinstance(out, tuple | list):
            return self.criterion(out, target)
        main, *aux = out
        total = self.criterion(main, target)
        for side in aux:
            if side is not None:
                total = total + self.weight * self.criterion(side, target)
        return total


def loss(recipe: Recipe, graph: ir.Graph | None = None) -> nn.Module:
    """The recipe's loss; for a network with auxiliary classifiers (``graph.aux``), the
    weighted sum of :class:`WithAux`."""
    if recipe.loss == "nll":
        plain: nn.Module = nn.NLLLoss()
    else:
        plain = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    return WithAux(plain) if graph is not None and graph.aux else plain


def for_training(model: nn.Module, graph: ir.Graph) -> nn.Module:
    """A network that ends in softmax trains on log-probabilities: its final ``nn.Softmax``
    becomes an ``nn.LogSoftmax`` under the same name (neither has state, so state_dicts are
    unchanged; ``exp`` of the output is the probabilities)."""
    if graph.node(graph.output).op == "softmax":
        parent, _, name = graph.output.rpartition(".")
        setattr(model.get_submodule(parent), name, nn.LogSoftmax(dim=1))
    return model


def build(recipe: Recipe, graph: ir.Graph, model: nn.Module) -> dict[str, Any]:
    """What the generated source's ``recipe(model)`` returns, with the same keys."""
    model = for_training(model, graph)
    opt = optimizer(recipe, model)
    built = {
        "model": model,
        "optimizer": opt,
        "scheduler": scheduler(recipe, opt),
        "monitor": monitor(recipe),
        "loss": loss(recipe, graph),
        "batch_size": recipe.batch_size,
        "epochs": recipe.epochs,
        "augment": recipe.augment,
        "precision": recipe.precision,
        "sync_bn": recipe.sync_bn,
    }
    if recipe.ema:
        built["ema"] = recipe.ema
    if recipe.clip_grad_norm:
        built["clip_grad_norm"] = recipe.clip_grad_norm
    return built
