"""The module plan: a checked graph as a tree of PyTorch modules, which both backends share.

Node names are dotted paths (``layer1.0.conv1``); every prefix is a *part* of the network — a
stage, a block instance, a branch, a shortcut body — and every node a *leaf* module under its
part (or a function of its inputs: concat, add; flatten outside an ``nn.Sequential``). Each part
reads one value (its entry) and gives one (its last node), since the language builds every graph
from chains, residuals and branches.
A part whose steps are a chain of its children becomes an ``nn.Sequential``; any other part, and
the network itself, a class of its own with a straight-line ``forward`` in the style of
torchvision's models. The source backend prints the plan; ``archc.load`` runs that source, so
the two cannot drift.

Which parts share a class, and what its constructor takes, the source backend decides
(:mod:`archc.backends.classes`): one class per block, or, outside blocks, per forward, named
after the part (``Features``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from archc import ir
from archc.diagnostics import ArchcError, Diagnostic, error
from archc.ops import op_of
from archc.ops.base import Ctor
from archc.spans import Span


@dataclass
class Leaf:
    """One node's module."""

    node: ir.Node
    ctor: Ctor
    inplace: bool = False
    """A ReLU that may overwrite its input (nobody else reads it; see ``_inplace``)."""


@dataclass
class Step:
    """One line of a part's forward: ``out = self.child(args…)`` or a function of ``args``."""

    out: str
    args: list[str]
    child: str | None = None
    node: ir.Node | None = None
    """The node of a function step (concat, add)."""
    flatten: bool = False
    inplace: bool = False
    """A function step that may overwrite its first argument (see ``_may_overwrite``)."""
    parameter: bool = False
    """The child is a bare parameter that multiplies the argument (a layer scale)."""


@dataclass
class Part:
    path: tuple[str, ...]
    entry: str
    children: dict[str, Leaf | Part] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    block: str | None = None
    """The spec block this part instantiates, if any (its class is named after it)."""
    class_name: str = ""

    @property
    def exit(self) -> str:
        return self.steps[-1].out

    @property
    def sequential(self) -> bool:
        """An ``nn.Sequential``: a chain of its children, named 0, 1, ..., each called once on
        the previous one's output."""
        previous = self.entry
        for step in self.steps:
            if step.child is None or step.flatten or step.parameter or step.args != [previous]:
                return False
            previous = step.out
        names = list(self.children)
        return names == [str(i) for i in range(len(self.steps))]


def _span(graph: ir.Graph, node: ir.Node) -> Span:
    return node.span or Span(file=graph.file, line=1, column=1, end_line=1, end_column=2)


def _may_overwrite(graph: ir.Graph, node: ir.Node, readers: dict[str, int]) -> bool:
    """Whether ``node`` (an ``in_place`` op: an activation such as ReLU, or add) may write into
    its first input: nobody else reads that, and its producer made a fresh tensor whose backward
    does not need it (not a view, not an activation's output)."""
    if not op_of(node).in_place:
        return False
    src = node.inputs[0]
    producer = graph.node(src)
    safe = (ir.Conv, ir.Linear, ir.BatchNorm, ir.MaxPool, ir.AvgPool, ir.Concat, ir.Add)
    return isinstance(producer, safe) and readers[src] == 1 and src != graph.output


