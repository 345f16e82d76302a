"""``archc.fuse``'s linear groups: a ``nn.Linear`` and the work that follows it, as one oneDNN
matmul with post-ops on the CPU.

Two groups are fused (archc.backends.fuse calls :func:`fuse_linears` on the traced model):

- ``Linear -> activation``: the activation (ReLU, ReLU6, leaky ReLU, SiLU, hardswish,
  hardsigmoid, GELU exact or tanh) becomes the matmul's post-op, as in the MLP of a ConvNeXt
  block or the classifier of AlexNet and VGG;
- ``Linear -> [permute(0, 3, 1, 2)] -> * scale -> + residual``: a constant per-channel scale
  (ConvNeXt's layer scale) is folded into the weight and bias once, and the add becomes the
  matmul's binary post-op, reading the residual in the matmul's own layout (a channels_last
  residual seen through ``permute(0, 2, 3, 1)`` is already that layout: no copy).

Why: PyTorch's ``linear`` is MKL's GEMM after a copy of the broadcast bias into the output, then
the activation, the scale and the add as separate passes over memory. For ConvNeXt-T's first
stage at batch 1 (3136 rows, 96 -> 384 -> 96) the block's MLP took 5.2 ms that way and 2.0 ms as
two oneDNN matmuls with their post-ops (the development VM, 2 threads).

The weight is reordered once into oneDNN's layout (``torch.ops.mkldnn._reorder_linear_weight``)
and kept while it lives, like a conv group's. Off oneDNN (another device or dtype,
``ARCHC_KERNELS=eager``), and whenever a tool is looking (torch.fx, torch.compile, torch.export,
the ONNX exporter, TorchScript), a group runs as ``linear``, ``+ residual`` and the activation in
plain PyTorch ops, with the folded weight: those tools see ordinary ops they know.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.utils.weak import WeakIdKeyDictionary

# oneDNN's post-op (attribute, scalars, algorithm) for each activation a linear group takes.
_ONEDNN_LINEAR_ACTIVATIONS = {
    "relu": lambda slope: ("relu", [], ""),
    "relu6": lambda slope: ("hardtanh", [0.0, 6.0], ""),
    "leaky_relu": lambda slope: ("leaky_relu", [slope], ""),
    "silu": lambda slope: ("swish", [], ""),
    "hardswish": lambda slope: ("hardswish", [], ""),
    "hardsigmoid": lambda slope: ("hardsigmoid", [], ""),
    "gelu": lambda slope: ("gelu", [], "none"),
    "gelu_tanh": lambda slope: ("gelu", [], "tanh"),
}


def _module_activation(module: nn.Module) -> tuple[str, float]:
    """The linear epilogue (name, leaky ReLU's slope) that ``module`` is, or ("", 0)."""
    kind = type(module)
    if kind is nn.ReLU:
        return "relu", 0.0
    if kind is nn.ReLU6:
        return "relu6", 0.0
    if kind is nn.LeakyReLU:
        return "leaky_relu", float(module.negative_slope)
    if kind is nn.SiLU:
        return "silu", 0.0
    if kind is nn.Hardswish:
        return "hardswish", 0.0
    if kind is nn.Hardsigmoid:
        return "hardsigmoid", 0.0
    if kind is nn.GELU:
        return ("gelu", 0.0) if module.approximate == "none" else ("gelu_tanh", 0.0)
    return "", 0.0


def _function_activation(node: fx.Node) -> str:
    """The epilogue a ``call_function`` node of one positional argument is, or "" (``inplace``
    may be given: the linear's result is fresh)."""
    if len(node.args) != 1:
        return ""
    kwargs = dict(node.kwargs)
    kwargs.pop("inplace", None)
    if node.target in (F.gelu, torch._C._nn.gelu):
        approximate = kwargs.pop("approximate", "none")
        if not kwargs and approximate in ("none", "tanh"):
            return "gelu" if approximate == "none" else "gelu_tanh"
        return ""
    if kwargs:
        return ""
    if node.target in (F.relu, torch.relu):
        return "relu"
    if node.target is F.silu:
        return "silu"
    return ""


def activate(y: Tensor, activation: str | None, slope: float) -> Tensor:
    """``activation`` applied to ``y`` (a fresh tensor: in place where PyTorch can)."""
    if activation is None:
        return y
    if activation == "relu":
        return F.relu(y, inplace=True)
    if activation == "relu6":
        return F.relu6(y, inplace=True)
    if activation == "leaky_relu":
        return F.leaky_relu(y, slope, inplace=True)
    if activation == "silu":
        return F.silu(y, inplace=True)
    if activation == "hardswish":
        return F.hardswish(y, inplace=True)
    if activation == "hardsigmoid":
        return F.hardsigmoid(y, inplace=True)
    if activation == "gelu":
        return F.gelu(y)
    if activation == "gelu_tanh":
        return F.gelu(y, approximate="tanh")
    raise ValueError("no linear epilogue for the activation " + activation)


# A weight's oneDNN layout, made once: (the weight's version and dtype, the reordered weight).
_PACKED: WeakIdKeyDictionary = WeakIdKeyDictionary()


def _packed_weight(weight: Tensor, rows: int) -> Tensor:
    """``weight`` reordered for oneDNN's matmul, laid out for ``rows`` input rows on the first
    call (any other number of rows still gets the right answer) and reused until the weight
    changes in place."""
    # The storage too: `weight.data = t` gives the same parameter new values, same version.
    key = (-1 if weight.is_inference() else weight._version, weight.data_ptr(), weight.dtype)
    known = _PACKED.get(weight)
    if known is not None and known[0] == key:
        return known[1]
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), max(rows, 1))
    _PACKED[weight] = (key, packed)
    return packed


