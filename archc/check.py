"""The whole front half of the pipeline in one call: source -> checked graph + diagnostics.

``check_source``/``check_file`` run parse and elaboration (archc.frontend), shape inference
(which also resolves shortcuts), the fusion plan, accounting and the claims written in the spec.
``check_graph`` runs the passes alone on a graph built by other means. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from archc import ir
from archc import syntax as S
from archc.diagnostics import Diagnostic, error, has_errors, sort_key
from archc.ops.layout import Layout
from archc.passes.accounting import Accounting, Dtype, account
from archc.passes.claims import ClaimCheck, check_claims
from archc.passes.fusion import FusionGroup, plan_fusion
from archc.passes.shapes import infer_shapes
from archc.spans import Span

CLAIM_CODES = frozenset({"E302", "E401", "E402", "E403", "E404", "E405"})
"""Errors in what the author claimed (a declared shape, a memory or params number), not in the
network: the graph and its accounting still stand, so the table can be shown beside them."""


@dataclass
class Checked:
    file: str
    graph: ir.Graph | None
    """The graph with shortcuts resolved; None when the front end failed."""
    shapes: dict[str, ir.Shape] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    """Each shaped node's layout: channels first, or channels last (archc.ops.layout)."""
    fusion: list[FusionGroup] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    accounting: Accounting | None = None
    """Per-layer costs and totals; None when some shape could not be inferred."""
    claims: list[ClaimCheck] = field(default_factory=list)
    library: bool = False
    """True for a block library (a file of block definitions only): no graph and no error."""
    blocks: tuple[str, ...] = ()
    """The names of the blocks the file defines (see archc.frontend.FrontendResult)."""
    spec: S.Spec | None = None
    """The syntax tree, None when the text did not parse (see archc.frontend.FrontendResult)."""
    expected: list[Diagnostic] = field(default_factory=list)
    """Findings the spec acknowledges with ``# expect CODE`` on their line (a paper's own wrong
    numbers): made and verified, but not among ``diagnostics``."""

    @property
    def ok(self) -> bool:
        return self.graph is not None and not has_errors(self.diagnostics)

    @property
    def only_claims_fail(self) -> bool:
        """The graph and its accounting stand, and every error is a failed claim."""
        return (
            self.graph is not None
            and self.accounting is not None
            and all(d.code in CLAIM_CODES for d in self.diagnostics if d.severity == "error")
        )


def check_graph(
    graph: ir.Graph | None,
    *,
    file: str | None = None,
    diagnostics: list[Diagnostic] | None = None,
    sources: dict[str, str] | None = None,
    batch: int = 1,
    dtype: Dtype = "fp32",
) -> Checked:
    """Run the passes on ``graph`` (None: only report ``diagnostics`` from an earlier stage)."""
    file = file if file is not None else (graph.file if graph is not None else "<string>")
    result = Checked(file=file, graph=None, diagnostics=list(diagnostics or []))
    result.sources = dict(sources or {})
    if graph is None:
        return result
    shaped = infer_shapes(graph)
    result.graph = shaped.graph
    result.shapes = shaped.shapes
    result.layouts = shaped.layouts
    result.diagnostics += shaped.diagnostics
    # A wrong declared shape (E302) does not stop accounting: every shape is still known.
    if all(n.name in shaped.shapes for n in shaped.graph.nodes):
        result.fusion = plan_fusion(shaped.graph)
        result.accounting = account(shaped.graph, shaped.shapes, result.fusion, batch, dtype)
        claims = check_claims(shaped.graph, result.accounting)
        result.claims = claims.checks
        result.diagnostics += claims.diagnostics
    result.diagnostics.sort(key=sort_key)
    return result


def check_source(
    text: str, file: str = "<string>", *, batch: int = 1, dtype: Dtype = "fp32"
) -> Checked:
    # Imported here: the passes on a hand-built graph need neither lark nor the grammar.
    from archc.frontend import parse_spec

    front = parse_spec(text, file)
    result = check_graph(
        front.graph,
        file=file,
        diagnostics=front.diagnostics,
        sources=front.sources,
        batch=batch,
        dtype=dtype,
    )
    result.library, result.blocks, result.spec = front.library, front.blocks, front.spec
    return _acknowledge(result)


def _acknowledge(result: Checked) -> Checked:
    """Move the findings a ``# expect CODE`` comment acknowledges out of the diagnostics; an
    expectation that no finding meets is an error (E408), so a stale one cannot linger."""
    if result.spec is None or not result.spec.expected:
        return result
    wanted = set(result.spec.expected)
    met: set[tuple[int, str]] = set()
    kept: list[Diagnostic] = []
    for d in result.diagnostics:
        key = (d.span.line, d.code)
        if d.span.file == result.spec.file and key in wanted:
            met.add(key)
            result.expected.append(d)
        else:
            kept.append(d)
    for line, code in sorted(wanted - met):
        span = Span(file=result.spec.file, line=line, column=1, end_line=line, end_column=2)
        kept.append(
            error(
                "E408",
                f"this line expects {code}, but archc finds no {code} here",
                span,
                "the finding is gone: remove `# expect " + code + "` (and its explanation)",
            )
        )
    result.diagnostics = sorted(kept, key=sort_key)
    return result


def check_spec(spec: str | os.PathLike[str], *, batch: int = 1, dtype: Dtype = "fp32") -> Checked:
    """Check a spec given as a path, the name of a shipped spec (``torchvision/resnet50``) or
    spec text. A name that is none of these is an E001, not a one-word spec."""
    from archc.library import NoSuchSpec, find_spec

    try:
        path = find_spec(spec)
    except NoSuchSpec as e:
        span = Span(file=str(spec), line=1, column=1, end_line=1, end_column=1)
        return Checked(file=str(spec), graph=None, diagnostics=[error("E001", str(e), span)])
    if path is None:
        return check_source(str(spec), batch=batch, dtype=dtype)
    return check_file(path, batch=batch, dtype=dtype)


def check_file(path: str | Path, *, batch: int = 1, dtype: Dtype = "fp32") -> Checked:
    from archc.frontend import read_spec

    front = read_spec(path)
    result = check_graph(
        front.graph,
        file=str(path),
        diagnostics=front.diagnostics,
        sources=front.sources,
        batch=batch,
        dtype=dtype,
    )
    result.library, result.blocks, result.spec = front.library, front.blocks, front.spec
    return _acknowledge(result)
