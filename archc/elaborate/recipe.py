"""A ``train:`` section's settings -> the IR's :class:`archc.recipe_ir.Recipe`.

The parser hands over each setting line as words and numbers; this pass reads them (E112 for a
setting it cannot read), checks their ranges (E222) and checks them against the elaborated
network (E221: dropout the network lacks, batch norm to exclude from weight decay where there is
none, image augmentation for a flat input). It also picks the loss: a network that ends in
softmax trains on log-probabilities with the NLL loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc import ir
from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.elaborate.problems import Problem
from archc.ops import OPS
from archc.recipe_ir import Optimizer, Recipe, Schedule
from archc.spans import Span
from archc.suggest import did_you_mean

# Setting phrases, longest first where one is the start of another.
_KEYS = (
    ("clip", "grad", "norm"),
    ("learning", "rate"),
    ("gradient", "clipping"),
    ("weight", "decay"),
    ("batch", "size"),
    ("label", "smoothing"),
    ("mixed", "precision"),
    ("sync", "bn"),
    ("optimizer",),
    ("lr",),
    ("batch",),
    ("epochs",),
    ("schedule",),
    ("warmup",),
    ("augment",),
    ("precision",),
    ("dropout",),
    ("ema",),
)
_ALIASES = {
    "clip grad norm": "gradient clipping",
    "learning rate": "lr",
    "batch size": "batch",
    "mixed precision": "precision",
}
_MONITORS = {"accuracy": "val_acc1", "loss": "val_loss", "error": "val_error"}
_HELP = (
    "a setting is one of: optimizer, lr, weight decay, batch size, epochs, schedule, warmup, "
    "label smoothing, augment, precision, sync bn, ema, gradient clipping, dropout "
    "(docs/language.md)"
)


class _Words:
    """A cursor over one setting's words, with typed reads that raise E112 or E222."""

    def __init__(self, words: tuple[S.Name | S.Num, ...], span: Span):
        self.words, self.i, self.span = words, 0, span

    def more(self) -> bool:
        return self.i < len(self.words)

    def peek(self) -> str | None:
        w = self.words[self.i] if self.more() else None
        return w.id.lower() if isinstance(w, S.Name) else None

    def last_span(self) -> Span:
        return self.words[self.i - 1].span if self.i else self.span

    def word(self, what: str, choices: tuple[str, ...]) -> str:
        if not self.more():
            raise Problem("E112", f"{what} needs a value", self.span, f"write {_or(choices)}")
        w = self.words[self.i]
        self.i += 1
        if isinstance(w, S.Name) and w.id.lower() in choices:
            return w.id.lower()
        shown = w.id if isinstance(w, S.Name) else w.text
        raise Problem("E112", f"{what} `{shown}` is not known", w.span, f"write {_or(choices)}")

    def number(self, what: str, low: float, high: float | None, *, closed: bool = True) -> float:
        if not self.more() or not isinstance(self.words[self.i], S.Num):
            span = self.words[self.i].span if self.more() else self.span
            raise Problem("E112", f"{what} needs a number", span)
        w = self.words[self.i]
        assert isinstance(w, S.Num)
        self.i += 1
        value = float(w.value)
        if value < low or (high is not None and (value > high or (value == high and not closed))):
            if high is None:
                bounds = f"at least {low:g}"
            else:
                bounds = f"in [{low:g}, {high:g}{']' if closed else ')'}"
            raise Problem("E222", f"{what} must be {bounds}, got {w.text}", w.span)
        return value

    def integer(self, what: str, low: int) -> int:
        value = self.number(what, low, None)
        if value != int(value):
            raise Problem("E222", f"{what} must be a whole number", self.last_span())
        return int(value)

    def done(self) -> None:
        if self.more():
            w = self.words[self.i]
            shown = w.id if isinstance(w, S.Name) else w.text
            raise Problem("E112", f"unexpected `{shown}` in this setting", w.span, _HELP)


def _or(choices: tuple[str, ...]) -> str:
    quoted = [f"`{c}`" for c in choices]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


@dataclass
class _Reading:
    values: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    dropout: tuple[float | None, Span] | None = None
    spans: dict[str, Span] = field(default_factory=dict)


