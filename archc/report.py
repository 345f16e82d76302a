"""The lecture table: a checked graph's accounting as text, markdown or JSON.

One row per node (name, layer, output HxWxC, memory, params, MACs, receptive field, fused
group), then the totals, the fusion plan and the claims that were checked. ``archc summary``
prints these; docs/accounting.md says what each number counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction

from archc import ir
from archc.check import Checked
from archc.diagnostics import Diagnostic
from archc.nodes import fmt_shape
from archc.numbers import fmt_bytes, fmt_count
from archc.ops import op_of
from archc.ops.layout import CHANNELS_FIRST, CHANNELS_LAST, Layout
from archc.passes.accounting import Accounting, LayerAccount
from archc.passes.claims import claim_text
from archc.passes.fusion import FusionGroup
from archc.recipe_ir import describe as describe_recipe

HEADERS = ("name", "layer", "output", "memory", "params", "MACs", "RF", "jump", "fused group")
# Numeric columns are right-aligned in text.
_NUMERIC = {"memory", "params", "MACs", "RF", "jump"}


def describe(node: ir.Node) -> str:
    """A node the way a table prints it: ``conv 96 11x11 s4``, ``max pool 3x3 s2``, ``FC 4096``
    (archc's own notation, which the language reads back)."""
    if isinstance(node, ir.Input | ir.Shortcut):
        return node.op
    return op_of(node).describe(node)


def _shape(shape: tuple[int, ...], layout: Layout | None) -> str:
    """An output shape as the table prints it: H x W x C whatever the tensor's layout, marked
    ``channels last`` (or ``permuted``) when a ``permute`` reordered the tensor's axes."""
    if layout is None or len(shape) != 3 or layout == CHANNELS_FIRST:
        return fmt_shape(shape)
    first = [0, 0, 0]
    for axis, size in zip(layout, shape, strict=True):
        first[axis - 1] = size
    mark = "channels last" if layout == CHANNELS_LAST else "permuted"
    return f"{fmt_shape(tuple(first))} {mark}"


def _row(la: LayerAccount, node: ir.Node, layout: Layout | None = None) -> tuple[str, ...]:
    return (
        la.name,
        describe(node),
        _shape(la.output_shape, layout),
        fmt_count(la.activations) if la.activations else "-",
        f"{la.params:,}" if la.params else "0",
        fmt_count(la.macs) if la.macs else "0",
        str(la.rf_size),
        str(la.rf_jump),
        la.group or "-",
    )


def _rows(checked: Checked, acc: Accounting, depth: int | None = None) -> list[tuple[str, ...]]:
    assert checked.graph is not None
    nodes = {n.name: n for n in checked.graph.nodes}
    if depth is None:
        rows = [_row(la, nodes[la.name], checked.layouts.get(la.name)) for la in acc.layers]
    else:
        rows = [
            _row(group[0], nodes[name], checked.layouts.get(name))
            if len(group) == 1 and group[0].name == name
            else _rolled(name, group, nodes, depth, checked.layouts.get(group[-1].name))
            for name, group in _groups(acc.layers, depth).items()
        ]
    sections = aux_sections(checked.graph)
    marked = [r[:1] + (f"{r[1]} [aux]",) + r[2:] for r in rows if _aux_of(r[0], sections)]
    if not marked:
        return rows
    it = iter(marked)
    return [next(it) if _aux_of(r[0], sections) else r for r in rows]


def aux_sections(graph: ir.Graph) -> list[str]:
    """The names of the network's auxiliary classifiers (``aux NAME:``), in the order of their
    outputs in training mode (none for a graph-like object without ``aux``)."""
    return [name.split(".", 1)[0] for name in getattr(graph, "aux", ())]


def _aux_of(name: str, sections: list[str]) -> str | None:
    """The auxiliary classifier the layer (or rolled-up group) ``name`` belongs to, if any."""
    head = name.split(".", 1)[0]
    return head if head in sections else None


def _aux_lines(checked: Checked, acc: Accounting) -> list[str]:
    """The totals' line on the auxiliary classifiers: what of the totals is theirs."""
    assert checked.graph is not None
    sections = aux_sections(checked.graph)
    if not sections:
        return []
    layers = [la for la in acc.layers if _aux_of(la.name, sections)]
    params = sum(la.params for la in layers)
    macs = sum(la.macs for la in layers)
    names = ", ".join(dict.fromkeys(_aux_of(la.name, sections) or "" for la in layers))
    return [
        f"aux          {len(sections)} auxiliary classifier{'s' if len(sections) > 1 else ''} "
        f"({names}; rows marked [aux]): {params:,} params ({fmt_count(params)}) and "
        f"{fmt_count(macs)} MACs of the totals, run in training mode only"
    ]


def _groups(layers: Sequence[LayerAccount], depth: int) -> dict[str, list[LayerAccount]]:
    """Layers by the first ``depth`` parts of their dotted names (``conv2_x``, ``conv2_x.0``):
    the stages and blocks of the module hierarchy, in order."""
    groups: dict[str, list[LayerAccount]] = {}
    for la in layers:
        groups.setdefault(".".join(la.name.split(".")[:depth]), []).append(la)
    return groups


def _rolled(
    name: str,
    group: list[LayerAccount],
    nodes: dict[str, ir.Node],
    depth: int,
    layout: Layout | None = None,
) -> tuple[str, ...]:
    """One row for a stage or block: what it is, its last output, its costs summed."""
    # The block every layer of the group comes from: the last of the calls their origins share
    # (a layer of an SE block inside a `bneck` still comes from the `bneck`).
    chains = [tuple(f.block for f in nodes[la.name].origin[:depth]) for la in group]
    shared = chains[0]
    for chain in chains[1:]:
        n = 0
        while n < min(len(shared), len(chain)) and shared[n] == chain[n]:
            n += 1
        shared = shared[:n]
    block = shared[-1] if shared else None
    # Repeated and consecutive calls are numbered (`conv2_x.0`, `conv2_x.1`), as torchvision
    # numbers a stage's blocks; one call's own parts have names (`inception3a.branch1`). A
    # sequential block numbers its own layers too (`features.0.0`, `features.0.1`): numbered
    # parts are calls only when each holds layers of its own.
    parts = {la.name.split(".")[depth] for la in group if la.name.count(".") >= depth}
    nested = {la.name.split(".")[depth] for la in group if la.name.count(".") > depth}
    calls = len(parts) if parts and all(p.isdigit() for p in parts) and parts == nested else 1
    what = f"{calls} × {block}" if block and calls > 1 else block or "group"
    last = group[-1]
    activations = sum(la.activations for la in group)
    params = sum(la.params for la in group)
    macs = sum(la.macs for la in group)
    return (
        name,
        f"{what} ({len(group)} layers)",
        _shape(last.output_shape, layout),
        fmt_count(activations) if activations else "-",
        f"{params:,}",
        fmt_count(macs) if macs else "0",
        str(last.rf_size),
        str(last.rf_jump),
        "-",
    )


def _totals_lines(acc: Accounting) -> list[str]:
    t = acc.totals
    per = f"batch {t.batch}, {t.dtype}"
    lines = [
        f"params       {t.params:,} ({fmt_count(t.params)}; {t.params - t.biases:,} without "
        f"biases), {fmt_bytes(t.param_bytes)} at {t.dtype}",
        f"buffers      {t.buffers:,} (BN running statistics)",
        f"MACs         {t.macs:,} ({fmt_count(t.macs)}) per image",
        f"activations  {t.activations:,} values ({fmt_count(t.activations)}) per image, "
        f"{fmt_bytes(t.activation_bytes)} at {t.dtype}",
        f"forward      {fmt_bytes(t.forward_bytes)} ({t.forward_bytes:,} bytes; {per}: "
        f"activations + params + buffers)",
        f"training     {fmt_bytes(t.train_bytes)} ({t.train_bytes:,} bytes; {per}: "
        f"2 × activations + 3 × params + buffers)",
    ]
    return lines


def _fusion_lines(groups: Sequence[FusionGroup]) -> list[str]:
    lines = []
    for g in groups:
        chain = " → ".join(g.members)
        extra = f" (+ residual {g.residual})" if g.residual else ""
        lines.append(f"{g.name}: {chain}{extra}")
    return lines


def _claims_line(checked: Checked) -> str:
    claims = checked.claims
    held = sum(c.ok for c in claims)
    counts = {
        k: sum(c.claim.kind == k for c in claims) for k in ("memory", "params", "ops", "depth")
    }
    no_bias = sum(c.matched == "without biases" for c in claims)
    verdict = "all hold" if held == len(claims) else f"{held} hold"
    kinds = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("memory", "params"))
    line = f"{len(claims)} claims checked ({kinds}): {verdict}"
    if checked.expected:
        line += f", {len(checked.expected)} expected findings made (# expect)"
    if no_bias:
        line += f"; {no_bias} params claims leave the biases out"
    return line


