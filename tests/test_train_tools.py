"""The commands around a trained network: `archc eval`, best.pt, --init, the EMA and gradient
clipping recipe lines, --set for training, the printed defaults and the progress lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from shapes_data import make_tiny
from test_train_runs import TINY, rows, spec, train

import archc
from archc.check import check_spec
from archc.cli import main
from archc.parameters import apply, parse


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    where = tmp_path_factory.mktemp("trained")
    assert train(spec(where), tiny, where / "run", "--epochs", "3") == 0
    return spec(where), where / "run"


def test_eval_prints_the_last_epoch_s_top_1(tiny, trained, capsys) -> None:
    spec_path, run = trained
    last = rows(run)[-1]
    capsys.readouterr()
    args = ["eval", spec_path, "--weights", str(run / "last.pt"), "--data", str(tiny)]
    assert main([*args, "--workers", "0", "--format", "json"]) == 0
    numbers = json.loads(capsys.readouterr().out)
    assert numbers["val_acc1"] == last["val_acc1"]
    assert numbers["val_loss"] == pytest.approx(last["val_loss"], rel=1e-6)
    assert numbers["images"] == 6 and numbers["split"] == "val"
    assert main([*args, "--workers", "0"]) == 0
    assert f"val: 6 images, loss {last['val_loss']:.4f}, top-1 {last['val_acc1']:.2f}%" in (
        capsys.readouterr().out
    )


def test_best_pt_is_the_epoch_of_the_best_top_1(trained) -> None:
    _, run = trained
    metrics = rows(run)
    best = max(metrics, key=lambda r: r["val_acc1"])  # the first of equals
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best["epoch"]


def test_eval_refuses_weights_of_another_network(tiny, trained, tmp_path, capsys) -> None:
    _, run = trained
    other = spec(tmp_path, TINY.replace("CONV 4", "CONV 6"))
    code = main(["eval", other, "--weights", str(run / "last.pt"), "--data", str(tiny)])
    assert code == 1
    err = capsys.readouterr().err
    assert "`conv1.weight` is 4x3x3x3 there and 6x3x3x3 here" in err and "Traceback" not in err


def test_init_starts_from_a_checkpoint_and_resets_the_classifier(tiny, trained, tmp_path, capsys):
    _, run = trained
    three = make_tiny(tmp_path / "three", classes=3)
    out = tmp_path / "fine"
    code = train(spec(tmp_path, TINY.replace("FC 2", "FC 3")), three, out,
                 "--init", str(run / "last.pt"), "--epochs", "1", "--lr", "1e-9")  # fmt: skip
    assert code == 0
    assert "`fc1` re-initialised (3 classes, the weights have 2)" in capsys.readouterr().err
    start = torch.load(run / "last.pt", weights_only=True)["model"]
    tuned = torch.load(out / "last.pt", weights_only=True)["model"]
    # lr 1e-9: the convolution is still the checkpoint's; the classifier has 3 rows now.
    torch.testing.assert_close(tuned["conv1.weight"], start["conv1.weight"], atol=1e-6, rtol=0)
    assert tuned["fc1.weight"].shape == (3, 4)


def test_init_refuses_weights_whose_names_differ(tiny, trained, tmp_path, capsys) -> None:
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "other.pt")
    code = train(spec(tmp_path), tiny, tmp_path / "run", "--init", str(tmp_path / "other.pt"))
    assert code == 1
    err = capsys.readouterr().err
    assert "does not fit this network (names differ): missing conv1.weight" in err


def test_init_torchvision_needs_the_weights_on_this_machine(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = train("torchvision/resnet18", tiny, tmp_path / "run", "--init", "torchvision",
                 "--set", "classes=2", "--set", "input=8")  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "torchvision's resnet18 weights are not on this machine" in err


def test_gradient_clipping_bounds_each_step(tiny, tmp_path) -> None:
    # SGD with momentum 0.9 and no weight decay: a step moves a weight by at most
    # lr * sum(0.9^k) * (the clipped gradient norm) <= 0.1 * 10 * 1e-6 per step, 4 steps.
    clipped = TINY.replace("    epochs 2\n", "    epochs 1\n    clip grad norm 1e-6\n")
    for text, out in ((clipped, "clipped"), (TINY.replace("epochs 2", "epochs 1"), "free")):
        assert train(spec(tmp_path, text), tiny, tmp_path / out) == 0
    torch.manual_seed(0)  # --seed 0: the weights both runs started from
    start = archc.load(spec(tmp_path, TINY))
    moved = {}
    for out in ("clipped", "free"):
        end = torch.load(tmp_path / out / "last.pt", weights_only=True)["model"]
        moved[out] = (end["conv1.weight"] - start.state_dict()["conv1.weight"]).abs().max()
    assert moved["clipped"] <= 4 * 0.1 * 10 * 1e-6
    assert moved["free"] > 1e-3


def test_ema_validates_and_saves_the_average(tiny, tmp_path, capsys) -> None:
    text = TINY.replace("    epochs 2\n", "    epochs 2\n    ema 0.5\n")
    run = tmp_path / "run"
    assert train(spec(tmp_path, text), tiny, run) == 0
    state = torch.load(run / "last.pt", weights_only=True)
    assert set(state["ema"]) == set(state["model"])
    assert not torch.equal(state["ema"]["conv1.weight"], state["model"]["conv1.weight"])
    capsys.readouterr()
    args = ["eval", spec(tmp_path, text), "--weights", str(run / "last.pt"), "--data", str(tiny)]
    assert main([*args, "--workers", "0", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["val_acc1"] == rows(run)[-1]["val_acc1"]


def test_recipe_lines_for_ema_and_clipping_show_in_the_summary(tmp_path, capsys) -> None:
    text = TINY.replace("    epochs 2\n", "    epochs 2\n    ema 0.999\n    gradient clipping 1\n")
    assert main(["summary", spec(tmp_path, text)]) == 0
    out = capsys.readouterr().out
    assert "EMA, decay 0.999" in out and "total norm 1" in out
    bad = TINY.replace("    epochs 2\n", "    ema 1\n")
    assert main(["lint", spec(tmp_path, bad)]) == 1
    assert "the EMA decay must be in [0, 1), got 1" in capsys.readouterr().out


def test_set_resizes_a_shipped_network() -> None:
    checked = apply(check_spec("torchvision/resnet18"), parse(["classes=10", "input=32"]))
    assert checked.ok and checked.graph is not None
    assert checked.shapes["input"] == (3, 32, 32)
    assert checked.shapes["fc"] == (10,)
    # 32 / 2 (conv1) / 2 (max pool) / 2 / 2 / 2 (layers 2-4): 1x1 before the average pool.
    assert checked.shapes["layer4.1.relu2"][1:] == (1, 1)
    # ResNet-18's 11,689,512 parameters, less 1000 - 10 rows of 512 weights and a bias.
    assert checked.accounting.totals.params == 11_689_512 - 990 * 513


def test_train_with_set_on_a_spec_with_other_sizes(tiny, tmp_path, capsys) -> None:
    text = TINY.replace("[8x8x3]", "[32x32x3]").replace("FC 2", "FC 10")
    run = tmp_path / "run"
    assert train(spec(tmp_path, text), tiny, run, "--set", "classes=2", "--set", "input=8") == 0
    assert [r["epoch"] for r in rows(run)] == [1, 2]
    # A name that is neither classes nor input is a spec parameter, and this spec has none.
    assert main(["train", spec(tmp_path, text), "--data", str(tiny), "--set", "depth=2"]) == 1
    err = capsys.readouterr().err
    assert "error[E229]: the caller sets `depth`, which is no parameter of" in err
    assert "its parameters are: none" in err


def test_a_spec_without_train_prints_its_defaults(tiny, tmp_path, capsys) -> None:
    text = "input [8x8x3]\nconv: bn, relu\nCONV 4 3x3 pad 1\nGAP\nFC 2\n"
    assert train(spec(tmp_path, text), tiny, tmp_path / "run", "--epochs", "1") == 0
    err = capsys.readouterr().err
    assert "the spec has no train: section; the defaults: optimizer SGD, momentum 0.9" in err
    assert "augmentation none (resize and centre crop only, no flips)" in err


def test_progress_lines_off_a_terminal(tiny, tmp_path, capsys) -> None:
    assert train(spec(tmp_path), tiny, tmp_path / "run", "--log-every", "1") == 0
    err = capsys.readouterr().err
    assert "archc train: 12 train and 6 val images, 2 classes, 3 steps of 4 per epoch" in err
    assert "epoch 1/2: step 1/3, train loss" in err and "epoch 1/2: step 2/3" in err
    assert "epoch 2/2: validating" in err


@pytest.mark.slow
def test_export_weights_carries_the_trained_weights(trained, tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime

    spec_path, run = trained
    target = tmp_path / "tiny.onnx"
    assert main(["export", spec_path, "--weights", str(run / "last.pt"), "-o", str(target)]) == 0
    assert "onnxruntime's output equals the module's" in capsys.readouterr().out
    model = archc.load(spec_path).eval()
    model.load_state_dict(torch.load(run / "last.pt", weights_only=True)["model"])
    x = torch.randn(5, 3, 8, 8)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5)
    fresh = archc.load(spec_path).eval()  # another initialisation: other logits
    with torch.no_grad():
        assert not torch.allclose(fresh(x), want, rtol=1e-2)


def test_export_refuses_weights_that_are_not_the_network_s(trained, tmp_path, capsys) -> None:
    pytest.importorskip("onnx")
    spec_path, run = trained
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    out = tmp_path / "b.onnx"
    assert main(["export", spec_path, "--weights", str(bad), "-o", str(out)]) == 1
    assert "is damaged or not a checkpoint" in capsys.readouterr().err
    other = spec(tmp_path, TINY.replace("FC 2", "FC 3"))
    assert main(["export", other, "--weights", str(run / "best.pt"), "-o", str(out)]) == 1
    assert "`fc1.weight` is 2x4 there and 3x4 here" in capsys.readouterr().err
    assert not out.exists()


def test_augment_none_resizes_and_takes_the_centre_crop() -> None:
    from PIL import Image

    from archc.training.data import image_transform

    # 8 wide, 16 tall: rows 4-11 white between black bands. The centre 8x8 crop is all white;
    # squashing the image to 8x8 would keep the black bands.
    image = Image.new("RGB", (8, 16), (0, 0, 0))
    image.paste((255, 255, 255), (0, 4, 8, 12))
    transform = image_transform("none", (8, 8), 3, train=True)
    names = [type(t).__name__ for t in transform.transforms]
    assert names == ["Resize", "CenterCrop", "ToTensor", "Normalize"]  # no flip, no random crop
    out = transform(image)
    assert out.shape == (3, 8, 8)
    assert torch.equal(out, out[:, :1, :1].expand(3, 8, 8))  # one colour: white everywhere
    assert out[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229)


def test_init_torchvision_reads_torchvision_s_weights_from_torch_s_cache(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    from archc.backends.torch_module import build_module
    from archc.training.weights import start_from

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(5)
    theirs = torchvision.models.resnet18().state_dict()  # stands in for the downloaded file
    torch.save(theirs, cache / "resnet18-f37072fd.pth")
    checked = apply(check_spec("torchvision/resnet18"), parse(["classes=2"]))
    model = build_module(checked)
    said = start_from(model, "torchvision", checked)
    assert said == (
        "started from torchvision's resnet18 weights; "
        "`fc` re-initialised (2 classes, the weights have 1000)"
    )
    ours = model.state_dict()
    assert torch.equal(ours["layer3.1.conv2.weight"], theirs["layer3.1.conv2.weight"])
    assert torch.equal(ours["bn1.running_var"], theirs["bn1.running_var"])
    assert ours["fc.weight"].shape == (2, 512)


def test_compile_weights_writes_them_beside_the_source(trained, tmp_path, capsys) -> None:
    import importlib.util

    spec_path, run = trained
    out = tmp_path / "net.py"
    assert main(["compile", spec_path, "-o", str(out), "--weights", str(run / "best.pt")]) == 0
    said = capsys.readouterr().out
    assert f"wrote {tmp_path / 'net.pt'}: the weights of {run / 'best.pt'}" in said
    loaded = importlib.util.spec_from_file_location("net", out)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    name = said.split("model = ")[1].split("(")[0]
    model = getattr(module, name)().eval()
    model.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
    trained_weights = torch.load(run / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(v, trained_weights[k]) for k, v in model.state_dict().items())
    other = spec(tmp_path, TINY.replace("FC 2", "FC 3"))
    code = main(["compile", other, "-o", str(tmp_path / "o.py"), "--weights", str(run / "best.pt")])
    assert code == 1
    assert "`fc1.weight` is 2x4 there and 3x4 here" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


def test_compile_with_a_bad_checkpoint_writes_no_source(tmp_path, capsys) -> None:
    """`--weights` that are not weights stop compile before the source is written: no half
    output (a net.py without its net.pt) is left behind."""
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 40)
    out = tmp_path / "net.py"
    assert main(["compile", spec(tmp_path), "-o", str(out), "--weights", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"archc compile: `{bad}` is damaged or not a checkpoint")
    assert err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "net.pt").exists()


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["train", "blocks/resnet", "--data", "."], "train"),
        (["eval", "blocks/resnet", "--weights", "w.pt", "--data", "."], "evaluate"),
        (["export", "blocks/resnet", "-o", "x.onnx"], "export"),
    ],
)
def test_a_block_library_is_refused_in_one_line(argv, verb, tmp_path, capsys) -> None:
    """A library has no network and no diagnostics: these exited 1 saying nothing at all."""
    argv = [a if a != "x.onnx" else str(tmp_path / a) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("blocks/resnet: a block library (4 blocks: basic, ")
    assert err.endswith(f"nothing to {verb}; import it from a network spec\n")
    assert not (tmp_path / "x.onnx").exists()


def test_eval_of_a_missing_spec_exits_2_as_every_unreadable_file(capsys) -> None:
    assert main(["eval", "no_such_spec.arch", "--weights", "w.pt", "--data", "."]) == 2
    assert "error[E001]: `no_such_spec.arch`: no such file" in capsys.readouterr().err


def test_eval_refuses_a_run_of_another_input_size(tiny, trained, capsys) -> None:
    """The run was trained at 8x8; its weights fit a 16x16 network too (conv, global pool, FC),
    and eval measured that never-trained network in silence."""
    spec_path, run = trained
    capsys.readouterr()
    args = ["eval", spec_path, "--weights", str(run / "last.pt"), "--data", str(tiny)]
    assert main([*args, "--workers", "0", "--set", "input=16"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"archc eval: `{run / 'last.pt'}` was trained on another network (")
    assert "3x8x8 -> 3x16x16" in err and err.count("\n") == 1


def test_export_refuses_a_run_of_another_input_size(trained, tmp_path, capsys) -> None:
    """As eval: an 8x8 run's weights fit a 16x16 network and were exported as one in silence."""
    spec_path, run = trained
    target = tmp_path / "n.onnx"
    args = ["export", spec_path, "-o", str(target), "--weights", str(run / "last.pt")]
    capsys.readouterr()
    assert main([*args, "--set", "input=16"]) == 1
    err = capsys.readouterr().err
    assert "was trained on another network (" in err and "3x8x8 -> 3x16x16" in err
    assert not target.exists()


def test_compile_refuses_a_run_of_another_input_size(trained, tmp_path, capsys) -> None:
    spec_path, run = trained
    big = spec(tmp_path, TINY.replace("input [8x8x3]", "input [16x16x3]"), "big.arch")
    target = tmp_path / "n.py"
    capsys.readouterr()
    assert main(["compile", big, "-o", str(target), "--weights", str(run / "last.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"archc compile: `{run / 'last.pt'}` was trained on another network (")
    assert not target.exists() and not (tmp_path / "n.pt").exists()