def read_recipe(sections: list[S.Train], graph: ir.Graph, diags: list[Diagnostic]) -> Recipe | None:
    """The recipe of the spec's ``train:`` section (None without one); errors go to ``diags``."""
    if not sections:
        return None
    for extra in sections[1:]:
        diags.append(
            error("E222", "a second `train:` section", extra.span, "a spec has one recipe")
        )
    reading = _Reading()
    for setting in sections[0].settings:
        try:
            _setting(setting, reading)
        except Problem as p:
            diags.append(error(p.code, p.message, p.span, p.help))
    if any(d.severity == "error" for d in diags):
        return None
    if "augment" not in reading.values and len(graph.nodes[0].shape) != 3:
        # Crops and flips are for images: a vector input is not augmented unless asked.
        reading.values["augment"] = "none"
    recipe = Recipe(
        **reading.values,
        optimizer=Optimizer(**reading.optimizer),
        schedule=Schedule(**reading.schedule),
        loss="nll" if graph.node(graph.output).op == "softmax" else "cross_entropy",
        line=sections[0].span.line,
    )
    for p in _consistency(recipe, reading) + _against_network(recipe, reading, graph):
        diags.append(error(p.code, p.message, p.span, p.help))
    return None if any(d.severity == "error" for d in diags) else recipe


def _setting(setting: S.Setting, r: _Reading) -> None:
    words = setting.words
    lower = [w.id.lower() if isinstance(w, S.Name) else None for w in words]
    key = next((k for k in _KEYS if tuple(lower[: len(k)]) == k), None)
    if key is None:
        near = ""
        if lower[0] is not None:  # `epoch 90`, `optimiser sgd`: the nearest setting
            phrases = [" ".join(k) for k in _KEYS]
            near = did_you_mean(" ".join(w for w in lower[:2] if w), phrases) or did_you_mean(
                lower[0], phrases
            )
        raise Problem("E112", f"unknown training setting{near}", words[0].span, _HELP)
    name = _ALIASES.get(" ".join(key), " ".join(key))
    if name in r.spans:
        raise Problem("E222", f"`{name}` is set twice", setting.span, "keep one of the two lines")
    r.spans[name] = setting.span
    w = _Words(words, setting.span)
    w.i = len(key)
    if name == "optimizer":
        _optimizer(w, r)
    elif name == "lr":
        r.values["lr"] = w.number("the learning rate", 0, None)
        if r.values["lr"] == 0:
            raise Problem("E222", "the learning rate must be above 0", w.last_span())
    elif name == "weight decay":
        r.values["weight_decay"] = w.number("weight decay", 0, None)
        while w.more():
            w.word("after the weight decay", ("except",))
            while w.peek() in ("bn", "bias"):
                part = w.word("except", ("bn", "bias"))
                r.values["decay_bn" if part == "bn" else "decay_bias"] = False
                r.spans[f"except {part}"] = w.last_span()
    elif name == "batch":
        r.values["batch_size"] = w.integer("the batch size", 1)
    elif name == "epochs":
        r.values["epochs"] = w.integer("the number of epochs", 1)
    elif name == "schedule":
        _schedule(w, r)
    elif name == "warmup":
        r.schedule["warmup"] = w.integer("the warm-up", 0)
        if w.peek() in ("epoch", "epochs"):
            w.i += 1
    elif name == "label smoothing":
        r.values["label_smoothing"] = w.number("label smoothing", 0, 1, closed=False)
    elif name == "augment":
        r.values["augment"] = w.word("augmentation", ("none", "standard", "lecture"))
    elif name == "precision":
        choice = w.word("precision", ("bf16", "fp16", "fp32", "off"))
        r.values["precision"] = "fp32" if choice == "off" else choice
    elif name == "sync bn":
        r.values["sync_bn"] = True
    elif name == "ema":
        r.values["ema"] = w.number("the EMA decay", 0, 1, closed=False)
        if r.values["ema"] == 0:
            raise Problem("E222", "the EMA decay must be above 0", w.last_span())
    elif name == "gradient clipping":
        r.values["clip_grad_norm"] = w.number("the gradient norm", 0, None)
        if r.values["clip_grad_norm"] == 0:
            raise Problem("E222", "the gradient norm must be above 0", w.last_span())
    else:  # dropout: a statement about the network, checked against it
        if w.peek() == "none":
            w.i += 1
            r.dropout = (None, setting.span)
        else:
            r.dropout = (w.number("dropout", 0, 1, closed=False), setting.span)
    w.done()


def _optimizer(w: _Words, r: _Reading) -> None:
    kind = w.word("the optimizer", ("sgd", "adamw"))
    r.optimizer["kind"] = kind
    options = ("momentum", "nesterov") if kind == "sgd" else ("betas",)
    while w.more():
        option = w.word(f"an option of {kind}", options)
        if option == "momentum":
            r.optimizer["momentum"] = w.number("momentum", 0, 1, closed=False)
        elif option == "nesterov":
            r.optimizer["nesterov"] = True
        else:
            b1 = w.number("beta1", 0, 1, closed=False)
            r.optimizer["betas"] = (b1, w.number("beta2", 0, 1, closed=False))
    if kind == "sgd" and r.optimizer.get("nesterov") and r.optimizer.get("momentum", 0.9) == 0:
        raise Problem("E222", "Nesterov momentum needs a momentum above 0", w.span)


