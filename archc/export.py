"""``archc export``: a spec's module as an ONNX file, checked against onnxruntime.

The exporter is torch's own: ``torch.onnx.export(dynamo=True)`` (torch.export, then
onnxscript's translation and optimiser); the TorchScript exporter only where that one is not
available (no onnxscript, a torch without ``dynamo=``), and the report says which ran. The
batch dimension is dynamic. Nodes are renamed after the spec's layers (``layer1.0.conv1``)
from the module scope torch records on each node; a Conv with its BN folded in by the
optimiser keeps the conv's name. Exported in eval mode: BN uses its running statistics.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc import ir
from archc.diagnostics import ArchcError

if TYPE_CHECKING:
    import onnx
    import torch

TOLERANCE = 1e-5
"""onnxruntime's output may differ from torch's by this much, relative to the output's
largest magnitude: the two run the same float32 arithmetic in other orders. Relative to that
magnitude alone, with no floor of 1: a freshly initialised MobileNetV3 or EfficientNet outputs
values near 1e-9, against which an absolute 1e-5 would pass a file that outputs zeros."""

TRACE_BATCH, CHECK_BATCH = 2, 3
"""Exported at one batch size and checked at another, so the check proves the batch dynamic."""


@dataclass(frozen=True)
class Exported:
    path: Path
    exporter: str
    """``dynamo`` (torch.export + onnxscript) or ``torchscript`` (the fallback)."""
    nodes: int
    named: int
    """Nodes renamed after a spec layer (the TorchScript exporter names its own by scope)."""
    difference: float | None = None
    """Max |onnxruntime − torch| over the check batch; None when onnxruntime is missing."""
    scale: float = 1.0


class ExportError(Exception):
    """An export archc refuses or cannot make, in one line (``archc export: ...``)."""


def export_onnx(
    spec: str | os.PathLike[str],
    output: Path,
    inputs: list[str],
    *,
    opset: int | None = None,
    weights: Path | None = None,
    sets: dict[str, str] | None = None,
) -> Exported:
    """Write the ONNX file of ``spec`` to ``output`` and check it with onnxruntime if present.
    ``inputs`` are never replaced, nor any file the spec imports. ``weights``: a checkpoint of
    ``archc train`` (its averaged weights when it has them) or a state_dict, loaded strictly by
    name; ``sets``: ``--set`` values (archc.parameters). Raises :class:`ArchcError` for a spec
    with errors, :class:`ExportError` for an opset the exporter does not write or example
    batches that would not fit in memory, ``ImportError`` without onnx,
    archc.training.checkpoint.CheckpointError for weights that do not fit and
    archc.parameters.SettingError."""
    import onnx  # noqa: F401  (fail before the slow part when the extra is missing)

    from archc.files import check_target, write_output
    from archc.progress import stages

    names = ("checking", "building", "exporting", "checking with onnxruntime")
    with stages("archc export", names) as step:
        step("checking the spec")
        from archc.parameters import check_with

        checked = check_with(spec, sets or {})
        if checked.graph is None or not checked.ok:
            library = checked.blocks if checked.library else ()
            raise ArchcError(checked.diagnostics, checked.sources, library)
        _check_memory(checked)
        check_target(output, [*inputs, *checked.sources])
        step("importing torch, building the module")
        import torch

        from archc.backends.torch_module import build_module

        try:
            model = build_module(checked).eval()
        except ArchcError as e:  # E502: too large for this machine
            raise ArchcError(e.diagnostics, checked.sources) from None
        if weights is not None:
            from archc.training.weights import load_into, same_network

            load_into(model, weights)
            same_network(checked, weights, "export")
        shape = checked.shapes[checked.graph.nodes[0].name]
        example = torch.randn(TRACE_BATCH, *shape, generator=torch.Generator().manual_seed(0))
        step("exporting (torch.export, onnxscript)")
        proto, exporter = _export(model, example, opset)
        _check_written_opset(proto, opset)
        named = _name_nodes(proto, checked.graph) if exporter == "dynamo" else 0
        data = proto.SerializeToString()
        write_output(output, data, [*inputs, *checked.sources])
        result = Exported(output, exporter, len(proto.graph.node), named)
        step("running onnxruntime")
        return _check(result, model, shape, data)


def _check_written_opset(proto: onnx.ModelProto, opset: int | None) -> None:
    if opset is None:
        return
    """torch's exporter keeps opset 18 where it cannot convert down to the one asked for
    (13, 7), saying so only in a log line: the file is refused rather than written at
    another opset than the user named."""
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise ExportError(
            f"--opset {opset} is not supported: torch's exporter could not convert the model "
            f"to it and made opset {written}; nothing was written (omit --opset for torch's "
            "default, or choose 17 or newer)"
        )


def _check_memory(checked: Any) -> None:
    """Refuse, before allocating, example batches that would not fit in the memory this
    process may use (archc.memory.process_memory: RLIMIT_AS and the cgroup's limit count).
    Counted: the weights, and at the check batch every activation twice (torch's forward
    and onnxruntime's), in float32."""
    from archc.files import fmt_size
    from archc.memory import process_memory

    totals = checked.accounting.totals
    weights = (totals.params + totals.buffers) * 4
    needed = weights + 2 * CHECK_BATCH * totals.activations * 4
    limit = process_memory()
    if needed > limit:
        raise ExportError(
            f"exporting needs about {fmt_size(needed)} (weights, and a batch of {CHECK_BATCH} "
            f"through torch and onnxruntime), more than the {fmt_size(limit)} this process may "
            "use (physical memory, ulimit -v, the container's limit); reduce the input size"
        )


def _export(model: torch.nn.Module, x: torch.Tensor, opset: int | None) -> tuple[Any, str]:
    import logging

    # A failed down-conversion to --opset is logged by onnxscript and torch with a traceback;
    # archc checks the opset written and says so in one line (_check_written_opset).
    loggers = [logging.getLogger(name) for name in ("onnxscript", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        return _run_exporter(model, x, opset)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _run_exporter(model: torch.nn.Module, x: torch.Tensor, opset: int | None) -> tuple[Any, str]:
    import torch

    names: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"]}
    if opset is not None:
        names["opset_version"] = opset
    try:
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
            **names,
        )
        return program.model_proto, "dynamo"
    except (ImportError, TypeError):
        # No onnxscript, or a torch whose export has no `dynamo=`: the TorchScript exporter.
        import io

        import onnx

        buffer = io.BytesIO()
        axes = {"input": {0: "batch"}, "output": {0: "batch"}}
        torch.onnx.export(model, (x,), buffer, dynamo=False, dynamic_axes=axes, **names)
        return onnx.load_from_string(buffer.getvalue()), "torchscript"


def _scope(node: onnx.NodeProto) -> str | None:
    """The module path torch recorded for a node (``layer1.0.conv1``)."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = ast.literal_eval(prop.value)
            # The last scope is the aten op; the one before it the module.
            return scopes[-2] if len(scopes) >= 2 else None
    return None


# Layers that are a function call in the module's forward, not a module: torch records only
# the enclosing module's scope for them (``layer1.0`` for ``layer1.0.add1``).
# Layers the generated forward calls as functions (no module scope on their ONNX nodes), by the
# ONNX op they export to: named after the only such layer in the scope.
_FUNCTIONS = {
    "Add": "add",
    "Concat": "concat",
    "Softmax": "softmax",
    "Flatten": "flatten",
    "Reshape": "flatten",
}


def _name_nodes(proto: onnx.ModelProto, graph: ir.Graph) -> int:
    layers = {n.name: n for n in graph.nodes}
    functions: dict[tuple[str, str], list[ir.Node]] = {}
    for n in graph.nodes:
        if n.op in _FUNCTIONS.values():
            scope = n.name.rsplit(".", 1)[0] if "." in n.name else ""
            functions.setdefault((scope, n.op), []).append(n)
    used = {n.name for n in proto.graph.node}
    named = 0
    for node in proto.graph.node:
        scope = _scope(node)
        if scope is None:
            continue
        layer = layers.get(scope)
        if layer is None and node.op_type in _FUNCTIONS:
            candidates = functions.get((scope, _FUNCTIONS[node.op_type]), [])
            layer = candidates[0] if len(candidates) == 1 else None
        if layer is None:
            continue
        if node.op_type == "Conv" and isinstance(layer, ir.BatchNorm):
            layer = layers[layer.inputs[0]]  # the BN folded into its conv: the conv's name
        name, k = layer.name, 1
        while name in used:
            name, k = f"{layer.name}/{node.op_type}_{k}", k + 1
        used.discard(node.name)
        node.name = name
        used.add(name)
        named += 1
    return named


def _check(
    result: Exported, model: torch.nn.Module, shape: tuple[int, ...], data: bytes | None = None
) -> Exported:
    try:
        import onnxruntime
    except ImportError:
        return result
    import torch

    x = torch.randn(CHECK_BATCH, *shape, generator=torch.Generator().manual_seed(1))
    # The bytes written, not the file: the output may be stdout or a pipe.
    model_file = data if data is not None else str(result.path)
    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x)
    difference = float((torch.from_numpy(got) - want).abs().max())
    scale = max(float(want.abs().max()), 1e-30)  # all zeros: any difference is one
    return replace(result, difference=difference, scale=scale)


def report(result: Exported) -> tuple[str, bool]:
    """The lines ``archc export`` prints, and whether onnxruntime agreed."""
    how = (
        "torch.onnx.export(dynamo=True)"
        if result.exporter == "dynamo"
        else "the TorchScript exporter (dynamo export unavailable: pip install 'archc[onnx]')"
    )
    lines = [
        f"wrote {result.path}: {result.nodes} nodes ({result.named} named after spec layers), "
        f"dynamic batch, exported with {how}"
    ]
    if result.difference is None:
        lines.append("not checked: onnxruntime is not installed (pip install onnxruntime)")
        return "\n".join(lines), True
    ok = result.difference <= TOLERANCE * result.scale
    verdict = "equals" if ok else "DIFFERS FROM"
    lines.append(
        f"onnxruntime's output {verdict} the module's at batch {CHECK_BATCH}: "
        f"max |difference| {result.difference:.1e}, tolerance {TOLERANCE * result.scale:.1e}"
    )
    return "\n".join(lines), ok
