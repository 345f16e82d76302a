"""The fusion plan: which conv -> BN -> (add) -> activation chains run as one kernel.

A group starts at every conv and extends while the chain's last node has exactly one consumer
and that consumer is the next op of the pattern: first a BatchNorm, then an Add (the residual
join; its other input becomes the group's ``residual``), then an activation that the kernel
runs as its epilogue (an op whose registry entry names a ``kernel_activation``: ReLU, ReLU6,
leaky ReLU, SiLU, hardswish, hardsigmoid). That is torchvision's order for a residual block:
``act(bn(conv(x)) + identity)``; an activation before the add ends the group at the BN. The
group runs where its last member stands in the graph, when the residual is ready. A chain that is
the network's output stops there. An add reached by two chains joins the first one in graph order.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import ir
from archc.ops import OPS


@dataclass(frozen=True)
class FusionGroup:
    conv: str
    bn: str | None = None
    add: str | None = None
    residual: str | None = None
    activation: str | None = None

    @property
    def name(self) -> str:
        return self.conv

    @property
    def members(self) -> list[str]:
        return [m for m in (self.conv, self.bn, self.add, self.activation) if m is not None]

    @property
    def last(self) -> str:
        return self.members[-1]


def plan_fusion(graph: ir.Graph) -> list[FusionGroup]:
    consumers: dict[str, list[ir.Node]] = {}
    for node in graph.nodes:
        for src in node.inputs:
            consumers.setdefault(src, []).append(node)

    def only_consumer(name: str) -> ir.Node | None:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and name != graph.output else None

    groups: list[FusionGroup] = []
    taken: set[str] = set()
    for node in graph.nodes:
        # The kernel computes dense convs (groups 1, dilation 1); the others stay cuDNN's.
        if not isinstance(node, ir.Conv) or node.groups != 1 or node.depthwise:
            continue
        if node.dilation != (1, 1):
            continue
        fields: dict[str, str] = {"conv": node.name}
        tail = node.name
        nxt = only_consumer(tail)
        if isinstance(nxt, ir.BatchNorm):
            fields["bn"] = tail = nxt.name
            nxt = only_consumer(tail)
        if isinstance(nxt, ir.Add) and len(nxt.inputs) == 2 and nxt.name not in taken:
            fields["add"] = tail = nxt.name
            fields["residual"] = next(i for i in nxt.inputs if i != fields.get("bn", node.name))
            taken.add(nxt.name)
            nxt = only_consumer(tail)
        if nxt is not None and nxt.op in OPS and OPS[nxt.op].kernel_activation is not None:
            fields["activation"] = nxt.name
        groups.append(FusionGroup(**fields))
    return groups
