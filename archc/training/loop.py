"""The loop of ``archc train``: one process, or one of many under torchrun.

Under torchrun (``WORLD_SIZE`` > 1) every process joins the process group (NCCL on GPUs, gloo on
CPUs), wraps the model in DistributedDataParallel and reads its share of each global batch
through a DistributedSampler; only rank 0 writes metrics and checkpoints. One process uses the
same sampler with a world of one, so both see the same global batches in the same order: with
the batch mean of the loss, DDP's averaged gradients are the single process's up to rounding.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from archc import ir
from archc.check import Checked, check_spec
from archc.diagnostics import ArchcError
from archc.recipe_ir import Recipe
from archc.training import checkpoint, data
from archc.training import recipe as parts


class TrainingError(Exception):
    """What stops a run before or while training, said for the user."""


@dataclass
class Options:
    data: Path
    out: Path
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    resume: bool = False
    workers: int = 2
    seed: int = 0


@dataclass
class _World:
    rank: int
    size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def total(self, *values: float) -> list[float]:
        """Sums over all processes."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.size > 1:
            dist.all_reduce(t)
        return t.tolist()


def _join() -> _World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if size > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _World(int(os.environ.get("RANK", "0")), size, device)


def _recipe(spec_recipe: Recipe | None, o: Options, loss: str) -> Recipe:
    recipe = spec_recipe or Recipe(loss=loss)  # type: ignore[arg-type]
    update = {"epochs": o.epochs, "batch_size": o.batch_size, "lr": o.lr}
    return recipe.model_copy(update={k: v for k, v in update.items() if v is not None})


