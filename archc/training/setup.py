"""Everything ``archc train`` checks and builds before its first step.

In order, each refusal one line: the network (a spec error, ``--set``, class scores at the
end, an input images can fill), the recipe (the spec's, or printed defaults), the world
(torchrun's variables), the memory a batch needs against what this process may use, the run
directory (never replaced unless asked), the checkpoint to resume (this network, this recipe),
the data; then the torch objects.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from archc import parameters
from archc.check import Checked
from archc.diagnostics import ArchcError
from archc.recipe_ir import Recipe, Schedule, describe
from archc.training import checkpoint, data, identity, rundir, weights
from archc.training import recipe as parts


class TrainingError(Exception):
    """What stops a run before or while training, said for the user."""


DEFAULTS = Recipe(
    lr=0.05,
    weight_decay=5e-4,
    batch_size=64,
    epochs=15,
    schedule=Schedule(kind="cosine"),
    augment="none",
)
"""The recipe of a spec without ``train:``: SGD with momentum, a short cosine schedule, no
crops and no flips (digits and small images; a flipped 3 is no 3)."""


@dataclass
class Options:
    data: Path
    out: Path
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    resume: bool = False
    overwrite: bool = False
    workers: int = 2
    seed: int = 0
    init: str | None = None
    """A checkpoint or state_dict to start from, or ``torchvision``."""
    sets: dict[str, str] = field(default_factory=dict)
    """``--set`` values: ``classes``, ``input``, and the spec's own params (``variant``;
    archc.parameters)."""
    log_every: int = 50
    """Steps between progress lines off a terminal (0: none)."""


@dataclass
class World:
    rank: int
    size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def total(self, *values: float) -> list[float]:
        """Sums over all processes."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.size > 1:
            dist.all_reduce(t)
        return t.tolist()

    def say(self, text: str) -> None:
        if self.main:
            print(f"archc train: {text}", file=sys.stderr)


@dataclass
class Run:
    options: Options
    recipe: Recipe
    world: World
    checked: Checked
    model: nn.Module
    net: nn.Module
    ema: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    criterion: nn.Module
    classes: int
    scaler: Any = None
    sampler: Any = None
    train_loader: Any = None
    val_loader: Any = None
    start: int = 1
    best: float | None = None
    has_bn: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)
    """The metrics of every epoch so far (kept in each checkpoint)."""

    @property
    def monitor(self) -> str | None:
        return parts.monitor(self.recipe)

    @property
    def best_metric(self) -> str:
        """The metric best.pt is chosen by: a plateau schedule's, else top-1 accuracy."""
        return self.monitor or "val_acc1"

    @property
    def best_max(self) -> bool:
        return self.best_metric == "val_acc1"

    @property
    def autocast(self) -> Any:
        if not self.world.cuda or self.recipe.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.recipe.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)


def checked_network(spec: Any, sets: dict[str, str]) -> tuple[Checked, int]:
    """The checked network with ``--set`` applied, and its class count; raises ArchcError or
    TrainingError."""
    try:
        checked = parameters.check_with(spec, sets)
    except parameters.SettingError as e:
        raise TrainingError(str(e)) from None
    if not checked.ok or checked.graph is None:
        library = checked.blocks if checked.library else ()
        raise ArchcError(checked.diagnostics, checked.sources, library)
    graph = checked.graph
    out = checked.shapes[graph.output]
    if len(out) != 1:
        shown = "x".join(str(s) for s in (*out[1:], out[0]))
        raise TrainingError(
            f"the network ends in a feature map [{shown}], and training needs one score per "
            "class: end it with GLOBAL AVG POOL and FC N (or flatten and FC N)"
        )
    data.check_input(checked.shapes[graph.nodes[0].name])
    return checked, out[0]


def _recipe(checked: Checked, o: Options) -> Recipe:
    graph = checked.graph
    assert graph is not None
    loss = "nll" if graph.node(graph.output).op == "softmax" else "cross_entropy"
    recipe = graph.recipe or DEFAULTS.model_copy(update={"loss": loss})
    update = {"epochs": o.epochs, "batch_size": o.batch_size, "lr": o.lr}
    return recipe.model_copy(update={k: v for k, v in update.items() if v is not None})


