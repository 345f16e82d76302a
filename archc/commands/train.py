"""``archc train``, its arguments and its handler: train the network on an ImageFolder tree with
the spec's recipe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archc.commands.common import (
    add_color,
    add_set_option,
    lacks,
    non_negative_int,
    positive_float,
    positive_int,
    refused,
    seed,
    settings,
    spec_argument,
    training_errors,
)


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    tr = sub.add_parser(
        "train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train the network on an ImageFolder tree with the spec's recipe",
        description=(
            "Train a spec's network with its `train:` recipe (or printed defaults) on\n"
            "DIR/train and DIR/val (one folder per class). Writes RUNDIR/metrics.jsonl,\n"
            "RUNDIR/last.pt each epoch and RUNDIR/best.pt when the recipe's metric improves.\n"
            "A RUNDIR that holds a run is continued with --resume or replaced with\n"
            "--overwrite, never replaced otherwise. Under `torchrun --nproc-per-node N` it runs\n"
            "DistributedDataParallel. Imports torch and torchvision.\n\n"
            "exit codes: 0 trained (or the run was already finished), 1 refused (the message\n"
            "says why), 2 usage errors, 130 stopped by Ctrl-C (resume with --resume)"
        ),
    )
    tr.add_argument(
        "file",
        metavar="SPEC",
        help="a spec file (.arch), a shipped spec's name, or - for stdin (one process only)",
    )
    tr.add_argument("--data", metavar="DIR", required=True, help="the ImageFolder tree")
    tr.add_argument("--out", metavar="RUNDIR", default="run", help="the run directory (run)")
    tr.add_argument("--epochs", type=positive_int, help="override the recipe's epochs")
    tr.add_argument(
        "--batch-size", type=positive_int, help="override the recipe's (global) batch size"
    )
    tr.add_argument("--lr", type=positive_float, help="override the recipe's learning rate")
    again = tr.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUNDIR from last.pt (same network and recipe only)",
    )
    again.add_argument(
        "--overwrite", action="store_true", help="replace the run in RUNDIR (its metrics and .pt)"
    )
    again.add_argument(
        "--init",
        metavar="CKPT",
        help="start from these weights: an archc checkpoint, a state_dict, or `torchvision` "
        "(a shipped torchvision spec, weights in torch's cache); the class-score layer is "
        "re-initialised when the class count differs",
    )
    add_set_option(tr)
    tr.add_argument(
        "--workers", type=non_negative_int, default=2, metavar="N",
        help="data-loading processes (2)",
    )  # fmt: skip
    tr.add_argument(
        "--seed", type=seed, default=0, help="the seed of weights and shuffling, 0 to 2**63-1 (0)"
    )
    tr.add_argument(
        "--log-every",
        type=non_negative_int,
        default=50,
        metavar="N",
        help="off a terminal, a progress line every N steps (50; 0: none)",
    )
    add_color(tr)
    return tr


def handle(args: argparse.Namespace) -> int:
    # torch and torchvision: only this command pays for them.
    if lacks("train", "train"):
        return 2
    from archc.diagnostics import ArchcError
    from archc.training.loop import Options, train

    sets = settings(args.set, "train")
    if sets is None:
        return 2
    source = spec_argument("train", args.file, None, args.color)
    if source is None:
        return 2
    options = Options(
        data=Path(args.data),
        out=Path(args.out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        resume=args.resume,
        overwrite=args.overwrite,
        workers=args.workers,
        seed=args.seed,
        init=args.init,
        sets=sets,
        log_every=args.log_every,
    )
    try:
        train(source, options)
    except ArchcError as exc:
        return refused(exc, args, "train")
    except training_errors() as exc:
        print(f"archc train: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the data or the run directory went away under the run
        where = f" `{exc.filename}`" if exc.filename else ""
        print(f"archc train: cannot read or write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
