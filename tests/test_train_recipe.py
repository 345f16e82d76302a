"""The recipe three ways: archc summary prints it, archc compile's recipe() and archc train
(archc.training.recipe, behind archc.recipe) build the same optimizer, schedule and loss."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import archc
from archc.backends.source import class_name
from archc.check import check_spec
from archc.cli import main
from archc.training.recipe import build

SMALL = """network Small
input [16x16x3]
conv: bn, relu
train:
    optimizer sgd momentum 0.8 nesterov
    lr 0.2
    weight decay 1e-4 except bn bias
    schedule cosine
    warmup 2 epochs
    epochs 10
    label smoothing 0.1
CONV 8 3x3 pad 1
GAP
FC 5
"""


def _compiled(spec: str, tmp_path: Path) -> object:
    out = tmp_path / "net.py"
    assert main(["compile", spec, "-o", str(out)]) == 0
    loaded = importlib.util.spec_from_file_location("net", out)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def _same(a: dict, b: dict) -> None:
    assert type(a["optimizer"]) is type(b["optimizer"])
    assert a["optimizer"].state_dict() == b["optimizer"].state_dict()
    assert type(a["scheduler"]) is type(b["scheduler"])
    sa, sb = a["scheduler"].state_dict(), b["scheduler"].state_dict()
    sa.pop("_schedulers", None), sb.pop("_schedulers", None)
    assert sa == sb
    assert repr(a["loss"]) == repr(b["loss"])
    for key in ("monitor", "batch_size", "epochs", "augment", "precision", "sync_bn"):
        assert a[key] == b[key], key


@pytest.mark.parametrize("spec", ["specs/resnet18.arch", "small"])
def test_compiled_recipe_builds_what_archc_train_builds(spec: str, tmp_path: Path) -> None:
    if spec == "small":
        spec = str(tmp_path / "small.arch")
        Path(spec).write_text(SMALL)
    module = _compiled(spec, tmp_path)
    checked = check_spec(spec)
    assert checked.graph is not None and checked.graph.recipe is not None
    network = getattr(module, class_name(checked.graph.name))
    compiled = module.recipe(network())  # type: ignore[attr-defined]
    trained = build(checked.graph.recipe, checked.graph, archc.load(spec))
    _same(compiled, trained)
    _same(compiled, archc.recipe(spec))


def test_resnet_recipe_is_the_lecture_s(tmp_path: Path) -> None:
    r = archc.recipe("specs/resnet50.arch")
    opt = r["optimizer"]
    assert type(opt) is torch.optim.SGD
    assert opt.defaults["lr"] == 0.1 and opt.defaults["momentum"] == 0.9
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-5]
    sched = r["scheduler"]
    assert type(sched) is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert (sched.mode, sched.factor, r["monitor"]) == ("min", 0.1, "val_error")
    assert r["batch_size"] == 256
    # ResNet-50 ends in softmax: it trains on log-probabilities with the NLL loss.
    assert type(r["loss"]) is torch.nn.NLLLoss
    out = r["model"].eval()(torch.randn(2, 3, 224, 224))
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(2), atol=1e-4)


def test_alexnet_recipe_is_the_lecture_s() -> None:
    recipe = check_spec("specs/alexnet.arch").graph.recipe  # type: ignore[union-attr]
    assert recipe is not None
    assert (recipe.lr, recipe.weight_decay, recipe.batch_size) == (0.01, 5e-4, 128)
    assert (recipe.optimizer.kind, recipe.optimizer.momentum) == ("sgd", 0.9)
    assert (recipe.schedule.kind, recipe.schedule.monitor) == ("plateau", "val_acc1")
    assert (recipe.augment, recipe.loss) == ("lecture", "cross_entropy")


def test_summary_shows_the_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "specs/resnet50.arch"]) == 0
    text = capsys.readouterr().out
    recipe = text[text.index("training recipe") :].splitlines()
    assert recipe == [
        "training recipe (train: on line 18)",
        "  optimizer      SGD, momentum 0.9",
        "  learning rate  0.1, x0.1 when val error stops improving for 10 epochs",
        "  weight decay   1e-05",
        "  batch          256 (global), 90 epochs",
        "  loss           NLL on log-probabilities (the network ends in softmax)",
        "  augmentation   standard (random-resized crop + horizontal flip)",
        "  precision      bf16 autocast on CUDA",
        "  init           kaiming",
    ]
    assert archc.summary("specs/resnet50.arch")["recipe"]["batch_size"] == 256


def test_the_recipes_dropout_check_reads_the_ops_dropout_like_trait(monkeypatch) -> None:
    """The check asks the registry which ops are dropout-like (it once asked only for
    ``ir.Dropout``): a new kind with the trait is seen without touching the recipe code."""
    from archc.frontend import parse_spec
    from archc.ops import OPS

    text = (
        "input [8x8x3]\ntrain:\n    dropout 0.2\nCONV 4 3x3 pad 1\n"
        "residual:\n    CONV 4 3x3 pad 1\n    stochastic depth 0.2\nadd\nGAP\nFC 2\n"
    )
    codes = [d.code for d in parse_spec(text, "t.arch").diagnostics]
    assert codes == ["E221"]  # stochastic depth drops branches: the recipe's dropout is absent
    monkeypatch.setattr(type(OPS["stochastic_depth"]), "dropout_like", True)
    assert [d.code for d in parse_spec(text, "t.arch").diagnostics] == []


def test_the_recipe_line_counts_one_epoch_in_the_singular() -> None:
    from archc.recipe_ir import describe
    from archc.training.setup import DEFAULTS

    rows = dict(describe(DEFAULTS.model_copy(update={"epochs": 1}), "kaiming"))
    assert rows["batch"] == f"{DEFAULTS.batch_size} (global), 1 epoch"
    rows = dict(describe(DEFAULTS.model_copy(update={"epochs": 2}), "kaiming"))
    assert rows["batch"].endswith(", 2 epochs")
