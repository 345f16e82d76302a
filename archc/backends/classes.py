"""The classes of the generated source: which parts of the module plan share a class, and what
that class's constructor takes.

Every instance of a spec block becomes one class named after the block, whose constructor builds
its own layers from what differs between its instances, as torchvision's
``Bottleneck(inplanes, planes, stride, downsample)`` does. What a constructor takes is found from
the instances themselves, so that it is exact for each of them: every module of an instance is
written as a tree of constructor calls (:class:`New`) over plain values, the trees of all
instances are laid over each other (:func:`unify`), and a value that differs between instances
becomes a parameter — the channels entering the block (``in_channels``), another parameter
times or divided by a whole number (``4 * channels``), or a parameter of its own named after
the constructor argument it fills (``stride``). A layer that only some instances have is built
behind a flag (``downsample``), a function step that only some have (the residual add) runs
behind one; a layer whose structure differs between instances is passed in, built where the
instance is. Instances whose forwards cannot be laid over each other (a step that is not an
optional pass-through) get classes of their own.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from typing import Any

from archc.backends.plan import Leaf, Part, Step


@dataclass
class Val:
    """A plain value in a constructor call: an int, a float, a bool, a string, None."""

    value: Any


@dataclass
class Seq:
    """A tuple or a list of values (``kernel_size=(1, 7)``, a permutation's dims)."""

    kind: type
    items: list[Tree]


@dataclass
class New:
    """A constructor call ``head(args…)``: the first ``positional`` arguments are written by
    position, the rest by name; a named argument equal to its entry in ``defaults`` is left
    out. ``node`` is the IR node a layer's call makes (the classifier is found by it)."""

    head: str
    args: list[Tree]
    names: list[str]
    positional: int
    defaults: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    order: tuple[str, ...] = ()
    """The constructor's argument names in its order (torch's), where known."""


Tree = Val | Seq | New


@dataclass
class Slot:
    """A value of a class's template: its value in each instance, and how the constructor
    writes it (a literal where they agree, else a parameter or arithmetic on one)."""

    values: list[Any]
    role: str
    expr: str | None = None

    @property
    def value(self) -> Any:
        """The value of the first instance that has it."""
        return next((v for v in self.values if v is not None), None)

    @property
    def constant(self) -> bool:
        """The same in every instance that has it (None: an instance without the layer)."""
        first = self.value
        return all(v is None or (type(v) is type(first) and v == first) for v in self.values)


@dataclass
class Maybe:
    """An item of an ``nn.Sequential`` that only some instances have (MobileNetV2's expansion
    conv, absent where the expansion ratio is 1), written under the flag ``flag``."""

    item: Template
    present: list[bool]
    index: int
    """Its place in the longest ``nn.Sequential`` (which names its flag: ``has_conv_0``)."""
    flag: str = ""


Template = Slot | Seq | New | Maybe
"""A tree whose values are slots: the trees of every instance laid over each other."""


@cache
def torch_defaults(module: str) -> dict[str, Any]:
    """The default arguments of ``torch.nn.<module>``'s constructor."""
    from torch import nn

    cls = getattr(nn, module, None)
    if cls is None:
        return {}
    params = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


@cache
def torch_names(module: str) -> tuple[str, ...]:
    """The names of ``torch.nn.<module>``'s constructor arguments, in order."""
    from torch import nn

    cls = getattr(nn, module, None)
    return () if cls is None else tuple(inspect.signature(cls).parameters)


def leaf_tree(leaf: Leaf, helper_names: list[str] | None = None) -> New:
    """The constructor call of a leaf, as a tree (``helper_names``: the argument names of a
    helper class's constructor)."""
    c = leaf.ctor
    if c.parameter:
        shape, value = c.args
        full = New("torch.full", [value_tree(shape), Val(value)], ["size", "fill_value"], 2)
        return New("nn.Parameter", [full], ["data"], 1, node=leaf.node.name)
    kwargs = dict(c.kwargs)
    if leaf.inplace:
        kwargs["inplace"] = True
    head = c.module if c.helper is not None else f"nn.{c.module}"
    known = torch_names(c.module) if c.helper is None else tuple(helper_names or ())
    names = [known[i] if i < len(known) else f"arg{i}" for i in range(len(c.args))]
    args = [value_tree(a) for a in c.args] + [value_tree(v) for v in kwargs.values()]
    defaults = torch_defaults(c.module) if c.helper is None else {}
    return New(head, args, names + list(kwargs), len(c.args), defaults, leaf.node.name, known)


def value_tree(value: Any) -> Tree:
    if isinstance(value, tuple | list):
        return Seq(type(value), [value_tree(v) for v in value])
    return Val(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def unify(trees: list[Tree], role: str = "") -> Template | None:
    """The template of ``trees`` (one per instance), or None when their structure differs."""
    first = trees[0]
    if all(isinstance(t, Val) for t in trees):
        return Slot([t.value for t in trees], role)  # type: ignore[union-attr]
    if isinstance(first, Seq):
        if not all(isinstance(t, Seq) and t.kind is first.kind for t in trees):
            return None
        if len({len(t.items) for t in trees}) != 1:  # type: ignore[union-attr]
            return None
        items = [unify([t.items[i] for t in trees], role) for i in range(len(first.items))]  # type: ignore[union-attr]
        return None if any(i is None for i in items) else Seq(first.kind, items)  # type: ignore[arg-type]
    if isinstance(first, New):
        return _unify_calls(trees)
    return None


def _unify_calls(trees: list[Tree]) -> New | None:
    first = trees[0]
    assert isinstance(first, New)
    if first.head == "nn.Sequential" and all(
        isinstance(t, New) and t.head == first.head for t in trees
    ):
        return _unify_sequentials(trees)  # type: ignore[arg-type]
    if not all(
        isinstance(t, New) and t.head == first.head and t.positional == first.positional
        for t in trees
    ):
        return None
    names = list(first.names)
    for t in trees:
        names += [n for n in t.names if n not in names]  # type: ignore[union-attr]
    columns: list[list[Tree]] = []
    for i, name in enumerate(names):
        column = []
        for t in trees:
            assert isinstance(t, New)
            if name in t.names:
                column.append(t.args[t.names.index(name)])
            elif i >= t.positional and name in t.defaults:
                column.append(value_tree(t.defaults[name]))
            else:
                return None
        columns.append(column)
    order = list(first.order)  # torch's order of the arguments written by name
    named = sorted(
        range(first.positional, len(names)),
        key=lambda i: order.index(names[i]) if names[i] in order else len(order) + i,
    )
    keep = list(range(first.positional)) + named
    names, columns = [names[i] for i in keep], [columns[i] for i in keep]
    args = [unify(c, n) for c, n in zip(columns, names)]
    if any(a is None for a in args):
        return None
    return New(first.head, args, names, first.positional, first.defaults, first.node, first.order)  # type: ignore[arg-type]


def _unify_sequentials(trees: list[New]) -> New | None:
    """The template of ``nn.Sequential`` calls whose items are those of the longest one, some
    left out (each instance's items matched to the longest's in order, by constructor)."""
    widest = max(trees, key=lambda t: len(t.args))
    n = len(widest.args)
    placed: list[list[int]] = []
    for t in trees:
        # Where each item goes: the placement that matches the most items by their layer
        # (constructor and kernel, channels aside), e.g. MobileNetV2's depthwise conv with the
        # longest's depthwise conv, not with its expansion conv.
        best: tuple[int, list[int]] | None = None
        for kept in combinations(range(n), len(t.args)):
            pairs = [(t.args[j], widest.args[i]) for j, i in enumerate(kept)]
            if any(_head(a) != _head(b) for a, b in pairs):
                continue
            score = sum(_alike(_layer(a), _layer(b)) for a, b in pairs)
            if best is None or score > best[0]:
                best = (score, list(kept))
        if best is None:
            return None
        placed.append(best[1])
    items: list[Template] = []
    for i in range(n):
        present = [i in kept for kept in placed]
        column = [t.args[kept.index(i)] for t, kept in zip(trees, placed) if i in kept]
        item = unify(column)
        if item is None:
            return None
        if not all(present):
            if maybes(item):
                return None  # one level of optional items is enough for the shipped specs
            for slot in slots(item):
                values = iter(slot.values)
                slot.values = [next(values) if has else None for has in present]
            item = Maybe(item, present, i)
        items.append(item)
    names = [f"arg{i}" for i in range(n)]
    return New("nn.Sequential", items, names, n)


def _head(tree: Tree) -> object:
    return tree.head if isinstance(tree, New) else type(tree)


def _alike(a: object, b: object) -> int:
    """How many of two layers' descriptions (:func:`_layer`) agree, part by part."""
    if isinstance(a, dict) and isinstance(b, dict):
        return sum(_alike(a[k], b[k]) for k in a.keys() & b.keys())
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return sum(_alike(x, y) for x, y in zip(a, b))
    return int(a == b)


def _layer(tree: Tree, role: str = "") -> object:
    """What a layer is, its channel counts aside (which differ from instance to instance)."""
    if isinstance(tree, Val):
        return "*" if role in CHANNELS or role == "groups" else (type(tree.value), tree.value)
    if isinstance(tree, Seq):
        return tuple(_layer(i, role) for i in tree.items)
    return (tree.head, {n: _layer(a, n) for n, a in zip(tree.names, tree.args)})


def maybes(template: Template | None) -> list[Maybe]:
    """The optional items of a template, outermost first."""
    if isinstance(template, Maybe):
        return [template, *maybes(template.item)]
    if isinstance(template, New | Seq):
        items = template.items if isinstance(template, Seq) else template.args
        return [m for item in items for m in maybes(item)]
    return []


def slots(template: Template | None) -> list[Slot]:
    """The slots of a template, in the order its source writes them."""
    if template is None:
        return []
    if isinstance(template, Slot):
        return [template]
    if isinstance(template, Maybe):
        return slots(template.item)
    items = template.items if isinstance(template, Seq) else template.args
    return [s for item in items for s in slots(item)]  # type: ignore[arg-type]


# --- forwards -------------------------------------------------------------------------------


def step_key(part: Part, step: Step) -> str:
    """A step's name within its part: its child's name, or its node's last name."""
    return step.child if step.child is not None else step.out.split(".")[len(part.path)]


def _outline(part: Part) -> list[tuple[str, tuple[Any, ...], list[str]]]:
    """Each step as (key, what it does, the keys of the steps it reads; ``""`` the entry)."""
    key_of = {part.entry: ""}
    steps = []
    for step in part.steps:
        key = step_key(part, step)
        op = step.node.op if step.node is not None and step.child is None else None
        what = (step.child is None, op, step.flatten, step.inplace, step.parameter)
        steps.append((key, what, [key_of[a] for a in step.args]))
        key_of[step.out] = key
    return steps


def outline_key(part: Part) -> tuple[Any, ...]:
    """A hashable form of the part's forward (:func:`_outline`): parts with equal keys merge
    alike, so a class's candidates are tested against one part of each distinct forward."""
    return tuple((key, what, tuple(reads)) for key, what, reads in _outline(part))


def merge(parts: list[Part]) -> tuple[Part, dict[str, list[bool]]] | None:
    """The part whose forward all of ``parts`` share, and for each step that only some of them
    have, which have it; None unless every other forward is that one without some steps, each
    of which passes its first input on where it is missing."""
    outlines = [_outline(p) for p in parts]
    widest = max(range(len(parts)), key=lambda i: len(outlines[i]))
    union = outlines[widest]
    keys = [k for k, _, _ in union]
    if len(set(keys)) != len(keys):
        return None
    optional: dict[str, list[bool]] = {}
    for outline in outlines:
        mine = {k: (what, reads) for k, what, reads in outline}
        if not set(mine) <= set(keys) or [k for k in keys if k in mine] != list(mine):
            return None
        passed: dict[str, str] = {}
        for key, what, reads in union:
            reads = [passed.get(r, r) for r in reads]
            if key not in mine:
                if not reads:
                    return None
                passed[key] = reads[0]
            elif mine[key] != (what, reads):
                return None
        exit_key = passed.get(keys[-1], keys[-1])
        if outline[-1][0] != exit_key:
            return None
        for key in keys:
            optional.setdefault(key, []).append(key in mine)
    return parts[widest], {k: v for k, v in optional.items() if not all(v)}


# --- what a class takes -------------------------------------------------------------------


CHANNELS = {
    "in_channels",
    "out_channels",
    "num_features",
    "in_features",
    "out_features",
    "num_channels",
    "normalized_shape",
    "size",
    "channels",
}
"""Constructor arguments that count channels: a parameter that fills one is ``in_channels``
when it is the channels entering the block, else ``channels``."""


@dataclass
class Param:
    """A constructor parameter of a generated class and its value in each instance."""

    name: str
    values: list[Any]
    default: Any = None
    has_default: bool = False
    module: bool = False
    """A layer passed in (its structure differs between instances), not a value."""


@dataclass
class ClassInfo:
    """A generated class: its instances, the one whose forward it prints, and how it builds
    each child (a template, or None for a child passed in)."""

    name: str
    parts: list[Part]
    model: Part
    optional: dict[str, list[bool]]
    params: list[Param] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    """Optional step -> the parameter that says whether it runs."""
    children: dict[str, Template | None] = field(default_factory=dict)
    """Each child's template; None for a child passed in (see ``passed``)."""
    passed: dict[str, str] = field(default_factory=dict)
    """Child passed in -> its parameter."""
    done: bool = False


def value_params(info: ClassInfo, entry: list[int], taken: set[str]) -> list[Param]:
    """A parameter for each value that differs between the instances, unless it is another
    parameter, or one times or divided by a whole number."""
    params: list[Param] = []
    for key, template in info.children.items():
        present = info.optional.get(key, [True] * len(info.parts))
        for slot in slots(template):
            values = _spread(slot.values, present)
            if slot.constant:
                # A layer only some instances have takes a parameter of the same name that
                # agrees (the downsample's stride is the block's), though its value never varies.
                if None in values:
                    named = [p for p in params if p.name.split("_")[0] == slot.role]
                    slot.expr = _expression(values, named)
                continue
            slot.expr = _expression(values, params)
            if slot.expr is not None:
                continue
            role = slot.role
            known = [(v, e) for v, e in zip(values, entry) if v is not None]
            if role in CHANNELS:
                role = "in_channels" if all(v == e for v, e in known) else "channels"
            param = Param(local(role, taken), values)
            if role == "in_channels":  # an instance without the layer: its channels all the same
                param.values = entry
            elif slot.role in CHANNELS:
                param.values = [known[0][0] if v is None else v for v in values]
            else:
                known_values = [v for v, _ in known]
                param.default = max(known_values, key=known_values.count)
                param.has_default = True
                param.values = [param.default if v is None else v for v in values]
            params.append(param)
            slot.expr = param.name
    return params


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _spread(values: list[Any], present: list[bool]) -> list[Any]:
    """Values of the instances that have a layer, spread over all instances (None where an
    instance lacks it), so that parameters line up with the class's instances."""
    it = iter(values)
    return [next(it) if has else None for has in present]


def _expression(values: list[Any], params: list[Param]) -> str | None:
    """``values`` as a parameter already made, or one times or divided by a whole number."""

    def agree(p: Param, f: Any) -> bool:
        pairs = zip(values, p.values)
        return all(v is None or (q is not None and same_value(v, f(q))) for v, q in pairs)

    ints = all(v is None or type(v) is int for v in values)
    for p in params:
        if agree(p, lambda q: q):
            return p.name
    for p in params:
        if not ints or not all(q is None or type(q) is int for q in p.values):
            continue
        for k in range(2, 65):
            if agree(p, lambda q, k=k: k * q):
                return f"{k} * {p.name}"
            if all(q is None or q % k == 0 for q in p.values) and agree(p, lambda q, k=k: q // k):
                return f"{p.name} // {k}"
    return None


def local(name: str, taken: set[str]) -> str:
    """A parameter name from ``name``, clear of keywords, builtins and ``taken``."""
    base = local_name(name)
    result, n = base, 1
    while result in taken:
        n += 1
        result = f"{base}_{n}"
    taken.add(result)
    return result


def local_name(name: str) -> str:
    base = re.sub(r"\W", "_", name)
    return base if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", base) else "layer_" + base
