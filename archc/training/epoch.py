"""One epoch: the training steps, then validation (also ``archc eval``'s measurement).

Progress shows on a terminal as a tqdm bar (rank 0 only); off a terminal (a log file, a job
scheduler) as a line every ``--log-every`` steps and a line when validation starts.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from archc.training.data import Batch


def progress(loader: DataLoader, main: bool, title: str) -> Any:
    """A progress bar on a terminal (rank 0 only); the plain loader anywhere else."""
    if not (main and sys.stderr.isatty()):
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=title, leave=False, file=sys.stderr)


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def train_epoch(run: Any, epoch: int) -> dict[str, Any]:
    """Train ``run`` (archc.training.setup.Run) for one epoch; the epoch's training numbers."""
    world, recipe, o = run.world, run.recipe, run.options
    lr = run.optimizer.param_groups[0]["lr"]
    run.sampler.set_epoch(epoch)
    run.net.train()
    loss_sum = seen = skipped = 0.0
    first = ""
    steps = len(run.train_loader)
    quiet = not world.main or sys.stderr.isatty() or o.log_every <= 0
    batch: Batch
    for step, batch in enumerate(progress(run.train_loader, world.main, f"epoch {epoch}"), 1):
        skipped += len(batch.skipped)
        first = first or (batch.skipped[0] if batch.skipped else "")
        # A batch that unreadable images left empty, or with one image through batch norm;
        # under torchrun every process skips it when one must (DDP steps together).
        skip = batch.x is None or (len(batch.x) < 2 and run.has_bn)
        if world.size > 1:
            skip = world.total(float(skip))[0] > 0
        if skip:
            continue
        x, y = _to(batch.x, world.device), batch.y.to(world.device, non_blocking=True)
        with run.autocast:
            loss = run.criterion(run.net(x), y)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if recipe.clip_grad_norm:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), recipe.clip_grad_norm)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        loss_sum += loss.item() * len(y)
        seen += len(y)
        if not quiet and step % o.log_every == 0 and step < steps:
            print(
                f"epoch {epoch}/{recipe.epochs}: step {step}/{steps}, "
                f"train loss {loss_sum / max(seen, 1):.4f}",
                file=sys.stderr,
            )
    loss_sum, seen, skipped = world.total(loss_sum, seen, skipped)
    row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / max(seen, 1)}
    return row | {"skipped_images": int(skipped), "_first_skipped": first}


def validate(run: Any, epoch: int) -> dict[str, Any]:
    """The validation numbers of the epoch (the averaged weights when the recipe keeps them)."""
    world = run.world
    if world.main and not sys.stderr.isatty() and run.options.log_every > 0:
        print(f"epoch {epoch}/{run.recipe.epochs}: validating", file=sys.stderr)
    net = run.ema.module if run.ema is not None else run.net
    numbers = measure(net, run.val_loader, run.criterion, run.autocast, world, run.classes)
    skipped = numbers.pop("skipped")
    return numbers | {"skipped_val": skipped}


def measure(
    net: nn.Module,
    loader: DataLoader,
    criterion: nn.Module,
    autocast: Any,
    world: Any,
    classes: int,
) -> dict[str, Any]:
    """Loss, top-1 and top-5 (percent) of ``net`` over ``loader``, summed over the processes."""
    net.eval()
    k = min(5, classes)
    loss_sum = n = top1 = top5 = skipped = 0.0
    with torch.no_grad():
        batch: Batch
        for batch in progress(loader, world.main, "validating"):
            skipped += len(batch.skipped)
            if batch.x is None:
                continue
            x, y = _to(batch.x, world.device), batch.y.to(world.device, non_blocking=True)
            with autocast:
                out = net(x)
                loss_sum += criterion(out, y).item() * len(y)
            hits = out.topk(k, dim=1).indices == y[:, None]
            top1 += hits[:, 0].sum().item()
            top5 += hits.any(dim=1).sum().item()
            n += len(y)
    loss_sum, n, top1, top5, skipped = world.total(loss_sum, n, top1, top5, skipped)
    if n == 0:
        from archc.training.data import DataError

        raise DataError("no validation image could be read")
    acc1 = 100 * top1 / n
    return {
        "val_loss": loss_sum / n,
        "val_acc1": acc1,
        "val_acc5": 100 * top5 / n,
        "val_error": 100 - acc1,
        "images": int(n),
        "skipped": int(skipped),
    }
