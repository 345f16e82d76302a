"""Names: scopes, generated names from the registry's ``prefix``, and the names no layer may take.

Every node's name is a dotted path (``layer1.0.conv1``) that becomes a state_dict key and a
module attribute, so a name is claimed once per scope (E210) and never shadows an attribute of
the compiled torch module (E218).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.elaborate.problems import Problem
from archc.spans import Span

# Names that would shadow an attribute of the compiled torch module (torch.nn.Module and the
# generated network and part classes, instance attributes included): the torch backend refuses
# them (E501),
# so the front end rejects them first (E218) -- without importing torch, hence the list of the
# public ones. Every name with a leading underscore is reserved too: torch keeps its private
# state there, more of it in every release and some added at run time (torch._dynamo patches
# nn.Module). tests/test_malformed.py checks that this covers dir() of both classes.
RESERVED_NAMES = frozenset(
    """
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters network_name parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
    training type xpu zero_grad self
    """.split()
)


def reserved(name: str) -> bool:
    """True when ``name`` (one part of a dotted node name) would shadow a module attribute."""
    return name.startswith("_") or name in RESERVED_NAMES


@dataclass
class Scope:
    """One level of the name hierarchy: the network, a stage, a block instance, a branch.

    A ``positional`` scope (a shortcut body, ``sequential NAME:``, ``sequential branch:``)
    names its layers and block instances 0, 1, … like the children of an ``nn.Sequential``
    (torchvision's ``downsample``, ``features``); the others count each prefix (``conv1``,
    ``conv2``)."""

    prefix: str
    positional: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    emitted: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    """Name -> the output node of what it names (a labelled layer, a block instance, a stage):
    what ``concat with NAME`` / ``add of NAME`` in this scope may join."""

    def child(self, name: str, positional: bool = False) -> Scope:
        return Scope(prefix=f"{self.prefix}{name}.", positional=positional)


class Names:
    """Every full name claimed in one network."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.outputs: dict[str, list[str]] = {}
        """Name -> the full names it has in every scope: where a reference that its own
        scope does not know may have meant (E225)."""

    def output(self, scope: Scope, name: str | None, node: str | None) -> None:
        """Record ``node`` as the output of what ``name`` names in ``scope``."""
        if name is None or node is None:
            return
        scope.outputs[name] = node
        places = self.outputs.setdefault(name, [])
        if scope.prefix + name not in places:
            places.append(scope.prefix + name)

    def claim(self, scope: Scope, name: str, span: Span) -> None:
        full = scope.prefix + name
        for part in name.split("."):
            if reserved(part):
                why = (
                    "names starting with `_` are kept for torch's own attributes"
                    if part.startswith("_")
                    else "it names the module itself in the generated code"
                    if part == "self"
                    else "it would shadow an attribute of the compiled torch module"
                )
                raise Problem(
                    "E218",
                    f"the name `{part}` is reserved: {why}",
                    span,
                    f"names become attributes of the compiled nn.Module; rename it, "
                    f"e.g. `{part.strip('_') or 'layer'}_1`",
                )
        if name in scope.names or full in self.taken:
            raise Problem(
                "E210",
                f"the name `{full}` is used twice",
                span,
                "names become state_dict keys and must be unique; rename one of them",
            )
        scope.names.add(name)
        self.taken.add(full)

    def layer(self, scope: Scope, prefix: str, name: str | None, span: Span) -> str:
        """Claims a layer's name — ``name`` as written, else the next free ``prefix``+count
        (or position) — and returns the full dotted name."""
        scope.counts[prefix] = scope.counts.get(prefix, 0) + 1
        if name is None:
            name = str(scope.emitted) if scope.positional else free(scope, prefix)
        self.claim(scope, name, span)
        scope.emitted += 1
        return scope.prefix + name


def free(scope: Scope, prefix: str) -> str:
    """The first ``prefix``+N from this prefix's count on that the scope has not taken."""
    n = scope.counts[prefix]
    while f"{prefix}{n}" in scope.names:
        n += 1
    return f"{prefix}{n}"
