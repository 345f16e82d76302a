"""Names defined in a scope: ``let``, ``table`` and ``for`` targets. A name is defined once in
the scopes a line can see; a second definition, or one that would shadow a visible name, is
E228, which names the first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from archc import syntax as S
from archc.elaborate.context import Ctx
from archc.elaborate.functions import Value, kind_of, shown
from archc.elaborate.problems import Problem
from archc.spans import Span


def where(span: Span | None) -> str:
    return f"line {span.line}" if span is not None else "elsewhere"


def twice(name: str, span: Span, earlier: Span | None) -> Problem:
    at = f" on {where(earlier)}" if earlier is not None else ""
    if earlier is not None and earlier.file != span.file:
        at = f" at {earlier.file}:{earlier.line}"
    return Problem(
        "E228",
        f"`{name}` is already defined{at}",
        span,
        "a name is defined once where it can be seen (no redefinition, no shadowing): "
        "choose another name",
    )


def define(ctx: Ctx, name: str, value: Value, span: Span) -> Ctx:
    """``ctx`` with ``name`` bound to ``value`` (E228 when it is visible already)."""
    if name in ctx.env:
        raise twice(name, span, ctx.defined.get(name))
    return replace(ctx, env={**ctx.env, name: value}, defined={**ctx.defined, name: span})


def bind_targets(
    targets: S.Targets,
    value: Value,
    env: Mapping[str, Value],
    spans: dict[str, Span],
    at: Span,
    defined: Mapping[str, Span] | None = None,
) -> dict[str, Value]:
    """The names of ``targets`` bound to the parts of ``value`` (``j, (t, k)`` and
    ``(0, (6, 3))``): E226 when the value does not unpack so, E228 for a name visible in
    ``env`` or written twice (``spans`` collects the names bound so far)."""
    bound: dict[str, Value] = {}
    items = targets.items
    if len(items) == 1:
        return _bind_one(items[0], value, env, spans, at, defined)
    if not isinstance(value, tuple) or len(value) != len(items):
        got = f"{kind_of(value)} of {len(value)}" if isinstance(value, tuple) else kind_of(value)
        raise Problem(
            "E226",
            f"cannot unpack {shown(value)} into {len(items)} names: it is {got}",
            targets.span,
            "each element must be a tuple (or list) with one value per name",
        )
    for t, v in zip(items, value):
        bound |= _bind_one(t, v, env, spans, at, defined)
    return bound


def _bind_one(
    t: S.Name | S.Targets,
    value: Value,
    env: Mapping[str, Value],
    spans: dict[str, Span],
    at: Span,
    defined: Mapping[str, Span] | None,
) -> dict[str, Value]:
    if isinstance(t, S.Targets):
        return bind_targets(t, value, env, spans, at, defined)
    if t.id in env:
        raise twice(t.id, t.span, (defined or {}).get(t.id))
    if t.id in spans:
        raise twice(t.id, t.span, spans[t.id])
    spans[t.id] = t.span
    return {t.id: value}
