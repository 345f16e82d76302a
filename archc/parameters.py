"""Settings a command line gives a checked network: ``--set classes=10 --set input=32``, and the
spec's own params: ``--set variant=b3``.

A shipped network is written for its own input size and class count (ResNet-18: 224x224, 1000
classes); training it on other data needs both changed. ``classes`` sets the output count of the
layer that makes the class scores (the last FC, or a 1x1 conv classifier), ``input`` the input's
height and width (``32``, ``32x48``) or its whole shape (``32x32x1``, HxWxC as the spec writes
it). The network is checked again with the new values, so an input too small for the network is
the spec's own diagnostic. Declared shapes and claims are the spec's statements about its own
sizes and are not checked on a network resized this way.

Any other name is a param of the spec (``param variant = "b0"``): its value text goes to the
front end, which reads it by the kind of the param's default (a number, or a string: quoted or a
bare word) and reports a name the spec has no param of. No torch here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from archc import ir
from archc.check import Checked, check_graph, check_spec
from archc.passes.accounting import Dtype

NAMES = ("classes", "input")
"""The settings that resize a checked network; every other name is a spec param."""
_SIZE = re.compile(r"^\d{1,6}(x\d{1,6}){0,2}$")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SettingError(ValueError):
    """A ``--set`` the network cannot take; the message says why."""


def parse(items: list[str]) -> dict[str, str]:
    """``["classes=10", "variant=b3"]`` -> ``{"classes": "10", "variant": "b3"}``."""
    settings: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name or not value.strip():
            raise SettingError(f"--set {item!r}: write NAME=VALUE, e.g. classes=10 or variant=b3")
        if not _PARAM.fullmatch(name):
            raise SettingError(
                f"--set {item!r}: `{name}` is no name: a param's name is letters, digits and `_`"
            )
        if name in settings:
            raise SettingError(f"--set: `{name}` is set twice ({name}={settings[name]}, {item})")
        settings[name] = value.strip().lower() if name in NAMES else value.strip()
    return settings


def split(settings: Mapping[str, object]) -> tuple[dict[str, str], dict[str, object]]:
    """The resizing settings (``classes``, ``input``, as text) and the spec params."""
    resize = {k: str(v).strip().lower() for k, v in settings.items() if k in NAMES}
    return resize, {k: v for k, v in settings.items() if k not in NAMES}


def _sizes(name: str, value: str) -> list[int]:
    if not _SIZE.match(value) or any(int(v) < 1 for v in value.split("x")):
        raise SettingError(f"--set {name}={value}: write a whole number above 0 (or HxW, HxWxC)")
    return [int(v) for v in value.split("x")]


def _input_shape(old: tuple[int, ...], value: str) -> tuple[int, ...]:
    sizes = _sizes("input", value)
    if len(old) == 1:
        if len(sizes) != 1:
            raise SettingError(f"--set input={value}: this network's input is a vector of size N")
        return (sizes[0],)
    if len(sizes) == 1:
        return (old[0], sizes[0], sizes[0])
    if len(sizes) == 2:
        return (old[0], sizes[0], sizes[1])
    return (sizes[2], sizes[0], sizes[1])


def _classifier(graph: ir.Graph, output: str | None = None) -> ir.Node:
    """The layer whose outputs are the class scores: the output (or ``output``, an auxiliary
    classifier's), or the last layer before it with an output count (through softmax,
    flatten, dropout and pooling, which keep it)."""
    by_name = {n.name: n for n in graph.nodes}
    node = by_name[output or graph.output]
    while True:
        if hasattr(node, "out_features") or hasattr(node, "out_channels"):
            return node
        if len(node.inputs) != 1:
            raise SettingError(
                f"--set classes: `{node.name}` ({node.op}) joins several inputs, and archc "
                "cannot tell which layer makes the class scores"
            )
        node = by_name[node.inputs[0]]


def classifier_name(graph: ir.Graph) -> str:
    """The name of the layer that makes the class scores (``fc``); empty when there is none
    to tell."""
    try:
        return _classifier(graph).name
    except SettingError:
        return ""


def apply(
    checked: Checked, settings: dict[str, str], *, batch: int = 1, dtype: Dtype = "fp32"
) -> Checked:
    """``checked`` with the resizing settings applied and checked again."""
    graph = checked.graph
    if not settings or graph is None:
        return checked
    nodes = [n.model_copy(update={"declared": None, "claims": []}) for n in graph.nodes]
    if "input" in settings:
        nodes[0] = nodes[0].model_copy(
            update={"shape": _input_shape(tuple(graph.nodes[0].shape), settings["input"])}
        )
    if "classes" in settings:
        (count,) = _sizes("classes", settings["classes"])[:1]
        # The auxiliary classifiers score the same classes (torchvision's InceptionAux).
        for output in (graph.output, *graph.aux):
            target = _classifier(graph, output)
            field = "out_features" if hasattr(target, "out_features") else "out_channels"
            i = next(i for i, n in enumerate(nodes) if n.name == target.name)
            nodes[i] = nodes[i].model_copy(update={field: count})
    changed = graph.model_copy(update={"nodes": nodes, "totals": []})
    result = check_graph(
        changed, file=checked.file, sources=checked.sources, batch=batch, dtype=dtype
    )
    result.spec, result.family, result.params = checked.spec, checked.family, checked.params
    return result


def check_with(
    spec: str | os.PathLike[str],
    settings: Mapping[str, object],
    *,
    batch: int = 1,
    dtype: Dtype = "fp32",
) -> Checked:
    """:func:`archc.check.check_spec` with the spec params among ``settings``, then the
    resizing ones (only on a spec without errors)."""
    resize, params = split(settings)
    checked = check_spec(spec, batch=batch, dtype=dtype, params=params)
    return apply(checked, resize, batch=batch, dtype=dtype) if checked.ok else checked