def train(spec: str | os.PathLike[str], o: Options) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train the network of ``spec`` on the ImageFolder tree ``o.data``; return the trained
    (unwrapped) model and the metrics of every epoch this run trained. Raises ArchcError for
    a spec with errors, TrainingError, data.DataError and checkpoint.CheckpointError."""
    checked = check_spec(spec)
    if not checked.ok or checked.graph is None:
        raise ArchcError(checked.diagnostics, checked.sources)
    graph = checked.graph
    text = checked.sources.get(checked.file, str(spec))
    loss_kind = "nll" if graph.node(graph.output).op == "softmax" else "cross_entropy"
    recipe = _recipe(graph.recipe, o, loss_kind)
    world = _join()
    try:
        return _run(checked, graph, text, recipe, o, world)
    finally:
        if world.size > 1:
            dist.destroy_process_group()


def _run(
    checked: Checked, graph: ir.Graph, text: str, recipe: Recipe, o: Options, world: _World
) -> tuple[nn.Module, list[dict[str, Any]]]:
    from archc.backends.torch_module import build_module

    if recipe.batch_size % world.size:
        raise TrainingError(
            f"the batch of {recipe.batch_size} does not split over {world.size} processes: "
            "each takes batch / world size; pass --batch-size a multiple of it"
        )
    shape = checked.shapes[graph.nodes[0].name]
    classes = checked.shapes[graph.output][0]
    sets = data.folders(o.data, recipe, shape, classes)
    if sets.skipped and world.main:
        print(f"archc train: skipped {sets.skipped} unreadable images", file=sys.stderr)
    torch.manual_seed(o.seed)
    model = parts.for_training(build_module(checked), graph).to(world.device)
    cuda = world.device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    if recipe.sync_bn and world.size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net: nn.Module = model
    if world.size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device] if cuda else None
        )
    optimizer = parts.optimizer(recipe, model)
    scheduler = parts.scheduler(recipe, optimizer)
    criterion = parts.loss(recipe)
    o.out.mkdir(parents=True, exist_ok=True)
    metrics_file = o.out / "metrics.jsonl"
    last = o.out / "last.pt"
    start = 1
    if o.resume:
        state = checkpoint.load(last, text)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng(state["rng"])
        start = state["epoch"] + 1
        if world.main:  # epochs after the checkpoint are trained again
            _keep_lines(metrics_file, state["epoch"])
    elif world.main and metrics_file.exists():
        metrics_file.unlink()
    per_process = recipe.batch_size // world.size
    sampler = DistributedSampler(sets.train, world.size, world.rank, shuffle=True, seed=o.seed)
    train_loader = DataLoader(
        sets.train, per_process, sampler=sampler, num_workers=o.workers, pin_memory=cuda
    )
    val_share = Subset(sets.val, range(world.rank, len(sets.val), world.size))
    val_loader = DataLoader(val_share, per_process, num_workers=o.workers, pin_memory=cuda)
    autocast = _autocast(recipe, cuda)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and recipe.precision == "fp16")
    monitor = parts.monitor(recipe)
    done: list[dict[str, Any]] = []
    for epoch in range(start, recipe.epochs + 1):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        sampler.set_epoch(epoch)
        net.train()
        loss_sum = seen = 0.0
        batches = _progress(train_loader, world, f"epoch {epoch}/{recipe.epochs}")
        for x, y in batches:
            x, y = _to(x, world.device, cuda), y.to(world.device, non_blocking=True)
            with autocast:
                loss = criterion(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.item() * len(y)
            seen += len(y)
        loss_sum, seen = world.total(loss_sum, seen)
        row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / seen}
        row |= _validate(net, val_loader, criterion, autocast, world, classes, cuda)
        if monitor is None:
            scheduler.step()
        else:
            scheduler.step(row[monitor])
        row["seconds"] = round(time.perf_counter() - began, 3)
        row |= {"world_size": world.size, "skipped_images": sets.skipped}
        done.append(row)
        if world.main:
            with open(metrics_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "rng": _rng(),
                "spec": text,
                "spec_hash": checkpoint.spec_hash(text),
                "recipe": recipe.model_dump_json(),
            }
            checkpoint.save(state, last)
            print(_line(row, recipe.epochs), file=sys.stderr)
    return model, done


def _validate(
    net: nn.Module,
    loader: DataLoader,
    criterion: nn.Module,
    autocast: Any,
    world: _World,
    classes: int,
    cuda: bool,
) -> dict[str, float]:
    net.eval()
    k = min(5, classes)
    loss_sum = n = top1 = top5 = 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = _to(x, world.device, cuda), y.to(world.device, non_blocking=True)
            with autocast:
                out = net(x)
                loss_sum += criterion(out, y).item() * len(y)
            best = out.topk(k, dim=1).indices
            hits = best == y[:, None]
            top1 += hits[:, 0].sum().item()
            top5 += hits.any(dim=1).sum().item()
            n += len(y)
    loss_sum, n, top1, top5 = world.total(loss_sum, n, top1, top5)
    acc1 = 100 * top1 / n
    return {
        "val_loss": loss_sum / n,
        "val_acc1": acc1,
        "val_acc5": 100 * top5 / n,
        "val_error": 100 - acc1,
    }


def _to(x: torch.Tensor, device: torch.device, cuda: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if cuda else x


def _autocast(recipe: Recipe, cuda: bool) -> Any:
    if not cuda or recipe.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if recipe.precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _progress(loader: DataLoader, world: _World, title: str) -> Any:
    """A progress bar on a terminal (rank 0 only); the plain loader anywhere else."""
    if not (world.main and sys.stderr.isatty()):
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=title, leave=False, file=sys.stderr)


def _line(row: dict[str, Any], epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}: lr {row['lr']:.3g}, train loss {row['train_loss']:.4f}, "
        f"val loss {row['val_loss']:.4f}, top-1 {row['val_acc1']:.2f}%, "
        f"top-5 {row['val_acc5']:.2f}%, {row['seconds']:.1f} s"
    )


def _rng() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _keep_lines(path: Path, last_epoch: int) -> None:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if json.loads(line)["epoch"] <= last_epoch]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
