"""The torchvision models that specs/torchvision/ mirrors, shared by the parity tests."""

from __future__ import annotations

import torchvision
from torch import nn

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
    "efficientnet_b0",
    "regnet_y_400mf",
]
# Constructors that compute with tensor values (RegNet's widths: torch.arange(...).tolist()),
# which the meta device cannot: build them on the CPU, then move them to meta.
NOT_ON_META = {"regnet_y_400mf"}


def build(name: str) -> nn.Module:
    """torchvision's model, randomly initialised (nothing is downloaded); GoogLeNet without its
    auxiliary classifiers, as the spec has none."""
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs)
