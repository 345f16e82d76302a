"""What the light install lacks: a one-line answer naming the extra to install.

``pip install archc`` brings only lark and pydantic, enough for lint, summary, ir, schema,
specs, graph --format mermaid and the language server. Building modules needs torch
(``archc[torch]``), training torchvision too (``archc[train]``), export onnx (``archc[onnx]``).
Looking a module up (importlib.util.find_spec) imports nothing, so the check costs no time.
"""

from __future__ import annotations

import importlib.util

EXTRAS = {
    "torch": ("torch", "tqdm"),
    "train": ("torch", "tqdm", "torchvision"),
    "onnx": ("torch", "tqdm", "onnx", "onnxscript"),
}
"""Each extra and the modules it brings that archc imports (pyproject.toml's lists)."""


class MissingExtra(ImportError):
    """Raised by an API function whose extra is not installed: its message is the one line."""


def missing(extra: str) -> str | None:
    """The first module of ``extra`` that is not installed, or None when all are."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return module
    return None


def message(what: str, extra: str, module: str) -> str:
    return f"{what} needs {module}, which is not installed: pip install 'archc[{extra}]'"


def require(what: str, extra: str = "torch") -> None:
    """Raise :class:`MissingExtra` (one line naming the extra) when ``extra`` is missing."""
    module = missing(extra)
    if module is not None:
        raise MissingExtra(message(what, extra, module), name=module)
