"""``archc eval``: a trained network's loss, top-1 and top-5 on a split of an ImageFolder tree,
measured as ``archc train`` validates (the same transform, loss and counting), so the top-1 of a
run's last checkpoint is the last epoch's ``val_acc1``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from archc.training import data, weights
from archc.training import recipe as parts
from archc.training.epoch import measure
from archc.training.setup import DEFAULTS, World, checked_network


def evaluate(
    spec: Any,
    checkpoint: Path,
    root: Path,
    *,
    split: str = "val",
    sets: dict[str, str] | None = None,
    batch_size: int | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """The numbers of ``checkpoint``'s weights in the network of ``spec`` on ``root/split``.
    Raises ArchcError, TrainingError, DataError and CheckpointError as ``archc train``."""
    from archc.backends.torch_module import build_module

    checked, classes = checked_network(spec, sets or {})
    graph = checked.graph
    assert graph is not None
    loss_kind = "nll" if graph.node(graph.output).op == "softmax" else "cross_entropy"
    recipe = graph.recipe or DEFAULTS.model_copy(update={"loss": loss_kind})
    shape = checked.shapes[graph.nodes[0].name]
    images = data.folders(root, recipe, shape, classes, (split,))[split]
    cuda = torch.cuda.is_available()
    world = World(0, 1, torch.device("cuda" if cuda else "cpu"))
    model = parts.for_training(build_module(checked), graph)
    weights.load_into(model, checkpoint)  # names and shapes first: the tensor that differs
    weights.same_network(checked, checkpoint, "evaluate")
    model.to(world.device)
    loader = DataLoader(
        images, batch_size or recipe.batch_size, num_workers=workers, collate_fn=data.collate
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cuda and recipe.precision == "bf16"
        else torch.autocast("cuda", dtype=torch.float16)
        if cuda and recipe.precision == "fp16"
        else torch.autocast("cpu", enabled=False)
    )
    numbers = measure(model, loader, parts.loss(recipe), autocast, world, classes)
    return {"split": split, "weights": str(checkpoint), "classes": classes, **numbers}
