"""Weight initialisation of a compiled module, by the graph's ``init`` scheme.

- ``kaiming`` (default): convs He-normal, fan_out, gain for ReLU (torchvision's ResNet/VGG),
  conv biases 0; BN weight 1, bias 0; linear weights normal(0, 0.01), biases 0.
- ``xavier``: conv and linear weights Xavier-uniform, biases 0; BN weight 1, bias 0.
- ``torchvision``: the scheme of the torchvision family the network belongs to --
  AlexNet (network name contains "alexnet") and ShuffleNet (the graph shuffles channels):
  PyTorch's default layer init, untouched;
  ConvNeXt (the graph has a layer scale): conv and linear weights truncated normal (std 0.02,
  cut at ±2), biases 0; layer norms 1/0, layer scales their starting value;
  GoogLeNet (the graph concatenates branches): conv and linear weights truncated normal
  (std 0.01, cut at ±2), BN 1/0, linear bias PyTorch's default;
  ResNet (the graph has residual adds): the ``kaiming`` convs and BN, linear PyTorch's default;
  otherwise VGG: exactly ``kaiming``.

Modules are visited in graph order, so the result is a function of ``torch.manual_seed``.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from archc import ir
from archc.ops.layers import LayerScale

Family = Literal["alexnet", "convnext", "googlenet", "resnet", "vgg"]


def torchvision_family(graph: ir.Graph) -> Family:
    ops = {node.op for node in graph.nodes}
    if "alexnet" in graph.name.lower() or "channel_shuffle" in ops:
        return "alexnet"  # PyTorch's defaults (AlexNet, ShuffleNetV2)
    if "layerscale" in ops:
        return "convnext"
    if "concat" in ops:
        return "googlenet"
    if "add" in ops:
        return "resnet"
    return "vgg"


def _zero(bias: nn.Parameter | None) -> None:
    if bias is not None:
        nn.init.zeros_(bias)


def _own_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def initialize(model: nn.Module, graph: ir.Graph) -> None:
    """Write every parameter and buffer of ``model`` (which may hold uninitialised memory)."""
    scheme = graph.init
    family = torchvision_family(graph) if scheme == "torchvision" else None
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d | nn.Linear):
            linear = isinstance(module, nn.Linear)
            if family == "alexnet" or (family == "resnet" and linear):
                module.reset_parameters()  # PyTorch's default, as torchvision leaves it
            elif family == "googlenet":
                module.reset_parameters()
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif family == "convnext":
                nn.init.trunc_normal_(module.weight, std=0.02)
                _zero(module.bias)
            elif scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
                _zero(module.bias)
            elif linear:
                nn.init.normal_(module.weight, 0.0, 0.01)
                _zero(module.bias)
            else:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                _zero(module.bias)
        elif (
            hasattr(module, "reset_parameters") and next(module.parameters(False), None) is not None
        ):
            # Layers with parameters of their own beyond these (LayerNorm2d, LayerNorm): their
            # own initialisation, as torchvision's models keep it.
            module.reset_parameters()
    for node in graph.nodes:
        if isinstance(node, LayerScale):  # a bare parameter of its part, at its starting value
            nn.init.constant_(model.get_parameter(node.name), node.init)
