"""The source backend: a checked graph becomes a standalone, plain PyTorch file.

The file imports only torch. It prints the module plan (:mod:`archc.backends.plan`): standard
``torch.nn`` layers as siblings under the spec's names, ``nn.Sequential`` for every part that is
a chain, and for the network and every other part a class with a straight-line ``forward`` in
the style of torchvision's models — no caches, no mode-dependent branches, so FX, TorchScript,
torch.export, torchinfo, feature extractors and checkpoints see an ordinary model. Each spec
block is one class whose constructor builds its layers from what differs between its instances
(:mod:`archc.backends.classes`); equal blocks in a row are one comprehension; the network takes
``num_classes``; the spec's comments are docstrings.
:func:`archc.load` runs this very source (:mod:`archc.backends.torch_module`), so the two
cannot differ. Run as a script, the file builds the model and prints its summary line.

Nothing from the spec reaches the code unescaped. Node names are validated by the IR as dotted
paths of ASCII identifiers and digits; a name becomes attribute syntax only when it is a plain
identifier (not a keyword, no leading underscore that Python would mangle), otherwise it is a
string literal (``getattr(self, "0")``, ``self.add_module("class", ...)``). Local variables and
constructor parameters are archc's names, kept clear of keywords, builtins and the imports;
class names are sanitised identifiers; the source path appears only as an ``ascii()`` literal
inside a comment, the spec's comments only in escaped, ASCII-only docstrings.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archc import ir
from archc.backends.classes import (
    ClassInfo,
    Maybe,
    New,
    Param,
    Seq,
    Slot,
    Template,
    Tree,
    Val,
    leaf_tree,
    local,
    maybes,
    merge,
    outline_key,
    same_value,
    step_key,
    unify,
    value_params,
    value_tree,
)
from archc.backends.plan import Leaf, Part, Step, camel, plan
from archc.backends.recipe_source import recipe_lines
from archc.diagnostics import ArchcError
from archc.nodes import fmt_shape
from archc.ops import op_of
from archc.ops.helpers import SOURCES as HELPERS

LINE = 100
MAX_FLAGS = 3
"""The most steps a class may run by flag (a downsample, a residual add, an SE): instances
that differ by more get classes of their own (DenseNet's dense blocks of 6, 12, 24, 16 layers)."""
# Module-level names of the generated file (``recipe``: the train: section's function).
_IMPORTED = {"torch", "nn", "Tensor", "self", "x", "out", "fused", "model", "recipe", "_"}
_IMPORTED |= {"WithAux"}  # the recipe's loss of a network with aux classifiers
_IMPORTED |= set(HELPERS)
_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | _IMPORTED
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _quote(text: str) -> str:
    """A double-quoted, ASCII-only Python literal of ``text`` (ruff's quote style)."""
    lit = ascii(text)
    if lit.startswith("'") and '"' not in lit:
        lit = '"' + lit[1:-1] + '"'
    return lit


def _plain(part: str) -> bool:
    return bool(_IDENT.fullmatch(part)) and not keyword.iskeyword(part)


def _attr(base: str, name: str) -> str:
    return f"{base}.{name}" if _plain(name) else f"getattr({base}, {_quote(name)})"


def class_name(name: str) -> str:
    """The network's name as a Python class name."""
    ident = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "Network"
    if ident[0].isdigit():
        ident = "Net" + ident
    return ident + "_" if ident in _RESERVED else ident


# --- expressions, formatted the way ruff formats them ------------------------------------------


@dataclass
class Call:
    """``head(args…)``; an argument is source text or another call. ``brackets`` ``{}``
    make it a dict display (``**{"block1-0": …}``, children whose names are not identifiers)."""

    head: str
    args: list[str | Call | Repeat | When] = field(default_factory=list)
    brackets: str = "()"


@dataclass
class Repeat:
    """``*[item for _ in range(n)]``: ``n`` equal layers in an ``nn.Sequential``."""

    item: str | Call
    n: int


@dataclass
class When:
    """``*([item] if flag else [])``: a layer of an ``nn.Sequential`` that only some of a
    class's instances have."""

    item: str | Call
    flag: str


def _flat(e: str | Call | Repeat | When) -> str:
    if isinstance(e, str):
        return e
    if isinstance(e, Repeat):
        return f"*[{_flat(e.item)} for _ in range({e.n})]"
    if isinstance(e, When):
        return f"*([{_flat(e.item)}] if {e.flag} else [])"
    return f"{e.head}{e.brackets[0]}{', '.join(_flat(a) for a in e.args)}{e.brackets[1]}"


def _lines(
    e: str | Call | Repeat | When, indent: str, prefix: str = "", suffix: str = ""
) -> list[str]:
    """``prefix + e + suffix`` at ``indent``, split like ruff: on one line if it fits, else the
    arguments on one indented line, else one argument per line with a trailing comma."""
    one = f"{indent}{prefix}{_flat(e)}{suffix}"
    if isinstance(e, Repeat) and len(one) > LINE:
        inner = indent + "    "
        loop = f"{inner}for _ in range({e.n})"
        return [f"{indent}{prefix}*[", *_lines(e.item, inner), loop, f"{indent}]{suffix}"]
    if isinstance(e, When) and len(one) > LINE:
        inner, deeper = indent + "    ", indent + "        "
        item = [f"{inner}[", *_lines(e.item, deeper), f"{inner}]"]
        if len(f"{inner}[{_flat(e.item)}]") <= LINE:
            item = [f"{inner}[{_flat(e.item)}]"]
        condition = [f"{inner}if {e.flag}", f"{inner}else []"]
        return [f"{indent}{prefix}*(", *item, *condition, f"{indent}){suffix}"]
    if len(one) <= LINE or isinstance(e, str | Repeat | When) or not e.args:
        return [one]
    inner = indent + "    "
    hugged = f"{inner}{', '.join(_flat(a) for a in e.args)}"
    first, last = e.brackets
    if len(hugged) <= LINE:
        return [f"{indent}{prefix}{e.head}{first}", hugged, f"{indent}{last}{suffix}"]
    body = [line for a in e.args for line in _lines(a, inner, suffix=",")]
    return [f"{indent}{prefix}{e.head}{first}", *body, f"{indent}{last}{suffix}"]


def _kw(name: str, value: str | Call, sep: str = "=") -> str | Call:
    """A keyword argument ``name=value`` (or a dict entry, with ``sep`` ``: ``)."""
    if isinstance(value, str):
        return f"{name}{sep}{value}"
    return Call(f"{name}{sep}{value.head}", value.args, value.brackets)


# --- the writer -----------------------------------------------------------------------------


class _Writer:
    def __init__(
        self,
        graph: ir.Graph,
        shapes: dict[str, ir.Shape],
        root: Part,
        texts: dict[str, str],
        member: str | None = None,
    ) -> None:
        self.graph = graph
        self.member = member
        """The builder name when the spec is a family's (``resnet18`` of torchvision/resnet)."""
        self.shapes = shapes
        self.root = root
        self.texts = texts
        self.network = class_name(graph.name)
        self.definitions: list[list[str]] = []
        self.taken = set(_RESERVED) | {self.network}
        self.helpers: dict[str, str] = {}
        """Classes beyond torch.nn that some layer needs (LayerNorm2d, ...): name -> source."""
        self.info: dict[int, tuple[ClassInfo, int]] = {}
        """id(part) -> its class and its index among the class's instances."""
        self.group(root)

    # which parts share a class

    def group(self, root: Part) -> None:
        groups: dict[Any, list[Part]] = {}
        stack = [root]
        while stack:
            part = stack.pop()
            children = [c for c in part.children.values() if isinstance(c, Part)]
            stack.extend(reversed(children))
            if part is root or part.sequential:
                continue
            key = part.block or ("\n".join(self.forward(part, {})), tuple(part.children))
            groups.setdefault(key, []).append(part)
        for parts in groups.values():
            for cluster in _clusters(parts):
                self.new_class(cluster)

    def new_class(self, parts: list[Part]) -> None:
        merged = merge(parts)
        assert merged is not None
        first = parts[0]
        path = [camel(first.path[0]), *(re.sub(r"\W", "_", p) for p in first.path[1:])]
        base = camel(first.block) if first.block else "_".join(path)
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}{n}"
        self.taken.add(name)
        info = ClassInfo(name, parts, merged[0], merged[1])
        for i, part in enumerate(parts):
            self.info[id(part)] = (info, i)

    # constructor calls as trees

    def tree(self, child: Leaf | Part) -> Tree:
        if isinstance(child, Leaf):
            c = child.ctor
            if c.helper is not None:
                self.helpers.setdefault(c.module, c.helper)
            return leaf_tree(child, _helper_names(c.helper) if c.helper else None)
        if child.sequential:
            items = [self.tree(c) for c in child.children.values()]
            return New("nn.Sequential", items, [f"arg{i}" for i in range(len(items))], len(items))
        info, i = self.info[id(child)]
        self.finish(info)
        args: list[Tree] = []
        for p in info.params:
            value = p.values[i]
            args.append(value if isinstance(value, Val | Seq | New) else value_tree(value))
        required = sum(not p.has_default for p in info.params)
        defaults = {p.name: p.default for p in info.params if p.has_default}
        return New(info.name, args, [p.name for p in info.params], required, defaults)

    # a class's constructor

    def finish(self, info: ClassInfo) -> None:
        """Work out the parameters of ``info`` (its children's classes first)."""
        if info.done:
            return
        info.done = True
        taken = set(_RESERVED)
        flags: list[Param] = []
        passed: list[Param] = []
        for key, present in info.optional.items():
            if key not in info.model.children:
                flag = local("residual" if _is_add(info.model, key) else f"use_{key}", taken)
                info.flags[key] = flag
                flags.append(Param(flag, present, False, True))
        for key in info.model.children:
            present = info.optional.get(key, [True] * len(info.parts))
            trees = [self.tree(p.children[key]) for p, has in zip(info.parts, present) if has]
            template = unify(trees)
            info.children[key] = template
            if template is None:  # passed in, built where the instance is
                values: list[Any] = [
                    self.tree(p.children[key]) if has else Val(None)
                    for p, has in zip(info.parts, present)
                ]
                optional = not all(present)
                info.passed[key] = local(key, taken)
                passed.append(Param(info.passed[key], values, None, optional, module=True))
            elif key in info.optional:
                flag = local(key, taken)
                info.flags[key] = flag
                flags.append(Param(flag, present, False, True))
        for key, template in info.children.items():
            present = info.optional.get(key, [True] * len(info.parts))
            for maybe in maybes(template):
                has = iter(maybe.present)
                full = [bool(p and next(has)) for p in present]
                same = [p for p in flags if p.values == full]
                if same:
                    maybe.flag = same[0].name
                    continue
                maybe.flag = local(f"has_{key}_{maybe.index}", taken)
                flags.append(Param(maybe.flag, full, False, True))
        entry = [self.shapes[p.entry][0] for p in info.parts]
        values = value_params(info, entry, taken)
        # Python's order: the parameters without a default first.
        order = [*values, *passed, *flags]
        info.params = [p for p in order if not p.has_default] + [p for p in order if p.has_default]
        self.definitions.append(self.class_lines(info))

    def class_lines(self, info: ClassInfo) -> list[str]:
        ind = " " * 8
        signature = Call("def __init__", ["self", *(_declaration(p) for p in info.params)])
        lines = [f"class {info.name}(nn.Module):", *self.docstring(info), ""]
        lines += _lines(signature, "    ", suffix=" -> None:")
        lines.append(f"{ind}super().__init__()")
        for key, flag in info.flags.items():
            if key not in info.model.children:
                lines.append(f"{ind}self.{flag} = {flag}")
        for key, template in info.children.items():
            if template is None:
                lines += _assign(key, info.passed[key], ind)
            elif key in info.optional:
                lines.append(f"{ind}if {info.flags[key]}:")
                lines += _assign(key, self.render(template), ind + "    ")
                lines.append(f"{ind}else:")
                lines += _assign(key, "None", ind + "    ")
            else:
                lines += _assign(key, self.render(template), ind)
        conditions = {}
        for key in info.optional:
            if key in info.model.children:
                conditions[key] = f"{_attr('self', key)} is not None"
            else:
                conditions[key] = f"self.{info.flags[key]}"
        return [*lines, "", *self.forward(info.model, conditions)]

    def docstring(self, info: ClassInfo) -> list[str]:
        block = info.model.block
        where = ".".join(info.parts[0].path)
        comments: list[str] = []
        if block is not None:
            comments = _block_comments(self.texts, _file_of(info.model), block)
        if not comments:
            more = len(info.parts) - 1
            where += f"` and {more} more like it" if more else "`"
            comments = [f"Block `{block}`, first at `{where}." if block else f"`{where}."]
        return _docstring(comments, "    ")

    def render(self, t: Template) -> str | Call:
        """Source of a template: slots as their expressions, defaults left out."""
        if isinstance(t, Slot):
            return t.expr if t.expr is not None else _literal(t.value)
        if isinstance(t, Maybe):
            return When(self.render(t.item), t.flag)
        if isinstance(t, Seq):
            items = [_flat(self.render(i)) for i in t.items]
            if t.kind is list:
                return f"[{', '.join(items)}]"
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        args: list[str | Call] = []
        for i, (name, arg) in enumerate(zip(t.names, t.args)):
            if i < t.positional:
                args.append(self.render(arg))
            elif not _is_default(arg, t.defaults, name):
                args.append(_kw(name, self.render(arg)))
        if t.head == "nn.Sequential":
            args = _runs(args)
        return Call(t.head, args)

    def forward(self, part: Part, conditions: dict[str, str]) -> list[str]:
        """The straight-line ``forward`` of ``part``; a step in ``conditions`` runs only when
        its condition holds, else its first input passes on."""
        ind = " " * 8
        var = _variables(part)
        lines = ["    def forward(self, x: Tensor) -> Tensor:"]
        for step in part.steps:
            condition = conditions.get(step_key(part, step))
            if condition is None:
                lines += self.step(step, var, ind)
                continue
            out, first = var[step.out], var[step.args[0]]
            reads = {var[a] for a in step.args}
            if out != first and out not in reads:  # identity = x; if ...: identity = ...
                lines.append(f"{ind}{out} = {first}")
            lines.append(f"{ind}if {condition}:")
            lines += self.step(step, var, ind + "    ")
            if out != first and out in reads:
                lines += [f"{ind}else:", f"{ind}    {out} = {first}"]
        lines.append(f"{ind}return {var[part.exit]}")
        return lines

    def network_forward(self) -> list[str]:
        """The network's ``forward`` (:func:`_aux_forward` with auxiliary classifiers)."""
        return _aux_forward(self) if self.graph.aux else self.forward(self.root, {})

    def step(self, step: Step, var: dict[str, str], ind: str) -> list[str]:
        out = var[step.out]
        ins = [var[a] for a in step.args]
        if step.child is None:
            assert step.node is not None
            if _augmented(step):  # out += identity: ``out`` is the variable of ins[0]
                # An n-way add (RepVGG's branches) adds each further input in turn.
                return [f"{ind}{out} {op_of(step.node).augmented} {a}" for a in ins[1:]]
            expr = op_of(step.node).expression(ins)
            if isinstance(expr, str):
                return [f"{ind}{out} = {expr}"]
            return _lines(Call(expr[0], list(expr[1])), ind, f"{out} = ")
        if step.parameter:
            return [f"{ind}{out} = {_attr('self', step.child)} * {ins[0]}"]
        arg = f"torch.flatten({ins[0]}, 1)" if step.flatten else ins[0]
        return _lines(Call(_attr("self", step.child), [arg]), ind, f"{out} = ")

    # the network

    def network_init(self) -> list[str]:
        ind = " " * 8
        classifier = _classifier(self.graph, self.shapes)
        templates = {k: unify([self.tree(c)]) for k, c in self.root.children.items()}
        params = ["self"]
        for template in templates.values():
            for t in _calls(template):
                if classifier and t.node == classifier and isinstance(t.args[1], Slot):
                    params.append(f"num_classes: int = {_literal(t.args[1].values[0])}")
                    t.args[1].expr = "num_classes"
        lines = _lines(Call("def __init__", params[:2]), "    ", suffix=" -> None:")
        lines.append(f"{ind}super().__init__()")
        for name, template in templates.items():
            assert template is not None
            lines += _assign(name, self.render(template), ind)
        return lines

    def source(self, parameters: int, fused: bool) -> str:
        graph = self.graph
        init = self.network_init()
        forward = self.network_forward()
        recipe = recipe_lines(graph)
        cls = self.network
        inp = fmt_shape(self.shapes[graph.nodes[0].name])
        out = fmt_shape(self.shapes[graph.output])
        head = f"{cls}: input {inp}, output {out}"
        summary = f"{head}, {parameters:,} parameters"
        parts = [line for d in self.definitions for line in (*d, "", "")]
        helpers = [line for h in self.helpers.values() for line in (*h.strip().split("\n"), "", "")]
        comments = _leading_comments(self.texts.get(graph.file, ""))
        body = [
            *helpers,
            *parts,
            f"class {cls}(nn.Module):",
            *(_docstring(comments, "    ") + [""] if comments else []),
            *init,
            "",
            *forward,
            "",
            "",
            *recipe,
            *(["", ""] if recipe else []),
            *_main(cls, head, fused),
        ]
        uses_torch = any("torch." in line for line in body)
        return "\n".join(
            [
                *_origin(graph.file, self.member),
                f'"""{summary}.',
                "",
                "Plain PyTorch: load weights with ``load_state_dict`` (the keys are the spec's",
                "names, as ``archc.load`` gives them)."
                + (" ``fused()`` makes the inference variant." if fused else ""),
                '"""',
                "",
                *(["import torch"] if uses_torch else []),
                "from torch import Tensor, nn",
                "",
                "",
                *body,
                "",
            ]
        )


