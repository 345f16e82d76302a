"""The torch backend: a checked graph becomes a plain ``nn.Module``, by running the very source
``archc compile`` writes (:mod:`archc.backends.source`).

The source is archc's own output — names validated, nothing from the spec unescaped — compiled
under a name of its own (``archc.generated.<class>_<digest>``) that is registered in
``sys.modules`` and ``linecache``, so ``inspect`` (and with it TorchScript) finds the source of
its classes. That module exists only in the process that built it, so its classes pickle by
value: an instance pickles as :func:`rebuild` of the IR graph (JSON) the classes were generated
from, its class's name and its state, and a fresh process generates and compiles the classes
again (``torch.save(model)`` then ``torch.load(path, weights_only=False)``). The module is built
on the meta device, its size checked (archc.memory), then materialised and initialised by the
graph's ``init`` scheme (archc.backends.init).
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


GENERATED = "archc.generated"
"""The package name of the generated modules (which exist only in ``sys.modules``)."""

_graphs: dict[str, ir.Graph] = {}
"""The graph each generated module was compiled from, by module name."""
_graph_texts: dict[str, str] = {}
"""The JSON of ``_graphs[name]``, made when a module of it is first pickled or copied: one
string object, which pickle then writes once however many parts refer to it."""
_modules_by_text: dict[str, str] = {}
"""The inverse, graph JSON -> module name: unpickling in the process that built the classes
(and ``copy.deepcopy``) finds them without generating the source again."""


def network_class(checked: CheckedGraph) -> type[nn.Module]:
    """The network's class, from the generated source (compiled once per distinct source)."""
    from archc.backends.source import class_name, generate_source

    assert checked.graph is not None
    source = generate_source(checked)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    cls = class_name(checked.graph.name)
    name = f"{GENERATED}.{cls}_{digest}"
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
        for value in list(module.__dict__.values()):
            if generated(value):
                value.__reduce_ex__ = _reduce_ex  # type: ignore[method-assign,assignment]
        sys.modules[name] = module
        _graphs[name] = checked.graph
    return getattr(module, cls)


def generated(value: object) -> bool:
    """Whether ``value`` is a module class that archc generated and compiled in this process
    (which pickles by :func:`rebuild`)."""
    return (
        isinstance(value, type)
        and issubclass(value, nn.Module)
        and value.__module__.startswith(GENERATED + ".")
    )


def _reduce_ex(self: nn.Module, protocol: int) -> tuple[Any, ...]:
    """Pickle (and copy) a generated module as :func:`rebuild` of its graph, its class's name
    and its state, since no other process can import its class by name. The state goes with
    the arguments rather than after them, so ``torch.load(weights_only=True)`` needs only
    :func:`rebuild` allowed, not classes that a fresh process does not have yet."""
    if not generated(type(self)):  # a user's subclass, importable by name
        return object.__reduce_ex__(self, protocol)
    name = type(self).__module__
    text = _graph_texts.get(name)
    if text is None:
        text = _graph_texts[name] = _graphs[name].to_json(indent=None)
        _modules_by_text.setdefault(text, name)
    return rebuild, (text, type(self).__qualname__, self.__dict__)


def rebuild(graph_json: str, class_name: str, state: dict[str, Any]) -> nn.Module:
    """The instance of class ``class_name`` of the classes generated from the IR graph
    ``graph_json``, with ``state`` (its ``__dict__``, as pickled): what a pickled archc module
    unpickles by. It compiles only archc's own source, generated from the validated graph (no
    code from the file runs), so ``torch.load(weights_only=True)`` may be allowed to call it
    (archc.safe_globals)."""
    name = _modules_by_text.get(graph_json)
    if name is None:
        name = network_class(_GraphChecked(ir.Graph.from_json(graph_json))).__module__
        _modules_by_text[graph_json] = name
    cls = getattr(sys.modules[name], class_name, None)
    if not generated(cls):
        raise TypeError(
            f"the graph of {class_name!r} generates no such module class with this version of "
            "archc; save and load the state_dict, which does not depend on the classes"
        )
    assert isinstance(cls, type)
    module = cls.__new__(cls)
    module.__setstate__(state)
    return module


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