def _env_int(name: str, default: int, low: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 9 or int(text) < low:
        raise TrainingError(
            f"{name}={text!r} is not a whole number of at least {low} (torchrun sets it; "
            "unset it to train in one process)"
        )
    return int(text)


def join() -> World:
    size = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local = _env_int("LOCAL_RANK", 0, 0)
    if rank >= size:
        raise TrainingError(f"RANK={rank} is not below WORLD_SIZE={size}")
    cuda = torch.cuda.is_available()
    if cuda and local >= torch.cuda.device_count():
        raise TrainingError(
            f"LOCAL_RANK={local}, and this machine has {torch.cuda.device_count()} GPUs"
        )
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if size > 1:
        try:
            dist.init_process_group("nccl" if cuda else "gloo")
        except (ValueError, RuntimeError) as e:
            raise TrainingError(
                f"cannot join the {size} processes: {str(e).splitlines()[0]}"
            ) from None
    return World(rank, size, device)


def _check_memory(checked: Checked, recipe: Recipe, world: World) -> None:
    from archc.files import fmt_size
    from archc.memory import device_memory, process_room

    assert checked.accounting is not None
    t = checked.accounting.totals
    per_process = recipe.batch_size // world.size
    activations = 2 * t.activations * 4 * per_process  # kept for backward, and their gradients
    states = 3 + (recipe.optimizer.kind == "adamw") + bool(recipe.ema)
    need = activations + states * 4 * t.params + 4 * t.buffers
    if world.cuda:
        limit, source = device_memory(world.device), "the GPU's memory"
    else:
        limit, source = process_room()
    if need > limit:
        raise TrainingError(
            f"a batch of {per_process} needs about {fmt_size(need)} to train "
            f"({fmt_size(activations)} of activations and their gradients), more than the "
            f"{fmt_size(limit)} that {source} leaves: lower --batch-size or the input size "
            "(--set input=N)"
        )


def prepare(spec: Any, o: Options) -> Run:
    checked, classes = checked_network(spec, o.sets)
    recipe = _recipe(checked, o)
    world = join()
    if recipe.batch_size % world.size:
        raise TrainingError(
            f"the batch of {recipe.batch_size} does not split over {world.size} processes: "
            "each takes batch / world size; pass --batch-size a multiple of it"
        )
    _check_memory(checked, recipe, world)
    replaced = rundir.check(o.out, o.resume, o.overwrite)
    state = _resumed(checked, recipe, o, world) if o.resume else None
    if checked.graph is not None and checked.graph.recipe is None and world.main and not o.resume:
        rows = describe(recipe, checked.graph.init)[:6]
        world.say(
            "the spec has no train: section; the defaults: "
            + "; ".join(f"{k} {v}" for k, v in rows)
            + " (a train: section changes them)"
        )
    shape = checked.shapes[checked.graph.nodes[0].name]  # type: ignore[union-attr]
    finished = state is not None and state["epoch"] >= recipe.epochs
    sets = None if finished else data.folders(o.data, recipe, shape, classes, ("train", "val"))
    run = _build(checked, recipe, o, world, classes)
    if state is not None:
        _restore(run, state, o.out / "last.pt")
    elif o.init is not None:
        world.say(weights.start_from(run.model, o.init, checked))
    if sets is not None:
        _loaders(run, sets)
    if world.size > 1:
        dist.barrier()  # every process has checked the run directory before rank 0 changes it
    if world.main:
        rundir.start(o.out, replaced)
    return run


def _resumed(checked: Checked, recipe: Recipe, o: Options, world: World) -> dict[str, Any]:
    """The checkpoint to continue, refused unless it is this network's and this recipe's."""
    assert checked.graph is not None
    path = o.out / "last.pt"
    state = checkpoint.load(path)
    _same_params(state, checked, o)
    differs = identity.checkpoint_difference(state, checked.graph, checked.shapes)
    if differs is not None:
        raise checkpoint.CheckpointError(
            f"--resume: `{o.out}` was trained on another network ({differs}): resume with "
            "the network it was trained on, or train into a new --out"
        )
    try:
        before = json.loads(state["recipe"])
    except ValueError:
        raise checkpoint.CheckpointError(f"`{path}` is damaged: its recipe is not JSON") from None
    changes = identity.recipe_difference(before, identity.recipe_values(recipe))
    if changes:
        raise checkpoint.CheckpointError(
            f"--resume: the recipe differs from the run's ({'; '.join(changes[:4])}): a resumed "
            "run keeps its recipe; drop the change, or start a new run (--out, --overwrite)"
        )
    epoch = state["epoch"]
    if epoch >= recipe.epochs:
        world.say(f"`{o.out}` is finished: epoch {epoch} of {recipe.epochs}; nothing to train")
    else:
        world.say(f"resuming {o.out} at epoch {epoch + 1} of {recipe.epochs}")
    return state


def _same_params(state: dict[str, Any], checked: Checked, o: Options) -> None:
    """Refuse a run whose spec params (``--set variant=b1``) differ from the ones given now; a
    checkpoint written before params were recorded has no record, and its network decides."""
    if not isinstance(state.get("params"), str):
        return
    try:
        before = json.loads(state["params"])
    except ValueError:
        before = None
    if not isinstance(before, dict):
        raise checkpoint.CheckpointError(f"`{o.out}/last.pt` is damaged: its params are not JSON")
    differs = identity.params_difference(before, identity.params(checked))
    if differs is not None:
        raise checkpoint.CheckpointError(
            f"--resume: `{o.out}` was trained with other spec params ({differs}): resume with "
            "the --set values it was trained with, or train into a new --out"
        )


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _build(checked: Checked, recipe: Recipe, o: Options, world: World, classes: int) -> Run:
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from archc.backends.torch_module import build_module

    torch.manual_seed(o.seed)
    assert checked.graph is not None
    model = parts.for_training(build_module(checked), checked.graph).to(world.device)
    if world.cuda:
        model = model.to(memory_format=torch.channels_last)
    if recipe.sync_bn and world.size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net: nn.Module = model
    if world.size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device] if world.cuda else None
        )
    ema = None
    if recipe.ema:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema), use_buffers=True)
    optimizer = parts.optimizer(recipe, model)
    return Run(
        options=o,
        recipe=recipe,
        world=world,
        checked=checked,
        model=model,
        net=net,
        ema=ema,
        optimizer=optimizer,
        scheduler=parts.scheduler(recipe, optimizer),
        criterion=parts.loss(recipe, checked.graph),
        classes=classes,
        has_bn=_has_bn(model),
        scaler=torch.amp.GradScaler("cuda", enabled=world.cuda and recipe.precision == "fp16"),
    )


