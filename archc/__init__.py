"""archc: a compiler for CNN architecture specs written the way lectures and papers print them.

The public API. A spec is a path to a ``.arch`` file, the name of a shipped spec
(``torchvision/resnet50``) or of a family member (``torchvision/efficientnet_b3``: the family's
spec with ``variant="b3"``; ``archc specs`` lists them) or spec text. Each function that takes a
spec takes its params as keyword arguments besides its own options (``archc.load(spec,
variant="b3")``, as ``--set variant=b3``), and ``classes``/``input`` to resize the network as
``--set`` does. ``lint`` and ``summary`` never import torch; ``load`` and ``transfer_weights``
import it on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from archc.diagnostics import ArchcError, Diagnostic

__all__ = [
    "ArchcError",
    "Diagnostic",
    "fuse",
    "lint",
    "load",
    "recipe",
    "safe_globals",
    "summary",
    "transfer_weights",
    "__version__",
]
from archc.version import __version__  # noqa: E402

Spec = str | os.PathLike[str]


def __getattr__(name: str) -> Any:
    # Lazy, so that `archc --help` and the CLI's start-up do not pay for pydantic before they
    # need it.
    if name in ("ArchcError", "Diagnostic"):
        from archc import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'archc' has no attribute {name!r}")


def _checked(spec: Spec, params: dict[str, Any], batch: int = 1, dtype: str = "fp32") -> Any:
    """The checked spec with its params (``classes``/``input`` resize it, as ``--set``); a
    resizing the network cannot take raises ValueError (archc.parameters.SettingError)."""
    from archc.parameters import check_with

    return check_with(spec, params, batch=batch, dtype=dtype)  # type: ignore[arg-type]


def lint(spec: Spec, **params: Any) -> list[Diagnostic]:
    """Every diagnostic of ``spec``, as ``archc lint`` reports them (errors and warnings, sorted
    by place); an empty list for a clean spec. ``params``: the spec's params
    (``variant="b3"``)."""
    return list(_checked(spec, params).diagnostics)


def summary(spec: Spec, *, batch: int = 1, dtype: str = "fp32", **params: Any) -> dict[str, Any]:
    """The summary table as data: the object ``archc summary --format json`` prints (network,
    layers, totals, fusion, claims). Failed claims do not stop it: their checks say ``"ok":
    false``. Raises :class:`ArchcError` for any other error, and for a block library.
    ``params``: the spec's params (``variant="b3"``) and ``classes``/``input``."""
    from archc.diagnostics import ArchcError
    from archc.report import summary_dict

    checked = _checked(spec, params, batch, dtype)
    if checked.accounting is None or not checked.only_claims_fail:
        raise ArchcError(checked.diagnostics, checked.sources)
    return summary_dict(checked)


def load(
    spec: Spec,
    *,
    device: Any = None,
    dtype: Any = None,
    max_bytes: int | None = None,
    allow_claims: bool = False,
    **params: Any,
) -> torch.nn.Module:
    """Build the PyTorch module of a spec; ``params`` are the spec's params
    (``archc.load("torchvision/efficientnet", variant="b3")``) and ``classes``/``input``.

    Warnings (W301 a stride that does not tile, W219 a layer without an activation, ...) are
    issued through the :mod:`warnings` module as :class:`SpecWarning`. Raises
    :class:`ArchcError` carrying the diagnostics when the spec has errors -- failed claims
    (E302, E4xx) included unless ``allow_claims`` -- or (E502), before allocating anything,
    when its parameters and buffers would need more than ``max_bytes`` bytes (default: the
    memory of ``device``, or of this machine).
    """
    from archc.extras import require

    require("archc.load")
    import warnings

    from archc.diagnostics import ArchcError, SpecWarning, render_text

    checked = _checked(spec, params)
    if not (checked.ok or (allow_claims and checked.only_claims_fail)):
        raise ArchcError(checked.diagnostics, checked.sources)
    for d in checked.diagnostics:
        # stacklevel 2: the warning names the caller's line, not this one.
        warnings.warn(render_text([d], checked.sources, color=False), SpecWarning, stacklevel=2)
    from archc.backends.torch_module import build_module

    try:
        return build_module(checked, device=device, dtype=dtype, max_bytes=max_bytes)
    except ArchcError as e:
        raise ArchcError(e.diagnostics, checked.sources) from None


