"""References to earlier named outputs: ``concat with a, b``, ``add of a, b`` (DLA's aggregation
nodes). A name refers to the output of what it names in the same scope (the body of the network,
a stage, a block instance or a branch): a labelled layer (after the BN and activation its defaults
put after it), a block instance or a line of calls, a stage. What a scope has named so far is
its :attr:`archc.elaborate.naming.Scope.outputs`; a name that it does not hold yet is E225, which
says whether the name comes later in the body, lives in another scope, or is nearly another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc import syntax as S
from archc.spans import Span
from archc.suggest import did_you_mean

if TYPE_CHECKING:
    from archc.elaborate.expand import Body, Expander

HELP = (
    "a reference names an earlier labelled layer, block instance, line of calls or stage of "
    "the same body"
)


def resolve(walk: Expander, ref: S.Name, body: Body) -> str:
    """The output node that ``ref`` names in ``body``'s scope; E225 when it names none yet."""
    found = body.scope.outputs.get(ref.id)
    if found is not None:
        return found
    later = defined_later(body.pending, ref.id)
    if later is not None:
        raise walk.problem(
            "E225",
            f"`{ref.id}` is defined later, on line {later.line}: a reference joins an earlier "
            "output",
            ref.span,
            "move the line that joins it after the definition of "
            f"`{ref.id}`, or refer to an output made before this line",
        )
    if ref.id in body.scope.names:
        raise walk.problem(
            "E225",
            f"`{ref.id}` is a generated name or a section's, not the label of an output",
            ref.span,
            f"label the layer to refer to it (`NAME: …`); {HELP}",
        )
    elsewhere = [
        full for full in walk.names.outputs.get(ref.id, []) if full != body.scope.prefix + ref.id
    ]
    here = f"`{body.scope.prefix.rstrip('.')}`" if body.scope.prefix else "the network's top level"
    if elsewhere:
        where = "at the network's top level" if "." not in elsewhere[0] else f"`{elsewhere[0]}`"
        raise walk.problem(
            "E225",
            f"`{ref.id}` is not in this scope ({here}): it is {where}",
            ref.span,
            f"{HELP}; an output inside another block instance, stage or branch is out of reach",
        )
    near = did_you_mean(ref.id, body.scope.outputs)
    known = ", ".join(f"`{n}`" for n in body.scope.outputs)
    raise walk.problem(
        "E225",
        f"`{ref.id}` names no earlier output in this scope ({here}){near}",
        ref.span,
        f"{HELP}; named so far: {known}" if known else f"{HELP}; none is named so far",
    )


def defined_later(stmts: list[S.Stmt], name: str) -> Span | None:
    """Where a statement still to come in the same scope names ``name`` (sections whose layers
    stay in the enclosing scope included: ``if``, ``residual:``, ``gate:``, inline branches)."""
    for st in stmts:
        if isinstance(st, S.Layer | S.CallLine | S.Stage) and st.name == name:
            return st.span
        inline = isinstance(st, S.Branch) and st.inline
        if isinstance(st, S.If | S.Residual | S.Gate) or inline:
            found = defined_later(list(st.body), name)  # type: ignore[union-attr]
            if found is not None:
                return found
    return None