def _restore(run: Run, state: dict[str, Any], path: Path) -> None:
    checkpoint.restore(run.model, state["model"], "model", path)
    checkpoint.restore(run.optimizer, state["optimizer"], "optimizer", path)
    checkpoint.restore(run.scheduler, state["scheduler"], "schedule", path)
    if run.ema is not None:
        if not isinstance(state.get("ema"), dict):
            raise checkpoint.CheckpointError(f"`{path}` is damaged: it has no `ema` weights")
        checkpoint.restore(run.ema.module, state["ema"], "averaged weights", path)
        run.ema.n_averaged.fill_(max(1, state["epoch"]))
    try:
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        import random

        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise checkpoint.CheckpointError(f"`{path}` is damaged: its random state") from None
    run.start = state["epoch"] + 1
    run.best = state["best"]
    run.rows = [r for r in state["metrics"] if r["epoch"] <= state["epoch"]]
    if run.world.main:
        rundir.rewrite(run.options.out / "metrics.jsonl", run.rows)


def state_of(run: Run, epoch: int) -> dict[str, Any]:
    import random

    from archc.version import __version__

    assert run.checked.graph is not None
    network = identity.network(run.checked.graph, run.checked.shapes)
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    state = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "epoch": epoch,
        "rng": rng,
        "graph_hash": identity.digest(network),
        "network": json.dumps(network),
        "recipe": json.dumps(identity.recipe_values(run.recipe)),
        "params": json.dumps(identity.params(run.checked)),
        "best": run.best,
        "metrics": run.rows,
        "archc": __version__,
    }
    if run.ema is not None:
        state["ema"] = run.ema.module.state_dict()
    return state


def _loaders(run: Run, sets: dict[str, data.Images]) -> None:
    o, world, recipe = run.options, run.world, run.recipe
    per_process = recipe.batch_size // world.size
    if per_process < 2 and run.has_bn:
        raise TrainingError(
            f"a batch of {per_process} image per process cannot train batch norm (one value "
            f"per channel): pass --batch-size {2 * world.size} or more"
        )
    train = sets["train"]
    run.sampler = DistributedSampler(train, world.size, world.rank, shuffle=True, seed=o.seed)
    # A last batch of one image cannot train through batch norm (one value per channel).
    drop = run.has_bn and math.ceil(len(train) / world.size) % per_process == 1
    common = {"num_workers": o.workers, "pin_memory": world.cuda, "collate_fn": data.collate}
    run.train_loader = DataLoader(train, per_process, sampler=run.sampler, drop_last=drop, **common)
    val = sets["val"]
    share = Subset(val, range(world.rank, len(val), world.size))
    run.val_loader = DataLoader(share, per_process, **common)
    if run.start <= recipe.epochs:
        steps = len(run.train_loader)
        world.say(
            f"{len(train)} train and {len(val)} val images, {run.classes} classes, "
            f"{steps} step{'s' if steps != 1 else ''} of {recipe.batch_size} per epoch, "
            f"{recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''}; "
            f"run directory {o.out}"
        )
