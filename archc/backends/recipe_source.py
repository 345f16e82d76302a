"""The ``recipe(model)`` function of the generated source: the spec's training recipe as the
torch objects archc.training.recipe builds, written out with the recipe's values, so a user's
own loop gets the same optimizer, schedule and loss with nothing but torch."""

from __future__ import annotations

import json

from archc import ir
from archc.recipe_ir import Recipe


def recipe_lines(graph: ir.Graph) -> list[str]:
    """The function's lines; none for a spec without a ``train:`` section."""
    r = graph.recipe
    if r is None:
        return []
    lines = [
        "def recipe(model: nn.Module) -> dict[str, object]:",
        f'    """The training recipe of the spec\'s `train:` section (line {r.line}): the',
        "    optimizer, the learning-rate schedule (stepped once per epoch; a plateau schedule",
        '    with the metric named by `monitor`), the loss and the loader settings."""',
    ]
    if r.loss == "nll":
        parent, _, name = graph.output.rpartition(".")
        owner = f"model.get_submodule({_str(parent)})" if parent else "model"
        lines += [
            "    # The network ends in softmax: it trains on log-probabilities with the NLL loss.",
            f"    setattr({owner}, {_str(name)}, nn.LogSoftmax(dim=1))",
        ]
    lines += _groups(r)
    lines += _optimizer(r)
    lines += _scheduler(r)
    s = r.schedule
    monitor = _str(s.monitor) if s.kind == "plateau" else "None"
    loss = (
        "nn.NLLLoss()"
        if r.loss == "nll"
        else f"nn.CrossEntropyLoss(label_smoothing={r.label_smoothing!r})"
    )
    if graph.aux:
        loss = f"WithAux({loss})"
    lines += [
        "    return {",
        '        "model": model,',
        '        "optimizer": optimizer,',
        '        "scheduler": scheduler,',
        f'        "monitor": {monitor},',
        f'        "loss": {loss},',
        f'        "batch_size": {r.batch_size},',
        f'        "epochs": {r.epochs},',
        f'        "augment": {_str(r.augment)},',
        f'        "precision": {_str(r.precision)},',
        f'        "sync_bn": {r.sync_bn},',
    ]
    # Only when set, so that the source of a recipe without them stays as it was.
    if r.ema:
        lines.append(f'        "ema": {r.ema!r},')
    if r.clip_grad_norm:
        lines.append(f'        "clip_grad_norm": {r.clip_grad_norm!r},')
    return [*(WITH_AUX if graph.aux else []), *lines, "    }"]


WITH_AUX = [
    "class WithAux(nn.Module):",
    '    """The loss of a network with auxiliary classifiers: in training mode it returns (main,',
    "    aux...), and the loss is loss(main) + 0.3 x each loss(aux), the GoogLeNet paper's",
    '    weight; in eval mode the plain loss of the main output."""',
    "",
    "    def __init__(self, criterion: nn.Module, weight: float = 0.3) -> None:",
    "        super().__init__()",
    "        self.criterion = criterion",
    "        self.weight = weight",
    "",
    "    def forward(self, out: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor:",
    "        if not isinstance(out, tuple):",
    "            return self.criterion(out, target)",
    "        main, *aux = out",
    "        total = self.criterion(main, target)",
    "        for side in aux:",
    "            if side is not None:",
    "                total = total + self.weight * self.criterion(side, target)",
    "        return total",
    "",
    "",
]
"""The generated file's copy of archc.training.recipe.WithAux (the same repr and numbers)."""


def _str(text: str) -> str:
    """A string literal as ruff formats it (double quotes); names and words only."""
    return json.dumps(text)


def _groups(r: Recipe) -> list[str]:
    if r.decay_bn and r.decay_bias:
        decay = f'"weight_decay": {r.weight_decay!r}'
        return [f'    groups = [{{"params": list(model.parameters()), {decay}}}]']
    exempt = []
    if not r.decay_bn:
        exempt.append("isinstance(module, norms)")
    if not r.decay_bias:
        exempt.append('name == "bias"')
    return [
        "    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)",
        "    decay, exempt = [], []",
        "    for module in model.modules():",
        "        for name, p in module.named_parameters(recurse=False):",
        f"            (exempt if {' or '.join(exempt)} else decay).append(p)",
        "    groups = [",
        f'        {{"params": decay, "weight_decay": {r.weight_decay!r}}},',
        '        {"params": exempt, "weight_decay": 0.0},',
        "    ]",
        '    groups = [g for g in groups if g["params"]]',
    ]


def _optimizer(r: Recipe) -> list[str]:
    o = r.optimizer
    if o.kind == "sgd":
        args = f"lr={r.lr!r}, momentum={o.momentum!r}, nesterov={o.nesterov}"
        return [f"    optimizer = torch.optim.SGD(groups, {args})"]
    return [f"    optimizer = torch.optim.AdamW(groups, lr={r.lr!r}, betas={tuple(o.betas)!r})"]


def _scheduler(r: Recipe) -> list[str]:
    s = r.schedule
    sched = "torch.optim.lr_scheduler"
    if s.kind == "plateau":
        mode = "max" if s.monitor == "val_acc1" else "min"
        return [
            f"    scheduler = {sched}.ReduceLROnPlateau(",
            f'        optimizer, mode="{mode}", factor={s.factor!r}, patience={s.patience}',
            "    )",
        ]
    if s.kind == "step":
        main = f"{sched}.StepLR(optimizer, step_size={s.every}, gamma={s.factor!r})"
    elif s.kind == "cosine":
        main = f"{sched}.CosineAnnealingLR(optimizer, T_max={r.epochs - s.warmup})"
    else:
        main = f"{sched}.ConstantLR(optimizer, factor=1.0, total_iters=0)"
    if not s.warmup:
        return [f"    scheduler = {main}"]
    return [
        f"    main = {main}",
        f"    warm = {sched}.LinearLR(",
        f"        optimizer, start_factor={1 / s.warmup!r}, total_iters={s.warmup}",
        "    )",
        f"    scheduler = {sched}.SequentialLR(optimizer, [warm, main], milestones=[{s.warmup}])",
    ]
