"""The source backend: a checked graph becomes a standalone PyTorch file.

The file imports only torch and defines one ``nn.Module`` class whose ``__init__`` registers the
same submodules under the same names as :func:`archc.load` (so the state_dicts are
interchangeable) and whose ``forward`` has one line per node. A fusion group runs as eager calls:
``conv`` (a ``ConvBN`` when BN follows it: BN folded into the conv at inference, BN after it
otherwise), ``+ residual``, ``torch.relu``. ``ConvBN`` and its helpers are copied verbatim from
:mod:`archc.backends.convbn`, the code ``archc.load``'s modules run, so outputs agree bit for bit.

Nothing from the spec reaches the code unescaped. Node names are validated by the IR as dotted
paths of ASCII identifiers and digits; a part becomes attribute syntax only when it is a plain
identifier (not a keyword, no leading underscore that Python would mangle), otherwise it is a
string literal (``getattr(m, "0")``, ``m.add_module("class", ...)``). Local variables are derived
from names and kept clear of keywords, builtins and the imports; the class name is sanitised to
an identifier; the source path appears only as an ``ascii()`` literal inside a comment.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
from pathlib import Path
from typing import TYPE_CHECKING

from archc import ir
from archc.backends import convbn
from archc.diagnostics import ArchcError
from archc.nodes import fmt_shape
from archc.ops import op_of
from archc.passes.fusion import FusionGroup

if TYPE_CHECKING:
    from archc.backends.torch_module import _Builder

LINE = 100
_HELPERS = (convbn._tracing, convbn.fold_bn, convbn.ConvBN)
_IMPORTED = {"torch", "nn", "Tensor", "F", "self", "x"} | {h.__name__ for h in _HELPERS}
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


def _path(parts: list[str]) -> str:
    expr = "self"
    for part in parts:
        expr = f"{expr}.{part}" if _plain(part) else f"getattr({expr}, {_quote(part)})"
    return expr


def class_name(name: str) -> str:
    """The network's name as a Python class name."""
    ident = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "Network"
    if ident[0].isdigit():
        ident = "Net" + ident
    return ident + "_" if ident in _RESERVED else ident


def _call(head: str, args: list[str], indent: str) -> list[str]:
    """``head(args)`` wrapped the way ruff format wraps a call."""
    one = f"{indent}{head}({', '.join(args)})"
    if len(one) <= LINE:
        return [one]
    inner = indent + "    "
    joined = f"{inner}{', '.join(args)}"
    if len(joined) <= LINE:
        return [f"{indent}{head}(", joined, f"{indent})"]
    return [f"{indent}{head}(", *(f"{inner}{a}," for a in args), f"{indent})"]


