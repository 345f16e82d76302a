"""What an editor asks of an open spec: hovers, definitions, completions and an outline.

One :class:`SpecView` per version of a document: it checks the text once (archc.check, no
torch) and answers from the checked graph, its accounting and the syntax tree. Positions are
archc's (1-based lines and columns, in characters); archc.lsp converts them to the protocol's.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from archc import syntax as S
from archc.check import Checked, check_source
from archc.constructs import HEADERS, Construct, construct_of
from archc.elaborate.values import expr_text
from archc.nodes import fmt_shape
from archc.numbers import fmt_count
from archc.passes.accounting import LayerAccount
from archc.spans import Span

STALE = "*from the last check without errors: this file has errors now*"
MAX_DIFF_LINES = 20_000
"""Past this, a broken file's lines are not matched against its last good text (the diff would
cost more than the answer is worth)."""

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

STATEMENT_WORDS = ("network", "input", "import", "init")
COMMON_FLAGS = ("no bias", "no relu", "no bn")
SHORTCUT_MODES = ("auto", "identity", "projection")


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str
    """``layer``, ``keyword`` or ``block``: archc.lsp maps each to the protocol's item kind."""
    detail: str
    documentation: str = ""
    sort: str = ""
    """The editor's sort key: the file's own blocks first, then imported ones, then the rest."""


@dataclass
class Symbol:
    """One entry of the outline: a stage, block, section (residual, shortcut, branch), call
    line or layer, with the lines it covers (``span``) and the name's place (``selection``)."""

    name: str
    kind: str
    """``stage``, ``block``, ``section``, ``call``, ``layer``, ``input`` or ``constant`` (a
    ``param``, the ``variants`` table, a ``let`` or a ``table``)."""
    detail: str
    span: Span
    selection: Span
    children: list[Symbol] = field(default_factory=list)


def import_target(path: str, base: Path) -> Path | None:
    """The file an ``import`` names, under the elaborator's rule: beside the importing file,
    then in the shipped spec library, and only a regular ``.arch`` file (a file of any other
    name is never read, so never offered or opened)."""
    from archc.files import describe_kind
    from archc.library import SPECS_DIR

    if not path.endswith(".arch"):
        return None
    for candidate in (base / path, SPECS_DIR / path):
        try:
            kind = describe_kind(candidate.stat().st_mode)
        except (OSError, ValueError):
            continue
        return candidate.resolve() if kind is None else None
    return None