def _aux_forward(w: _Writer) -> list[str]:
    """The ``forward`` of a network with auxiliary classifiers (``aux``): each runs in
    training mode only, and in training mode the network returns its output and then theirs,
    as torchvision's GoogLeNet and Inception3 do (the tuple made by ``_outputs``, which
    TorchScript leaves out: a scripted network runs in eval mode)."""
    graph, root = w.graph, w.root
    ind = " " * 8
    aux = {s.out: s.child for s in root.steps if s.out in graph.aux and s.child}
    var = _variables(root, [graph.output, *graph.aux], aux)
    lines = ["    def forward(self, x: Tensor) -> Tensor:"]
    for step in root.steps:
        if step.out in aux:
            lines.append(f"{ind}{var[step.out]}: Tensor | None = None")
            lines.append(f"{ind}if self.training:")
            lines += w.step(step, var, ind + "    ")
        else:
            lines += w.step(step, var, ind)
    outs = [var[graph.output], *(var[a] for a in graph.aux)]
    lines += [f"{ind}if self.training:", f"{ind}    return self._outputs({', '.join(outs)})"]
    lines.append(f"{ind}return {outs[0]}")
    params = ["self", f"{outs[0]}: Tensor", *(f"{v}: Tensor | None" for v in outs[1:])]
    signature = Call("def _outputs", params)
    return [
        *lines,
        "",
        "    @torch.jit.unused",
        *_lines(signature, "    ", suffix=" -> Tensor:"),
        f'{ind}"""In training mode: the output, then the auxiliary classifiers\'."""',
        f"{ind}return ({', '.join(outs)})  # type: ignore[return-value]",
    ]


