"""Pictures of a checked graph: Mermaid (pastes into GitHub markdown) and Graphviz DOT.

Each node is a layer, labelled with its name, what it is and its output shape (optionally its
params and MACs); stages and blocks are clusters, from the dotted names (``layer1`` holds
``layer1.0``, which holds ``layer1.0.conv1``); edges are the real inputs, so branches and
residuals show as the DAG they are; the layers of a fused kernel group are shaded. ``depth``
collapses everything below the first ``depth`` parts of the names into one node. Nothing here
imports torch; DOT is built with pydot (the ``archc[graph]`` extra).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archc.check import Checked
from archc.nodes import fmt_shape
from archc.numbers import fmt_count
from archc.report import aux_sections, describe

if TYPE_CHECKING:
    import pydot

FUSED_FILL = "#dbeafe"
FUSED_STROKE = "#3b82f6"


@dataclass(frozen=True)
class Box:
    """One node of the picture: a layer, or (collapsed by depth) a stage or block."""

    name: str
    lines: tuple[str, ...]
    fused: bool


@dataclass(frozen=True)
class Picture:
    boxes: list[Box]
    edges: list[tuple[str, str]]
    title: str
    aux: tuple[str, ...] = ()
    """The auxiliary classifiers (``aux NAME:``): their clusters say so."""


AUX_NOTE = " (aux: training only)"


def picture(checked: Checked, depth: int | None = None, costs: bool = False) -> Picture:
    """The boxes and edges to draw for ``checked`` (which has a graph and its accounting)."""
    assert checked.graph is not None and checked.accounting is not None
    accounts = {la.name: la for la in checked.accounting.layers}

    def key(name: str) -> str:
        return name if depth is None else ".".join(name.split(".")[:depth])

    members: dict[str, list[str]] = {}
    for node in checked.graph.nodes:
        members.setdefault(key(node.name), []).append(node.name)
    nodes = {n.name: n for n in checked.graph.nodes}
    sections = aux_sections(checked.graph)
    boxes = []
    for name, group in members.items():
        last = accounts[group[-1]]
        if len(group) == 1 and group[0] == name:
            what = describe(nodes[name])
        else:
            what = f"{len(group)} layers" + (AUX_NOTE if name in sections else "")
        lines = [name, what, fmt_shape(last.output_shape)]
        if costs:
            params = sum(accounts[m].params for m in group)
            macs = sum(accounts[m].macs for m in group)
            lines.append(f"{params:,} params, {fmt_count(macs)} MACs")
        fused = len(group) == 1 and accounts[group[0]].group is not None
        boxes.append(Box(name, tuple(lines), fused))
    # A dict keeps the edges in order and finds a repeat in constant time (a list made a
    # picture of 100k nodes quadratic).
    edges: dict[tuple[str, str], None] = {}
    for node in checked.graph.nodes:
        for src in node.inputs:
            edge = (key(src), key(node.name))
            if edge[0] != edge[1]:
                edges[edge] = None
    return Picture(boxes, list(edges), checked.graph.name, tuple(sections))


OVERVIEW_BOXES = 50
"""The most boxes `archc graph` draws by default: a deeper network is drawn at the deepest
``--depth`` that fits (a 20-layer ResNet's 70 layers at full depth were a 489x7352 px ribbon)."""


def overview_depth(checked: Checked, most: int = OVERVIEW_BOXES) -> tuple[int, int] | None:
    """The depth to draw ``checked`` at by default and the boxes it gives; None when every
    layer fits in ``most`` boxes (or no depth collapses anything)."""
    assert checked.graph is not None
    names = [n.name.split(".") for n in checked.graph.nodes]
    if len(names) <= most:
        return None
    deepest = max(len(parts) for parts in names)
    counts = {d: len({tuple(parts[:d]) for parts in names}) for d in range(1, deepest)}
    fitting = [d for d, n in counts.items() if n <= most]
    depth = max(fitting) if fitting else min(counts, key=counts.get, default=None)
    if depth is None or counts[depth] >= len(names):
        return None
    return depth, counts[depth]


def _clusters(names: list[str]) -> dict[str, list[str]]:
    """Cluster (a dotted prefix, "" for the top) -> its boxes and sub-clusters, in order."""
    tree: dict[str, list[str]] = {"": []}
    for name in names:
        parts = name.split(".")
        parent = ""
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in tree:
                tree[prefix] = []
                tree[parent].append(prefix)
            parent = prefix
        tree[parent].append(name)
    return tree


def ident(name: str) -> str:
    """A node or cluster id both Mermaid and DOT accept unquoted (not unique: see `_Ids`)."""
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


class _Ids:
    """Unique ids: `ident` of a name, with ``_2``, ``_3``... where two names would share one
    (``"a-b"`` and ``a_b``, ``layer1.conv1`` and ``layer1_conv1``), so that two layers never
    become one node and a picture never shows a cycle the network lacks."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def assign(self, names: list[str], suffix: str = "") -> dict[str, str]:
        ids: dict[str, str] = {}
        for name in names:
            base = ident(name) + suffix
            candidate, k = base, 2
            while candidate in self.used:
                candidate, k = f"{base}_{k}", k + 1
            self.used.add(candidate)
            ids[name] = candidate
        return ids


def _cluster_names(tree: dict[str, list[str]], boxes: dict[str, Box]) -> list[str]:
    return [c for c in tree if c and c not in boxes]


# --- Mermaid ------------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    # Inside a quoted label `"` ends the label; Mermaid's entity for it keeps it.
    return text.replace('"', "#quot;")


def mermaid(pic: Picture) -> str:
    boxes = {b.name: b for b in pic.boxes}
    tree = _clusters([b.name for b in pic.boxes])
    out = ["flowchart TD"]
    ids = _Ids()
    box_id = ids.assign(list(boxes))
    cluster_id = ids.assign(_cluster_names(tree, boxes), "_c")

    def emit(cluster: str, indent: str) -> None:
        for item in tree[cluster]:
            if item in tree and item not in boxes:
                title = item + (AUX_NOTE if item in pic.aux else "")
                out.append(f'{indent}subgraph {cluster_id[item]}["{_mermaid_text(title)}"]')
                emit(item, indent + "  ")
                out.append(f"{indent}end")
            else:
                label = "<br/>".join(_mermaid_text(t) for t in boxes[item].lines)
                out.append(f'{indent}{box_id[item]}["{label}"]')
                if item in tree:  # a box that is also a prefix of others (rare): its contents
                    emit(item, indent)

    emit("", "  ")
    out += [f"  {box_id[a]} --> {box_id[b]}" for a, b in pic.edges]
    fused = [box_id[b.name] for b in pic.boxes if b.fused]
    if fused:
        out.append(f"  classDef fused fill:{FUSED_FILL},stroke:{FUSED_STROKE}")
        out.append(f"  class {','.join(fused)} fused")
    return "\n".join(out)


# --- DOT ----------------------------------------------------------------------------------------


def dot_graph(pic: Picture) -> pydot.Dot:
    import pydot

    boxes = {b.name: b for b in pic.boxes}
    tree = _clusters([b.name for b in pic.boxes])
    box_id = _Ids().assign(list(boxes))
    cluster_id = _Ids().assign(_cluster_names(tree, boxes))  # pydot adds `cluster_`
    graph = pydot.Dot(ident(pic.title), graph_type="digraph", rankdir="TB", label=pic.title)
    graph.set_node_defaults(shape="box", style="rounded,filled", fillcolor="white", fontsize="10")

    # Graphviz orders an Inception block's four branch clusters to cross the fewest edges,
    # which drew them 3, 2, 4, 1. With newrank it places sibling clusters in the reverse of
    # the order they are written (Graphviz 2.43; tests/test_graph.py checks the drawing
    # where `dot` is installed): branches written last to first read left to right in the
    # concat's order. Clusters that follow one another (stages) keep their order.
    graph.set("newrank", "true")
    linked = _linked(tree, boxes, pic.edges)

    def fill(parent: pydot.Dot | pydot.Cluster, cluster: str) -> None:
        items = tree[cluster]
        if cluster not in linked:
            items = _clusters_last_first(items, {i for i in items if i in tree and i not in boxes})
        for item in items:
            if item in tree and item not in boxes:
                aux = item in pic.aux
                title = item + (AUX_NOTE if aux else "")
                style = "rounded,dashed" if aux else "rounded"
                sub = pydot.Cluster(cluster_id[item], label=title, style=style, color="gray")
                fill(sub, item)
                parent.add_subgraph(sub)
                continue
            b = boxes[item]
            attrs = {"fillcolor": FUSED_FILL, "color": FUSED_STROKE} if b.fused else {}
            parent.add_node(pydot.Node(box_id[item], label=_dot_label(b.lines), **attrs))
            if item in tree:
                fill(parent, item)

    fill(graph, "")
    for a, b in pic.edges:
        graph.add_edge(pydot.Edge(box_id[a], box_id[b]))
    return graph


def _linked(tree: dict[str, list[str]], boxes: dict[str, Box], edges: list[tuple[str, str]]):
    """The clusters (``""``: the top) with an edge between two of their sub-clusters: those
    follow one another (stages); the sub-clusters of the others are parallel branches."""
    linked: set[str] = set()
    for a, b in edges:
        pa, pb = a.split("."), b.split(".")
        n = 0
        while n < min(len(pa), len(pb)) - 1 and pa[n] == pb[n]:
            n += 1
        parent = ".".join(pa[:n])
        ca, cb = ".".join(pa[: n + 1]), ".".join(pb[: n + 1])
        if all(c in tree and c not in boxes for c in (ca, cb)) and ca != cb:
            linked.add(parent)
    return linked


def _clusters_last_first(items: list[str], clusters: set[str]) -> list[str]:
    """``items`` with the clusters among them in reverse order, each in another's place."""
    flipped = iter([i for i in items if i in clusters][::-1])
    return [next(flipped) if i in clusters else i for i in items]


def _dot_label(lines: tuple[str, ...]) -> str:
    text = "\\n".join(t.replace("\\", "\\\\").replace('"', '\\"') for t in lines)
    return f'"{text}"'