class SpecView:
    """A checked document and the indexes hovers and definitions need."""

    def __init__(self, text: str, file: str, last_good: SpecView | None = None) -> None:
        self.text = text
        self.file = file
        self.lines = text.splitlines()
        self.checked: Checked = check_source(text, file)
        self.spec = self.checked.spec
        self.standing: Checked = self.checked
        """The check hovers are answered from: the document's own, or, when an error leaves
        it without a graph, that of the statements above the first error (see _prefix)."""
        self.good_to = len(self.lines) + 1 if self.checked.accounting is not None else 1
        """Lines before this one are answered from ``standing``."""
        if self.checked.accounting is None and self.checked.spec is not None:
            self._prefix()
        self.last_good = last_good if self.checked.accounting is None else None
        """The document's last check that had no error stopping it: lines below the first
        error that have not changed since are answered from it, marked as such."""
        self._old_lines: dict[int, int] | None = None
        self.base = Path.cwd() if file.startswith("<") else Path(file).resolve().parent
        self.by_line: dict[int, list[LayerAccount]] = {}
        """Layers by the line of this file that wrote them (block bodies: every instance)."""
        self.by_call: dict[int, list[tuple[Span, LayerAccount]]] = {}
        """Layers by the line of this file whose block call made them, with the call's span."""
        self._index()
        self._blocks: dict[str, S.BlockDef] | None = None

    def _prefix(self) -> None:
        """A file being typed is broken most of the time. The layers above its first error
        are what they are whatever follows (a spec is read top to bottom), so they are
        checked alone: the text cut before the top-level statement that holds the first
        error (for an error inside a block, before the first call that meets it). A cut
        whose own check fails is cut again, a few times at most."""
        checked, end = self.checked, len(self.lines) + 1
        for _ in range(3):
            bad = _first_error_line(checked, self.file)
            cut = _statement_start(self.lines, min(bad, end - 1))
            if cut <= 1:
                return
            end = cut
            checked = check_source("\n".join(self.lines[: cut - 1]) + "\n", self.file)
            if checked.accounting is not None and checked.graph is not None:
                self.standing, self.good_to = checked, cut
                return

    def _index(self) -> None:
        acc, graph = self.standing.accounting, self.standing.graph
        if acc is None or graph is None:
            return
        nodes = {n.name: n for n in graph.nodes}
        for la in acc.layers:
            if la.span is not None and la.span.file == self.file:
                self.by_line.setdefault(la.span.line, []).append(la)
            for frame in nodes[la.name].origin:
                if frame.call.file == self.file:
                    self.by_call.setdefault(frame.call.line, []).append((frame.call, la))

    # --- hover -----------------------------------------------------------------------------

    def hover(self, line: int, column: int) -> str | None:
        """Markdown for the layer or block call written on ``line``: the output shape,
        params, MACs and receptive field (a call's: its layers' totals). Below the first error
        of a broken file, a line unchanged since the last check without errors is answered
        from that check, and says so."""
        answer = self._hover(line, column)
        if answer is not None or self.last_good is None or line < self.good_to:
            return answer
        old = self._old_line(line)
        answer = self.last_good.hover(old, column) if old is not None else None
        return None if answer is None else answer + "  \n" + STALE

    def _old_line(self, line: int) -> int | None:
        """Where ``line`` stood in the last good text, if it is unchanged (None otherwise)."""
        assert self.last_good is not None
        if self._old_lines is None:
            self._old_lines = {}
            old, new = self.last_good.lines, self.lines
            if max(len(old), len(new)) <= MAX_DIFF_LINES:
                matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
                for a, b, size in matcher.get_matching_blocks():
                    self._old_lines.update((b + i + 1, a + i + 1) for i in range(size))
        return self._old_lines.get(line)

    def _hover(self, line: int, column: int) -> str | None:
        calls = self.by_call.get(line)
        if calls:
            # On one call of `a(1), b(2) x3`, that call; elsewhere on the line, all of them.
            written = [c for st in self._statements(line, S.CallLine) for c in st.calls]
            under = [c for c in written if c.span.column <= column < c.span.end_column]
            chosen = under or written
            spans = {c.span for c in chosen}
            made = [la for span, la in calls if span in spans] or [la for _, la in calls]
            return _call_hover(made, [c.block for c in chosen])
        layers = self.by_line.get(line)
        return _layer_hover(layers) if layers else None

    def _statements(self, line: int, kind: type[S.Stmt]) -> list[S.Stmt]:
        body = self.spec.body if self.spec is not None else ()
        return [st for st in _walk(body) if isinstance(st, kind) and st.span.line == line]

    # --- definition ------------------------------------------------------------------------

    def definition(self, line: int, column: int) -> Span | None:
        """Where the block named under the cursor is defined, or the file an import line
        names."""
        for st in self._statements(line, S.Import):
            if isinstance(st, S.Import):
                target = import_target(st.path, self.base)
                if target is None:
                    return None
                return Span(file=str(target), line=1, column=1, end_line=1, end_column=1)
        word = self.word_at(line, column)
        block = self.blocks().get(word) if word else None
        return block.span if block else None

    def word_at(self, line: int, column: int) -> str | None:
        if not 1 <= line <= len(self.lines):
            return None
        for m in _WORD.finditer(self.lines[line - 1]):
            if m.start() < column <= m.end() + 1:
                return m.group()
        return None

    def blocks(self) -> dict[str, S.BlockDef]:
        """Every block this file can call: its own, then its imports' (recursively)."""
        if self._blocks is None:
            self._blocks = {}
            if self.spec is not None:
                self._collect(self.spec, self.base, set())
        return self._blocks

    def _collect(self, spec: S.Spec, base: Path, seen: set[Path]) -> None:
        from archc.frontend import read_syntax

        assert self._blocks is not None
        for st in spec.body:
            if isinstance(st, S.BlockDef):
                self._blocks.setdefault(st.name, st)
            elif isinstance(st, S.Import):
                target = import_target(st.path, base)
                if target is None or target in seen:
                    continue
                seen.add(target)
                imported = read_syntax(target)
                if imported is not None:
                    self._collect(imported, target.parent, seen)

    # --- completion ------------------------------------------------------------------------

    def completions(self) -> list[Completion]:
        """Layer kinds and keywords from the op registry, and the blocks this file can call."""
        items = list(registry_completions())
        for name, block in self.blocks().items():
            params = ", ".join(_param(p) for p in block.params)
            where = "" if block.span.file == self.file else f" (from {Path(block.span.file).name})"
            rank = "1" if where else "0"
            items.append(Completion(name, "block", f"block {name}({params}){where}", sort=rank))
        return [c if c.sort else replace(c, sort="2") for c in items]

    # --- outline ---------------------------------------------------------------------------

    def symbols(self) -> list[Symbol]:
        return self._symbols(self.spec.body) if self.spec is not None else []

    def _symbols(self, body: Sequence[S.Stmt]) -> list[Symbol]:
        out: list[Symbol] = []
        for st in body:
            symbol = self._symbol(st)
            if symbol is not None:
                out.append(symbol)
        return out

    def _symbol(self, st: S.Stmt) -> Symbol | None:
        shown = construct_of(st).outline(self, st)
        if shown is None:
            return None
        children = self._symbols(shown.body)
        return Symbol(shown.name, shown.kind, shown.detail, _extent(st), st.span, children)

    def made_by_layer(self, st: S.Layer) -> list[LayerAccount]:
        """The layers a layer line made, in a block body the first instance's, as the hover
        shows. `add, relu` is two statements on one line: each its own layers (by column)."""
        on_line = self.by_line.get(st.span.line, [])
        made = [la for la in on_line if la.span is not None and la.span.column == st.span.column]
        return _first_instance(made or on_line)

    def made_by_call(self, st: S.CallLine) -> list[LayerAccount]:
        return [la for _, la in self.by_call.get(st.span.line, [])]

    def params_text(self, params: Sequence[S.Param]) -> str:
        return ", ".join(_param(p) for p in params)


