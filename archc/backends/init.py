"""Weight initialisation of a compiled module, by the graph's ``init`` scheme.

- ``kaiming`` (default): convs He-normal, fan_out, gain for ReLU (torchvision's ResNet/VGG),
  conv biases 0; BN weight 1, bias 0; linear weights normal(0, 0.01), biases 0.
- ``xavier``: conv and linear weights Xavier-uniform, biases 0; BN weight 1, bias 0.
- ``torchvision``: the initialisation torchvision's model of that family writes in its
  ``__init__`` (torchvision/models/*.py), chosen by the network's name: the first entry of
  ``TORCHVISION_SCHEMES`` whose model-name prefix starts the name (lower-cased) -- ``network
  mobilenet_v3_small`` is MobileNetV3's. A name that matches none falls back to a guess from the
  graph (``structural_family``): AlexNet's defaults when the name contains "alexnet" or the graph
  shuffles channels (ShuffleNetV2), ConvNeXt's when it has a layer scale, GoogLeNet's when it
  concatenates, ResNet's when it adds, else VGG's.

The ``torchvision`` schemes, each a transcription of its model's code. "Default" is PyTorch's
own layer init (weights Kaiming-uniform with a = sqrt(5), i.e. within 1/sqrt(fan_in); biases
uniform within 1/sqrt(fan_in)), which the model leaves as it is; BN (and GroupNorm) weight 1,
bias 0 everywhere (also their defaults); layer norms their default 1/0.

============  ==================================  ==============================================
scheme        conv weight; conv bias              linear weight; linear bias
============  ==================================  ==============================================
defaults      default; default                    default; default  (AlexNet, ShuffleNetV2)
vgg           He normal fan_out ReLU; 0           normal(0, 0.01); 0
resnet        He normal fan_out ReLU; default     default; default  (zero_init_residual=False)
googlenet     trunc normal(0, 0.01, ±2); default  trunc normal(0, 0.01, ±2); default
inception_v3  trunc normal(0, 0.1, ±2); default   trunc normal(0, 0.1, ±2); default
densenet      He normal fan_in; default           default; 0
squeezenet    He uniform fan_in; 0 -- the last    default; default
              conv (the classifier's):
              normal(0, 0.01); 0
mobilenet     He normal fan_out; 0                normal(0, 0.01); 0  (MobileNetV2 and V3)
mnasnet       He normal fan_out ReLU; 0           He uniform fan_out, gain 1 (sigmoid); 0
efficientnet  He normal fan_out; 0                uniform(±1/sqrt(out_features)); 0
regnet        normal(0, sqrt(2 / fan_out)),       normal(0, 0.01); 0
              fan_out = kh kw out; default
convnext      trunc normal(0, 0.02, ±2); 0        trunc normal(0, 0.02, ±2); 0
============  ==================================  ==============================================

"He" is ``kaiming_normal_``/``kaiming_uniform_`` with gain sqrt(2) (ReLU's, and torch's default
leaky-ReLU slope 0 gives the same); "trunc normal(m, s, ±2)" is cut at ±2 absolute, as
``trunc_normal_``'s defaults. Inception-v3's auxiliary classifier, whose layers torchvision
gives std 0.01 and 0.001, keeps 0.1 for its conv (the 0.01 is set on the BasicConv2d, which
the loop never asks) and 0.001 for its FC: here the FC that is an ``aux`` classifier's output.
A layer scale starts at its value (ConvNeXt: 1e-6).

Modules are visited in graph order, so the result is a function of ``torch.manual_seed``.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

from archc import ir
from archc.ops.layers import LayerScale

Scheme = Literal[
    "defaults",
    "vgg",
    "resnet",
    "googlenet",
    "inception_v3",
    "densenet",
    "squeezenet",
    "mobilenet",
    "mnasnet",
    "efficientnet",
    "regnet",
    "convnext",
]

# torchvision model-name prefixes -> the scheme of that model's ``__init__``. First match wins.
TORCHVISION_SCHEMES: tuple[tuple[str, Scheme], ...] = (
    ("alexnet", "defaults"),
    ("vgg", "vgg"),
    ("resnet", "resnet"),
    ("resnext", "resnet"),
    ("wide_resnet", "resnet"),
    ("googlenet", "googlenet"),
    ("inception_v3", "inception_v3"),
    ("densenet", "densenet"),
    ("squeezenet", "squeezenet"),
    ("mobilenet_v2", "mobilenet"),
    ("mobilenet_v3", "mobilenet"),
    ("mnasnet", "mnasnet"),
    ("efficientnet", "efficientnet"),
    ("regnet", "regnet"),
    ("shufflenet_v2", "defaults"),
    ("convnext", "convnext"),
)

Family = Literal["alexnet", "convnext", "googlenet", "resnet", "vgg"]


def structural_family(graph: ir.Graph) -> Family:
    """The fallback for a name that is no torchvision model's: a guess from the graph."""
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