def _title(checked: Checked) -> str:
    assert checked.graph is not None
    first = checked.graph.nodes[0]
    shape = checked.shapes.get(first.name)
    where = f" ({checked.file})" if checked.file else ""
    return f"{checked.graph.name}{where}, input {fmt_shape(shape) if shape else '?'}"


def render_text(checked: Checked, depth: int | None = None) -> str:
    """The table; ``depth`` rolls layers up into their stages (1) or blocks (2), as torchinfo's
    depth does."""
    acc = checked.accounting
    assert acc is not None
    rows = [HEADERS, *_rows(checked, acc, depth)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(w) if HEADERS[i] in _NUMERIC else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    out = [_title(checked), "", line(HEADERS), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[1:]]
    out += ["", "memory: values each layer adds (- = in place or a view, none added)", ""]
    out += ["totals", *("  " + s for s in _totals_lines(acc) + _aux_lines(checked, acc))]
    if checked.fusion and depth is not None:
        # Rolled up, the table is short; a plan of every group would be most of it again.
        out += ["", f"fusion plan: {len(checked.fusion)} groups (listed without --depth)"]
    elif checked.fusion:
        out += ["", f"fusion plan ({len(checked.fusion)} groups)"]
        out += ["  " + s for s in _fusion_lines(checked.fusion)]
    if checked.claims:
        out += ["", _claims_line(checked)]
    out += _library_default_lines(checked)
    out += _recipe_lines(checked.graph)
    return "\n".join(out)


def _library_default_lines(checked: Checked) -> list[str]:
    """I002: the library defaults the spec leaves as they are where they set a training rate."""
    if not checked.library_defaults:
        return []
    lines = ["", "library defaults left as they are (check them for this network: I002)"]
    return lines + [f"  line {d.span.line}: {d.message}" for d in checked.library_defaults]


def _recipe_lines(graph: ir.Graph | None) -> list[str]:
    if graph is None or graph.recipe is None:
        return []
    rows = describe_recipe(graph.recipe, graph.init)
    width = max(len(k) for k, _ in rows)
    head = f"training recipe (train: on line {graph.recipe.line})"
    return ["", head, *(f"  {k.ljust(width)}  {v}" for k, v in rows)]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(checked: Checked, depth: int | None = None) -> str:
    acc = checked.accounting
    assert acc is not None
    align = ["---:" if h in _NUMERIC else "---" for h in HEADERS]
    out = [f"### {_title(checked)}", ""]
    out.append("| " + " | ".join(HEADERS) + " |")
    out.append("| " + " | ".join(align) + " |")
    for row in _rows(checked, acc, depth):
        out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    out += ["", "**Totals**", ""]
    out += [f"- {' '.join(s.split())}" for s in _totals_lines(acc) + _aux_lines(checked, acc)]
    if checked.fusion and depth is not None:
        out += ["", f"**Fusion plan**: {len(checked.fusion)} groups (listed without --depth)"]
    elif checked.fusion:
        out += ["", f"**Fusion plan** ({len(checked.fusion)} groups)", ""]
        out += [f"- {_md_cell(s)}" for s in _fusion_lines(checked.fusion)]
    if checked.claims:
        out += ["", _claims_line(checked)]
    if checked.library_defaults:
        out += ["", "**Library defaults left as they are** (check them for this network: I002)"]
        out += [""] + [f"- line {d.span.line}: {d.message}" for d in checked.library_defaults]
    recipe = checked.graph.recipe if checked.graph else None
    if recipe is not None and checked.graph is not None:
        out += ["", f"**Training recipe** (train: on line {recipe.line})", ""]
        out += [f"- {k}: {_md_cell(v)}" for k, v in describe_recipe(recipe, checked.graph.init)]
    return "\n".join(out)


def summary_dict(checked: Checked) -> dict[str, object]:
    acc = checked.accounting
    assert acc is not None and checked.graph is not None
    nodes = {n.name: n for n in checked.graph.nodes}
    t = acc.totals
    return {
        "network": checked.graph.name,
        "file": checked.file,
        "batch": t.batch,
        "dtype": t.dtype,
        "layers": [
            {
                "name": la.name,
                "op": la.op,
                "layer": describe(nodes[la.name]),
                "output_shape": list(la.output_shape),
                "values": la.values,
                "activations": la.activations,
                "params": la.params,
                "weights": la.weights,
                "biases": la.biases,
                "buffers": la.buffers,
                "macs": la.macs,
                "receptive_field": _exact(la.rf_size),
                "jump": _exact(la.rf_jump),
                "group": la.group,
                "line": la.span.line if la.span else None,
            }
            for la in acc.layers
        ],
        "totals": {
            "params": t.params,
            "params_without_biases": t.params - t.biases,
            "buffers": t.buffers,
            "macs": t.macs,
            "activations": t.activations,
            "activation_bytes": t.activation_bytes,
            "batch_activation_bytes": t.batch_activation_bytes,
            "param_bytes": t.param_bytes,
            "forward_bytes": t.forward_bytes,
            "train_bytes": t.train_bytes,
        },
        "fusion": [
            {"name": g.name, "members": g.members, "residual": g.residual} for g in checked.fusion
        ],
        "claims": [
            {
                "node": c.node,
                "kind": c.claim.kind,
                "claim": claim_text(c.claim),
                "ok": c.ok,
                "matched": c.matched,
                "line": c.claim.span.line,
            }
            for c in checked.claims
        ],
        "recipe": checked.graph.recipe.model_dump() if checked.graph.recipe else None,
        # Only where there are some (aux classifiers, I002): other summaries keep their keys.
        **({"aux": _aux_dict(checked.graph, acc)} if checked.graph.aux else {}),
        **(
            {"library_defaults": [_library_default(d) for d in checked.library_defaults]}
            if checked.library_defaults
            else {}
        ),
    }


def _aux_dict(graph: ir.Graph, acc: Accounting) -> list[dict[str, object]]:
    """Each auxiliary classifier: its name, its output and the totals' share that is its."""
    out: list[dict[str, object]] = []
    for name, output in zip(aux_sections(graph), graph.aux):
        layers = [la for la in acc.layers if la.name.split(".", 1)[0] == name]
        params = sum(la.params for la in layers)
        macs = sum(la.macs for la in layers)
        out.append({"name": name, "output": output, "params": params, "macs": macs})
    return out


def _library_default(d: Diagnostic) -> dict[str, object]:
    return {"line": d.span.line, "message": d.message}


def _exact(value: int | Fraction) -> int | str:
    """A receptive-field number for JSON: an int, or a fraction as text (``"1/2"``)."""
    return value if isinstance(value, int) else str(value)


def render_json(checked: Checked) -> str:
    return json.dumps(summary_dict(checked), indent=2)
