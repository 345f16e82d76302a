"""ImageFolder data for ``archc train``: a ``train/`` and a ``val/`` tree of class folders,
checked before any training starts, with the recipe's augmentation.

Unreadable images (not an image, a truncated header) are skipped and counted, so one bad file
in a million does not stop a run; a folder with no readable image at all is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torchvision import datasets, transforms

from archc.recipe_ir import Recipe

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as torchvision's


class DataError(Exception):
    """The data cannot be trained on; the message says why and what to do."""


@dataclass
class Folders:
    train: datasets.ImageFolder
    val: datasets.ImageFolder
    skipped: int
    """Unreadable images left out of both."""


def _readable(path: str) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # PIL raises many types for a bad file; any of them means unreadable
        return False


def image_transform(augment: str, size: tuple[int, int], channels: int, train: bool):
    """``none``: resize to the input size. ``standard``: random-resized crop + flip.
    ``lecture``: AlexNet's — resize so the crop is 224/256 of the image, random crop, flip;
    validation takes the centre crop."""
    resized = (round(size[0] * 256 / 224), round(size[1] * 256 / 224))
    if augment == "none":
        steps: list = [transforms.Resize(size)]
    elif not train:
        steps = [transforms.Resize(resized), transforms.CenterCrop(size)]
    elif augment == "standard":
        steps = [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()]
    else:
        steps = [
            transforms.Resize(resized),
            transforms.RandomCrop(size),
            transforms.RandomHorizontalFlip(),
        ]
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    mean, std = (_MEAN, _STD) if channels == 3 else ((0.5,) * channels, (0.5,) * channels)
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])


def folders(root: Path, recipe: Recipe, input_shape: tuple[int, ...], classes: int) -> Folders:
    """The checked train and val sets of ``root``; raises :class:`DataError`."""
    if len(input_shape) != 3:
        raise DataError("archc train reads images, and this network's input is a vector")
    channels, h, w = input_shape
    if not root.is_dir():
        raise DataError(f"no data directory `{root}`")
    parts = {}
    for part in ("train", "val"):
        d = root / part
        subdirs = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
        if not subdirs:
            raise DataError(
                f"`{d}` has no class folders: archc train reads an ImageFolder tree, "
                f"{root}/train/CLASS/IMAGE and {root}/val/CLASS/IMAGE"
            )
        parts[part] = subdirs
    if parts["train"] != parts["val"]:
        only_train = sorted(set(parts["train"]) - set(parts["val"]))
        only_val = sorted(set(parts["val"]) - set(parts["train"]))
        raise DataError(
            "the class folders of train/ and val/ differ: "
            f"only in train/: {only_train or 'none'}; only in val/: {only_val or 'none'}"
        )
    if len(parts["train"]) != classes:
        raise DataError(
            f"the data has {len(parts['train'])} classes and the network {classes} outputs: "
            f"change the last layer to `FC {len(parts['train'])}`"
        )
    skipped = 0

    def readable(path: str) -> bool:
        nonlocal skipped
        ok = _readable(path)
        skipped += not ok
        return ok

    sets = {}
    for part in ("train", "val"):
        try:
            sets[part] = datasets.ImageFolder(
                str(root / part),
                transform=image_transform(recipe.augment, (h, w), channels, part == "train"),
                is_valid_file=lambda p: p.lower().endswith(_EXTENSIONS) and readable(p),
            )
        except FileNotFoundError as e:  # a class folder with no readable image
            raise DataError(f"{e}") from None
    return Folders(sets["train"], sets["val"], skipped)


_EXTENSIONS = datasets.folder.IMG_EXTENSIONS
