"""The torchvision models that specs/torchvision/ mirrors, shared by the parity tests."""

from __future__ import annotations

from pathlib import Path

import torchvision
from torch import nn

from archc import families

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"

MODELS = [
    "alexnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg16_bn",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "mobilenet_v2",
    "densenet121",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "mnasnet1_0",
    "squeezenet1_0",
    "inception_v3",
    "shufflenet_v2_x1_0",
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "regnet_y_400mf",
]
# Constructors that compute with tensor values (RegNet's widths: torch.arange(...).tolist()),
# which the meta device cannot: build them on the CPU, then move them to meta.
NOT_ON_META = {"regnet_y_400mf"}

# The side of the square input a model is checked at where it is not 224: the size its
# torchvision weights were trained at.
INPUT_SIZE = {"inception_v3": 299}


def input_size(name: str) -> int:
    return INPUT_SIZE.get(name, 224)


def min_size(name: str) -> int:
    """The smallest input side the model takes, as its torchvision weights' metadata states."""
    height, width = torchvision.models.get_model_weights(name).DEFAULT.meta["min_size"]
    return max(height, width)


def plain_specs() -> list[str]:
    """The file stems of specs/torchvision/'s specs that build one network each."""
    return sorted(p.stem for p in SPECS.glob("*.arch") if families.family(p) is None)


def family_specs() -> list[families.Family]:
    """specs/torchvision/'s family specs (issue 23): one file, a builder per variant."""
    return [f for p in sorted(SPECS.glob("*.arch")) if (f := families.family(p)) is not None]


def check_directory_covered(names: list[str]) -> None:
    """Every spec of specs/torchvision/ is among ``names``: a plain spec by its file stem, a
    family by at least one of its builders; and every name is shipped, as a file or a builder."""
    builders = {n for f in family_specs() for n in f.names}
    assert set(plain_specs()) <= set(names)
    assert all(set(f.names) & set(names) for f in family_specs())
    assert set(names) <= set(plain_specs()) | builders


def build(name: str) -> nn.Module:
    """torchvision's model, randomly initialised (nothing is downloaded); GoogLeNet and
    Inception-v3 without their auxiliary classifiers (and input transform), as the specs have
    none."""
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    if name == "inception_v3":
        kwargs = {"aux_logits": False, "transform_input": False, "init_weights": True}
    return getattr(torchvision.models, name)(weights=None, **kwargs)
