"""``archc schema``, its arguments and its handler: print the JSON schema of the IR."""

from __future__ import annotations

import argparse


def arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    schema = sub.add_parser(
        "schema",
        help="print the JSON schema of the IR",
        description="Print the JSON schema of the IR graph (what `archc ir` prints).",
    )
    return schema


def handle(args: argparse.Namespace) -> int:
    from archc.ir import json_schema

    print(json_schema())
    return 0