def _origin(file: str, member: str | None = None) -> list[str]:
    """The header comment: the spec by its shipped name (a family member's for a family spec:
    ``torchvision/resnet18``), or its path relative to the current directory, or its file name
    -- never a path of this machine."""
    shown = file
    path = Path(file)
    if path.is_absolute():
        from archc.library import SPECS_DIR

        shown = path.name
        for base, name in ((SPECS_DIR.resolve(), True), (Path.cwd(), False)):
            try:
                relative = path.resolve().relative_to(base)
            except ValueError:
                continue
            shown = (relative.with_suffix("") if name else relative).as_posix()
            if name and member:
                shown = (relative.parent / member).as_posix()
            break
    origin = f"# Generated by archc from {ascii(shown)}; edit the spec, not this file."
    if len(origin) <= LINE:
        return [origin]
    return ["# Generated by archc from", f"# {ascii(shown)};", "# edit the spec, not this file."]


def _declaration(p: Param) -> str:
    """A parameter as its constructor declares it: ``stride: int = 1``."""
    known = [v for v in p.values if v is not None]
    kind = "nn.Module" if p.module else type(known[0]).__name__
    if p.module and p.has_default:
        kind = "nn.Module | None"
    if not p.has_default:
        return f"{p.name}: {kind}"
    return f"{p.name}: {kind} = {_literal(p.default)}"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return f"[{', '.join(_literal(v) for v in value)}]"
    if isinstance(value, tuple):
        items = [_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)