def recipe(spec: Spec, model: torch.nn.Module | None = None, **params: Any) -> dict[str, Any]:
    """The spec's training recipe for a user's own loop, as the compiled file's ``recipe()``
    returns it: ``model`` (by default ``load(spec)``; a network that ends in softmax gets a
    log-softmax there), ``optimizer``, ``scheduler`` (stepped once per epoch, a plateau one with
    the metric named by ``monitor``), ``loss``, ``batch_size`` (global), ``epochs``,
    ``augment``, ``precision``, ``sync_bn``. A spec without a ``train:`` section gets the
    defaults of docs/language.md. Raises :class:`ArchcError` when the spec has errors.
    ``params``: the spec's params (``variant="b3"``) and ``classes``/``input``."""
    from archc.extras import require

    require("archc.recipe")
    from archc.diagnostics import ArchcError
    from archc.recipe_ir import Recipe
    from archc.training.recipe import build

    checked = _checked(spec, params)
    if not checked.ok or checked.graph is None:
        raise ArchcError(checked.diagnostics, checked.sources)
    graph = checked.graph
    loss = "nll" if graph.node(graph.output).op == "softmax" else "cross_entropy"
    chosen = graph.recipe or Recipe(loss=loss)
    return build(chosen, graph, load(spec, **params) if model is None else model)


def fuse(model: torch.nn.Module, example_input: torch.Tensor | None = None) -> torch.nn.Module:
    """The inference module of a plain model in eval mode: each conv -> BN -> (+ residual) ->
    activation group is one op, BN folded in once, run by the fastest engine the device has
    (archc's Triton kernel on CUDA, oneDNN's fused convolution on the CPU, with its weight laid
    out once). A 4-D input is converted to channels_last once and outputs keep the caller's
    layout. ``example_input`` (optional) is run once to lay the weights out for its size.
    Traceable by FX, torch.compile, torch.export, TorchScript and the ONNX exporter;
    ``fusion_summary`` says what it did and ``archc.backends.fuse.describe`` lists the groups.
    """
    from archc.extras import require

    require("archc.fuse")
    from archc.backends.fuse import fuse as _fuse

    return _fuse(model, example_input)


def safe_globals(model: torch.nn.Module) -> list[Any]:
    """What ``torch.load(..., weights_only=True)`` must be allowed to call to unpickle the whole
    ``model``: ``with torch.serialization.safe_globals(archc.safe_globals(model)):
    torch.load(path, weights_only=True)``. That is its module classes, except that the classes
    ``archc.load`` generates pickle as ``archc.backends.torch_module.rebuild`` of their IR graph
    (which compiles archc's own source for the graph, never code from the file), so any model of
    the same spec, built in the loading process, gives the list. The classes of a compiled file
    must be importable where it is loaded; a state_dict needs none of this."""
    from archc.extras import require

    require("archc.safe_globals")
    from archc.backends.torch_module import generated, rebuild

    classes = {type(m) for m in model.modules()}
    allowed: list[Any] = sorted(
        (c for c in classes if not generated(c)), key=lambda c: (c.__module__, c.__name__)
    )
    return allowed + [rebuild] if any(generated(c) for c in classes) else allowed


def transfer_weights(src: Any, dst: torch.nn.Module) -> None:
    """Copy parameters and buffers from ``src`` (a module or state_dict) into ``dst``,
    matched in definition order with shapes checked; copies nothing on any mismatch."""
    from archc.extras import require

    require("archc.transfer_weights")
    from archc.backends.weights import transfer_weights as _transfer

    _transfer(src, dst)
