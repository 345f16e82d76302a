"""The source backend: a checked graph becomes a standalone, plain PyTorch file.

The file imports only torch. It prints the module plan (:mod:`archc.backends.plan`): standard
``torch.nn`` layers as siblings under the spec's names, ``nn.Sequential`` for every part that is
a chain, and for the network and every other part a class with a straight-line ``forward`` in
the style of torchvision's models — no caches, no mode-dependent branches, so FX, TorchScript,
torch.export, torchinfo, feature extractors and checkpoints see an ordinary model.
:func:`archc.load` runs this very source (:mod:`archc.backends.torch_module`), so the two
cannot differ. Run as a script, the file builds the model and prints its summary line.

Nothing from the spec reaches the code unescaped. Node names are validated by the IR as dotted
paths of ASCII identifiers and digits; a name becomes attribute syntax only when it is a plain
identifier (not a keyword, no leading underscore that Python would mangle), otherwise it is a
string literal (``getattr(self, "0")``, ``self.add_module("class", ...)``, ``**{"0": ...}``).
Local variables are derived from names and kept clear of keywords, builtins and the imports;
class names are sanitised identifiers; the source path appears only as an ``ascii()`` literal
inside a comment.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from archc import ir
from archc.backends.plan import Leaf, Part, Step, camel, plan
from archc.backends.recipe_source import recipe_lines
from archc.diagnostics import ArchcError
from archc.nodes import fmt_shape
from archc.ops import op_of
from archc.ops.helpers import SOURCES as HELPERS

LINE = 100
BASE = "Part"
"""The generated base class of every part with a forward of its own."""
# Module-level names of the generated file (``recipe``: the train: section's function).
_IMPORTED = {"torch", "nn", "Tensor", "self", "x", "out", BASE, "fused", "model", "recipe"}
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
    args: list[str | Call] = field(default_factory=list)
    brackets: str = "()"


def _flat(e: str | Call) -> str:
    if isinstance(e, str):
        return e
    return f"{e.head}{e.brackets[0]}{', '.join(_flat(a) for a in e.args)}{e.brackets[1]}"


def _lines(e: str | Call, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """``prefix + e + suffix`` at ``indent``, split like ruff: on one line if it fits, else the
    arguments on one indented line, else one argument per line with a trailing comma."""
    one = f"{indent}{prefix}{_flat(e)}{suffix}"
    if len(one) <= LINE or isinstance(e, str) or not e.args:
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
    def __init__(self, graph: ir.Graph, shapes: dict[str, ir.Shape], root: Part) -> None:
        self.graph = graph
        self.shapes = shapes
        self.root = root
        self.network = class_name(graph.name)
        self.classes: dict[tuple[str, tuple[str, ...]], str] = {}
        self.definitions: list[list[str]] = []
        self.taken = set(_RESERVED) | {self.network}
        self.helpers: dict[str, str] = {}
        """Classes beyond torch.nn that some layer needs (LayerNorm2d, ...): name -> source."""
        self.part_parameters = False
        """Whether a part holds a bare parameter (a layer scale), which its base class must
        register as a parameter rather than add as a module."""

    # constructors

    def leaf(self, leaf: Leaf) -> Call:
        c = leaf.ctor
        if c.parameter:
            shape, value = c.args
            return Call("nn.Parameter", [Call("torch.full", [repr(shape), repr(value)])])
        args: list[str | Call] = [repr(a) for a in c.args]
        args += [f"{k}={v!r}" for k, v in c.kwargs.items()]
        if leaf.inplace:
            args.append("inplace=True")
        if c.helper is not None:
            self.helpers.setdefault(c.module, c.helper)
            return Call(c.module, args)
        return Call(f"nn.{c.module}", args)

    def ctor(self, child: Leaf | Part) -> Call:
        if isinstance(child, Leaf):
            return self.leaf(child)
        items = list(child.children.items())
        if child.sequential:
            return Call("nn.Sequential", [self.ctor(c) for _, c in items])
        cls = self.part_class(child)
        if any(isinstance(c, Leaf) and c.ctor.parameter for _, c in items):
            self.part_parameters = True
        if all(_plain(name) for name, _ in items):
            return Call(cls, [_kw(name, self.ctor(c)) for name, c in items])
        mapping = [_kw(_quote(n), self.ctor(c), ": ") for n, c in items]
        return Call(cls, [Call("**", mapping, "{}")])

    # classes

    def part_class(self, part: Part) -> str:
        forward = self.forward(part)
        key = ("\n".join(forward), tuple(part.children))
        if key in self.classes:
            return self.classes[key]
        path = [camel(part.path[0]), *(re.sub(r"\W", "_", p) for p in part.path[1:])]  # block1-0
        base = camel(part.block) if part.block else "_".join(path)
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}{n}"
        self.taken.add(name)
        self.classes[key] = name
        where = ".".join(part.path)
        what = f"block `{part.block}`" if part.block else f"`{where}`"
        self.definitions.append(
            [f"class {name}({BASE}):", f'    """{what}, as at `{where}`."""', "", *forward]
        )
        return name

    def forward(self, part: Part) -> list[str]:
        """The straight-line ``forward`` of ``part``."""
        ind = " " * 8
        var = _variables(part)
        lines = ["    def forward(self, x: Tensor) -> Tensor:"]
        for step in part.steps:
            out = var[step.out]
            ins = [var[a] for a in step.args]
            if step.child is None:
                assert step.node is not None
                if _augmented(step):  # out += identity: ``out`` is the variable of ins[0]
                    lines.append(f"{ind}{out} {op_of(step.node).augmented} {ins[1]}")
                    continue
                expr = op_of(step.node).expression(ins)
                if isinstance(expr, str):
                    lines.append(f"{ind}{out} = {expr}")
                else:
                    lines += _lines(Call(expr[0], list(expr[1])), ind, f"{out} = ")
                continue
            if step.parameter:
                lines.append(f"{ind}{out} = {_attr('self', step.child)} * {ins[0]}")
                continue
            arg = f"torch.flatten({ins[0]}, 1)" if step.flatten else ins[0]
            lines += _lines(Call(_attr("self", step.child), [arg]), ind, f"{out} = ")
        lines.append(f"{ind}return {var[part.exit]}")
        return lines

    def network_init(self) -> list[str]:
        ind = " " * 8
        lines = ["    def __init__(self) -> None:", f"{ind}super().__init__()"]
        for name, child in self.root.children.items():
            ctor = self.ctor(child)
            if _plain(name):
                lines += _lines(ctor, ind, f"self.{name} = ")
            else:
                lines += _lines(Call("self.add_module", [_quote(name), ctor]), ind)
        return lines

    def source(self, parameters: int, fused: bool) -> str:
        graph = self.graph
        init = self.network_init()
        forward = self.forward(self.root)
        recipe = recipe_lines(graph)
        cls = self.network
        inp = fmt_shape(self.shapes[graph.nodes[0].name])
        out = fmt_shape(self.shapes[graph.output])
        head = f"{cls}: input {inp}, output {out}"
        summary = f"{head}, {parameters:,} parameters"
        base = [] if not self.definitions else _BASE_CLASS
        if self.part_parameters:
            base = _BASE_CLASS_WITH_PARAMETERS
        parts = [line for d in self.definitions for line in (*d, "", "")]
        helpers = [line for h in self.helpers.values() for line in (*h.strip().split("\n"), "", "")]
        body = [
            *helpers,
            *base,
            *parts,
            f"class {cls}(nn.Module):",
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
        origin = f"# Generated by archc from {ascii(graph.file)}; edit the spec, not this file."
        if len(origin) > LINE:
            origin = "\n".join(
                [
                    "# Generated by archc from",
                    f"# {ascii(graph.file)};",
                    "# edit the spec, not this file.",
                ]
            )
        return "\n".join(
            [
                origin,
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


_BASE_CLASS = [
    f"class {BASE}(nn.Module):",
    '    """A part of the network (a block instance, a stage, a branch): its children, by',
    '    name, in order."""',
    "",
    "    def __init__(self, **children: nn.Module) -> None:",
    "        super().__init__()",
    "        for name, child in children.items():",
    "            self.add_module(name, child)",
    "",
    "",
]