def _is_default(arg: Template, defaults: dict[str, Any], name: str) -> bool:
    """Whether ``arg`` is the same in every instance and equal to the argument's default."""
    if name not in defaults:
        return False
    value = _constant(arg)
    default = defaults[name]
    return value is not _VARIES and same_value(value, default)


_VARIES = object()


def _constant(t: Template) -> Any:
    if isinstance(t, Slot):
        return t.value if t.constant and t.expr is None else _VARIES
    if isinstance(t, Seq):
        items = [_constant(i) for i in t.items]
        return _VARIES if any(i is _VARIES for i in items) else t.kind(items)
    return _VARIES


def _is_add(part: Part, key: str) -> bool:
    step = next(s for s in part.steps if step_key(part, s) == key)
    return step.node is not None and step.node.op == "add"


def _assign(name: str, value: str | Call, ind: str) -> list[str]:
    """``self.name = value``, or its spelling for a name that is not an identifier."""
    if _plain(name):
        return _lines(value, ind, f"self.{name} = ")
    how = "self.add_module"
    if value == "None":
        how = "setattr"
    elif isinstance(value, Call) and value.head == "nn.Parameter":
        how = "self.register_parameter"
    args: list[str | Call] = [_quote(name), value]
    return _lines(Call(how, ["self", *args] if how == "setattr" else args), ind)


