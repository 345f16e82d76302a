"""Checked claims: the ``memory:`` and ``params:`` numbers a spec line prints (codes E4xx).

A claim such as ``params: (3*3*3)*64 = 1,728`` says two things, and both are checked:

- E401: the arithmetic equals the printed value at the precision printed
  (:mod:`archc.numbers`: ``3.2M`` admits 3,150,000 ≤ v < 3,250,000, ``1,728`` only 1728);
- E402 (memory) / E403 (params) / E406 (ops, multiply-accumulates) / E407 (depth, the weight
  layers on the line's longest path): the claimed value is what archc computes for that line.
  The ops and depth claims come from a paper's table (archc.table).
  A claim with only arithmetic compares its exact value; one with only a printed value compares
  at the printed precision. E404: a printed value that is not a number archc can read.

"That line" is the node carrying the claim plus every node the same source line produced
(default BN/ReLU, the layers of a block call). Memory is the number of values of the line's
output (the carrier's or the line's last node's; they agree for conv → BN → ReLU). Params are the
line's parameters with or without biases, or the carrier's alone when defaults put a BN after it:
tables often leave biases out and count a conv without its BN, and the check records which
reading matched. Each failing claim is one diagnostic at the claim's span.

A lecture's ``TOTAL memory:`` / ``TOTAL params:`` line (``Graph.totals``) is checked the same
way against the network's totals: activation values per image (with or without the input) and
parameters (with or without biases); a wrong memory total is reported with the true sum and the
bytes it means for a forward pass and with the backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from archc import ir
from archc.diagnostics import Diagnostic, error
from archc.numbers import MAX_PRINTED_DIGITS, Printed, fmt_bytes, fmt_int, read_printed
from archc.ops import op_of
from archc.passes.accounting import Accounting, LayerAccount
from archc.spans import Span

TOTAL = "TOTAL"
"""The ``node`` of a check of a claim on the network's totals."""


@dataclass(frozen=True)
class ClaimCheck:
    node: str
    claim: ir.Claim
    ok: bool
    matched: str | None
    """Which reading of the line held: "output values", "with biases", "without biases",
    "no biases to leave out" (where the two agree), or "conv1 alone, without biases" (the
    carrier without the BN the defaults put after it)."""


@dataclass(frozen=True)
class ClaimsResult:
    checks: list[ClaimCheck]
    diagnostics: list[Diagnostic]


CODES = {"memory": "E402", "params": "E403", "ops": "E406", "depth": "E407"}
WHAT = {
    "memory": "values in the output",
    "params": "parameters",
    "ops": "multiply-accumulates",
    "depth": "weight layers on its longest path",
}

MAX_CLAIM = 10**30
"""The largest claim value archc compares, as for the arithmetic of sizes (E209): no layer has
more parameters or values, and past it a value may be a float overflowed to infinity."""


def claim_text(claim: ir.Claim) -> str:
    """The claim as written, normalised: ``224*224*64 = 3.2M``."""
    parts = [_clip(p) for p in (claim.expression, claim.printed) if p is not None]
    return " = ".join(parts)


def _clip(text: str, width: int = 60) -> str:
    """Spec text echoed in a message, cut short: a message is one line, not the whole claim."""
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_value(value: int | float) -> str:
    return fmt_int(value) if isinstance(value, int) else repr(value)


def _exact(value: int | float | None) -> Fraction | None:
    """The claim's arithmetic as an exact number; None when it has none or it is not finite or
    out of range (infinity and NaN have no exact value; see MAX_CLAIM)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    exact = Fraction(value)
    return exact if abs(exact) <= MAX_CLAIM else None


def _on_line(span: Span, line: tuple[str, int]) -> bool:
    return (span.file, span.line) == line


def _line_nodes(graph: ir.Graph, carrier: ir.Node, claim: ir.Claim) -> list[str]:
    """The nodes the claim's source line produced, in graph order.

    Within the carrier's scope (its chain of block calls, less the calls made on the claim's
    own line), these are the nodes written on that line and every node expanded from a block
    called on it.
    """
    line = (claim.span.file, claim.span.line)
    scope = list(carrier.origin)
    while scope and _on_line(scope[-1].call, line):
        scope.pop()
    depth = len(scope)
    names = []
    for node in graph.nodes:
        if node.name == carrier.name:
            names.append(node.name)
        elif node.origin[:depth] != scope:
            continue
        elif len(node.origin) > depth:
            if _on_line(node.origin[depth].call, line):
                names.append(node.name)
        elif node.span is not None and _on_line(node.span, line):
            names.append(node.name)
    return names


def _shape_product(shape: ir.Shape) -> str:
    return "·".join(str(s) for s in shape) + f" = {fmt_int(math.prod(shape))}"


def _params_formula(layers: list[LayerAccount], nodes: dict[str, ir.Node]) -> str:
    """How a line's parameters add up, e.g. ``conv1: 3·3·3·64 = 1,728 weights + 64 biases``."""
    counted = [la for la in layers if la.params]
    if not counted:
        return "no parameters"
    if len(counted) > 3:
        weights = sum(la.weights for la in counted)
        biases = sum(la.biases for la in counted)
        return (
            f"{len(counted)} layers with parameters: {fmt_int(weights)} weights + "
            f"{fmt_int(biases)} biases = {fmt_int(weights + biases)}"
        )
    lines = []
    for la in counted:
        node = nodes[la.name]
        w = f"{op_of(node).weights_formula(node, la.weights)} weights"
        b = f" + {fmt_int(la.biases)} biases" if la.biases else ""
        lines.append(f"{la.name}: {w}{b}")
    text = "; ".join(lines)
    if len(counted) > 1:
        total = sum(la.params for la in counted)
        biases = sum(la.biases for la in counted)
        text += f"; in all {fmt_int(total)}"
        if biases:
            text += f", {fmt_int(total - biases)} without biases"
    return text


