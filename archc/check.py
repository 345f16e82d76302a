"""The whole front half of the pipeline in one call: source -> checked graph + diagnostics.

``check_source``/``check_file`` run parse and elaboration (archc.frontend), shape inference
(which also resolves shortcuts), the fusion plan, accounting and the claims written in the spec.
``check_graph`` runs the passes alone on a graph built by other means. Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archc import ir
from archc import syntax as S
from archc.diagnostics import CODES, Diagnostic, error, has_errors, sort_key
from archc.ops.layout import Layout
from archc.passes.accounting import Accounting, Dtype, account
from archc.passes.claims import ClaimCheck, check_claims
from archc.passes.fusion import FusionGroup, plan_fusion
from archc.passes.shapes import infer_shapes
from archc.spans import Span

CLAIM_CODES = frozenset({"E302", "E401", "E402", "E403", "E404", "E405"})
"""Errors in what the author claimed (a declared shape, a memory or params number), not in the
network: the graph and its accounting still stand, so the table can be shown beside them."""

ACKNOWLEDGEABLE = CLAIM_CODES | {"E406", "E407"}
"""The errors a ``# expect`` comment may acknowledge: the failed claims, a table's included
(E406, E407). Any other error means the network cannot be built as written (E409); every
warning may be acknowledged."""


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
    library_defaults: list[Diagnostic] = field(default_factory=list)
    """Library defaults the spec leaves as they are where they set a training rate (I002)."""
    expected: list[Diagnostic] = field(default_factory=list)
    """Findings the spec acknowledges with ``# expect CODE`` on their line (a paper's own wrong
    numbers): made and verified, but not among ``diagnostics``."""
    family: Any = None
    """The family the spec defines (``FrontendResult.family``): its name template, params and
    variant keys; None for a plain spec."""
    params: dict[str, object] = field(default_factory=dict)
    """The spec params it was read with (``--set variant=b3``, a member's name's variant)."""

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
    text: str,
    file: str = "<string>",
    *,
    batch: int = 1,
    dtype: Dtype = "fp32",
    params: Mapping[str, object] | None = None,
) -> Checked:
    # Imported here: the passes on a hand-built graph need neither lark nor the grammar.
    from archc.frontend import parse_spec

    front = parse_spec(text, file, params=params)
    result = check_graph(
        front.graph,
        file=file,
        diagnostics=front.diagnostics,
        sources=front.sources,
        batch=batch,
        dtype=dtype,
    )
    return _front(result, front, params)


def _front(result: Checked, front: Any, params: Mapping[str, object] | None) -> Checked:
    """``result`` with what the front end says of the file besides the graph."""
    result.library, result.blocks, result.spec = front.library, front.blocks, front.spec
    result.library_defaults = front.library_defaults
    result.family, result.params = front.family, dict(params or {})
    return _acknowledge(result)


def _acknowledge(result: Checked) -> Checked:
    """Move the findings a ``# expect CODE`` comment acknowledges out of the diagnostics; an
    expectation that no finding meets is an error (E408), so a stale one cannot linger. Only a
    failed claim or a warning may be acknowledged: an ``# expect`` naming any other code, no
    code, a code archc does not have, or standing on a line of its own is E409, and acknowledges
    nothing."""
    if result.spec is None or not result.spec.expected:
        return result
    file = result.spec.file
    wanted: dict[tuple[int, str], Span] = {}
    kept: list[Diagnostic] = []
    for x in result.spec.expected:
        span = Span(
            file=file, line=x.line, column=x.column, end_line=x.line, end_column=x.column + x.width
        )
        problem = _unacknowledgeable(x)
        if problem is not None:
            kept.append(error("E409", problem[0], span, problem[1]))
        else:
            wanted.setdefault((x.line, x.code), span)
    met: set[tuple[int, str]] = set()
    for d in result.diagnostics:
        key = (d.span.line, d.code)
        if d.span.file == file and key in wanted:
            met.add(key)
            result.expected.append(d)
        else:
            kept.append(d)
    for (_, code), span in sorted(wanted.items()):
        if (span.line, code) not in met:
            kept.append(
                error(
                    "E408",
                    f"this line expects {code}, but archc finds no {code} here",
                    span,
                    _stale_help(code, span, kept),
                )
            )
    if (result.graph is None or result.accounting is None) and not has_errors(kept):
        # Never a spec that cannot be built and no error to say so (a safety net: only claims
        # and warnings are acknowledged, and those leave the network standing).
        kept += [d for d in result.expected if d.severity == "error"]
        result.expected = [d for d in result.expected if d.severity != "error"]
    result.diagnostics = sorted(kept, key=sort_key)
    return result


def _stale_help(code: str, span: Span, found: list[Diagnostic]) -> str:
    """E408's help: the finding is gone, or it is reported inside a block this line calls."""
    for d in found:
        called = any(
            n.span is not None and (n.span.file, n.span.line) == (span.file, span.line)
            for n in d.notes
        )
        if d.code == code and called:
            where = f"line {d.span.line}" if d.span.file == span.file else d.span.file
            return f"the {code} of this call is reported inside the block, at {where}: " + (
                f"put `# expect {code}` on that line (it then holds for every call)"
                if d.span.file == span.file
                else "`# expect` acknowledges findings of the file being checked only"
            )
    return f"the finding is gone: remove `# expect {code}` (and its explanation)"