def _schedule(w: _Words, r: _Reading) -> None:
    kind = w.word("the schedule", ("constant", "plateau", "step", "cosine"))
    r.schedule["kind"] = kind
    options = {
        "constant": (),
        "plateau": ("factor", "on", "patience"),
        "step": ("every", "factor"),
        "cosine": (),
    }[kind]
    while w.more() and options:
        option = w.word(f"an option of the {kind} schedule", options)
        if option == "factor":
            r.schedule["factor"] = w.number("the factor", 0, 1, closed=False)
            if r.schedule["factor"] == 0:
                raise Problem("E222", "the factor must be above 0", w.last_span())
        elif option == "patience":
            r.schedule["patience"] = w.integer("the patience", 0)
        elif option == "every":
            r.schedule["every"] = w.integer("the step", 1)
            if w.peek() in ("epoch", "epochs"):
                w.i += 1
        else:
            if w.peek() in ("val", "validation"):
                w.i += 1
            metric = w.word("the monitored metric", ("accuracy", "loss", "error"))
            r.schedule["monitor"] = _MONITORS[metric]


def _consistency(recipe: Recipe, r: _Reading) -> list[Problem]:
    problems: list[Problem] = []
    schedule = recipe.schedule
    if schedule.warmup and schedule.kind == "plateau":
        problems.append(
            Problem(
                "E222",
                "warm-up combines with the step and cosine schedules, not with plateau",
                r.spans["warmup"],
                "a plateau schedule watches the validation metric from the first epoch; "
                "drop the warm-up or use `schedule step` / `schedule cosine`",
            )
        )
    if schedule.warmup >= recipe.epochs:
        problems.append(
            Problem(
                "E222",
                f"the warm-up ({schedule.warmup} epochs) must be shorter than the training "
                f"({recipe.epochs} epochs)",
                r.spans["warmup"],
            )
        )
    return problems


def _against_network(recipe: Recipe, r: _Reading, graph: ir.Graph) -> list[Problem]:
    """Settings that name something the network must have."""
    ops = [n.op for n in graph.nodes]
    has_bn = "batchnorm" in ops or "shortcut" in ops
    problems: list[Problem] = []

    def lacks(what: str, key: str, help: str) -> None:
        problems.append(Problem("E221", what, r.spans[key], help))

    if not recipe.decay_bn and not has_bn:
        lacks(
            "the recipe excludes batch norm from weight decay, but the network has none",
            "except bn",
            "remove `bn` after `except`",
        )
    if not recipe.decay_bias and not any(getattr(n, "bias", False) for n in graph.nodes):
        lacks(
            "the recipe excludes biases from weight decay, but no layer has a bias",
            "except bias",
            "remove `bias` after `except`",
        )
    if recipe.sync_bn and not has_bn:
        lacks(
            "`sync bn` needs batch norm layers, and the network has none",
            "sync bn",
            "remove the line",
        )
    if recipe.augment != "none" and len(graph.node(graph.nodes[0].name).shape) != 3:
        lacks(
            f"`augment {recipe.augment}` crops and flips images, but the input is a vector",
            "augment",
            "write `augment none`",
        )
    if recipe.label_smoothing and recipe.loss == "nll":
        lacks(
            "label smoothing needs class scores, and this network ends in softmax",
            "label smoothing",
            "remove the softmax line, or the label smoothing",
        )
    if r.dropout is not None:
        p, span = r.dropout
        rates = _dropout_rates(graph)
        if p is None and rates:
            problems.append(
                Problem(
                    "E221",
                    f"the recipe says no dropout, but the network has "
                    f"dropout {', '.join(f'{x:g}' for x in rates)}",
                    span,
                    "remove the dropout layers, or this line",
                )
            )
        elif p is not None and rates != [p]:
            has = f"dropout {', '.join(f'{x:g}' for x in rates)}" if rates else "no dropout"
            problems.append(
                Problem(
                    "E221",
                    f"the recipe says dropout {p:g}, but the network has {has}",
                    span,
                    f"write `dropout {p:g}` after the FC layers it applies to",
                )
            )
    return problems


def _dropout_rates(graph: ir.Graph) -> list[float]:
    """The rates of the network's dropout-like layers (the ops' ``dropout_like`` trait)."""
    rates = set()
    for node in graph.nodes:
        op = OPS.get(node.op)  # None for the structural nodes (input, shortcut)
        if op is not None and op.dropout_like and op.rate is not None:
            rates.add(getattr(node, op.rate))
    return sorted(rates)