def _runs(args: list[str | Call]) -> list[str | Call]:
    """Arguments of ``nn.Sequential`` with each run of equal ones as one comprehension."""
    out: list[str | Call] = []
    i = 0
    while i < len(args):
        j = i
        while j + 1 < len(args) and _flat(args[j + 1]) == _flat(args[i]):
            j += 1
        out.append(Repeat(args[i], j - i + 1) if j > i else args[i])
        i = j + 1
    return out


def _calls(t: Template | None) -> list[New]:
    """Every constructor call in a template, outermost first."""
    if isinstance(t, New):
        return [t, *(c for a in t.args for c in _calls(a))]
    if isinstance(t, Seq):
        return [c for i in t.items for c in _calls(i)]
    return []


def _classifier(graph: ir.Graph, shapes: dict[str, ir.Shape]) -> str | None:
    """The layer that makes the network's class scores: the last FC or conv before the
    output, past layers that keep the channels (pool, flatten, softmax, dropout, ...)."""
    classes = shapes[graph.output][0]
    node = graph.node(graph.output)
    while not isinstance(node, ir.Linear | ir.Conv):
        if len(node.inputs) != 1 or shapes[node.inputs[0]][0] != classes:
            return None
        node = graph.node(node.inputs[0])
    return node.name if shapes[node.name][0] == classes else None


