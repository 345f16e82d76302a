"""The whole front half of the pipeline in one call: source -> checked graph + diagnostics.

``check_source``/``check_file`` run parse and elaboration (archc.frontend), shape inference
(which also resolves shortcuts), and the fusion plan. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archc import ir
from archc.diagnostics import Diagnostic, has_errors, sort_key
from archc.frontend import FrontendResult, parse_spec, read_spec
from archc.passes.fusion import FusionGroup, plan_fusion
from archc.passes.shapes import infer_shapes


@dataclass
class Checked:
    file: str
    graph: ir.Graph | None
    """The graph with shortcuts resolved; None when the front end failed."""
    shapes: dict[str, ir.Shape] = field(default_factory=dict)
    fusion: list[FusionGroup] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.graph is not None and not has_errors(self.diagnostics)


def _check(front: FrontendResult, file: str) -> Checked:
    result = Checked(file=file, graph=None, diagnostics=list(front.diagnostics))
    result.sources = front.sources
    if front.graph is None:
        return result
    shaped = infer_shapes(front.graph)
    result.graph = shaped.graph
    result.shapes = shaped.shapes
    result.diagnostics += shaped.diagnostics
    if not has_errors(result.diagnostics):
        result.fusion = plan_fusion(shaped.graph)
    result.diagnostics.sort(key=sort_key)
    return result


def check_source(text: str, file: str = "<string>") -> Checked:
    return _check(parse_spec(text, file), file)


def check_file(path: str | Path) -> Checked:
    return _check(read_spec(path), str(path))
