"""ImageFolder data for ``archc train`` and ``archc eval``: a ``train/`` and a ``val/`` tree of
class folders, with the recipe's augmentation.

Start-up only lists the files (one ``scandir`` per folder, as torchvision's ImageFolder scan):
no image is opened before it is trained on, so a run on a million files starts in seconds. An
image that cannot be decoded (not an image, a truncated JPEG) is skipped when it is read and
counted per epoch (``skipped_images`` in metrics.jsonl), so one bad file in a million does not
stop a run, and does not stop it again at the same place on every resume.

Folders are followed through symlinks, as ImageFolder does, but a folder reached twice (a
symlink loop, or two links to one folder) is refused: its images would be read again and again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate
from torchvision import transforms

from archc.recipe_ir import Recipe

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as torchvision's
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""torchvision's IMG_EXTENSIONS, compared in lower case."""


class DataError(Exception):
    """The data cannot be trained on; the message says why and what to do."""


def image_transform(augment: str, size: tuple[int, int], channels: int, train: bool) -> Any:
    """``none``: resize (shorter side) and centre crop to the input size, no flips.
    ``standard``: random-resized crop + flip. ``lecture``: AlexNet's: resize so the crop is
    224/256 of the image, random crop, flip. Validation resizes and takes the centre crop."""
    resized = (round(size[0] * 256 / 224), round(size[1] * 256 / 224))
    if augment == "none":
        steps: list = [transforms.Resize(max(size)), transforms.CenterCrop(size)]
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
    mean, std = (_MEAN, _STD) if channels == 3 else ((0.5,), (0.5,))
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])


class Images(Dataset):
    """``(image, class)`` pairs of a listed folder; ``(None, path)`` for an image that cannot be
    decoded (:func:`collate` leaves it out and counts it)."""

    def __init__(self, samples: list[tuple[str, int]], transform: Any, mode: str) -> None:
        self.samples, self.transform, self.mode = samples, transform, mode

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        path, label = self.samples[i]
        try:
            with Image.open(path) as image:
                decoded = image.convert(self.mode)
            return self.transform(decoded), label
        except Exception:  # PIL raises many types for a bad file; any of them means unreadable
            return None, path


@dataclass
class Batch:
    x: torch.Tensor | None
    y: torch.Tensor | None
    skipped: list[str]
    """Paths of the images of this batch that could not be decoded."""


def collate(items: list[tuple[Any, Any]]) -> Batch:
    good = [item for item in items if item[0] is not None]
    skipped = [str(item[1]) for item in items if item[0] is None]
    if not good:
        return Batch(None, None, skipped)
    x, y = default_collate(good)
    return Batch(x, y, skipped)


def class_folders(part: Path) -> list[str]:
    if not part.is_dir():
        return []
    with os.scandir(part) as entries:
        return sorted(e.name for e in entries if e.is_dir())


def list_images(folder: Path, seen: dict[tuple[int, int], str]) -> list[str]:
    """The image files under ``folder`` in ImageFolder's order (folders by path, files by
    name), following symlinks; raises :class:`DataError` for a folder reached twice."""
    found: list[tuple[str, list[str]]] = []
    stack = [str(folder)]
    while stack:
        here = stack.pop()
        try:
            info = os.stat(here)
            entries = list(os.scandir(here))
        except OSError as e:
            raise DataError(f"cannot read `{here}`: {e.strerror or e}") from None
        key = (info.st_dev, info.st_ino)
        if key in seen:
            raise DataError(
                f"`{here}` is the folder `{seen[key]}` again (a symlink loop, or two links to "
                "one folder): its images would be read more than once; remove the link"
            )
        seen[key] = here
        files = []
        for e in entries:
            if e.is_dir():
                stack.append(e.path)
            elif e.name.lower().endswith(EXTENSIONS):
                files.append(e.name)
        found.append((here, sorted(files)))
    return [d + os.sep + f for d, names in sorted(found) for f in names]


def samples(part: Path, classes: list[str]) -> list[tuple[str, int]]:
    seen: dict[tuple[int, int], str] = {}
    listed: list[tuple[str, int]] = []
    for index, name in enumerate(classes):
        files = list_images(part / name, seen)
        if not files:
            raise DataError(
                f"`{part / name}` has no image files ({', '.join(EXTENSIONS)}): every class "
                "folder needs at least one"
            )
        listed += [(f, index) for f in files]
    return listed


def _few(names: list[str]) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return str(names[:5]) + more


def check_input(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The network's (channels, height, width); raises :class:`DataError` for an input that
    images cannot fill."""
    if len(input_shape) != 3:
        raise DataError("archc train reads images, and this network's input is a vector")
    channels, h, w = input_shape
    if channels not in (1, 3):
        raise DataError(
            f"archc train reads grayscale (1 channel) or RGB (3 channel) images, and this "
            f"network's input has {channels} channels: change its `input` line"
        )
    return channels, h, w


def folders(
    root: Path, recipe: Recipe, input_shape: tuple[int, ...], classes: int, parts: tuple[str, ...]
) -> dict[str, Images]:
    """The listed ``parts`` (``train``, ``val``) of ``root``; raises :class:`DataError`."""
    channels, h, w = check_input(input_shape)
    if not root.is_dir():
        raise DataError(f"no data directory `{root}`")
    names = {}
    for part in parts:
        names[part] = class_folders(root / part)
        if not names[part]:
            raise DataError(
                f"`{root / part}` has no class folders: archc reads an ImageFolder tree, "
                f"{root}/{part}/CLASS/IMAGE"
            )
    first, *others = parts
    for other in others:
        if names[first] != names[other]:
            only_a = sorted(set(names[first]) - set(names[other]))
            only_b = sorted(set(names[other]) - set(names[first]))
            raise DataError(
                f"the class folders of {first}/ and {other}/ differ: "
                f"only in {first}/: {_few(only_a)}; only in {other}/: {_few(only_b)}"
            )
    found = len(names[first])
    if found != classes:
        raise DataError(
            f"the data has {found} classes and the network {classes} outputs: "
            f"pass --set classes={found} (or change the last layer to `FC {found}`)"
        )
    mode = "L" if channels == 1 else "RGB"
    return {
        part: Images(
            samples(root / part, names[part]),
            image_transform(recipe.augment, (h, w), channels, part == "train"),
            mode,
        )
        for part in parts
    }