def _run_onednn(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    residual: Tensor | None,
    activation: str | None,
    slope: float,
    channels_first: bool,
) -> Tensor:
    """The group as one oneDNN matmul with its post-op (the add, or the activation). With
    ``channels_first`` the result is returned as ``permute(0, 3, 1, 2)`` of the matmul's, and
    the residual is given in that layout."""
    x = x.contiguous()
    packed = _packed_weight(weight, x.numel() // max(x.shape[-1], 1))
    if residual is None:
        attr, scalars, algorithm = (
            ("none", [], "")
            if activation is None
            else _ONEDNN_LINEAR_ACTIVATIONS[activation](slope)
        )
        y = torch.ops.mkldnn._linear_pointwise(x, packed, bias, attr, scalars, algorithm)
        return y.permute(0, 3, 1, 2) if channels_first else y
    other = residual.permute(0, 2, 3, 1) if channels_first else residual
    if other.shape == (*x.shape[:-1], weight.shape[0]):
        y = torch.ops.mkldnn._linear_pointwise.binary(x, other.contiguous(), packed, bias, "add")
        y = y.permute(0, 3, 1, 2) if channels_first else y
    else:  # a residual that broadcasts, as the model's own add would
        y = torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
        y = y.permute(0, 3, 1, 2) if channels_first else y
        y = y + residual
    return activate(y, activation, slope)


class FusedLinear(nn.Module):
    """One linear group: ``act?(linear(x, weight, bias) + residual?)``, any scale already folded
    into ``weight`` and ``bias``. Inference only. ``members`` names the model's layers it
    replaces; its repr names the engine it runs on for its weight's device and dtype."""

    __jit_unused_properties__ = ["engine"]

    def __init__(
        self,
        linear: nn.Linear,
        activation: str | None,
        negative_slope: float = 0.0,
        scale: Tensor | None = None,
        channels_first: bool = False,
        members: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        if activation is not None and activation not in _ONEDNN_LINEAR_ACTIVATIONS:
            raise ValueError(f"no linear epilogue for the activation {activation!r}")
        weight = linear.weight.detach()
        bias = None if linear.bias is None else linear.bias.detach()
        if scale is not None:
            scale = scale.detach().reshape(-1).to(weight.dtype)
            weight = weight * scale[:, None]
            bias = None if bias is None else bias * scale
        # Never inference tensors (as they would be when fusing under torch.inference_mode):
        # those have no version counter, so a weight loaded in place later (load_state_dict)
        # would not be seen by the oneDNN layout kept for it.
        with torch.inference_mode(False):
            self.weight = nn.Parameter(weight.clone(), requires_grad=False)
            self.bias = None if bias is None else nn.Parameter(bias.clone(), False)
        self.activation = activation
        self.negative_slope = float(negative_slope)
        # The model's scale after the linear, folded into the weight and bias above.
        self.scaled = scale is not None
        # The model permuted the linear's (N, H, W, C) result to (N, C, H, W) before the add.
        self.channels_first = channels_first
        self.members = list(members)

    @property
    def engine(self) -> str:
        """The engine this group runs on for an input on its weight's device and dtype."""
        from archc.backends.fuse import _mode, _onednn_takes

        takes = _mode() == "auto" and _onednn_takes(self.weight.device, self.weight.dtype)
        return "onednn" if takes else "eager"

    def extra_repr(self) -> str:
        k, c = self.weight.shape
        text = f"in_features={c}, out_features={k}, bias={self.bias is not None}"
        if self.activation is not None:
            text += f", activation={self.activation}"
        if self.negative_slope:
            text += f", negative_slope={self.negative_slope:g}"
        if self.scaled:
            text += ", scale folded"
        if self.channels_first:
            text += ", output permuted (0, 3, 1, 2)"
        return text + f", engine={self.engine}"

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if not torch.jit.is_scripting():
            if self._direct(x, residual):
                return _run_onednn(
                    x, self.weight, self.bias, residual, self.activation, self.negative_slope,
                    self.channels_first,
                )  # fmt: skip
        y = F.linear(x, self.weight, self.bias)
        if self.channels_first:
            y = y.permute(0, 3, 1, 2)
        if residual is not None:
            y = y + residual
        return activate(y, self.activation, self.negative_slope)

    def _direct(self, x: Tensor, residual: Tensor | None) -> bool:
        """Whether this is a plain eager call that oneDNN runs (never under a tracer, a
        compiler or an exporter: they get the plain ops)."""
        from archc.backends.fuse import _mode, _onednn_takes

        return (
            type(x) is Tensor
            and (residual is None or _same_kind(residual, x))
            # oneDNN's op has no autograd kernel: an input that wants a gradient gets plain ops.
            and not (torch.is_grad_enabled() and (x.requires_grad or _wants_grad(residual)))
            and x.dim() == (4 if self.channels_first else x.dim())
            and x.dim() >= 2
            and x.dtype == self.weight.dtype
            and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing()
            and _mode() == "auto"
            and _onednn_takes(x.device, x.dtype)
            # Under autocast the model's linear runs in the autocast dtype: F.linear does that.
            # (Asked last: only a CPU tensor gets here; autocast knows no meta device.)
            and not torch.is_autocast_enabled("cpu")
        )


def _wants_grad(residual: Tensor | None) -> bool:
    return residual is not None and residual.requires_grad


def _same_kind(residual: Tensor, x: Tensor) -> bool:
    """A residual oneDNN's add takes: a plain tensor of the input's dtype and device (another
    dtype is promoted by the model's own add, which the plain ops do)."""
    return type(residual) is Tensor and residual.dtype == x.dtype and residual.device == x.device


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _is_permute_to_channels_first(node: fx.Node | None, source: fx.Node) -> bool:
    """``node`` is ``source.permute(0, 3, 1, 2)`` (a method call or ``torch.permute``)."""
    if node is None or node.kwargs:
        return False
    if node.op == "call_function" and node.target is torch.permute:
        return node.args[:1] == (source,) and list(node.args[1]) == [0, 3, 1, 2]
    if node.op == "call_method" and node.target == "permute":
        dims = node.args[1:]
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = tuple(dims[0])
        return node.args[0] is source and list(dims) == [0, 3, 1, 2]
    return False


def _constant(gm: fx.GraphModule, node: Any) -> Tensor | None:
    """The tensor a ``get_attr`` node reads, or None."""
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        return None
    value: Any = gm
    for part in str(node.target).split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, Tensor) else None


def _binary(node: fx.Node | None, ops: tuple[Any, ...], methods: tuple[str, ...]) -> bool:
    return (
        node is not None
        and (
            (node.op == "call_function" and node.target in ops)
            or (node.op == "call_method" and node.target in methods)
        )
        and len(node.args) == 2
        and not node.kwargs
    )


def _scale_folds(scale: Tensor | None, weight: Tensor, wanted: tuple[int, ...]) -> bool:
    """Whether ``scale`` is one value per output feature in the layout ``wanted`` ((C,) on the
    linear's output, (C, 1, 1) on its permuted 4-D one) and folds into ``weight`` without
    changing the product's shape or dtype: leading ones only where the product has that many
    dimensions (a linear's output may be 1-D: (1, C) would make it 2-D), and a dtype that the
    weight's does not promote to (a float64 scale makes a float32 product float64)."""
    if scale is None or tuple(scale.shape[-len(wanted) :]) != wanted:
        return False
    if scale.dim() > (4 if len(wanted) == 3 else 1):
        return False
    if any(d != 1 for d in scale.shape[: -len(wanted)]):
        return False
    return torch.promote_types(scale.dtype, weight.dtype) == weight.dtype and (
        scale.device == weight.device
    )


def _scaled_residual(
    gm: fx.GraphModule, node: fx.Node, weight: Tensor
) -> tuple[fx.Node, fx.Node | None, Tensor, fx.Node, list[fx.Node]] | None:
    """``Linear -> [permute(0, 3, 1, 2)] -> * constant scale -> + residual`` after the linear
    ``node``: (the add, the permute or None, the scale, the residual, the members after the
    linear), when the scale is one value per output feature in the layout it multiplies."""
    permute = _only_user(node)
    if not _is_permute_to_channels_first(permute, node):
        permute = None
    scaled_input = permute if permute is not None else node
    mul = _only_user(scaled_input)
    if not _binary(mul, (operator.mul, torch.mul), ("mul",)):
        return None
    assert mul is not None
    others = [a for a in mul.args if a is not scaled_input]
    scale = _constant(gm, others[0]) if len(others) == 1 else None
    k = weight.shape[0]
    if not _scale_folds(scale, weight, (k, 1, 1) if permute is not None else (k,)):
        return None
    assert scale is not None
    add = _only_user(mul)
    if not _binary(add, (operator.add, operator.iadd, torch.add), ("add", "add_")):
        return None
    assert add is not None
    # `+=` into the product (a fresh tensor) is the same as `+`; into the residual, the write
    # is seen by the residual's other readers (and by the caller, for an input): no group.
    if (add.target in (operator.iadd, "add_")) and add.args[0] is not mul:
        return None
    rest = [a for a in add.args if a is not mul]
    if len(rest) != 1 or not isinstance(rest[0], fx.Node):
        return None
    members = [n for n in (permute, others[0], mul, add) if n is not None]
    return add, permute, scale, rest[0], members


def _fuse_linear(
    gm: fx.GraphModule, node: fx.Node, linear: nn.Linear, may_fold: bool = True
) -> FusedLinear | None:
    """Replace the group that starts at the linear ``node`` by one FusedLinear call, if a
    group starts there (a scaled one only if ``may_fold``: the FusedLinear takes the linear's
    name, so its folded weight is what the model's other readers of the weight would get)."""
    nxt = _only_user(node)
    activation, slope = "", 0.0
    if nxt is not None and nxt.op == "call_module":
        act = gm.get_submodule(str(nxt.target))
        activation, slope = ("", 0.0) if hooked(act) else _module_activation(act)
    elif nxt is not None and nxt.op == "call_function":
        activation = _function_activation(nxt)
    name = str(node.target)
    if activation:
        assert nxt is not None
        members = (name, str(nxt.target) if nxt.op == "call_module" else nxt.name)
        fused = FusedLinear(linear, activation, slope, members=members)
        gm.add_submodule(name, fused)
        with gm.graph.inserting_before(nxt):
            new = gm.graph.call_module(name, (node.args[0],))
        nxt.replace_all_uses_with(new)
        gm.graph.erase_node(nxt)
        gm.graph.erase_node(node)
        return fused
    found = _scaled_residual(gm, node, linear.weight) if may_fold else None
    if found is None:
        return None
    add, permute, scale, residual, after = found
    members = (name, *(n.name for n in after))
    fused = FusedLinear(
        linear, None, scale=scale, channels_first=permute is not None, members=members
    )
    gm.add_submodule(name, fused)
    with gm.graph.inserting_before(add):
        new = gm.graph.call_module(name, (node.args[0], residual))
    add.replace_all_uses_with(new)
    for dead in reversed([node, *after]):
        if dead.op != "get_attr":
            gm.graph.erase_node(dead)
    return fused


def hooked(module: nn.Module) -> bool:
    """Whether ``module`` has forward hooks or pre-hooks of its own: a group that replaced it
    would not run them (a hook may change the layer's output, or record it)."""
    return bool(module._forward_hooks or module._forward_pre_hooks)


def read_directly(gm: fx.GraphModule) -> set[str]:
    """The modules whose parameters or buffers the model reads itself, not by calling them
    (``F.linear(x, self.fc.weight)``): a group that takes such a module's name must keep its
    weight's values, so it may fold nothing into them."""
    return {str(n.target).rpartition(".")[0] for n in gm.graph.nodes if n.op == "get_attr"}


def fuse_linears(gm: fx.GraphModule, modules: dict[str, nn.Module]) -> list[FusedLinear]:
    """Every linear group of the traced ``gm`` replaced by a FusedLinear (a Linear called more
    than once shares its weight, and is left alone)."""
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    read = read_directly(gm)
    fused = []
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or calls[str(node.target)] != 1:
            continue
        module = modules.get(str(node.target))
        if (
            type(module) is nn.Linear
            and not hooked(module)
            and len(node.args) == 1
            and not node.kwargs
        ):
            group = _fuse_linear(gm, node, module, str(node.target) not in read)
            if group is not None:
                fused.append(group)
    return fused
