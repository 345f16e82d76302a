"""The constants of a file: its ``param``s (with what a caller set) and the columns of the
``variants`` row that ``param variant`` selects.

A caller sets parameters with Python values (``archc.load(spec, variant="b3")``: int, float,
Fraction or str) or command-line text (``--set variant=b3``), converted by the kind of the
parameter's default: number text for a number, a quoted string or a bare word for a string.
A setting the file cannot take is E229, reported at the ``param`` line (or the ``network`` line,
for a name the file has no parameter of) and saying that the caller set it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from archc import syntax as S
from archc.diagnostics import Diagnostic, error
from archc.elaborate.definitions import FileConstants
from archc.elaborate.functions import Value
from archc.elaborate.problems import Problem
from archc.elaborate.scope import twice
from archc.elaborate.values import Values, fill, name_text
from archc.spans import Span
from archc.suggest import did_you_mean

Constant = Value
"""The value of a parameter or a variants column: a number, a string, a list or a tuple."""
Settings = Mapping[str, object]
"""What a caller sets: parameter name -> a Python value or command-line text."""

_NUMBER = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Family:
    """What a file says about the family it writes, from its own lines: the network name
    template (``efficientnet_{variant}``; the plain name for a spec without one), its
    parameters with their defaults, and its variant keys (in the file's order)."""

    template: str | None
    params: dict[str, Constant]
    variants: tuple[str, ...]
    builders: dict[str, str] = field(default_factory=dict)
    """Each variant's network name: the template filled with the constants that variant
    gives (``resnet{depth}`` too, where ``depth`` is a column)."""

    def names(self) -> dict[str, str]:
        """The builder name of each variant (key -> name); {} without a template."""
        return dict(self.builders)


def family_of(spec: S.Spec) -> Family | None:
    """The family a file writes: None when it declares no ``param`` and no ``variants``."""
    params = [st for st in spec.body if isinstance(st, S.SpecParam)]
    variants = [st for st in spec.body if isinstance(st, S.Variants)]
    templates = [st for st in spec.body if isinstance(st, S.Network)]
    if not params and not variants:
        return None
    defaults: dict[str, Constant] = {}
    for p in params:
        try:
            defaults[p.name] = Values(dict(defaults), None).constant(p.default)
        except Problem:
            continue
    keys = tuple(r.key for r in variants[0].rows) if variants else ()
    template = templates[0].template if templates else None
    builders: dict[str, str] = {}
    for key in keys if template is not None else ():
        assert template is not None
        constants = ParamReader(spec, []).run({"variant": key}, None, "the family")
        try:
            builders[key] = fill(template, Values(constants, None), identifier=True)
        except Problem:  # the spec's own error for this variant; a name all the same
            builders[key] = template.text.replace("{variant}", key)
    return Family(templates[0].name if templates else None, defaults, keys, builders)


def convert(
    name: str, raw: object, default: Constant, at: Span, through: str = "the caller"
) -> Constant:
    """A caller's value for the parameter ``name`` of the kind of its ``default``."""
    where = f"{through} sets it"
    if isinstance(default, str):
        if isinstance(raw, str):
            text = raw.strip()
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
                text = text[1:-1]
            return text
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(raw)  # `variant=50` for a key written 50
        raise Problem(
            "E229",
            f"parameter `{name}` is a string, but {where} to {raw!r}",
            at,
            f'give it a string, e.g. `{name}="{name_text(default)}"`',
        )
    if isinstance(default, tuple):
        raise Problem(
            "E229",
            f"parameter `{name}` is a list, which {through} cannot set",
            at,
            "set a number or string parameter the list is computed from",
        )
    if isinstance(raw, bool) or not isinstance(raw, int | float | Fraction | str):
        raise Problem("E229", f"parameter `{name}` is a number, but {where} to {raw!r}", at)
    if isinstance(raw, str):
        text = raw.strip()
        if not _NUMBER.fullmatch(text) or len(text) > 40:
            raise Problem(
                "E229",
                f"parameter `{name}` is a number, but {where} to `{raw}`",
                at,
                f"give it a number, e.g. `{name}={name_text(default)}`",
            )
        return Fraction(text)
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise Problem("E229", f"{through} sets parameter `{name}` to {raw!r}, no number", at)
        return Fraction(repr(raw))
    return Fraction(raw)


class ParamReader:
    """Evaluates a file's ``param`` lines and its ``variants`` table in order."""

    def __init__(self, spec: S.Spec, diags: list[Diagnostic]) -> None:
        self.spec = spec
        self.diags = diags
        self.env: dict[str, Constant] = {}
        self.defined: dict[str, Span] = {}
        self.set_by = "the caller"
        self.settings: Settings = {}

    def start(self) -> Span:
        return Span(file=self.spec.file, line=1, column=1, end_line=1, end_column=1)

    def define(self, name: str, span: Span) -> bool:
        earlier = self.defined.get(name)
        if earlier is not None:
            p = twice(name, span, earlier)
            self.diags.append(error(p.code, p.message, p.span, p.help))
            return False
        self.defined[name] = span
        return True

    def run(
        self,
        settings: Settings,
        unknown_at: Span | None,
        through: str,
        settings_at: Span | None = None,
    ) -> dict[str, Constant]:
        """The constants, with ``settings`` applied; settings the file has no parameter of
        are E229 at ``unknown_at`` (the network line, an import's line)."""
        params = {st.name: st for st in self.spec.body if isinstance(st, S.SpecParam)}
        unknown = [n for n in settings if n not in params]
        if unknown:
            known = ", ".join(f"`{n}`" for n in params) or "none"
            near = did_you_mean(unknown[0], list(params))
            first = next(iter(params.values()), None)
            at = unknown_at or (first.span if first is not None else self.start())
            self.diags.append(
                error(
                    "E229",
                    f"{through} sets `{unknown[0]}`, which is no parameter of "
                    f"`{self.spec.file}`{near}",
                    at,
                    f"its parameters are: {known}",
                )
            )
        self.set_by = through
        self.settings = settings
        for st in self.spec.body:
            try:
                if isinstance(st, S.SpecParam) and self.define(st.name, st.name_span):
                    value = Values(self.env, None).constant(st.default)
                    if st.name in settings:
                        raw = settings[st.name]
                        value = convert(st.name, raw, value, settings_at or st.span, through)
                    self.env[st.name] = value
                elif isinstance(st, S.Variants):
                    self.variants(st)
            except Problem as p:
                self.diags.append(error(p.code, p.message, p.span, p.help))
        return self.env

    def variants(self, st: S.Variants) -> None:
        if "variant" not in self.env:
            if "variant" not in self.defined:
                raise Problem(
                    "E229",
                    "a `variants` table selects its row by `param variant`, which this file "
                    "does not declare (before the table)",
                    st.span,
                    f'write `param variant = "{st.rows[0].key}"` above the table',
                )
            return  # the param failed: reported already
        chosen = name_text(self.env["variant"])
        row = next((r for r in st.rows if r.key == chosen), None)
        if row is None:
            keys = [r.key for r in st.rows]
            near = did_you_mean(chosen, keys)
            param = next(
                p for p in self.spec.body if isinstance(p, S.SpecParam) and p.name == "variant"
            )
            setter = f" ({self.set_by} sets it)" if "variant" in self.settings else ""
            raise Problem(
                "E229",
                f"variant `{chosen}`{setter} is no row of the `variants` table{near}",
                param.span,
                f"the variants are: {', '.join(keys)}",
            )
        values = Values(self.env, None)
        for column, value in zip(st.columns, row.values):
            if self.define(column, st.span):
                self.env[column] = values.constant(value)


def param_constants(
    spec: S.Spec,
    settings: Settings,
    diags: list[Diagnostic],
    unknown_at: Span | None = None,
    through: str = "the caller",
    settings_at: Span | None = None,
) -> FileConstants:
    """The ``param``s and variants columns of ``spec`` with ``settings`` applied (see
    :class:`ParamReader`);
    ``settings_at``: where a value of the wrong kind is reported (an import's line; by
    default the parameter's own line)."""
    if unknown_at is None:
        network = next((st for st in spec.body if isinstance(st, S.Network)), None)
        unknown_at = network.span if network else None
    reader = ParamReader(spec, diags)
    env = reader.run(settings, unknown_at, through, settings_at)
    return FileConstants(env, {k: v for k, v in reader.defined.items() if k in env})