def _helper_names(helper: str) -> list[str]:
    """The argument names of a helper class's constructor (``def __init__(self, p: float)``)."""
    m = re.search(r"def __init__\(self, ([^)]*)\)", helper)
    return [a.split(":")[0].strip() for a in m[1].split(",")] if m else []


def _file_of(part: Part) -> str | None:
    for child in part.children.values():
        if isinstance(child, Leaf) and child.node.span is not None:
            return child.node.span.file
        if isinstance(child, Part):
            found = _file_of(child)
            if found:
                return found
    return None


def _comment_block(lines: list[str]) -> list[str]:
    """The text of a run of ``#`` comment lines (each without its ``# ``)."""
    return [line.strip()[1:].removeprefix(" ").rstrip() for line in lines]


def _block_comments(texts: dict[str, str], file: str | None, block: str) -> list[str]:
    """The comment lines right above ``block NAME`` in ``file``'s text."""
    lines = texts.get(file or "", "").split("\n")
    header = re.compile(rf"\s*block\s+{re.escape(block)}\s*[(:]")
    for i, line in enumerate(lines):
        if header.match(line):
            j = i
            while j > 0 and lines[j - 1].strip().startswith("#"):
                j -= 1
            return _trim(_comment_block(lines[j:i]))
    return []


def _leading_comments(text: str) -> list[str]:
    """The first run of comment lines of a spec: what it says it is."""
    lines = text.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    j = i
    while j < len(lines) and lines[j].strip().startswith("#"):
        j += 1
    return _trim(_comment_block(lines[i:j]))


