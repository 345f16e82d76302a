"""The loop of ``archc train``: one process, or one of many under torchrun.

Under torchrun (``WORLD_SIZE`` > 1) every process joins the process group (NCCL on GPUs, gloo on
CPUs), wraps the model in DistributedDataParallel and reads its share of each global batch
through a DistributedSampler; only rank 0 writes metrics and checkpoints. One process uses the
same sampler with a world of one, so both see the same global batches in the same order: with
the batch mean of the loss, DDP's averaged gradients are the single process's up to rounding.

The pieces: :mod:`.setup` checks everything before the first step (the network, the world, the
memory, the run directory, the data) and builds the torch objects; :mod:`.epoch` trains and
validates one epoch; this module runs the epochs and writes what each one leaves.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch.distributed as dist
from torch import nn

from archc.training import checkpoint, rundir
from archc.training.epoch import train_epoch, validate
from archc.training.setup import Options, Run, TrainingError, prepare, state_of

__all__ = ["Options", "TrainingError", "train"]


def train(spec: Any, o: Options) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train the network of ``spec`` on the ImageFolder tree ``o.data``; return the trained
    (unwrapped) model and the metrics of every epoch this run trained. Raises ArchcError for
    a spec with errors, TrainingError, data.DataError, checkpoint.CheckpointError and
    rundir.RunError."""
    run = prepare(spec, o)
    try:
        return run.model, _epochs(run)
    finally:
        if run.world.size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _epochs(run: Run) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    epochs = run.recipe.epochs
    for epoch in range(run.start, epochs + 1):
        began = time.perf_counter()
        try:
            row = train_epoch(run, epoch)
            row |= validate(run, epoch)
        except KeyboardInterrupt:
            if run.world.main:
                then = (
                    f"last.pt holds epoch {epoch - 1}; resume with --resume"
                    if epoch > 1
                    else "before the first checkpoint; run the command again to start over"
                )
                print(
                    f"archc train: stopped in epoch {epoch} of {epochs} ({then})", file=sys.stderr
                )
            raise
        if run.monitor is None:
            run.scheduler.step()
        else:
            run.scheduler.step(row[run.monitor])
        row["skipped_images"] += row.pop("skipped_val")
        row.pop("images")
        row["seconds"] = round(time.perf_counter() - began, 3)
        row["world_size"] = run.world.size
        first = row.pop("_first_skipped")
        done.append(row)
        if run.world.main:
            _write(run, row, epoch, first)
    return done


def _write(run: Run, row: dict[str, Any], epoch: int, first: str) -> None:
    out = run.options.out
    value = row[run.best_metric]
    better = run.best is None or (value > run.best if run.best_max else value < run.best)
    if better:
        run.best = value
    run.rows.append(row)
    state = state_of(run, epoch)
    # The checkpoint first: a kill between the two leaves a run that resumes (its rows are in
    # the checkpoint too), never metrics ahead of the checkpoint and nothing to resume from.
    checkpoint.save(state, out / "last.pt")
    if better:
        checkpoint.save(state, out / "best.pt")
    rundir.append(out / "metrics.jsonl", row)
    print(_line(row, run.recipe.epochs, better and epoch > 1, run.best_metric), file=sys.stderr)
    if row["skipped_images"]:
        print(
            f"archc train: epoch {epoch}: skipped {row['skipped_images']} unreadable "
            f"image{'s' if row['skipped_images'] != 1 else ''}"
            + (f" (one is {first})" if first else ""),
            file=sys.stderr,
        )


def _line(row: dict[str, Any], epochs: int, best: bool, metric: str) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}: lr {row['lr']:.3g}, train loss {row['train_loss']:.4f}, "
        f"val loss {row['val_loss']:.4f}, top-1 {row['val_acc1']:.2f}%, "
        f"top-5 {row['val_acc5']:.2f}%, {row['seconds']:.1f} s"
        + (f" (best {metric} so far: best.pt)" if best else "")
    )
