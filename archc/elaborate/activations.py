"""Layers left without a non-linearity: the last FC's followers, and W219.

Two conv or FC layers with nothing but BN between them compose into one linear map, which is
almost never what the author meant. It happens silently in two ways: a file writes one
activation somewhere, which turns the lecture convention (a ReLU after every conv and FC) off
for the whole file; or defaults lines give a conv a BN and no activation. W219 names the layer
and, in the first case, the line that turned the convention off.
"""

from __future__ import annotations

from collections.abc import Sequence

from archc.diagnostics import Diagnostic, Note, block_notes, warning
from archc.elaborate.graph import REMOVED, Draft, renames
from archc.ops import OPS


def _transparent(kind: str) -> bool:
    """Whether a missing non-linearity passes through this kind (the registry's trait); a
    shortcut, before shape inference lowers it, is an identity or a 1x1 conv + BN: affine."""
    return kind == "shortcut" or (kind in OPS and OPS[kind].transparent)


SILENCE = "write `relu` after it, or `no relu` to silence this"


def drop_last_fc_followers(drafts: list[Draft], aux: Sequence[str] = ()) -> None:
    """`fc: relu` and the lecture convention skip the last FC (its outputs are scores), and
    the last FC of each auxiliary classifier (``aux``: their names)."""
    prefixes = tuple(name + "." for name in aux)
    main = (d for d in reversed(drafts) if d.kind == "linear" and not d.name.startswith(prefixes))
    lasts = [next(main, None)]
    for name in aux:
        fcs = (d for d in reversed(drafts) if d.kind == "linear" and d.name.startswith(name + "."))
        lasts.append(next(fcs, None))
    names = {last.name for last in lasts if last is not None}
    for d in drafts:
        if d.follower_of in names:
            d.kind = REMOVED


def unactivated(drafts: list[Draft]) -> list[Diagnostic]:
    """W219 at each conv or FC that reaches another layer with no activation on the way: any
    layer when a written activation turned the lecture convention off, another layer of its
    own kind (conv→BN→conv) otherwise, since defaults lines say what follows what explicitly.
    Layers written `no relu` and the last FC are left alone."""
    renamed = renames(drafts)
    live = [d for d in drafts if d.kind != REMOVED]
    consumers: dict[str, list[Draft]] = {}
    for d in live:
        for src in d.inputs:
            consumers.setdefault(renamed.get(src, src), []).append(d)
    last_fc = next((d.name for d in reversed(live) if d.kind == "linear"), None)
    found: list[Diagnostic] = []
    for d in live:
        if d.kind not in OPS or not OPS[d.kind].followed or d.opted_out or d.name == last_fc:
            continue
        convention = d.convention
        off_by = convention.off_by if convention is not None else None
        reached = _reached(d, consumers)
        title = OPS[d.kind].title
        if off_by is not None and convention is not None and convention.off_by_kind:
            bad = next((r for r in reached if not OPS[r.kind].activation), None)
            if bad is None:
                continue
            word = OPS[convention.off_by_kind].prefix
            message = (
                f"this {title} has no activation after it: the `{word}` on line "
                f"{off_by.line} turned off the automatic ReLUs for the whole file"
            )
            notes = [
                *block_notes(d.origin),
                Note(message=f"the `{word}` that turned the lecture convention off", span=off_by),
            ]
        else:
            bad = next((r for r in reached if r.kind == d.kind), None)
            if bad is None:
                continue
            message = (
                f"no activation between this {title} and the {OPS[bad.kind].title} after it"
                + (f" (line {bad.span.line})" if bad.span is not None else "")
                + ": the two compose into one linear map"
            )
            notes = block_notes(d.origin)
        if d.span is not None:
            found.append(warning("W219", message, d.span, SILENCE, notes=notes))
    return found


def _reached(start: Draft, consumers: dict[str, list[Draft]]) -> list[Draft]:
    """The layers ``start``'s output reaches through pass-through ops, in graph order."""
    reached: list[Draft] = []
    seen: set[str] = set()
    todo = list(consumers.get(start.name, []))
    while todo:
        d = todo.pop(0)
        if d.name in seen:
            continue
        seen.add(d.name)
        if _transparent(d.kind):
            todo += consumers.get(d.name, [])
        else:
            reached.append(d)
    return reached