class _Writer:
    def __init__(self, builder: _Builder) -> None:
        self.graph = builder.graph
        self.shapes: dict[str, ir.Shape] = builder.shapes
        self.builder = builder
        self.relu_inplace = builder.relu_inplace_nodes
        self.init: list[str] = []
        self.containers: set[tuple[str, ...]] = set()

    # --- __init__ ----------------------------------------------------------------------------

    def ctor(self, node: ir.Node) -> tuple[str, list[str]]:
        x = self.shapes[node.inputs[0]] if node.inputs else ()
        ctor = op_of(node).ctor(node, x, self.shapes[node.name])
        assert ctor is not None, f"{node.op} has no module"
        args = [repr(a) for a in ctor.args]
        args += [f"{k}={v!r}" for k, v in ctor.kwargs.items()]
        if node.name in self.relu_inplace:
            args.append("inplace=True")
        return f"nn.{ctor.module}", args

    def register(self, parts: list[str], head: str, args: list[str]) -> None:
        ind = " " * 8
        for i in range(1, len(parts)):
            if tuple(parts[:i]) not in self.containers:
                self.containers.add(tuple(parts[:i]))
                self.attach(parts[:i], "nn.Module", [], ind)
        self.attach(parts, head, args, ind)

    def attach(self, parts: list[str], head: str, args: list[str], ind: str) -> None:
        parent, leaf = _path(parts[:-1]), parts[-1]
        if _plain(leaf):
            self.init += _call(f"{parent}.{leaf} = {head}", args, ind)
        else:
            module = f"{head}({', '.join(args)})"
            self.init += _call(f"{parent}.add_module", [_quote(leaf), module], ind)

    # --- forward -----------------------------------------------------------------------------

    def variables(self) -> dict[str, str]:
        """Each value's variable: ``x`` when only the very next step reads it, else a name."""
        steps = self.builder.steps
        readers: dict[str, list[int]] = {}
        for i, (_, args, _) in enumerate(steps):
            for a in args:
                readers.setdefault(a, []).append(i)
        taken = set(_RESERVED) | {class_name(self.graph.name)}
        names: dict[str, str] = {}
        outputs = [(self.graph.nodes[0].name, -1)] + [(s[2], i) for i, s in enumerate(steps)]
        for name, i in outputs:
            # A group writes its output before it reads the residual: that one needs a name.
            nxt = self.builder.by_last.get(steps[i + 1][2]) if i + 1 < len(steps) else None
            if set(readers.get(name, [])) <= {i + 1} and not (nxt and nxt.residual == name):
                names[name] = "x"
                continue
            base = re.sub(r"\W", "_", name.replace(".", "_"))
            base = base if _IDENT.fullmatch(base) else "v_" + base
            var, n = base, 1
            while var in taken:
                n += 1
                var = f"{base}_{n}"
            taken.add(var)
            names[name] = var
        return names

    def forward(self) -> list[str]:
        ind = " " * 8
        var = self.variables()
        lines = []
        first = self.graph.nodes[0].name
        if var[first] != "x":
            lines.append(f"{ind}{var[first]} = x")
        nodes = self.builder.nodes
        for _, args, name in self.builder.steps:
            out = var[name]
            ins = [var[a] for a in args]
            group: FusionGroup | None = self.builder.by_last.get(name)
            node = nodes[name]
            if group is not None:
                conv = _path(group.conv.split("."))
                lines += _call(f"{out} = {conv}", [ins[0]], ind)  # a ConvBN runs its BN too
                if group.residual:
                    lines.append(f"{ind}{out} = {out} + {ins[1]}")
                if group.relu:
                    lines.append(f"{ind}{out} = torch.relu({out})")
                continue
            op = op_of(node)
            x = self.shapes[node.inputs[0]]
            ctor = op.ctor(node, x, self.shapes[name])
            if ctor is None:
                expr = op.expression(ins)
                if isinstance(expr, str):
                    lines.append(f"{ind}{out} = {expr}")
                else:
                    lines += _call(f"{out} = {expr[0]}", expr[1], ind)
            elif ctor.flatten:
                flat = f"torch.flatten({ins[0]}, 1)"
                lines += _call(f"{out} = {_path(name.split('.'))}", [flat], ind)
            else:
                lines += _call(f"{out} = {_path(name.split('.'))}", [ins[0]], ind)
        lines.append(f"{ind}return {var[self.graph.output]}")
        return lines

    def source(self, parameters: int) -> str:
        graph = self.builder.graph
        groups = {g.conv: g for g in self.builder.by_last.values()}
        absorbed = {m for g in groups.values() for m in g.members if m != g.conv}
        for node in graph.nodes[1:]:
            group = groups.get(node.name)
            if node.name in absorbed:
                continue
            x = self.shapes[node.inputs[0]]
            if op_of(node).ctor(node, x, self.shapes[node.name]) is None:
                continue
            parts = node.name.split(".")
            head, args = self.ctor(node)
            bn = graph.node(group.bn) if group is not None and group.bn else None
            self.register(parts, "ConvBN" if bn is not None else head, args)
            if bn is not None:
                self.attach([*parts, "bn"], *self.ctor(bn), " " * 8)
        # The helpers' own text, so that the file runs the very code archc.load runs.
        helpers = []
        if any(g.bn for g in groups.values()):
            helpers = [t for h in _HELPERS for t in (inspect.getsource(h).rstrip(), "", "")]
        cls = class_name(graph.name)
        inp = fmt_shape(self.shapes[graph.nodes[0].name])
        out = fmt_shape(self.shapes[graph.output])
        return "\n".join(
            [
                f"# Generated by archc from {ascii(graph.file)}; edit the spec, not this file.",
                f'"""{cls}: input {inp}, output {out}, {parameters:,} parameters.',
                "",
                "Load weights with ``load_state_dict``: the keys are those of ``archc.load``.",
                '"""',
                "",
                "import torch",
                "from torch import Tensor, nn",
                "",
                "",
                *helpers,
                f"class {cls}(nn.Module):",
                "    def __init__(self) -> None:",
                "        super().__init__()",
                *self.init,
                "",
                "    def forward(self, x: Tensor) -> Tensor:",
                *self.forward(),
                "",
            ]
        )


def _generate(checked: object) -> tuple[str, ir.Graph, int]:
    from archc.backends.torch_module import _Builder

    # Building on the meta device costs no memory; it runs the same name checks as ``load``
    # and yields the execution order.
    builder = _Builder(checked, "meta", None)  # type: ignore[arg-type]
    builder.build(checked.fusion)  # type: ignore[attr-defined]
    parameters = sum(p.numel() for p in builder.net.parameters())
    return _Writer(builder).source(parameters), builder.graph, parameters


def generate_source(checked: object) -> str:
    """The standalone PyTorch source of a checked graph (``archc.check.Checked``)."""
    return _generate(checked)[0]


def compile_file(path: str | Path, out: str | Path | None = None) -> str:
    """Write the generated source of the spec at ``path`` to ``out`` -- a file, or a directory
    (an existing one, or one written with a trailing slash) to put ``<stem>.py`` in; by default
    ``<stem>.py`` in the current directory -- and return the line ``wrote OUT: NETWORK, N
    parameters``. Raises ``OSError`` when it cannot write there, or when that is the spec or a
    file it imports: an output never replaces an input (archc.files.write_output)."""
    from archc.check import check_file
    from archc.files import output_path, write_output

    checked = check_file(path)
    if not checked.ok:
        raise ArchcError(checked.diagnostics, checked.sources)
    text, graph, parameters = _generate(checked)
    target = output_path(out, Path(path).stem)
    inputs = [str(path), *(f for f in checked.sources if f != str(path))]
    write_output(target, text, inputs)
    return f"wrote {target}: {graph.name}, {parameters:,} parameters"