_BASE_CLASS_WITH_PARAMETERS = [
    f"class {BASE}(nn.Module):",
    '    """A part of the network (a block instance, a stage, a branch): its children, by',
    '    name, in order: modules, and parameters such as a layer scale."""',
    "",
    "    def __init__(self, **children: nn.Module | nn.Parameter) -> None:",
    "        super().__init__()",
    "        for name, child in children.items():",
    "            if isinstance(child, nn.Parameter):",
    "                self.register_parameter(name, child)",
    "            else:",
    "                self.add_module(name, child)",
    "",
    "",
]


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


def _variables(part: Part) -> dict[str, str]:
    """A variable for every value of ``part``'s forward: ``x`` or ``out`` for a value that only
    the next step reads (whichever holds a value no later step needs), else a name; an
    augmented assignment's value keeps its first argument's variable."""
    steps = part.steps
    last: dict[str, int] = {part.entry: -1}
    readers: dict[str, list[int]] = {}
    for i, step in enumerate(steps):
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
        if set(read) <= {i + 1}:
            for s in ("x", "out"):
                held = holds[s]
                if held is None or last.get(held, -1) <= i:
                    slot = s
                    break
        if slot is not None:
            holds[slot] = step.out
            var[step.out] = slot
            continue
        base = re.sub(r"\W", "_", step.out.rsplit(".", 1)[-1])
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
    return _Writer(graph, shapes, root).source(parameters, fused), graph, parameters


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
    """Check the spec at ``path`` and write its source (see :func:`write_source`); raises
    :class:`ArchcError` when the spec has errors."""
    from archc.check import check_file

    checked = check_file(path)
    if not checked.ok:
        raise ArchcError(checked.diagnostics, checked.sources)
    return write_source(checked, path, out, fused)
