"""Weight transfer between modules that share a layer order but not names.

A compiled module's keys follow the spec (``layer1.0.conv1.bn.weight``), torchvision's its own
(``layer1.0.bn1.weight``); what they share is the order of their tensors and their shapes. The rule:

- both sides are read as state_dicts (a module's ``state_dict()``, a mapping as given): parameters
  and persistent buffers, in definition (insertion) order;
- BN's ``num_batches_tracked`` counters (by that name, or any 0-dim integer tensor in a renamed
  state_dict) are set aside on both sides, since only some BN flavours have them; every other
  entry is paired with the entry at the same index on the other side;
- the counts and every pair's shape must agree, else a ``ValueError`` names the first differing
  pair (index, both names, both shapes) and nothing is copied;
- so must every pair's dtype (the source must cast to the destination's without changing kind:
  float64 to float32 is fine, float to int or complex to real is not) and device (a ``meta``
  tensor on either side has no values to give or keep): the whole list is checked before the
  first tensor is written, so a failure leaves the destination as it was;
- then values are copied (converted to the destination's dtype and device), and when both sides
  hold the same number of ``num_batches_tracked`` counters those are copied in order too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

_COUNTER = "num_batches_tracked"


def _entries(obj: nn.Module | Mapping[str, Any], side: str) -> list[tuple[str, Tensor]]:
    if isinstance(obj, nn.Module):
        state: Mapping[str, Any] = obj.state_dict(keep_vars=True)
    elif isinstance(obj, Mapping):
        state = obj
    else:
        raise TypeError(f"{side} must be a module or a state_dict, not {type(obj).__name__}")
    entries = []
    for name, value in state.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"{side} entry {name!r} is a {type(value).__name__}, not a tensor")
        entries.append((str(name), value))
    return entries


def _is_counter(name: str, value: Tensor) -> bool:
    if name.rsplit(".", 1)[-1] == _COUNTER:
        return True
    return value.dim() == 0 and not value.is_floating_point() and not value.is_complex()


def _split(entries: list[tuple[str, Tensor]]) -> tuple[list, list]:
    main = [e for e in entries if not _is_counter(*e)]
    counters = [e for e in entries if _is_counter(*e)]
    return main, counters


def _shape(t: Tensor | None) -> str:
    return "-" if t is None else str(tuple(t.shape))


def transfer_weights(src: nn.Module | Mapping[str, Any], dst: nn.Module) -> None:
    """Copy ``src``'s parameters and buffers into ``dst``, pairing them by position."""
    if not isinstance(dst, nn.Module):
        raise TypeError(f"destination must be a module, not {type(dst).__name__}")
    src_main, src_counters = _split(_entries(src, "source"))
    dst_main, dst_counters = _split(_entries(dst, "destination"))

    for i in range(max(len(src_main), len(dst_main))):
        s = src_main[i] if i < len(src_main) else ("<none>", None)
        d = dst_main[i] if i < len(dst_main) else ("<none>", None)
        if s[1] is None or d[1] is None or s[1].shape != d[1].shape:
            counts = (
                f" (source has {len(src_main)} tensors, destination {len(dst_main)})"
                if len(src_main) != len(dst_main)
                else ""
            )
            raise ValueError(
                f"cannot transfer weights: entry {i} differs: source {s[0]!r} {_shape(s[1])} "
                f"vs destination {d[0]!r} {_shape(d[1])}{counts}; nothing was copied"
            )

    pairs = list(zip(src_main, dst_main))
    if len(src_counters) == len(dst_counters):
        pairs += zip(src_counters, dst_counters)
    for i, ((s_name, s), (d_name, d)) in enumerate(pairs):
        problem = _incompatible(s, d)
        if problem is not None:
            raise ValueError(
                f"cannot transfer weights: entry {i} ({s_name!r} to {d_name!r}): {problem}; "
                "nothing was copied"
            )
    with torch.no_grad():
        for (_, s), (_, d) in pairs:
            d.copy_(s.reshape(d.shape))


def _incompatible(s: Tensor, d: Tensor) -> str | None:
    """Why ``s`` cannot be copied into ``d`` (shapes agree already), or None."""
    if s.device.type == "meta":
        return "the source is on the meta device: it has no values to copy"
    if d.device.type == "meta":
        return "the destination is on the meta device: materialise it first (to_empty)"
    if not torch.can_cast(s.dtype, d.dtype):
        return f"a {s.dtype} source cannot be cast to the destination's {d.dtype}"
    return None
