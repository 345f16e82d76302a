"""The torchvision models that specs/torchvision/ mirrors, shared by the parity tests."""

from __future__ import annotations

from pathlib import Path

import torchvision
from torch import nn

from archc.families import family

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"

# The networks the parity tests build in full (outputs, gradients, init, TorchScript, ...): every
# plain spec, and for a family spec the builders that had specs of their own before it.
# tests/test_families.py checks every builder of every family; test_torchvision_parity_shapes
# and test_specs every name the directory answers to (shipped_names()), on the meta device.
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


def plain_specs() -> list[str]:
    """The names of the specs in specs/torchvision/ that are no family (vgg11.arch: vgg11)."""
    return sorted(p.stem for p in SPECS.glob("*.arch") if family(p) is None)


def shipped_names() -> list[str]:
    """Every name specs/torchvision/ builds: each plain spec's, and each family's builder names
    (regnet.arch: regnet_y_400mf, ..., regnet_x_32gf), which ``torchvision/<name>`` resolves to."""
    members = [n for p in SPECS.glob("*.arch") if (f := family(p)) is not None for n in f.names]
    return sorted([*plain_specs(), *members])


def input_size(name: str) -> int:
    return INPUT_SIZE.get(name, 224)


def min_size(name: str) -> int:
    """The smallest input side the model takes, as its torchvision weights' metadata states."""
    height, width = torchvision.models.get_model_weights(name).DEFAULT.meta["min_size"]
    return max(height, width)


def build(name: str) -> nn.Module:
    """torchvision's model, randomly initialised (nothing is downloaded), with its default
    arguments: GoogLeNet and Inception-v3 with their auxiliary classifiers and without the
    input transform, as ``get_model(name, weights=None)`` builds them and the specs have them
    (``init_weights=True`` is their default too, named only to silence its FutureWarning)."""
    kwargs = {"init_weights": True} if name in ("googlenet", "inception_v3") else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs)
