"""The ``archc`` commands, one module each: its arguments (``arguments(sub)``, which adds its
subparser) and its handler (``handle(args)``, which returns the exit code).

`COMMANDS` is the one list that `archc.cli.build_parser` registers, in the order ``archc
--help`` lists them. A command module imports only the standard library and
`archc.commands.common` at its top; the rest of archc is imported inside its handler, so that
``archc --help`` is instant and lint/summary/ir/graph/lsp never import torch.
"""

from __future__ import annotations

COMMANDS = (
    "lint",
    "summary",
    "ir",
    "schema",
    "graph",
    "specs",
    "completion",
    "export",
    "lsp",
    "compile",
    "train",
    "eval",
)
"""The command modules under archc.commands, named as the commands are."""