def torchvision_scheme(graph: ir.Graph) -> Scheme:
    """The torchvision scheme of a graph: by its name's model family, else by its structure."""
    name = graph.name.lower()
    for prefix, scheme in TORCHVISION_SCHEMES:
        if name.startswith(prefix):
            return scheme
    family = structural_family(graph)
    return "defaults" if family == "alexnet" else family


def _zero(bias: nn.Parameter | None) -> None:
    if bias is not None:
        nn.init.zeros_(bias)


def _default_bias(module: nn.Conv2d | nn.Linear) -> None:
    """PyTorch's default bias of a conv or linear layer (as its ``reset_parameters``)."""
    if module.bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(module.bias, -bound, bound)


def _torchvision_conv(module: nn.Conv2d, scheme: Scheme, last: bool) -> None:
    w = module.weight
    if scheme == "defaults":
        module.reset_parameters()
    elif scheme in ("vgg", "mobilenet", "mnasnet", "efficientnet"):
        nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        _zero(module.bias)
    elif scheme == "resnet":
        nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        _default_bias(module)
    elif scheme in ("googlenet", "inception_v3"):
        std = 0.01 if scheme == "googlenet" else 0.1
        nn.init.trunc_normal_(w, mean=0.0, std=std, a=-2, b=2)
        _default_bias(module)
    elif scheme == "densenet":
        nn.init.kaiming_normal_(w)  # fan_in, gain sqrt(2)
        _default_bias(module)
    elif scheme == "squeezenet":
        if last:  # the classifier's conv ("final_conv")
            nn.init.normal_(w, mean=0.0, std=0.01)
        else:
            nn.init.kaiming_uniform_(w)  # fan_in, gain sqrt(2)
        _zero(module.bias)
    elif scheme == "regnet":
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        nn.init.normal_(w, mean=0.0, std=math.sqrt(2.0 / fan_out))
        _default_bias(module)  # "no bias due to BN"; the squeeze-excitation convs keep theirs
    else:  # convnext
        nn.init.trunc_normal_(w, std=0.02)
        _zero(module.bias)


def _torchvision_linear(module: nn.Linear, scheme: Scheme, aux: bool = False) -> None:
    w = module.weight
    if scheme == "inception_v3" and aux:  # InceptionAux's fc.stddev
        nn.init.trunc_normal_(w, mean=0.0, std=0.001, a=-2, b=2)
        _default_bias(module)
        return
    if scheme in ("defaults", "resnet", "squeezenet"):
        module.reset_parameters()
    elif scheme in ("vgg", "mobilenet", "regnet"):
        nn.init.normal_(w, 0.0, 0.01)
        _zero(module.bias)
    elif scheme in ("googlenet", "inception_v3"):
        std = 0.01 if scheme == "googlenet" else 0.1
        nn.init.trunc_normal_(w, mean=0.0, std=std, a=-2, b=2)
        _default_bias(module)
    elif scheme == "densenet":
        module.reset_parameters()
        _zero(module.bias)
    elif scheme == "mnasnet":
        nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="sigmoid")
        _zero(module.bias)
    elif scheme == "efficientnet":
        bound = 1.0 / math.sqrt(module.out_features)
        nn.init.uniform_(w, -bound, bound)
        _zero(module.bias)
    else:  # convnext
        nn.init.trunc_normal_(w, std=0.02)
        _zero(module.bias)


def _plain(module: nn.Conv2d | nn.Linear, scheme: str) -> None:
    """``kaiming`` and ``xavier``."""
    if scheme == "xavier":
        nn.init.xavier_uniform_(module.weight)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.01)
    else:
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    _zero(module.bias)


def initialize(model: nn.Module, graph: ir.Graph) -> None:
    """Write every parameter and buffer of ``model`` (which may hold uninitialised memory)."""
    scheme = torchvision_scheme(graph) if graph.init == "torchvision" else None
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    last_conv = convs[-1] if convs else None
    aux = set(graph.aux)
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d) and scheme is not None:
            _torchvision_conv(module, scheme, module is last_conv)
        elif isinstance(module, nn.Linear) and scheme is not None:
            _torchvision_linear(module, scheme, name in aux)
        elif isinstance(module, nn.Conv2d | nn.Linear):
            _plain(module, graph.init)
        elif (
            hasattr(module, "reset_parameters") and next(module.parameters(False), None) is not None
        ):
            # Layers with parameters of their own beyond these (LayerNorm2d, LayerNorm): their
            # own initialisation, as torchvision's models keep it.
            module.reset_parameters()
    for node in graph.nodes:
        if isinstance(node, LayerScale):  # a bare parameter of its part, at its starting value
            nn.init.constant_(model.get_parameter(node.name), node.init)
