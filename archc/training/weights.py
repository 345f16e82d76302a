"""Weights from elsewhere into a spec's module: ``--init`` of ``archc train`` (archc's own
checkpoints, a plain state_dict, torchvision's weights where torch's cache holds them) and
``--weights`` of ``archc eval`` and ``archc export``.

Matched strictly by name: every tensor of the module must be in the weights and every tensor of
the weights in the module. ``--init`` alone allows one difference: the class-score layer's
shape, when the class count differs (fine-tuning), which keeps its fresh initialisation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from archc.check import Checked
from archc.training import checkpoint, identity


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _mismatch(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor], source: str) -> None:
    missing = [k for k in own if k not in given]
    extra = [k for k in given if k not in own]
    if missing or extra:
        raise checkpoint.CheckpointError(
            f"{source} does not fit this network (names differ): "
            + "; ".join(
                part
                for part in (
                    f"missing {_names(missing)}" if missing else "",
                    f"not in the network {_names(extra)}" if extra else "",
                )
                if part
            )
        )


def _torchvision(checked: Checked) -> tuple[dict[str, torch.Tensor], str]:
    """torchvision's default weights for a shipped ``torchvision/NAME`` spec, from torch's
    cache (archc downloads nothing). A family spec's network is named by its builder
    (torchvision/resnet.arch with variant 18: resnet18)."""
    name = Path(checked.file).stem
    if checked.family is not None and checked.graph is not None:
        name = checked.graph.name
    if Path(checked.file).parent.name != "torchvision":
        raise checkpoint.CheckpointError(
            "--init torchvision: only a shipped torchvision/NAME spec has torchvision's weights"
        )
    try:
        from torchvision.models import get_model_weights

        url = get_model_weights(name).DEFAULT.url
    except (ImportError, ValueError, KeyError, AttributeError):
        raise checkpoint.CheckpointError(
            f"--init torchvision: torchvision has no `{name}`"
        ) from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise checkpoint.CheckpointError(
            f"--init torchvision: torchvision's {name} weights are not on this machine "
            f"(`{path}`); fetch them once with torchvision.models.{name}(weights='DEFAULT'), "
            "or pass a checkpoint"
        )
    return checkpoint.weights(path), f"torchvision's {name} weights"


def start_from(model: nn.Module, init: str, checked: Checked) -> str:
    """Load ``init`` into ``model`` for fine-tuning; the line that says what was done."""
    from archc.parameters import classifier_name

    if init == "torchvision":
        given, source = _torchvision(checked)
    else:
        given, source = checkpoint.weights(Path(init)), f"`{init}`"
    own = model.state_dict()
    _mismatch(own, given, f"--init: {source}")
    head = classifier_name(checked.graph) if checked.graph is not None else ""
    differ = [k for k in own if own[k].shape != given[k].shape]
    fresh = [k for k in differ if k.rpartition(".")[0] == head]
    if len(fresh) != len(differ):
        k = next(k for k in differ if k not in fresh)
        shape = "x".join(map(str, given[k].shape))
        raise checkpoint.CheckpointError(
            f"--init: {source} does not fit this network: `{k}` is {shape} there and "
            f"{'x'.join(map(str, own[k].shape))} here"
        )
    kept = {k: v for k, v in given.items() if k not in fresh}
    model.load_state_dict({**own, **kept})
    if not fresh:
        return f"started from {source}"
    old = given[fresh[0]].shape[0]
    return (
        f"started from {source}; `{head}` re-initialised ({own[fresh[0]].shape[0]} classes, "
        f"the weights have {old})"
    )


def load_into(model: nn.Module, path: Path) -> None:
    """The weights of ``path`` into ``model``, every name and shape as the module's."""
    given = checkpoint.weights(path)
    own = model.state_dict()
    _mismatch(own, given, f"`{path}`")
    for k, v in own.items():
        if v.shape != given[k].shape:
            raise checkpoint.CheckpointError(
                f"`{path}` does not fit this network: `{k}` is "
                f"{'x'.join(map(str, given[k].shape))} there and {'x'.join(map(str, v.shape))} "
                "here (trained with another --set?)"
            )
    model.load_state_dict(given)


def checked_weights(checked: Checked, path: Path) -> bytes:
    """The weights of ``path``, checked against the module, as a saved plain state_dict.
    Raises CheckpointError before anything is written."""
    import io

    from archc.backends.torch_module import build_module

    model = build_module(checked)
    load_into(model, path)
    same_network(checked, path, "compile")
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def write_beside(
    checked: Checked, source: Path, path: Path, inputs: list[str], data: bytes | None = None
) -> str:
    """``archc compile --weights``: the weights of ``path`` (``data``, when
    :func:`checked_weights` already read them) beside the generated ``source`` (``net.py`` ->
    ``net.pt``); the line that says how to load them."""
    from archc.backends.source import class_name
    from archc.files import write_output

    data = checked_weights(checked, path) if data is None else data
    target = source.with_suffix(".pt")
    write_output(target, data, [*inputs, str(path), str(source)])
    name = class_name(checked.graph.name) if checked.graph is not None else "Net"
    return (
        f"wrote {target}: the weights of {path}; load them with model = {name}(); "
        f"model.load_state_dict(torch.load({str(target)!r}, weights_only=True))"
    )


def same_network(checked: Checked, path: Path, verb: str) -> None:
    """An archc checkpoint records the network it trained; one whose weights merely fit another
    (the run's ``--set input=16`` left out: a global pool takes any size) is refused, as
    ``--resume`` refuses it, instead of measuring a network that was never trained."""
    state = checkpoint.read(path)
    if not (isinstance(state, dict) and isinstance(state.get("network"), str)):
        return  # a plain state_dict says nothing about its network
    assert checked.graph is not None
    differs = identity.checkpoint_difference(state, checked.graph, checked.shapes)
    if differs is None:
        return
    raise checkpoint.CheckpointError(
        f"`{path}` was trained on another network ({differs}): {verb} it with the spec and "
        "--set it was trained with"
    )
