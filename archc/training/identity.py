"""What makes a run the same run: the elaborated network and the recipe, not the spec's text.

The network is the graph after elaboration (imports, blocks and defaults expanded), each layer
with its settings and output shape, without source positions, declared shapes or claims: a
comment, a blank line or a reformatted spec is the same network; an imported block that changed
is not. ``--resume`` compares the two and says what differs, in one line. The spec params the
network was read with (``--set variant=b1``; every param of the file, defaults included) are
recorded beside it and compared first, so that a family's variant is named as such.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from archc import ir
from archc.recipe_ir import Recipe

_NOT_THE_NETWORK = frozenset({"span", "origin", "declared", "claims"})


def network(graph: ir.Graph, shapes: dict[str, Any]) -> dict[str, Any]:
    """The network as plain JSON values: init, output and each layer's settings and shape."""
    layers = []
    for node in graph.nodes:
        fields = node.model_dump(mode="json")
        kept = {k: v for k, v in fields.items() if k not in _NOT_THE_NETWORK}
        kept["shape"] = list(shapes.get(node.name, ()))
        layers.append(kept)
    return {"init": graph.init, "output": graph.output, "layers": layers}


def params(checked: Any) -> dict[str, str]:
    """The spec params of a checked network, each as the spec would write it
    (``{"variant": '"b1"'}``); empty for a spec without ``param`` lines."""
    from archc.families import effective

    return effective(checked.family, checked.params)


def params_difference(run: dict[str, str], spec: dict[str, str]) -> str | None:
    """``variant "b1" -> "b0"`` for the params that differ, None when none does."""
    changes = [
        f"{k} {run.get(k, '(none)')} -> {spec.get(k, '(none)')}"
        for k in sorted(set(run) | set(spec))
        if run.get(k) != spec.get(k)
    ]
    return "; ".join(changes) if changes else None


def recipe_values(recipe: Recipe) -> dict[str, Any]:
    values = recipe.model_dump(mode="json")
    values.pop("line")
    return values


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _shown(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value)) or "-"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def network_difference(run: dict[str, Any], spec: dict[str, Any]) -> str:
    """What differs between the run's network and the spec's, in a few words."""
    old = {layer["name"]: layer for layer in run["layers"]}
    new = {layer["name"]: layer for layer in spec["layers"]}
    only_run = [n for n in old if n not in new]
    only_spec = [n for n in new if n not in old]
    if only_run or only_spec:
        return (
            f"layers only in the run: {', '.join(only_run[:5]) or 'none'}; "
            f"only in the spec: {', '.join(only_spec[:5]) or 'none'}"
        )
    for name, layer in new.items():
        before = old[name]
        keys = [k for k in sorted(set(layer) | set(before)) if layer.get(k) != before.get(k)]
        if keys:
            changes = ", ".join(
                f"{k} {_shown(before.get(k))} -> {_shown(layer.get(k))}" for k in keys[:3]
            )
            return f"layer `{name}`: {changes}"
    if [x["name"] for x in run["layers"]] != list(new):
        return "the order of the layers"
    for key in ("init", "output"):
        if run[key] != spec[key]:
            return f"{key} {run[key]} -> {spec[key]}"
    return "the network"


def recipe_difference(run: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """``name old -> new`` for each recipe setting that differs (nested ones dotted)."""
    changes = []
    for key in sorted(set(run) | set(spec)):
        a, b = run.get(key), spec.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += [f"{key}.{c}" for c in recipe_difference(a, b)]
        elif a != b:
            changes.append(f"{key} {_shown(a)} -> {_shown(b)}")
    return changes


def checkpoint_difference(
    state: dict[str, Any], graph: ir.Graph, shapes: dict[str, Any]
) -> str | None:
    """None when the checkpoint ``state`` records the network of ``graph``, else what differs
    (layer names or shapes), or that its record is damaged."""
    spec = network(graph, shapes)
    if state.get("graph_hash") == digest(spec):
        return None
    try:
        return network_difference(json.loads(state["network"]), spec)
    except (ValueError, KeyError, TypeError):
        return "its network record is damaged"