def _trim(lines: list[str]) -> list[str]:
    lines = [line for line in lines if not line.startswith(("expect ", "!"))]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _docstring(lines: list[str], ind: str) -> list[str]:
    """A docstring of comment lines: escaped (ASCII only, no quotes that could close it),
    each paragraph filled to the line length."""
    import textwrap

    paragraphs: list[list[str]] = [[]]
    for line in lines:
        safe = line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        safe = "".join(c if 32 <= ord(c) < 127 else ascii(c)[1:-1] for c in safe)
        if not safe.strip():
            paragraphs.append([])
        elif safe.startswith((" ", "-", "*", "|")) and paragraphs[-1]:
            paragraphs.append([safe])  # a list item or an indented line starts a line
            paragraphs.append([])
        else:
            paragraphs[-1].append(safe)
    text: list[str] = []
    width = LINE - len(ind)
    for i, paragraph in enumerate(p for p in paragraphs if p):
        if i and not paragraph[0].startswith((" ", "-", "*", "|")):
            text.append("")
        start = '"""' if not text else ""
        last = 3 if paragraph is [p for p in paragraphs if p][-1] else 0
        text += textwrap.wrap(
            " ".join(paragraph),
            width - last,
            initial_indent=start,
            break_long_words=False,
            break_on_hyphens=False,
        )
    if text[-1].endswith('"'):
        text[-1] = text[-1][:-1] + '\\"'
    text[-1] += '"""'
    return [ind + t if t else "" for t in text]


def _main(cls: str, head: str, fused: bool) -> list[str]:
    """Run as a script, the file builds the model and prints its summary line (``head`` and
    the parameter count of the model it built)."""
    line = f'f"{head}, {{parameters:,}} parameters"'
    lines = [
        'if __name__ == "__main__":',
        f"    model = {cls}()",
        "    parameters = sum(p.numel() for p in model.parameters())",
        *_lines(Call("print", [line]), "    "),
    ]
    if not fused:
        return lines
    return [
        "def fused(model: nn.Module | None = None) -> nn.Module:",
        '    """The inference variant (archc.fuse): each conv -> BN -> (+ residual) -> activation',
        '    group is one op, BN folded into the conv once. Needs archc."""',
        "    import archc",
        "",
        f"    return archc.fuse(({cls}() if model is None else model).eval())",
        "",
        "",
        *lines,
        "    print(fused(model).fusion_summary)",
    ]


def _augmented(step: Step) -> bool:
    """Whether ``step`` overwrites its first argument by an augmented assignment (``+=``)."""
    return step.node is not None and step.inplace and op_of(step.node).augmented is not None


