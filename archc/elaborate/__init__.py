"""Syntax tree -> IR graph: blocks, calls, repetition, stages, residuals, branches, defaults.

Elaboration is a few small passes with typed state, in this order:

1. :mod:`~archc.elaborate.imports` fills the block table from the spec and its imports;
2. :mod:`~archc.elaborate.expand` walks the statements, expanding block calls, and emits
   drafts, named by :mod:`~archc.elaborate.naming`, with the values of
   :mod:`~archc.elaborate.values` and the followers of :mod:`~archc.elaborate.defaults`;
3. :mod:`~archc.elaborate.activations` removes the last FC's default followers and warns at
   layers left without a non-linearity (W219);
4. :mod:`~archc.elaborate.graph` validates the drafts as the IR graph, and
   :mod:`~archc.elaborate.stochastic` warns at a stochastic depth off any residual branch (W221);
5. :mod:`~archc.elaborate.recipe` reads the ``train:`` section against that graph.

**One IR level, made explicit.** The elaborated graph is the spec's meaning as written: a
residual's ``shortcut: auto|identity|projection`` stays one :class:`archc.ir.Shortcut` node
(it is what ``archc ir`` prints), because whether ``auto`` is an identity or a 1x1 conv + BN
depends on shapes, which elaboration does not compute. Shape inference
(:func:`archc.passes.shapes.infer_shapes`) is the one pass that reads ``Shortcut`` nodes: it
lowers each into an identity or concrete ops, and every pass and backend after it works on that
lowered graph (``ShapeResult.graph``, ``Checked.graph``), which has no ``Shortcut``.
"""

from __future__ import annotations

import re
from pathlib import Path

from archc import ir
from archc import syntax as S
from archc.constructs import construct_of
from archc.diagnostics import Diagnostic, error, merge_repeats
from archc.elaborate.activations import drop_last_fc_followers, unactivated
from archc.elaborate.defaults import lecture_convention
from archc.elaborate.expand import Ctx, Expander
from archc.elaborate.graph import build_graph
from archc.elaborate.imports import BlockTable, Loader
from archc.elaborate.naming import RESERVED_NAMES, Scope, reserved
from archc.elaborate.params import Settings
from archc.elaborate.problems import Abort, Problem
from archc.elaborate.recipe import read_recipe
from archc.elaborate.stochastic import stray_stochastic_depth
from archc.elaborate.values import Values, claim, fill, total_budget
from archc.spans import Span

__all__ = ["RESERVED_NAMES", "Loader", "elaborate", "reserved"]


def elaborate(
    spec: S.Spec,
    loader: Loader,
    parse_errors: bool = False,
    params: Settings | None = None,
) -> tuple[ir.Graph | None, list[Diagnostic]]:
    """Elaborate a parsed spec; ``loader`` reads imported files (see :data:`Loader`).
    ``parse_errors`` says the parser already reported why the spec may have no layers;
    ``params`` sets the spec's ``param``s (archc.elaborate.params)."""
    diags: list[Diagnostic] = []
    with total_budget():
        graph = _elaborate(spec, loader, parse_errors, diags, params or {})
    return graph, merge_repeats(diags)


def _elaborate(
    spec: S.Spec, loader: Loader, parse_errors: bool, diags: list[Diagnostic], params: Settings
) -> ir.Graph | None:
    file = spec.file
    convention = lecture_convention(spec.body)
    blocks = BlockTable(loader, diags)
    blocks.register_root(spec, convention, params)
    if any(d.code == "E229" for d in diags):
        return None  # the constants the file's lines read are not what the caller meant
    name = _network_name(spec, blocks, diags)
    init = "kaiming"
    for st in spec.body:
        if isinstance(st, S.InitStmt):
            init = st.scheme
    inputs = [st for st in spec.body if isinstance(st, S.InputStmt)]
    layers = [st for st in spec.body if construct_of(st).builds]
    start = Span(file=file, line=1, column=1, end_line=1, end_column=1)
    if not layers:
        # A file of block definitions only is a library (specs/blocks/): nothing to build.
        library = not inputs and any(isinstance(st, S.BlockDef) for st in spec.body)
        if not diags and not parse_errors and not library:
            diags.append(
                error(
                    "E003",
                    "the spec has no layers",
                    inputs[0].span if inputs else start,
                    "write the input line, e.g. `input [224x224x3]`, then one layer per line",
                )
            )
        return None
    if not inputs or layers[0].span.line < inputs[0].span.line:
        diags.append(
            error(
                "E201",
                "the first layer comes before any input line",
                layers[0].span,
                "start the network with its input, e.g. `input [224x224x3]` or `[227x227x3] INPUT`",
            )
        )
        return None
    expander = Expander(blocks, diags)
    ctx = Ctx(env={}, defaults={}, convention=convention)
    try:
        output = expander.body(spec.body, ctx, Scope(prefix=""), None, top=True)
    except Abort:
        return None
    if any(d.severity == "error" for d in diags) or output is None:
        return None
    if len(expander.drafts) <= 1:  # the input alone: every block called expands to nothing
        if parse_errors or blocks.import_failed:
            return None  # a block line that did not parse is the cause, already reported
        diags.append(
            error(
                "E003",
                "the spec has no layers: the blocks it calls expand to nothing",
                layers[0].span,
                "give the block at least one layer, e.g. `CONV 64 3x3`",
            )
        )
        return None
    # The training-mode outputs after the main one: the aux classifiers' from the last written
    # to the first, as torchvision's GoogLeNetOutputs(logits, aux_logits2, aux_logits1).
    aux = expander.aux_outputs[::-1]
    drop_last_fc_followers(expander.drafts, [_aux_name(a) for a in aux])
    diags += unactivated(expander.drafts)
    totals = [claim(st.claim) for st in spec.body if isinstance(st, S.TotalClaim)]
    graph = build_graph(expander.drafts, file, name or "network", init, output, diags, totals, aux)
    if graph is None:
        return None
    diags += stray_stochastic_depth(graph)
    trains = [st for st in spec.body if isinstance(st, S.Train)]
    recipe = read_recipe(trains, graph, diags)
    if any(d.severity == "error" for d in diags):
        return None
    return graph.model_copy(update={"recipe": recipe}) if recipe else graph


def _aux_name(output: str) -> str:
    """The name of the ``aux`` section whose output is ``output`` (its top-level part)."""
    return output.split(".", 1)[0]


def _network_name(spec: S.Spec, blocks: BlockTable, diags: list[Diagnostic]) -> str | None:
    """``network NAME``, a template filled from the file's constants, or the file's stem."""
    name = None if spec.file.startswith("<") else _sanitise(Path(spec.file).stem)
    for st in spec.body:
        if isinstance(st, S.Network):
            name = st.name
            if st.template is not None:
                known = blocks.constants.get(spec.file)
                try:
                    name = fill(st.template, Values(known.env if known else {}, None), True)
                except Problem as p:
                    diags.append(error(p.code, p.message, p.span, p.help))
    return name


def _sanitise(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if name.strip("_") else "network"
