"""A tiny ImageFolder of coloured shapes for the training tests: four classes (cross, disc,
square, triangle) drawn at random places, sizes and colours on a dark background, 32x32 PNGs."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("cross", "disc", "square", "triangle")


def _draw(kind: str, rng: random.Random) -> Image.Image:
    background = tuple(rng.randrange(0, 90) for _ in range(3))
    image = Image.new("RGB", (32, 32), background)
    draw = ImageDraw.Draw(image)
    size = rng.randrange(14, 24)
    x, y = rng.randrange(1, 32 - size), rng.randrange(1, 32 - size)
    colour = tuple(rng.randrange(140, 256) for _ in range(3))
    box = (x, y, x + size, y + size)
    if kind == "disc":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    elif kind == "triangle":
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=colour)
    else:
        bar = size // 3
        draw.rectangle((x + bar, y, x + 2 * bar, y + size), fill=colour)
        draw.rectangle((x, y + bar, x + size, y + 2 * bar), fill=colour)
    return image


def make_shapes(root: Path, train: int = 60, val: int = 20, seed: int = 0) -> Path:
    """``root/train/CLASS/*.png`` and ``root/val/CLASS/*.png``: ``train`` and ``val`` images
    per class."""
    rng = random.Random(seed)
    for part, count in (("train", train), ("val", val)):
        for kind in CLASSES:
            folder = root / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                _draw(kind, rng).save(folder / f"{i}.png")
    return root


def make_tiny(root: Path, classes: int = 2, train: int = 6, val: int = 3, size: int = 8) -> Path:
    """A very small ImageFolder for tests of what surrounds training (resume, refusals): class
    ``c0`` dark and ``c1`` bright ``size``x``size`` PNGs, with noise."""
    rng = random.Random(1)
    for part, count in (("train", train), ("val", val)):
        for c in range(classes):
            folder = root / part / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = 40 + 160 * c // max(classes - 1, 1)
                pixels = [
                    tuple(min(255, max(0, base + rng.randrange(-30, 30))) for _ in range(3))
                    for _ in range(size * size)
                ]
                image = Image.new("RGB", (size, size))
                image.putdata(pixels)
                image.save(folder / f"{i}.png")
    return root