def _variables(
    part: Part, returned: Sequence[str] = (), names: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A variable for every value of ``part``'s forward: ``x`` or ``out`` for a value that only
    the next step reads (whichever holds a value no later step needs), else a name (``names``'
    for a value named there); an augmented assignment's value keeps its first argument's
    variable. The values ``returned`` are read after the last step (a network's outputs)."""
    steps = part.steps
    last: dict[str, int] = {part.entry: -1}
    readers: dict[str, list[int]] = {}
    for i, step in enumerate([*steps, Step("", list(returned))]):
        for a in step.args:
            readers.setdefault(a, []).append(i)
            last[a] = i
    var = {part.entry: "x"}
    holds = {"x": part.entry, "out": None}
    taken = set(_RESERVED)
    for i, step in enumerate(steps):
        if _augmented(step):
            var[step.out] = held = var[step.args[0]]
            if held in holds:
                holds[held] = step.out
            continue
        read = readers.get(step.out, [])
        slot = None
        if set(read) <= {i + 1} and step.out not in (names or {}):
            for s in ("x", "out"):
                held = holds[s]
                if held is None or last.get(held, -1) <= i:
                    slot = s
                    break
        if slot is not None:
            holds[slot] = step.out
            var[step.out] = slot
            continue
        base = re.sub(r"\W", "_", (names or {}).get(step.out) or step.out.rsplit(".", 1)[-1])
        base = base if _IDENT.fullmatch(base) and not base[0].isdigit() else "v_" + base
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        var[step.out] = name
    return var


def generate(checked: object, fused: bool = False) -> tuple[str, ir.Graph, int]:
    """The source, the graph, and the parameter count of a checked graph
    (``archc.check.Checked``, or anything with ``graph`` and ``shapes``)."""
    graph: ir.Graph | None = getattr(checked, "graph", None)
    if graph is None:
        raise ValueError("cannot generate source from a graph that failed to check")
    shapes: dict[str, ir.Shape] = checked.shapes  # type: ignore[attr-defined]
    root = plan(graph, shapes)
    parameters = _parameters(graph, shapes)
    # The spec's text, for its comments (absent when a pickled module is rebuilt from its graph:
    # the classes are the same, without their docstrings).
    texts: dict[str, str] = getattr(checked, "sources", None) or {}
    family = getattr(checked, "family", None)
    names = family.names() if family is not None else {}
    member = graph.name if graph.name in names.values() else None
    writer = _Writer(graph, shapes, root, texts, member)
    return writer.source(parameters, fused), graph, parameters


def _parameters(graph: ir.Graph, shapes: dict[str, ir.Shape]) -> int:
    """The module's parameter count: weights and biases, BN's gamma and beta (the registry's
    costs, which tests hold equal to the built modules')."""
    total = 0
    for node in graph.nodes[1:]:
        costs = op_of(node).costs(node, shapes[node.inputs[0]], shapes[node.name])
        total += costs.weights + costs.biases
    return total


def generate_source(checked: object, fused: bool = False) -> str:
    """The standalone PyTorch source of a checked graph (``archc.check.Checked``)."""
    return generate(checked, fused)[0]


def write_source(checked: object, path: str | Path, out: str | Path | None, fused: bool) -> str:
    """Write the source of ``checked`` (the spec at ``path``) to ``out`` -- a file, or a
    directory (an existing one, or one written with a trailing slash) to put ``<stem>.py`` in; by
    default ``<stem>.py`` in the current directory -- and return the line ``wrote OUT: NETWORK,
    N parameters``. Raises ``OSError`` when it cannot write there, or when that is the spec or a
    file it imports: an output never replaces an input (archc.files.write_output)."""
    from archc.files import output_path, write_output

    text, graph, parameters = generate(checked, fused)
    target = output_path(out, Path(path).stem)
    sources: dict[str, str] = getattr(checked, "sources", {})
    write_output(target, text, [str(path), *(f for f in sources if f != str(path))])
    return f"wrote {target}: {graph.name}, {parameters:,} parameters"


def compile_file(path: str | Path, out: str | Path | None = None, fused: bool = False) -> str:
    """Check the spec at ``path`` -- a file, or a shipped spec's or family member's name
    (``torchvision/resnet18``) -- and write its source (see :func:`write_source`); raises
    :class:`ArchcError` when the spec has errors."""
    from archc.check import check_spec

    checked = check_spec(Path(path) if Path(path).exists() else str(path))
    if not checked.ok:
        raise ArchcError(checked.diagnostics, checked.sources)
    return write_source(checked, path, out, fused)


def _clusters(parts: list[Part]) -> list[list[Part]]:
    """``parts`` in classes, greedily: each joins the first class it merges into. Whether a
    part merges depends only on the distinct forwards already in the class, so it is tested
    against one part of each (``representatives``, in the order they joined): linear in the
    parts where testing against every member was quadratic (50,000 instances of one block)."""
    clusters: list[tuple[list[Part], dict[tuple[Any, ...], Part]]] = []
    for part in parts:
        key = outline_key(part)
        for members, representatives in clusters:
            if key in representatives:
                members.append(part)
                break
            merged = merge([*representatives.values(), part])
            if merged is not None and len(merged[1]) <= MAX_FLAGS:
                members.append(part)
                representatives[key] = part
                break
        else:
            clusters.append(([part], {key: part}))
    return [members for members, _ in clusters]
