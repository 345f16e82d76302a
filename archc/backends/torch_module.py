"""The torch backend: a checked graph becomes a plain ``nn.Module``, by running the very source
``archc compile`` writes (:mod:`archc.backends.source`).

The source is archc's own output — names validated, nothing from the spec unescaped — compiled
under a name of its own (``archc.generated.<class>_<digest>``) that is registered in
``sys.modules`` and ``linecache``, so ``inspect`` (and with it TorchScript) finds the source of
its classes and pickles of the module work within the process. The module is built on the meta
device, its size checked (archc.memory), then materialised and initialised by the graph's
``init`` scheme (archc.backends.init).
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from typing import Any, Protocol

import torch
from torch import nn

from archc import ir
from archc.diagnostics import ArchcError
from archc.passes.shapes import infer_shapes


class CheckedGraph(Protocol):
    """What the backends read from :class:`archc.check.Checked`."""

    graph: ir.Graph | None
    shapes: dict[str, ir.Shape]


def network_class(checked: CheckedGraph) -> type[nn.Module]:
    """The network's class, from the generated source (compiled once per distinct source)."""
    from archc.backends.source import class_name, generate_source

    assert checked.graph is not None
    source = generate_source(checked)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    cls = class_name(checked.graph.name)
    name = f"archc.generated.{cls}_{digest}"
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name, f"archc's generated module for {checked.graph.name}")
        filename = f"<archc-generated {cls} {digest}>"
        module.__file__ = filename
        lines = source.splitlines(keepends=True)
        linecache.cache[filename] = (len(source), None, lines, filename)
        # dont_inherit: without it ``compile`` applies this file's ``from __future__ import
        # annotations`` to the generated code, whose annotations then stay strings ("Tensor"),
        # which FX writes as an unknown type name and TorchScript cannot read.
        code = compile(source, filename, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # archc's own code, not spec text
        sys.modules[name] = module
    return getattr(module, cls)


def build_module(
    checked: CheckedGraph, *, device: Any = None, dtype: Any = None, max_bytes: int | None = None
) -> nn.Module:
    """The module of a checked graph, initialised by the graph's ``init`` scheme. Raises
    :class:`ArchcError` (E502) before allocating when its tensors would need more than
    ``max_bytes`` (default: the memory of ``device``; archc.memory)."""
    from archc.backends.init import initialize
    from archc.memory import device_memory, too_large

    if checked.graph is None:
        raise ValueError("cannot build a module from a graph that failed to check")
    cls = network_class(checked)
    # Built on the meta device and then materialised: ``initialize`` writes every tensor once,
    # instead of after the layers' own default initialisation (halves VGG's build time).
    with torch.device("meta"):
        net = cls()
    if dtype is not None:
        net = net.to(dtype)
    limit = max_bytes if max_bytes is not None else device_memory(device)
    problem = too_large(net, checked.graph, limit, device)
    if problem is not None:
        raise ArchcError([problem])
    net.to_empty(device=device if device is not None else torch.get_default_device())
    initialize(net, checked.graph)
    return net


class _GraphChecked:
    def __init__(self, graph: ir.Graph) -> None:
        shaped = infer_shapes(graph)
        errors = [d for d in shaped.diagnostics if d.severity == "error"]
        if errors:
            raise ArchcError(errors)
        self.graph: ir.Graph | None = shaped.graph
        self.shapes = shaped.shapes


def build_graph(graph: ir.Graph, *, device: Any = None, dtype: Any = None) -> nn.Module:
    """The module of an IR graph built without the front end (shape inference runs here)."""
    return build_module(_GraphChecked(graph), device=device, dtype=dtype)
