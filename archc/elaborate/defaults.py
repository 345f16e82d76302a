"""Defaults lines and the lecture convention: which layers follow a layer nobody wrote.

``conv: bn, relu`` puts a BN and a ReLU after every later conv of its body. A file with no
defaults line and no activation anywhere follows the lecture convention instead: every layer
kind the registry marks ``followed`` (conv, FC) gets a ReLU. Both are keyed on the registry's
traits (``followed``, ``activation``), never on a kind's name. What a layer ends up without
because of these rules is checked afterwards (archc.elaborate.activations, W219).
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import syntax as S
from archc.ops import OPS
from archc.spans import Span

Defaults = dict[str, tuple[S.Follower, ...]]
"""Layer kind -> the followers a defaults line gives it."""

CONVENTION_FOLLOWER = "relu"
"""The activation the lecture tables assume after every conv and FC."""


@dataclass(frozen=True)
class Convention:
    """Whether a file follows the lecture convention, and if not, what turned it off."""

    on: bool
    off_by: Span | None = None
    """The activation line that turned it off, in a file without defaults lines — the case where
    a single `relu` silently takes every automatic ReLU away. None when it is on, or when a
    defaults line says explicitly what follows what."""
    off_by_kind: str | None = None
    """The op kind written on that line."""


def lecture_convention(body: tuple[S.Stmt, ...]) -> Convention:
    """On when a file sets no defaults and writes no activation anywhere (the lecture tables).
    Decided from the file's own lines only: a block library (no input line) is no lecture
    table, so its blocks never get the convention's ReLUs, whatever the importing file does."""
    if not any(isinstance(st, S.InputStmt) for st in body):
        return Convention(on=False)
    first_activation: S.Layer | None = None
    chosen = False
    stack = list(reversed(body))
    while stack:
        st = stack.pop()
        if isinstance(st, S.Defaults):
            return Convention(on=False)
        if isinstance(st, S.Layer) and OPS[st.kind].activation and first_activation is None:
            first_activation = st
        if isinstance(st, S.CallLine) and any(c.block == S.ACT for c in st.calls):
            chosen = True  # `act(name)`: an activation, whichever the name chooses
        stack.extend(reversed(getattr(st, "body", ())))
    if first_activation is None:
        return Convention(on=not chosen)
    return Convention(on=False, off_by=first_activation.span, off_by_kind=first_activation.kind)


def apply_defaults(defaults: Defaults, st: S.Defaults) -> Defaults:
    new = dict(defaults)
    new[st.kind] = tuple(f for f in st.followers if f.kind != "none")
    return new


def followers(layer: S.Layer, defaults: Defaults, convention: Convention) -> list[S.Follower]:
    """The layers that follow ``layer``, in order, after its `no bn` / `no relu` opt-outs."""
    if layer.kind in defaults:
        return [
            f
            for f in defaults[layer.kind]
            if ("no_bn" if f.kind == "bn" else "no_relu") not in layer.flags
        ]
    if convention.on and OPS[layer.kind].followed and "no_relu" not in layer.flags:
        return [S.Follower(kind=CONVENTION_FOLLOWER, options={}, span=layer.span)]
    return []