class _Planner:
    def __init__(self, graph: ir.Graph, shapes: dict[str, ir.Shape]) -> None:
        self.graph = graph
        self.shapes = shapes
        self.problems: list[Diagnostic] = []
        self.readers: dict[str, int] = {}
        self.read_by: dict[str, list[str]] = {}
        """Each node's readers by name: a part asks which of its nodes are read from outside
        it (a set of every later input rebuilt per part made 50,000 instances quadratic)."""
        for node in graph.nodes:
            for src in node.inputs:
                self.readers[src] = self.readers.get(src, 0) + 1
                self.read_by.setdefault(src, []).append(node.name)

    def problem(self, node: ir.Node, message: str) -> None:
        self.problems.append(
            error(
                "E501",
                message,
                _span(self.graph, node),
                "rename the layer: names become attributes of torch modules",
            )
        )

    def plan(self) -> Part:
        nodes = self.graph.nodes[1:]
        root = self.part((), self.graph.nodes[0].name, nodes, 0)
        if self.problems:
            raise ArchcError(self.problems)
        return root

    def part(self, path: tuple[str, ...], entry: str, nodes: list[ir.Node], outer: int) -> Part:
        """The part at ``path`` holding ``nodes`` (in graph order), entered by ``entry``;
        ``outer`` calls are shared by all of the parent's nodes."""
        part = Part(path, entry)
        part.block, shared = self.block_of(part, nodes, outer)
        depth = len(path)
        groups: dict[str, list[ir.Node]] = {}
        order: list[str] = []
        for node in nodes:
            key = node.name.split(".")[depth]
            if key not in groups:
                order.append(key)
                groups[key] = []
            elif order[-1] != key:
                self.problem(node, f"the layers of `{'.'.join((*path, key))}` are not contiguous")
            groups[key].append(node)
        for key in order:
            members = groups[key]
            if len(members) == 1 and members[0].name.count(".") == depth:
                self.leaf(part, key, members[0])
            else:
                self.child_part(part, key, members, shared)
        if not path or not part.sequential:  # the network is a class even when it is a chain
            _call_functions(part)
        return part

    def leaf(self, part: Part, key: str, node: ir.Node) -> None:
        x = self.shapes[node.inputs[0]]
        op = op_of(node)
        ctor = op.ctor(node, x, self.shapes[node.name])
        inplace = _may_overwrite(self.graph, node, self.readers)
        if ctor is None:
            part.steps.append(Step(node.name, list(node.inputs), node=node, inplace=inplace))
            return
        if _shadows(key):
            self.problem(node, f"layer name {node.name!r} collides with an nn.Module attribute")
        part.children[key] = Leaf(node, ctor, inplace and op.activation)
        step = Step(node.name, list(node.inputs), child=key, flatten=ctor.flatten)
        step.parameter = ctor.parameter
        part.steps.append(step)

    def child_part(self, part: Part, key: str, members: list[ir.Node], shared: int) -> None:
        names = {n.name for n in members}
        outside = {i for n in members for i in n.inputs if i not in names}
        if len(outside) != 1:
            self.problem(members[0], f"`{members[0].name}` reads more than one outer value")
            return
        (entry,) = outside
        read = [
            n.name
            for n in members
            if n.name == self.graph.output
            or any(r not in names for r in self.read_by.get(n.name, ()))
        ]
        if read != [members[-1].name] and read:
            self.problem(members[0], f"`{members[0].name}` gives more than one value")
        if _shadows(key):
            self.problem(members[0], f"part name {key!r} collides with an nn.Module attribute")
        child = self.part((*part.path, key), entry, members, shared)
        part.children[key] = child
        part.steps.append(Step(members[-1].name, [entry], child=key))

    def block_of(self, part: Part, nodes: list[ir.Node], outer: int) -> tuple[str | None, int]:
        """The block ``part`` instantiates, and how many calls all its nodes share. A part is
        an instance when its nodes share a call their parent's do not, or when it is one of a
        repeated call's numbered instances (``layer1.0``), whose frames are alike."""
        frames = [n.origin for n in nodes]
        common = min((len(f) for f in frames), default=0)
        while common and any(f[:common] != frames[0][:common] for f in frames):
            common -= 1
        if not part.path or common == 0:
            return None, common
        block = frames[0][common - 1].block
        if common > outer and _instances(nodes, len(part.path), block):
            return None, outer  # a stage of a repeated call's named instances (denselayer1, ...)
        if common > outer or part.path[-1].isdigit():
            return block, common
        return None, common


def _instances(nodes: list[ir.Node], depth: int, block: str) -> bool:
    """Whether ``nodes`` are several instances of ``block`` named as a repeated call names them
    (``denselayer1``, ``denselayer2``, ...), rather than one instance."""
    keys = {n.name.split(".")[depth] for n in nodes if n.name.count(".") > depth}
    named = re.compile(rf"{re.escape(block)}\d+")
    return len(keys) > 1 and all(named.fullmatch(k) for k in keys)


def _call_functions(part: Part) -> None:
    """In a part with a forward of its own, ``functional`` leaves become function steps, as
    torchvision's forwards call ``torch.flatten(x, 1)``."""
    for step in part.steps:
        if step.child is None:
            continue
        leaf = part.children[step.child]
        if isinstance(leaf, Leaf) and op_of(leaf.node).functional:
            del part.children[step.child]
            step.child, step.node = None, leaf.node


@cache
def _module_attributes() -> frozenset[str]:
    import torch  # here: planning a module is the first step that needs torch

    return frozenset(dir(torch.nn.Module()))


def _shadows(name: str) -> bool:
    """Whether a child named ``name`` would shadow an attribute of ``nn.Module``."""
    return name in _module_attributes()


def camel(name: str) -> str:
    """``bottleneck_v1_5`` -> ``BottleneckV1_5``; ``features`` -> ``Features``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Part"
    return "Part" + text if text[0].isdigit() else text


def plan(graph: ir.Graph, shapes: dict[str, ir.Shape]) -> Part:
    """The module tree of a checked graph (every shape known, shortcuts resolved)."""
    return _Planner(graph, shapes).plan()
