"""Capture what a redesign must not change: for every shipped spec its IR JSON (spans included),
its summary JSON and its diagnostics; for every ```arch example of docs/language.md its IR JSON;
and a digest of each spec's generated source.

Run from the repository root to (re)capture: ``python tests/golden/capture.py``. The files it
writes were first captured at commit ba8e1de, before the op registry replaced the per-stage
tables, and tests/test_golden.py checks that every stage still produces them. A deliberate change
of meaning re-captures them in the commit that makes it, saying why.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def shipped_specs() -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in (ROOT / "specs").rglob("*.arch"))


def doc_examples() -> list[str]:
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    return re.findall(r"```arch\n(.*?)```", doc, re.S)


def portable(value: object) -> object:
    """``value`` with this checkout's absolute path written ``<root>/`` (imported block files
    are named by absolute path), so the golden files hold wherever the repository is cloned."""
    return json.loads(json.dumps(value).replace(json.dumps(str(ROOT) + "/")[1:-1], "<root>/"))


def snapshot(spec: Path) -> dict:
    from archc.backends.source import generate_source
    from archc.check import check_file
    from archc.report import render_json

    checked = check_file(spec)
    diags = [
        {
            "code": d.code,
            "severity": d.severity,
            "line": d.span.line,
            "column": d.span.column,
            "message": d.message,
        }
        for d in checked.diagnostics
    ]
    out: dict = {"diagnostics": portable(diags), "library": checked.library}
    if checked.ok:
        from archc.frontend import read_spec

        out["ir"] = portable(json.loads(read_spec(spec).graph.to_json()))
        out["summary"] = portable(json.loads(render_json(checked)))
        out["source_sha256"] = hashlib.sha256(generate_source(checked).encode()).hexdigest()
    return out


def example_snapshot(text: str) -> dict:
    from archc.frontend import parse_spec

    result = parse_spec(text, "example.arch")
    return portable(json.loads(result.graph.to_json())) if result.graph else {}


def main() -> None:
    import os

    os.chdir(ROOT)
    data = {str(p): snapshot(p) for p in shipped_specs()}
    examples = [example_snapshot(t) for t in doc_examples()]
    # One JSON value per line: compact, and a change shows as the line of the spec it touches.
    lines = [json.dumps({"spec": k, **v}, sort_keys=True) for k, v in data.items()]
    texts = doc_examples()
    lines += [json.dumps({"example": t, "ir": v}, sort_keys=True) for t, v in zip(texts, examples)]
    (HERE / "golden.jsonl").write_text("\n".join(lines) + "\n")
    print(f"captured {len(data)} specs and {len(examples)} examples", file=sys.stderr)


if __name__ == "__main__":
    main()