def _first_error_line(checked: Checked, file: str) -> int:
    """The first line of ``file`` that an error (other than a failed claim) stands on: for an
    error inside a block, the outermost call in ``file`` that met it; for one in an imported
    file, the first line (the import)."""
    from archc.check import CLAIM_CODES

    lines = []
    for d in checked.diagnostics:
        if d.severity != "error" or d.code in CLAIM_CODES:
            continue
        calls = [n.span.line for n in d.notes if n.span is not None and n.span.file == file]
        if calls:
            lines.append(calls[-1])
        else:
            lines.append(d.span.line if d.span.file == file else 1)
    return min(lines, default=1)


def _statement_start(lines: Sequence[str], line: int) -> int:
    """The line of the top-level (unindented) statement that holds ``line``."""
    for n in range(min(line, len(lines)), 0, -1):
        text = lines[n - 1]
        if text.strip() and not text[0].isspace() and not text.lstrip().startswith("#"):
            return n
    return 1


def registry_completions() -> list[Completion]:
    from archc.ops import OPS

    items: list[Completion] = []
    keywords: dict[str, str] = {}
    documented: dict[str, str] = {}
    for op in OPS.values():
        items += [Completion(w, "layer", op.title, op.help) for w in op.words]
        for word in (*op.keywords, *sorted(op.flags)):
            keywords.setdefault(word, f"{op.title} option")
    for word in COMMON_FLAGS:
        keywords.setdefault(word, "leaves out the bias or a default follower")
    for word in STATEMENT_WORDS:
        keywords.setdefault(word, "statement")
    for word, construct in header_words():
        keywords.setdefault(word, construct.title)
        documented.setdefault(word, f"In the graph and the generated source: {construct.part}.")
    for word in SHORTCUT_MODES:
        keywords.setdefault(word, "shortcut mode")
    items += [Completion(w, "keyword", d, documented.get(w, "")) for w, d in keywords.items()]
    return items


