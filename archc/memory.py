"""How much memory a module's tensors need, measured before any is allocated.

``archc.load`` builds a module on the meta device (shapes, no storage) and then materialises it.
A spec of a few lines can ask for petabytes (``FC 33554432`` after a 16M-wide flatten); between
the two steps the byte count is known exactly, and a module that would not fit is refused with a
diagnostic (E502) instead of torch's ``RuntimeError: can't allocate …`` or the kernel's OOM
killer. The limit defaults to the memory of the device it would live on.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from archc import ir
from archc.diagnostics import Diagnostic, error
from archc.files import fmt_size
from archc.spans import Span


def module_bytes(module: nn.Module) -> tuple[int, str]:
    """Bytes of every parameter and buffer of ``module`` (meta tensors included), and the name
    of the largest tensor."""
    total, largest, name = 0, -1, ""
    tensors = [*module.named_parameters(), *module.named_buffers()]
    for key, tensor in tensors:
        size = tensor.numel() * tensor.element_size()
        total += size
        if size > largest:
            largest, name = size, key
    return total, name


def device_memory(device: Any = None) -> int:
    """The memory of ``device``: a CUDA device's own, else what this process may use (see
    :func:`process_memory`)."""
    dev = torch.device(device) if device is not None else torch.get_default_device()
    if dev.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(dev).total_memory
    return process_memory()


# Where a cgroup's memory limit is read: v2's memory.max, then v1's limit_in_bytes.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def physical_memory() -> int:
    """The machine's physical memory (a terabyte where sysconf cannot tell, which still stops
    the absurd)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def process_memory() -> int:
    """The memory this process may use: the least of the machine's physical memory, its
    address-space limit (``ulimit -v``, RLIMIT_AS) and its cgroup's memory limit (a
    container's). Physical memory alone let a process under ``ulimit -v`` or in a container
    start an allocation that the limit then killed."""
    limits = [physical_memory()]
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    for path in _CGROUP_LIMITS:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read(64).strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and 0 < int(text) < 1 << 62:  # v1 writes ~2^63 for "no limit"
            limits.append(int(text))
    return min(limits)


def too_large(
    module: nn.Module, graph: ir.Graph, limit: int, device: Any = None
) -> Diagnostic | None:
    """E502 when ``module``'s tensors need more than ``limit`` bytes, at the layer holding the
    largest tensor."""
    total, largest = module_bytes(module)
    if total <= limit:
        return None
    # The node whose name is the longest prefix of the tensor's name owns it.
    owners = [n for n in graph.nodes if largest.startswith(n.name + ".") and n.span is not None]
    owner = max(owners, key=lambda n: len(n.name), default=None)
    span = (
        owner.span
        if owner is not None and owner.span is not None
        else Span(file=graph.file, line=1, column=1, end_line=1, end_column=2)
    )
    where = f"`{owner.name}`" if owner is not None else "`" + largest.rsplit(".", 1)[0] + "`"
    return error(
        "E502",
        f"the module's parameters and buffers need {fmt_size(total)}, more than the "
        f"{fmt_size(limit)} allowed",
        span,
        f"the largest tensor is {largest} of {where}; the limit defaults to the memory of "
        f"the device ({'this machine' if device is None else device}); "
        "pass max_bytes= to archc.load to change it",
    )


def cgroup_room(root: str = "/sys/fs/cgroup") -> int | None:
    """Bytes the process's cgroup may still allocate (v2's memory.max, else v1's
    memory.limit_in_bytes, less what it uses); None without a limit."""
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            with open(os.path.join(root, limit_file)) as f:
                limit = f.read().strip()
            with open(os.path.join(root, usage_file)) as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # v1 says "no limit" with a huge number
            return max(int(limit) - used, 0)
        return None
    return None


def _address_space_room() -> int | None:
    """Bytes of address space left under RLIMIT_AS; None without a limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, ValueError, OSError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(soft - used, 0)


def process_room() -> tuple[int, str]:
    """The bytes this process may still allocate on the CPU and what sets that: the machine's
    memory, the room left under the address-space limit (``ulimit -v``, RLIMIT_AS) or under the
    cgroup's (a container's memory limit), whichever is least. Unlike :func:`process_memory`
    (the limits themselves), this subtracts what the process and its cgroup already use."""
    choices = [(physical_memory(), "the machine's memory")]
    room = _address_space_room()
    if room is not None:
        choices.append((room, "the address-space limit (RLIMIT_AS, ulimit -v)"))
    room = cgroup_room()
    if room is not None:
        choices.append((room, "the cgroup's memory limit"))
    return min(choices)
