"""``archc completion``, its arguments and its handler: print a shell completion script."""

from __future__ import annotations

import argparse


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    completion = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description='Print a completion script for SHELL. bash: eval "$(archc completion '
        'bash)" in ~/.bashrc; zsh: the same in ~/.zshrc; fish: archc completion fish > '
        "~/.config/fish/completions/archc.fish",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), metavar="SHELL")
    return completion


def handle(args: argparse.Namespace) -> int:
    from archc.cli import build_parser
    from archc.completion import script

    print(script(args.shell, build_parser()))
    return 0