def header_words() -> list[tuple[str, Construct]]:
    """What a header line starts with, from the construct registry (``residual:``, ``block``,
    ``sequential branch:``), each with its construct; a shortcut's modes are keywords of
    their own."""
    words = {
        re.split(r" [A-Z]", form)[0]: construct  # `block NAME(PARAMS):` -> `block`
        for construct in HEADERS
        for form in construct.headers
        if ": " not in form  # `shortcut: auto`
    }
    return list(words.items())


def _walk(body: Iterable[S.Stmt]) -> Iterable[S.Stmt]:
    for st in body:
        yield st
        inner = getattr(st, "body", None)
        if inner:
            yield from _walk(inner)


def _extent(st: S.Stmt) -> Span:
    """A statement with its indented body: the syntax tree's span of ``block …:`` is its
    header line alone, but the outline folds the whole body under it."""
    end = st.span
    for inner in _walk(getattr(st, "body", ())):
        if (inner.span.end_line, inner.span.end_column) > (end.end_line, end.end_column):
            end = inner.span
    return st.span.model_copy(update={"end_line": end.end_line, "end_column": end.end_column})


def _param(p: S.Param) -> str:
    return p.name if p.default is None else f"{p.name} = {expr_text(p.default, spaced=True)}"


def _costs(layers: Sequence[LayerAccount]) -> list[str]:
    last = layers[-1]
    params = sum(la.params for la in layers)
    macs = sum(la.macs for la in layers)
    return [
        f"output `{fmt_shape(last.output_shape)}`",
        f"params {params:,}",
        f"MACs {macs:,} ({fmt_count(macs)})" if macs else "MACs 0",
        f"receptive field {last.rf_size} (jump {last.rf_jump})",
    ]


def _layer_hover(layers: list[LayerAccount]) -> str:
    """A line's layers (a conv and the BN and ReLU its defaults add); in a block body, the
    first instance's, with the other instances' outputs."""
    instances = _instances(layers)
    first = next(iter(instances.values()))
    head = " → ".join(f"`{la.name}`" for la in first)
    out = [head, *_costs(first)]
    if len(instances) > 1:
        # In the order the instances are made (the network's order), each shape once.
        shapes = dict.fromkeys(fmt_shape(g[-1].output_shape) for g in instances.values())
        out.append(f"{len(instances)} instances; outputs {', '.join(shapes)}")
    return "  \n".join(out)


def _instances(layers: Sequence[LayerAccount]) -> dict[str, list[LayerAccount]]:
    """A line's layers by the block instance that made them (its name's prefix), in order."""
    instances: dict[str, list[LayerAccount]] = {}
    for la in layers:
        instances.setdefault(la.name.rsplit(".", 1)[0] if "." in la.name else "", []).append(la)
    return instances


def _first_instance(layers: Sequence[LayerAccount]) -> list[LayerAccount]:
    return next(iter(_instances(layers).values()), [])


def _call_hover(layers: list[LayerAccount], blocks: list[str]) -> str:
    names = ", ".join(f"`{b}`" for b in dict.fromkeys(blocks)) or "a block"
    out = [f"{names}: {len(layers)} layers, `{layers[0].name}` … `{layers[-1].name}`"]
    return "  \n".join([*out, *_costs(layers)])
