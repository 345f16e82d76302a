"""What a statement is, as one class: the :class:`Construct` every entry of the registry derives
from, as :class:`archc.ops.base.Op` is for a layer kind.

A construct says, for every stage that meets it:

- **notation** (archc.parser): ``headers``, the header words that open it (``residual:``), and
  ``parse``, which reads such a header line into its syntax node (None for another header);
- **meaning** (archc.elaborate.expand): ``elaborate`` walks the statement in a body, reading and
  changing the :class:`archc.elaborate.expand.Body` it stands in; ``continues`` names the open
  sections (``residual``, ``branches``) it may follow without closing them; ``needs_input``,
  ``conditional`` and ``holds`` answer the walker's questions about where it may stand;
- **the editor outline** (archc.editor): ``outline``, the symbol it shows (or None);
- **the graph picture and the generated source** (archc.pictures, archc.backends): both read
  the IR's dotted node names, so what a construct contributes to them is the part it opens in
  the naming scope, described by ``part`` (the editor's completion shows it for header words).

A subclass that leaves a facet undefined fails at import (:meth:`Construct.__init_subclass__`),
and tests/test_constructs.py checks that every statement class of archc.syntax has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from archc import syntax as S
from archc.nodes import missing_facets
from archc.spans import Span

if TYPE_CHECKING:
    from archc.editor import SpecView
    from archc.elaborate.expand import Body, Expander

REQUIRED = ("node", "title", "part", "headers", "parse", "elaborate", "outline")
"""The facets every construct defines (in its own class or a shared base)."""

REGISTERED: list[type[Construct]] = []


@dataclass
class OpenResidual:
    """A residual being assembled: ``output`` is the residual path's end (None while only a
    shortcut written first is known), ``shortcut`` the shortcut's (None: the identity)."""

    start: str
    span: Span
    output: str | None = None
    shortcut: str | None = None
    shortcut_span: Span | None = None


@dataclass
class OpenBranches:
    """Branches opened and not yet joined by ``concat``."""

    start: str
    span: Span
    outputs: list[str] = field(default_factory=list)
    split: tuple[S.Layer, dict[str, Any]] | None = None
    """A ``split N`` before the branches: its line and fields; branch i takes part i."""
    taken: int = 0
    """The parts of the split the branches have taken so far."""
    failed: bool = False
    """A branch (or the split opening them) was abandoned by an error already reported: a
    count of branches that falls short at the ``concat`` is its consequence, not reported."""


@dataclass(frozen=True)
class Outline:
    """A statement's symbol in the editor outline; ``body``'s statements are its children."""

    name: str
    kind: str
    detail: str
    body: tuple[S.Stmt, ...] = ()


class Construct:
    """One statement of the language; subclasses are registered when defined."""

    node: ClassVar[type]
    """The syntax class (archc.syntax) this construct reads and elaborates."""
    title: ClassVar[str]
    part: ClassVar[str]
    headers: ClassVar[tuple[str, ...]]
    """The header forms that open it, as written (``sequential branch:``); () for a line."""
    builds: ClassVar[bool] = True
    """It builds layers (a file without such a statement builds nothing: E003, or a library)."""
    needs_input: ClassVar[bool] = True
    """It must follow the input line (E201): it builds layers, unless it only splices in
    statements that do (``if``)."""
    conditional: ClassVar[bool] = True
    """It may stand in an ``if`` body (definitions and file-wide lines may not, E217)."""

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        missing = missing_facets(cls, REQUIRED)
        if missing:
            raise TypeError(f"construct {cls.__name__} does not define {', '.join(missing)}")
        if any(c.node is cls.node for c in REGISTERED):
            raise TypeError(f"construct {cls.__name__}: {cls.node.__name__} already has one")
        REGISTERED.append(cls)

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        """The statement of a header line whose header words are ``words`` (``lower``: the
        same in lower case), read with the parser's line reader ``p``; None when the header
        is another construct's."""
        raise NotImplementedError

    def elaborate(self, walk: Expander, st: Any, body: Body) -> None:
        raise NotImplementedError

    def outline(self, view: SpecView, st: Any) -> Outline | None:
        raise NotImplementedError

    def continues(self, st: Any, body: Body) -> frozenset[str]:
        """The open sections (``residual``, ``branches``) this statement may follow without
        closing them; any other statement reports an open one as unjoined."""
        return frozenset()

    def holds(self, st: Any, kind: str) -> bool:
        """Whether the statement is, or splices in at its own level, a layer of ``kind``."""
        return False

    def failed(self, st: Any, body: Body) -> None:
        """What an error that abandoned the statement leaves behind in its body."""


class Line(Construct, abstract=True):
    """A statement of one line, with no header and no body."""

    headers = ()

    def parse(self, p: Any, line: Any, words: list[str], lower: list[str]) -> S.Stmt | None:
        return None


class FileWide(Line, abstract=True):
    """A line that holds for the whole file: it stands at the top level, never in a body or
    an ``if``, and shows nothing in the outline."""

    builds = needs_input = conditional = False
    part = "nothing: it builds no layer"
    where = "this line belongs at the top of the file"

    def elaborate(self, walk: Expander, st: Any, body: Body) -> None:
        if not body.top:
            raise walk.problem("E217", self.where, st.span)

    def outline(self, view: SpecView, st: Any) -> Outline | None:
        return None