def _line_name(names: list[str]) -> str:
    """What to call a line: the common scope of its nodes (``layer2`` for a block call), else
    its first node (``conv1`` for conv1 + relu1)."""
    parts = [n.split(".") for n in names]
    common = []
    for column in zip(*parts):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    if common and len(names) > 1:
        return ".".join(common)
    return names[0]


class _Checker:
    def __init__(self, graph: ir.Graph, accounting: Accounting):
        self.graph = graph
        self.nodes = {n.name: n for n in graph.nodes}
        self.accounts = {la.name: la for la in accounting.layers}
        self.accounting = accounting
        self.checks: list[ClaimCheck] = []
        self.diags: list[Diagnostic] = []

    def run(self) -> ClaimsResult:
        for node in self.graph.nodes:
            for claim in node.claims:
                self.check(node, claim)
        for claim in self.graph.totals:
            self.check(None, claim)
        return ClaimsResult(self.checks, self.diags)

    def total_readings(self, claim: ir.Claim) -> tuple[str, list[tuple[str, int]], str]:
        """The network's totals a TOTAL line may claim, and how they add up."""
        t = self.accounting.totals
        if claim.kind == "params":
            readings = [("with biases", t.params), ("without biases", t.params - t.biases)]
            how = f"{fmt_int(t.params)} parameters, {fmt_int(t.biases)} of them biases"
            return "the network's total", readings, how
        given = self.accounts[self.graph.nodes[0].name].activations
        readings = [
            ("the input included", t.activations),
            ("the input left out", t.activations - given),
        ]
        per = f"per image at {t.dtype}"
        how = (
            f"every layer's output values add up to {fmt_int(t.activations)} (the input's "
            f"{fmt_int(given)} included): {fmt_int(t.activation_bytes)} bytes "
            f"({fmt_bytes(t.activation_bytes)}) {per} for a forward pass, "
            f"{fmt_int(2 * t.activation_bytes)} bytes ({fmt_bytes(2 * t.activation_bytes)}) with "
            "the backward pass (×2)"
        )
        return "the network's total", readings, how

    def readings(self, carrier: ir.Node, claim: ir.Claim) -> tuple[str, list[tuple[str, int]], str]:
        """The line's name, the values it may be claimed to have, and how they are computed."""
        names = _line_nodes(self.graph, carrier, claim)
        layers = [self.accounts[n] for n in names]
        name = _line_name(names)
        if claim.kind in ("ops", "depth"):
            return self.table_readings(name, names, claim)
        if claim.kind == "memory":
            out = self.accounts[carrier.name]
            how = f"{carrier.name} outputs {_shape_product(out.output_shape)} values"
            return name, [("output values", la.values) for la in (out, layers[-1])], how
        total = sum(la.params for la in layers)
        biases = sum(la.biases for la in layers)
        readings = [("with biases", total), ("without biases", total - biases)]
        if not biases:
            readings = [("no biases to leave out", total)]
        own = self.accounts[carrier.name]
        if len(layers) > 1 and 0 < own.params < total:
            # `CONV1: … params: 3*3*3*16` with a default BN after it: tables count the conv.
            readings += [
                (f"{carrier.name} alone, with biases", own.params),
                (f"{carrier.name} alone, without biases", own.weights),
            ]
        return name, readings, _params_formula(layers, self.nodes)

    def table_readings(
        self, name: str, names: list[str], claim: ir.Claim
    ) -> tuple[str, list[tuple[str, int]], str]:
        """A table row's ops (its multiply-accumulates) or depth (weight layers on its longest
        path)."""
        layers = [self.accounts[n] for n in names]
        if claim.kind == "ops":
            total = sum(la.macs for la in layers)
            counted = [la for la in layers if la.macs]
            if 0 < len(counted) <= 3:
                how = "; ".join(f"{la.name}: {fmt_int(la.macs)} MACs" for la in counted)
            else:
                how = f"{len(counted)} layers with weights: {fmt_int(total)} MACs in all"
            return name, [("multiply-accumulates", total)], how
        inside = set(names)
        longest: dict[str, list[str]] = {}
        for n in names:
            node = self.nodes[n]
            before = max((longest[i] for i in node.inputs if i in inside), key=len, default=[])
            longest[n] = before + ([n] if node.op in ("conv", "linear") else [])
        path = max(longest.values(), key=len, default=[])
        how = f"the longest path through {name} has {len(path)} weight layers" + (
            f": {' → '.join(path)}" if path else ""
        )
        return name, [("weight layers on the longest path", len(path))], how

    def check(self, node: ir.Node | None, claim: ir.Claim) -> None:
        """Check one claim: of ``node``'s line, or (``node`` None) of the network's totals."""
        printed: Printed | None = None
        if claim.printed is not None:
            printed = read_printed(claim.printed)
            if printed is None:
                digits = sum(c.isdigit() for c in claim.printed)
                self.fail(
                    node,
                    claim,
                    "E404",
                    f"cannot read the printed value {_clip(claim.printed)!r} of this "
                    f"{claim.kind} claim"
                    + (f": {digits:,} digits" if digits > MAX_PRINTED_DIGITS else ""),
                    "write an integer, optionally with thousands separators (1,728) "
                    f"or a K/M/G suffix (3.2M), of at most {MAX_PRINTED_DIGITS} digits",
                )
                return
        if claim.value is not None and _exact(claim.value) is None:
            self.fail(
                node,
                claim,
                "E405",
                f"the arithmetic of this {claim.kind} claim is out of range: "
                # An int of thousands of digits cannot be str()ed; fmt_int abbreviates it.
                + _clip(claim.expression or fmt_value(claim.value)),
                f"claims are checked up to {fmt_int(MAX_CLAIM)}; no layer has more "
                "parameters or values",
            )
            return
        name, readings, how = (
            self.readings(node, claim) if node is not None else self.total_readings(claim)
        )
        exact = _exact(claim.value)

        def holds(count: int) -> bool:
            if exact is not None:
                return exact == count
            return printed is not None and printed.admits(count)

        matched = next((label for label, count in readings if holds(count)), None)
        if exact is not None and printed is not None and not printed.admits(exact):
            self.fail(
                node,
                claim,
                "E401",
                f"{_clip(claim.expression or '')} is {fmt_int(exact)}, not {claim.printed}",
                f"{_clip(claim.expression or '')} = {fmt_int(exact)}; {claim.printed} means "
                f"{printed.describe()}\n{how}",
            )
            return
        if matched is None:
            code = CODES[claim.kind]
            what = WHAT[claim.kind]
            if node is None and claim.kind == "memory":
                what = "activation values per image"
            # The message names the whole line's counts; the help has the rest.
            line = readings[:2] if len({c for _, c in readings[:2]}) == 2 else readings[:1]
            counts = " or ".join(
                f"{fmt_int(c)} ({label})" if len(line) > 1 else fmt_int(c) for label, c in line
            )
            claimed = claim_text(claim)
            arithmetic = (
                f"{_clip(claim.expression or '')} = {fmt_int(exact)}" if exact is not None else ""
            )
            precision = f"{claim.printed} means {printed.describe()}" if printed else ""
            shown = "; ".join(p for p in (arithmetic, precision) if p)
            self.fail(
                node,
                claim,
                code,
                f"{'TOTAL ' if node is None else ''}{claim.kind} claim {claimed} does not match "
                f"{name}: archc counts {counts} {what}",
                f"{shown}\n{how}" if shown else how,
            )
            return
        self.checks.append(ClaimCheck(node.name if node else TOTAL, claim, True, matched))

    def fail(
        self, node: ir.Node | None, claim: ir.Claim, code: str, message: str, help: str
    ) -> None:
        self.checks.append(ClaimCheck(node.name if node else TOTAL, claim, False, None))
        self.diags.append(error(code, message, claim.span, help))


def check_claims(graph: ir.Graph, accounting: Accounting) -> ClaimsResult:
    """Check every claim of ``graph`` against the arithmetic and ``accounting``."""
    return _Checker(graph, accounting).run()