def _unacknowledgeable(x: S.Expectation) -> tuple[str, str] | None:
    """Why an ``# expect`` cannot acknowledge anything (message, help), or None when it can."""
    if not x.code:
        return (
            "`# expect` names no code",
            "write the code of the finding this line means, e.g. `# expect W301`, or remove it",
        )
    if x.alone:
        return (
            f"`# expect {x.code}` stands on a line of its own, where archc finds nothing",
            "the comment must stand on the line of the finding it acknowledges, after the "
            "layer or row",
        )
    if x.code not in CODES:
        return (
            f"{x.code} is not a code archc has",
            "docs/diagnostics.md lists the codes; `archc lint` prints the one a line gets",
        )
    if x.code.startswith("E") and x.code not in ACKNOWLEDGEABLE:
        return (
            f"{x.code} cannot be acknowledged: the network cannot be built with it",
            "only a failed claim (E302, E401 to E407) or a warning may be acknowledged: fix "
            f"the line and remove `# expect {x.code}`",
        )
    return None


def check_spec(
    spec: str | os.PathLike[str],
    params: Mapping[str, object] | None = None,
    *,
    batch: int = 1,
    dtype: Dtype = "fp32",
) -> Checked:
    """Check a spec given as a path, the name of a shipped spec (``torchvision/resnet50``), of
    a family member (``torchvision/efficientnet_b3``: the family's spec with ``variant``
    set) or spec text, with the spec ``params`` given. A name that is none of these is an
    E001, not a one-word spec."""
    from archc.families import resolve
    from archc.library import NoSuchSpec

    try:
        path, params = resolve(spec, params)
    except NoSuchSpec as e:
        span = Span(file=str(spec), line=1, column=1, end_line=1, end_column=1)
        return Checked(file=str(spec), graph=None, diagnostics=[error("E001", str(e), span)])
    if path is None:
        return check_source(str(spec), batch=batch, dtype=dtype, params=params)
    return check_file(path, batch=batch, dtype=dtype, params=params)


def check_file(
    path: str | Path,
    *,
    batch: int = 1,
    dtype: Dtype = "fp32",
    params: Mapping[str, object] | None = None,
) -> Checked:
    from archc.frontend import read_spec

    front = read_spec(path, params=params)
    result = check_graph(
        front.graph,
        file=str(path),
        diagnostics=front.diagnostics,
        sources=front.sources,
        batch=batch,
        dtype=dtype,
    )
    return _front(result, front, params)
