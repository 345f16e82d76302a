"""``archc eval``, its arguments and its handler: evaluate trained weights: loss, top-1, top-5 on a
split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archc.commands.common import (
    add_color,
    add_set_option,
    lacks,
    locate,
    non_negative_int,
    positive_int,
    refused,
    settings,
    training_errors,
)


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    ev = sub.add_parser(
        "eval",
        help="evaluate trained weights: loss, top-1, top-5 on a split",
        description="Measure trained weights on DIR/SPLIT (val by default) as archc train "
        "validates: the recipe's validation transform and loss; prints loss, top-1 and top-5. "
        "Imports torch and torchvision.",
    )
    ev.add_argument("file", metavar="SPEC", help="a spec file (.arch) or a shipped spec's name")
    ev.add_argument(
        "--weights", metavar="CKPT", required=True,
        help="last.pt, best.pt or a state_dict (a checkpoint's averaged weights when it has them)",
    )  # fmt: skip
    ev.add_argument("--data", metavar="DIR", required=True, help="the ImageFolder tree")
    ev.add_argument("--split", default="val", help="the folder of DIR to measure (val)")
    add_set_option(ev)
    ev.add_argument("--batch-size", type=positive_int, help="default: the recipe's")
    ev.add_argument(
        "--workers", type=non_negative_int, default=2, metavar="N",
        help="data-loading processes (2)",
    )  # fmt: skip
    ev.add_argument("--format", choices=("text", "json"), default="text", help="(text)")
    add_color(ev)
    return ev


def handle(args: argparse.Namespace) -> int:
    import json

    if lacks("eval", "train"):  # the data loader is torchvision's, as for train
        return 2
    from archc.diagnostics import ArchcError
    from archc.training.evaluate import evaluate

    sets = settings(args.set, "eval")
    if sets is None:
        return 2
    try:
        numbers = evaluate(
            locate(args.file),
            Path(args.weights),
            Path(args.data),
            split=args.split,
            sets=sets,
            batch_size=args.batch_size,
            workers=args.workers,
        )
    except ArchcError as exc:
        return refused(exc, args, "evaluate")
    except training_errors() as exc:
        print(f"archc eval: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(numbers))
        return 0
    skipped = f", {numbers['skipped']} unreadable skipped" if numbers["skipped"] else ""
    print(
        f"{numbers['split']}: {numbers['images']} images{skipped}, loss {numbers['val_loss']:.4f}, "
        f"top-1 {numbers['val_acc1']:.2f}%, top-5 {numbers['val_acc5']:.2f}%"
    )
    return 0
