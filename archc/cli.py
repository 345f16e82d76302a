"""The ``archc`` command: lint, summary, ir, schema, compile.

A thin layer over archc.check and archc.report. Imports happen inside the commands, so that
``archc --help`` is instant and lint/summary/ir never import torch (docs/usage.md has the
timings). Exit codes: 0 clean or warnings only, 1 errors in a spec, 2 usage errors,
unreadable files, an output compile cannot write, and a block library given to
summary/ir/compile (lint checks it: 0).
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from archc.check import Checked
    from archc.diagnostics import Diagnostic

# A file that cannot be read (E001), is not text (E002) or is too large (E004) is an input
# problem, like usage.
UNREADABLE = frozenset({"E001", "E002", "E004"})

MAX_BATCH = 10**9
"""The largest ``summary --batch``: byte totals stay exact and printable far beyond any real
batch, and a typo of hundreds of digits is a usage error rather than an overflow."""

INTERRUPTED = 130  # the shell's code for a command ended by SIGINT (128 + 2)


def _use_color(choice: str, stream: object) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


STDIN = "-"
"""The file argument that reads the spec from standard input (shown as ``<stdin>``)."""


def _stdin_spec() -> tuple[str | None, Diagnostic | None]:
    """The spec on stdin, decoded as strictly as a file: NUL or invalid UTF-8 is E002, not a
    replaced character. Past the size limit, the text as read (one byte over), so that
    check_source reports a spec too large (E004)."""
    from archc.files import MAX_SPEC_BYTES
    from archc.frontend import decode_spec

    data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        return data.decode("utf-8", errors="replace"), None
    return decode_spec(data, "<stdin>")


def _check(path: str, batch: int = 1, dtype: str = "fp32") -> Checked:
    from archc.check import Checked, check_file, check_source

    if path == STDIN:
        text, problem = _stdin_spec()
        if problem is not None or text is None:
            return Checked(file="<stdin>", graph=None, diagnostics=[problem] if problem else [])
        return check_source(text, "<stdin>", batch=batch, dtype=dtype)  # type: ignore[arg-type]
    missing = _no_such(path)
    if missing is not None:
        return Checked(file=path, graph=None, diagnostics=[missing])
    return check_file(_locate(path), batch=batch, dtype=dtype)  # type: ignore[arg-type]


def _no_such(path: str) -> Diagnostic | None:
    """E001 for a FILE that is neither a file nor a shipped spec's name (None otherwise)."""
    from archc.diagnostics import error, visible
    from archc.library import shipped
    from archc.spans import Span

    if path == STDIN or os.path.lexists(path) or shipped(path) is not None:
        return None
    span = Span(file=path, line=1, column=1, end_line=1, end_column=1)
    return error(
        "E001",
        f"`{visible(path)}`: no such file or shipped spec (`archc specs` lists the shipped ones)",
        span,
    )


def _spec_argument(command: str, path: str, output: str | None, color: str) -> str | None:
    """What compile, export and train give the API for FILE: spec text read from stdin for
    ``-`` (which needs ``-o``: there is no file name to derive one from), else the file or
    shipped spec. None, after the reason on stderr, when there is nothing to read."""
    if path == STDIN:
        if output is None and command != "train":
            print(
                f"archc {command}: the spec comes from stdin, so name the output with -o",
                file=sys.stderr,
            )
            return None
        text, problem = _stdin_spec()
        if problem is not None or text is None:
            _print_diagnostics([problem] if problem else [], {}, color, sys.stderr)
            return None
        return text if "\n" in text else text + "\n"  # never read as a spec's name
    missing = _no_such(path)
    if missing is not None:
        _print_diagnostics([missing], {}, color, sys.stderr)
        return None
    return _locate(path)


def _locate(path: str) -> str:
    """``path`` when it exists, else the shipped spec of that name (``torchvision/resnet50``),
    else ``path`` itself, whose E001 then says that it is missing."""
    from archc.library import shipped

    if os.path.lexists(path):
        return path
    found = shipped(path)
    return str(found) if found is not None else path


def _lacks(command: str, extra: str) -> bool:
    """True, after one line on stderr naming the extra to install, when ``extra``'s modules
    are missing (the light install has no torch): the command then exits 2."""
    from archc.extras import message, missing

    module = missing(extra)
    if module is not None:
        print(message(f"archc {command}", extra, module), file=sys.stderr)
    return module is not None


def _refused(exc: Any, args: argparse.Namespace, verb: str) -> int:
    """An ArchcError of the API: its diagnostics (exit 1, or 2 for an unreadable file), or
    for a block library, which has none, the line that says there is no network to ``verb``."""
    _print_diagnostics(exc.diagnostics, exc.sources, args.color, sys.stderr)
    if exc.library:
        return _library(args.file, exc.library, verb)
    return _exit_code(exc.diagnostics) or 1


def _exit_code(diagnostics: Sequence[Diagnostic]) -> int:
    if any(d.code in UNREADABLE for d in diagnostics):
        return 2
    return 1 if any(d.severity == "error" for d in diagnostics) else 0


def _print_diagnostics(
    diagnostics: Sequence[Diagnostic], sources: dict[str, str], color: str, stream: object
) -> None:
    from archc.diagnostics import render_text

    if diagnostics:
        print(render_text(diagnostics, sources, _use_color(color, stream)), file=stream)  # type: ignore[arg-type]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _library(path: str, blocks: Sequence[str], nothing_to: str) -> int:
    """A block library given to a command that needs a network: say so on stderr, exit 2 (a
    usage error: the file is fine, it is just not a network)."""
    from archc.diagnostics import visible

    print(
        f"{visible(path)}: a block library ({_plural(len(blocks), 'block')}: {', '.join(blocks)}): "
        f"nothing to {nothing_to}; import it from a network spec",
        file=sys.stderr,
    )
    return 2


# --- commands ---------------------------------------------------------------------------------


def _spec_files(paths: Sequence[str]) -> list[str | Diagnostic] | None:
    """Each path as given, a directory as the ``.arch`` files under it (sorted, hidden
    directories skipped), and an E001 for each directory under it that cannot be listed (which
    ``os.walk`` would skip in silence); None, after a line on stderr, when a directory holds
    neither."""
    from archc.diagnostics import error, visible
    from archc.spans import Span

    def unlistable(e: OSError) -> Diagnostic:
        where = str(e.filename)
        span = Span(file=where, line=1, column=1, end_line=1, end_column=1)
        return error("E001", f"cannot read `{where}`: {e.strerror or e}", span)

    files: list[str | Diagnostic] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found: list[str] = []
        problems: list[OSError] = []
        for root, dirs, names in os.walk(path, onerror=problems.append):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(root, n) for n in names if n.endswith(".arch")]
        if not found and not problems:
            print(f"archc lint: no .arch files under {visible(path)}", file=sys.stderr)
            return None
        files += [_linked(f, path) or f for f in sorted(found)]
        files += [unlistable(e) for e in problems]
    return files


def _linked(file: str, tree: str) -> Diagnostic | None:
    """E005 for a symbolic link met under ``tree`` that leads out of it or to a file that is
    not a ``.arch`` spec: such a file is never opened, so none of its text is printed."""
    from archc.diagnostics import error
    from archc.files import link_problem
    from archc.spans import Span

    if not os.path.islink(file):
        return None
    why = link_problem(file, [Path(tree)])
    if why is None:
        return None
    span = Span(file=file, line=1, column=1, end_line=1, end_column=1)
    return error("E005", f"`{file}` is not read: {why}", span)


def cmd_lint(args: argparse.Namespace) -> int:
    from archc.diagnostics import render_github, render_json

    files = _spec_files(args.files)
    if files is None:
        return 2
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    claims = held = expected = 0
    for path in files:
        if not isinstance(path, str):
            diagnostics.append(path)
            continue
        checked = _check(path)
        diagnostics += checked.diagnostics
        sources.update(checked.sources)
        claims += len(checked.claims)
        held += sum(c.ok for c in checked.claims)
        expected += len(checked.expected)
    if args.format == "json":
        print(render_json(diagnostics))
    elif args.format == "github":
        if diagnostics:
            print(render_github(diagnostics))
    else:
        if diagnostics:
            _print_diagnostics(diagnostics, sources, args.color, sys.stdout)
            print()
        errors = sum(d.severity == "error" for d in diagnostics)
        warnings = sum(d.severity == "warning" for d in diagnostics)
        checked_claims = f", {held} of {_plural(claims, 'claim')} hold" if claims else ""
        if expected:
            checked_claims += f", {_plural(expected, 'expected finding')} made"
        print(
            f"{_plural(len(files), 'file')} checked: {_plural(errors, 'error')}, "
            f"{_plural(warnings, 'warning')}{checked_claims}"
        )
    return _exit_code(diagnostics)


def cmd_summary(args: argparse.Namespace) -> int:
    from archc import report

    checked = _check(args.file, args.batch, args.dtype)
    code = _exit_code(checked.diagnostics)
    # Errors and warnings go to stderr, so stdout holds only the table (or the JSON object).
    _print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
    if checked.library:
        return _library(args.file, checked.blocks, "summarise")
    # A failed claim (a wrong declared shape or number) leaves the network and its accounting
    # standing: the table still prints, so the author sees the true numbers beside the error.
    if checked.accounting is None or (code and not checked.only_claims_fail):
        return code or 1
    if args.format == "json":
        print(report.render_json(checked))
    elif args.format == "markdown":
        print(report.render_markdown(checked, args.depth))
    else:
        print(report.render_text(checked, args.depth))
    return code


def cmd_graph(args: argparse.Namespace) -> int:
    """A picture of the network: Mermaid or DOT text, or SVG/PNG drawn by Graphviz."""
    import shutil

    if args.format == "png" and args.output is None:
        print("archc graph: --format png is binary; write it to a file with -o", file=sys.stderr)
        return 2
    if args.format != "mermaid":
        try:
            import pydot  # noqa: F401
        except ImportError:
            print(
                f"archc graph: --format {args.format} needs pydot: pip install 'archc[graph]'",
                file=sys.stderr,
            )
            return 2
    if args.format in ("svg", "png") and shutil.which("dot") is None:
        print(
            f"archc graph: --format {args.format} needs Graphviz's `dot` program, which is not "
            "installed (apt-get install graphviz, brew install graphviz); --format mermaid or "
            "dot need nothing more",
            file=sys.stderr,
        )
        return 2
    from archc.pictures import dot_graph, mermaid, overview_depth, picture

    checked = _check(args.file)
    code = _exit_code(checked.diagnostics)
    _print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
    if checked.library:
        return _library(args.file, checked.blocks, "draw")
    if checked.accounting is None or (code and not checked.only_claims_fail):
        return code or 1
    depth = None if args.depth == "all" else args.depth
    if args.depth is None:
        overview = overview_depth(checked)
        if overview is not None:
            depth, boxes = overview
            layers = len(checked.graph.nodes) if checked.graph is not None else 0
            print(
                f"archc graph: {_plural(layers, 'layer')} drawn as {boxes} boxes "
                f"(--depth {depth}); --depth all draws every layer",
                file=sys.stderr,
            )
    pic = picture(checked, depth, args.costs)
    drawing: str | bytes
    if args.format == "mermaid":
        drawing = mermaid(pic)
    elif args.format == "dot":
        drawing = dot_graph(pic).to_string()
    else:
        drawing = dot_graph(pic).create(format=args.format)
    if args.output is None:
        print(drawing if isinstance(drawing, str) else drawing.decode("utf-8"))
        return code
    from pathlib import Path

    from archc.diagnostics import visible
    from archc.files import write_output

    try:
        write_output(Path(args.output), drawing, [args.file, *checked.sources])
    except OSError as exc:
        target = visible(str(exc.filename or args.output))
        print(f"archc graph: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return code


def cmd_specs(args: argparse.Namespace) -> int:
    """The shipped spec library, one line each: name, network, params, MACs."""
    from archc.check import check_file
    from archc.library import SPECS_DIR, shipped_names
    from archc.numbers import fmt_count

    names = shipped_names()
    width = max(len(n) for n in names)
    for name in names:
        checked = check_file(SPECS_DIR / f"{name}.arch")
        acc = checked.accounting
        if checked.library:
            what = f"block library: {', '.join(checked.blocks)}"
        elif acc is not None and checked.graph is not None:
            t = acc.totals
            what = (
                f"{checked.graph.name}: {fmt_count(t.params)} params, "
                f"{fmt_count(t.macs)} MACs per image"
            )
        else:
            what = "has errors: run `archc lint` on it"
        print(f"{name.ljust(width)}  {what}")
    print(f"\n(in {SPECS_DIR}; use a name where a FILE goes: archc summary torchvision/resnet50)")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from archc.completion import script

    print(script(args.shell, build_parser()))
    return 0


def cmd_lsp(args: argparse.Namespace) -> int:
    from archc.lsp import serve

    # The server runs until the editor closes it: the collector that main() turns off for a
    # short command is needed again, and the protocol speaks on the real binary streams.
    gc.enable()
    out = sys.stdout.stream if isinstance(sys.stdout, _Output) else sys.stdout
    return serve(sys.stdin.buffer, out.buffer)


def cmd_export(args: argparse.Namespace) -> int:
    """The spec's module as ONNX, checked against onnxruntime when it is installed."""
    from pathlib import Path

    from archc.diagnostics import ArchcError, visible

    if _lacks("export", "onnx"):
        return 2
    from archc.export import ExportError, export_onnx, report
    from archc.files import writes_stdout
    from archc.parameters import SettingError
    from archc.training.checkpoint import CheckpointError

    source = _spec_argument("export", args.file, args.output, args.color)
    if source is None:
        return 2
    target = Path(args.output) if args.output else Path(Path(source).stem + ".onnx")
    sets = _settings(args.set, "export")
    if sets is None:
        return 2
    weights = Path(args.weights) if args.weights else None
    inputs = ([] if args.file == STDIN else [source]) + ([str(weights)] if weights else [])
    try:
        result = export_onnx(source, target, inputs, opset=args.opset, weights=weights, sets=sets)
    except ArchcError as exc:
        return _refused(exc, args, "export")
    except ExportError as exc:
        print(f"archc export: {visible(str(exc))}", file=sys.stderr)
        return 2
    except (CheckpointError, SettingError) as exc:
        print(f"archc export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = visible(str(exc.filename or target))
        print(f"archc export: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    text, agreed = report(result)
    # With the file on stdout (-o -, -o /dev/stdout), the report goes to stderr.
    print(text, file=sys.stderr if writes_stdout(target) else sys.stdout)
    return 0 if agreed else 1


def cmd_ir(args: argparse.Namespace) -> int:
    from archc.diagnostics import has_errors
    from archc.frontend import parse_spec, read_spec

    if args.file == STDIN:
        text, problem = _stdin_spec()
        if problem is not None or text is None:
            _print_diagnostics([problem] if problem else [], {}, args.color, sys.stderr)
            return 2
        front = parse_spec(text, "<stdin>")
    else:
        missing = _no_such(args.file)
        if missing is not None:
            _print_diagnostics([missing], {}, args.color, sys.stderr)
            return 2
        front = read_spec(_locate(args.file))
    if front.library:
        _print_diagnostics(front.diagnostics, front.sources, args.color, sys.stderr)
        return _library(args.file, front.blocks, "print")
    if front.graph is None or has_errors(front.diagnostics):
        _print_diagnostics(front.diagnostics, front.sources, args.color, sys.stderr)
        return _exit_code(front.diagnostics) or 1
    _print_diagnostics(front.diagnostics, front.sources, args.color, sys.stderr)
    print(front.graph.to_json())
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from archc.ir import json_schema

    print(json_schema())
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    if _lacks("compile", "torch"):
        return 2
    from archc.diagnostics import ArchcError
    from archc.progress import stages

    if args.file == STDIN and args.output is None:
        print(
            "archc compile: the spec comes from stdin, so name the output with -o", file=sys.stderr
        )
        return 2
    checked = _check(args.file)
    source = "<stdin>" if args.file == STDIN else _locate(args.file)
    allowed = args.allow_claims and checked.only_claims_fail
    if not (checked.ok or allowed):
        _print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
        if checked.library:
            return _library(args.file, checked.blocks, "compile")
        return _exit_code(checked.diagnostics) or 1
    # Warnings, and the failed claims that --allow-claims lets through, are still shown.
    _print_diagnostics(checked.diagnostics, checked.sources, args.color, sys.stderr)
    weights = _compile_read_weights(checked, args)  # a bad checkpoint: no source written either
    if weights == 1:
        return 1
    try:
        # Seconds on a terminal, most of them torch's import: say which part is running.
        with stages("archc compile", ("importing torch", "generating")) as step:
            step("importing torch")
            # The backend imports torch; only this command pays for it.
            import torch  # noqa: F401

            from archc.backends.source import write_source

            step("generating")
            message = write_source(checked, source, args.output, args.fused)
        from archc.files import writes_stdout

        if writes_stdout(args.output):
            print(message, file=sys.stderr)  # stdout holds the source
            return 0
    except OSError as exc:
        from archc.diagnostics import visible

        target = visible(str(exc.filename or args.output))
        print(f"archc compile: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ArchcError as exc:  # a backend's own check (E501) on a graph the front end passed
        _print_diagnostics(exc.diagnostics, exc.sources or checked.sources, args.color, sys.stderr)
        return 1
    print(message)
    if isinstance(weights, bytes):
        return _compile_weights(checked, args, weights)
    return 0


def _compile_read_weights(checked: Checked, args: argparse.Namespace) -> bytes | int | None:
    """``--weights``' checked state_dict, None without --weights, 1 after the one line that
    says why the checkpoint does not fit."""
    if args.weights is None:
        return None
    import torch  # noqa: F401

    from archc.training.checkpoint import CheckpointError
    from archc.training.weights import checked_weights

    try:
        return checked_weights(checked, Path(args.weights))
    except CheckpointError as exc:
        print(f"archc compile: {exc}", file=sys.stderr)
        return 1


def _compile_weights(checked: Checked, args: argparse.Namespace, data: bytes) -> int:
    """``archc compile --weights``: the weights beside the source just written."""
    from archc.diagnostics import visible
    from archc.files import output_path
    from archc.training.checkpoint import CheckpointError
    from archc.training.weights import write_beside

    source = output_path(args.output, Path(_locate(args.file)).stem)
    try:
        print(write_beside(checked, source, Path(args.weights), [_locate(args.file)], data))
    except CheckpointError as exc:
        print(f"archc compile: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        target = visible(str(exc.filename or source.with_suffix(".pt")))
        print(f"archc compile: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def _training_errors() -> tuple[type[Exception], ...]:
    """The exceptions of archc.training that are a refusal said in one line."""
    from archc.parameters import SettingError
    from archc.training.checkpoint import CheckpointError
    from archc.training.data import DataError
    from archc.training.rundir import RunError
    from archc.training.setup import TrainingError

    return (DataError, CheckpointError, TrainingError, RunError, SettingError)


def _settings(items: list[str] | None, command: str) -> dict[str, str] | None:
    from archc.parameters import SettingError, parse

    try:
        return parse(items or [])
    except SettingError as e:
        print(f"archc {command}: {e}", file=sys.stderr)
        return None


def cmd_train(args: argparse.Namespace) -> int:
    # torch and torchvision: only this command pays for them.
    if _lacks("train", "train"):
        return 2
    from archc.diagnostics import ArchcError
    from archc.training.loop import Options, train

    sets = _settings(args.set, "train")
    if sets is None:
        return 2
    source = _spec_argument("train", args.file, None, args.color)
    if source is None:
        return 2
    options = Options(
        data=Path(args.data),
        out=Path(args.out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        resume=args.resume,
        overwrite=args.overwrite,
        workers=args.workers,
        seed=args.seed,
        init=args.init,
        sets=sets,
        log_every=args.log_every,
    )
    try:
        train(source, options)
    except ArchcError as exc:
        return _refused(exc, args, "train")
    except _training_errors() as exc:
        print(f"archc train: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the data or the run directory went away under the run
        where = f" `{exc.filename}`" if exc.filename else ""
        print(f"archc train: cannot read or write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    if _lacks("eval", "train"):  # the data loader is torchvision's, as for train
        return 2
    from archc.diagnostics import ArchcError
    from archc.training.evaluate import evaluate

    sets = _settings(args.set, "eval")
    if sets is None:
        return 2
    try:
        numbers = evaluate(
            _locate(args.file),
            Path(args.weights),
            Path(args.data),
            split=args.split,
            sets=sets,
            batch_size=args.batch_size,
            workers=args.workers,
        )
    except ArchcError as exc:
        return _refused(exc, args, "evaluate")
    except _training_errors() as exc:
        print(f"archc eval: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(numbers))
        return 0
    skipped = f", {numbers['skipped']} unreadable skipped" if numbers["skipped"] else ""
    print(
        f"{numbers['split']}: {numbers['images']} images{skipped}, loss {numbers['val_loss']:.4f}, "
        f"top-1 {numbers['val_acc1']:.2f}%, top-5 {numbers['val_acc5']:.2f}%"
    )
    return 0


def _non_negative_int(text: str) -> int:
    if text.strip() == "0":
        return 0
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_BATCH:,}, got {text[:20]!r}"
        ) from None


def _seed(text: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 19 or int(text) >= 2**63:
        shown = text if len(text) <= 24 else text[:23] + "…"
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to 2**63 - 1, got {shown!r}"
        )
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


# --- arguments --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from archc import __version__

    parser = argparse.ArgumentParser(
        prog="archc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A compiler for CNN architecture specs written as lecture and paper tables.",
        epilog=(
            "examples:\n"
            "  archc lint specs/*.arch                 check shapes and claims\n"
            "  archc summary specs/vgg16.arch          the lecture table: memory, params, MACs\n"
            "  archc compile specs/resnet50.arch -o resnet50.py\n\n"
            "exit codes: 0 clean or warnings only, 1 errors, 2 usage errors, unreadable files,\n"
            "            or a block library (no network) given to a command that needs one,\n"
            "            130 stopped by Ctrl-C"
        ),
    )
    parser.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def color(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--color",
            choices=("auto", "always", "never"),
            default="auto",
            help="colour diagnostics: auto = only on a terminal, and not when NO_COLOR is set "
            "(default: auto)",
        )

    def set_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            action="append",
            metavar="NAME=VALUE",
            help="resize the network: classes=N (the class-score layer's outputs), input=N, "
            "HxW or HxWxC (repeatable)",
        )

    lint = sub.add_parser(
        "lint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="check specs: syntax, shapes, declared shapes and memory/params claims",
        description=(
            "Check one or more spec files: syntax, blocks and names, shape inference, declared\n"
            "shapes ([55x55x96]) and memory:/params: claims at the precision printed.\n"
            "A directory stands for the .arch files under it.\n\n"
            "exit codes: 0 no errors (warnings allowed), 1 an error in any file,\n"
            "            2 a usage error, a file that cannot be read (E001)\n"
            "            or is not text (E002), or a directory without .arch files"
        ),
    )
    lint.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="spec files (.arch), directories of them, shipped specs by name, or - for stdin",
    )
    lint.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text: rustc-style with source lines; json: one list of every diagnostic of every "
        "file; github: workflow annotations (default: text)",
    )
    color(lint)
    lint.set_defaults(run=cmd_lint)

    summary = sub.add_parser(
        "summary",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="print the lecture table: output shapes, memory, params, MACs, receptive field",
        description=(
            "Print one spec's table: per layer the output shape (HxWxC), memory (activation\n"
            "values it adds), params, multiply-accumulates, receptive field and fused group;\n"
            "then totals (params, MACs, activations, forward and training bytes), the fusion\n"
            "plan and the claims checked. docs/accounting.md defines every number.\n\n"
            "Diagnostics go to stderr. A failed claim (E302 declared shape, E4xx numbers)\n"
            "still prints the table, and exits 1; any other error prints nothing to stdout\n"
            "and exits 1."
        ),
    )
    summary.add_argument(
        "file", metavar="FILE", help="a spec file (.arch), a shipped spec's name, or - for stdin"
    )
    summary.add_argument(
        "--depth",
        type=_positive_int,
        default=None,
        metavar="N",
        help="roll layers up into the first N parts of their dotted names: 1 = stages, "
        "2 = blocks, as torchinfo's depth (text and markdown; default: every layer)",
    )
    summary.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for a terminal, markdown to paste, json for programs (default: text)",
    )
    summary.add_argument(
        "--batch",
        type=_positive_int,
        default=1,
        metavar="N",
        help=f"batch size for the byte totals, 1 to {MAX_BATCH:,} (default: 1)",
    )
    summary.add_argument(
        "--dtype",
        choices=("fp32", "fp16", "bf16"),
        default="fp32",
        help="element type for the byte totals (default: fp32)",
    )
    color(summary)
    summary.set_defaults(run=cmd_summary)

    ir = sub.add_parser(
        "ir",
        help="print the validated IR graph as JSON",
        description="Print the IR graph the front end builds (blocks expanded, defaults applied) "
        "as JSON. Exit 1 with diagnostics on stderr if the spec has errors.",
    )
    ir.add_argument(
        "file", metavar="FILE", help="a spec file (.arch), a shipped spec's name, or - for stdin"
    )
    color(ir)
    ir.set_defaults(run=cmd_ir)

    schema = sub.add_parser(
        "schema",
        help="print the JSON schema of the IR",
        description="Print the JSON schema of the IR graph (what `archc ir` prints).",
    )
    schema.set_defaults(run=cmd_schema)

    graph = sub.add_parser(
        "graph",
        help="draw the network: Mermaid, DOT, SVG or PNG",
        description="Draw the network as a graph: each layer with its output shape, stages and "
        "blocks as clusters, branches and residuals as edges, fused groups shaded. mermaid "
        "pastes into GitHub markdown; dot, svg and png need pydot (archc[graph]); svg and png "
        "also Graphviz's dot program. A failed claim still draws (exit 1).",
    )
    graph.add_argument(
        "file", metavar="FILE", help="a spec file (.arch), a shipped spec's name, or - for stdin"
    )
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg", "png"),
        default="mermaid",
        help="mermaid (default), dot, or svg/png drawn by Graphviz",
    )
    graph.add_argument(
        "--depth",
        type=_depth,
        default=None,
        metavar="N|all",
        help="collapse everything below the first N parts of the names (1: one node per stage); "
        "all: every layer (default: every layer up to 50, else the deepest N that fits in 50 "
        "boxes, said on stderr)",
    )
    graph.add_argument("--costs", action="store_true", help="add params and MACs to each node")
    graph.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default=None,
        help="write here (default: stdout; - is stdout too). A FIFO or a device is written to, "
        "never replaced; the spec and the files it imports are never overwritten",
    )
    color(graph)
    graph.set_defaults(run=cmd_graph)

    specs = sub.add_parser(
        "specs",
        help="list the shipped specs and block libraries",
        description="List the specs shipped with archc, one line each (params, MACs). Any "
        "command that takes FILE takes their names: archc summary torchvision/resnet50.",
    )
    specs.set_defaults(run=cmd_specs)

    completion = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description='Print a completion script for SHELL. bash: eval "$(archc completion '
        'bash)" in ~/.bashrc; zsh: the same in ~/.zshrc; fish: archc completion fish > '
        "~/.config/fish/completions/archc.fish",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), metavar="SHELL")
    completion.set_defaults(run=cmd_completion)

    export = sub.add_parser(
        "export",
        help="export the model to ONNX, checked against onnxruntime",
        description="Export the spec's module (eval mode, dynamic batch) to ONNX with "
        "torch.onnx.export(dynamo=True), nodes named after the spec's layers, and check "
        "onnxruntime's output against the module's when onnxruntime is installed (exit 1 if "
        "they differ). Imports torch; needs archc[onnx].",
    )
    export.add_argument(
        "file",
        metavar="FILE",
        help="a spec file (.arch), a shipped spec's name, or - for stdin (then -o is needed)",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default=None,
        help="default: FILE's stem + .onnx; - (or /dev/stdout) writes the file to stdout and "
        "the report to stderr. Never the spec or a file it imports",
    )
    export.add_argument(
        "--opset",
        type=_positive_int,
        default=None,
        metavar="N",
        help="ONNX opset (default: torch's, 18); one that torch's exporter cannot convert the "
        "model to (below 17 for most models) is refused, and nothing is written",
    )
    export.add_argument(
        "--weights",
        metavar="CKPT",
        help="export these trained weights: last.pt or best.pt of archc train (their averaged "
        "weights when the recipe keeps them) or a state_dict; onnxruntime is checked against "
        "the module holding them",
    )
    set_option(export)
    color(export)
    export.set_defaults(run=cmd_export)

    lsp = sub.add_parser(
        "lsp",
        help="run the language server (stdio) for editors",
        description="Run archc's language server on stdin/stdout: lint diagnostics as you "
        "type, hover with shapes and costs, go to a block's definition, completion, outline. "
        "Needs nothing beyond the light install; docs/editors.md shows the editor setup. "
        "Exit 0 after the editor's shutdown and exit, 130 on Ctrl-C.",
    )
    lsp.set_defaults(run=cmd_lsp)

    comp = sub.add_parser(
        "compile",
        help="generate a standalone PyTorch module (.py)",
        description="Compile a spec to standalone PyTorch source. Imports torch. "
        "Exit 1 with diagnostics on stderr if the spec has errors.",
    )
    comp.add_argument(
        "file",
        metavar="FILE",
        help="a spec file (.arch), a shipped spec's name, or - for stdin (then -o is needed)",
    )
    comp.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default=None,
        help="the file to write, or an existing directory to write FILE's stem + .py in "
        "(default: FILE's stem + .py in the current directory); - writes to stdout. Never the "
        "spec or a file it imports; a FIFO or a device is written to, never replaced",
    )
    comp.add_argument(
        "--fused",
        action="store_true",
        # The activations are the registry's with a kernel_activation (tests/test_review_fixes.py
        # checks), written out so that `archc --help` imports no op registry.
        help="also write fused(model): the inference variant whose conv -> BN -> (+ residual) -> "
        "activation groups are one op each, for ReLU, SiLU, ReLU6, leaky ReLU, hardswish and "
        "hardsigmoid (archc.fuse; the file then needs archc to run it)",
    )
    comp.add_argument(
        "--allow-claims",
        action="store_true",
        help="compile even when claims fail (a declared shape, a memory: or params: number); "
        "other errors still stop it",
    )
    comp.add_argument(
        "--weights",
        metavar="CKPT",
        help="also write trained weights beside the source (OUT's stem + .pt, a plain "
        "state_dict checked against the module): last.pt or best.pt of archc train, or a "
        "state_dict",
    )
    color(comp)
    comp.set_defaults(run=cmd_compile)

    _training_parsers(sub, color, set_option)
    return parser


def _training_parsers(sub: argparse._SubParsersAction, color: Any, set_option: Any) -> None:
    """``archc train`` and ``archc eval``."""
    tr = sub.add_parser(
        "train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train the network on an ImageFolder tree with the spec's recipe",
        description=(
            "Train a spec's network with its `train:` recipe (or printed defaults) on\n"
            "DIR/train and DIR/val (one folder per class). Writes RUNDIR/metrics.jsonl,\n"
            "RUNDIR/last.pt each epoch and RUNDIR/best.pt when the recipe's metric improves.\n"
            "A RUNDIR that holds a run is continued with --resume or replaced with\n"
            "--overwrite, never replaced otherwise. Under `torchrun --nproc-per-node N` it runs\n"
            "DistributedDataParallel. Imports torch and torchvision.\n\n"
            "exit codes: 0 trained (or the run was already finished), 1 refused (the message\n"
            "says why), 2 usage errors, 130 stopped by Ctrl-C (resume with --resume)"
        ),
    )
    tr.add_argument(
        "file",
        metavar="SPEC",
        help="a spec file (.arch), a shipped spec's name, or - for stdin (one process only)",
    )
    tr.add_argument("--data", metavar="DIR", required=True, help="the ImageFolder tree")
    tr.add_argument("--out", metavar="RUNDIR", default="run", help="the run directory (run)")
    tr.add_argument("--epochs", type=_positive_int, help="override the recipe's epochs")
    tr.add_argument(
        "--batch-size", type=_positive_int, help="override the recipe's (global) batch size"
    )
    tr.add_argument("--lr", type=_positive_float, help="override the recipe's learning rate")
    again = tr.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUNDIR from last.pt (same network and recipe only)",
    )
    again.add_argument(
        "--overwrite", action="store_true", help="replace the run in RUNDIR (its metrics and .pt)"
    )
    again.add_argument(
        "--init",
        metavar="CKPT",
        help="start from these weights: an archc checkpoint, a state_dict, or `torchvision` "
        "(a shipped torchvision spec, weights in torch's cache); the class-score layer is "
        "re-initialised when the class count differs",
    )
    set_option(tr)
    tr.add_argument(
        "--workers", type=_non_negative_int, default=2, metavar="N",
        help="data-loading processes (2)",
    )  # fmt: skip
    tr.add_argument(
        "--seed", type=_seed, default=0, help="the seed of weights and shuffling, 0 to 2**63-1 (0)"
    )
    tr.add_argument(
        "--log-every",
        type=_non_negative_int,
        default=50,
        metavar="N",
        help="off a terminal, a progress line every N steps (50; 0: none)",
    )
    color(tr)
    tr.set_defaults(run=cmd_train)

    ev = sub.add_parser(
        "eval",
        help="evaluate trained weights: loss, top-1, top-5 on a split",
        description="Measure trained weights on DIR/SPLIT (val by default) as archc train "
        "validates: the recipe's validation transform and loss; prints loss, top-1 and top-5. "
        "Imports torch and torchvision.",
    )
    ev.add_argument("file", metavar="SPEC", help="a spec file (.arch) or a shipped spec's name")
    ev.add_argument(
        "--weights", metavar="CKPT", required=True,
        help="last.pt, best.pt or a state_dict (a checkpoint's averaged weights when it has them)",
    )  # fmt: skip
    ev.add_argument("--data", metavar="DIR", required=True, help="the ImageFolder tree")
    ev.add_argument("--split", default="val", help="the folder of DIR to measure (val)")
    set_option(ev)
    ev.add_argument("--batch-size", type=_positive_int, help="default: the recipe's")
    ev.add_argument(
        "--workers", type=_non_negative_int, default=2, metavar="N",
        help="data-loading processes (2)",
    )  # fmt: skip
    ev.add_argument("--format", choices=("text", "json"), default="text", help="(text)")
    color(ev)
    ev.set_defaults(run=cmd_eval)


def _depth(text: str) -> int | str:
    return "all" if text == "all" else _positive_int(text)


def _positive_int(text: str) -> int:
    shown = text if len(text) <= 20 else text[:19] + "…"
    # Checked as text first: int() of thousands of digits is slow or refused outright.
    if len(text.strip().lstrip("+-").lstrip("0")) > len(str(MAX_BATCH)):
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BATCH:,}, got {shown!r}")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown!r} is not an integer") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH:,}, got {value}")
    return value


# What the diagnostics and tables print beyond ASCII, for a stream that cannot encode it
# (PYTHONIOENCODING=ascii, a POSIX locale); anything else becomes a backslash escape.
_ASCII = str.maketrans(
    {
        "−": "-",
        "→": "->",
        "·": "*",
        "×": "x",
        "≤": "<=",
        "≥": ">=",
        "≈": "~",
        "…": "...",
        "—": "-",
        "–": "-",
        "²": "^2",
    }
)


class _Output(io.TextIOBase):
    """A command's stdout or stderr: falls back to ASCII where the stream cannot encode archc's
    arithmetic signs, and survives a reader that goes away (``archc lint x | head -1``): the
    rest of the output is dropped, and the command still returns its real exit code."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "−→·≤".encode(encoding)
            self.ascii = False
        except (UnicodeEncodeError, LookupError):
            self.ascii = True
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="backslashreplace")

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text.translate(_ASCII) if self.ascii else text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def _gone(self) -> None:
        self.broken = True
        # Point the descriptor at devnull, so that the interpreter's final flush of what is
        # still buffered does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    # Pydantic looks for plugins (observability hooks archc has no use for) by scanning the
    # metadata of every installed distribution when the first model class is built: ~80 ms of
    # each `archc lint` in an environment with torch. Set PYDANTIC_DISABLE_PLUGINS= (empty) to
    # keep them.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # A command is a short run that makes almost no reference cycles (about a dozen objects per
    # spec checked), while the cycle collector would scan the ~10^5 objects that importing
    # pydantic and building the models leave behind, ~30 ms of a ~0.5 s lint. Off for the
    # command; back on afterwards for callers of main() in a longer-lived process.
    collecting = gc.isenabled()
    gc.disable()
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Output(sys.stdout), _Output(sys.stderr)
    try:
        parser = build_parser()
        typo = _misspelt_command(parser, list(sys.argv[1:] if argv is None else argv))
        if typo is not None:
            print(typo, file=sys.stderr)
            return 2
        args = parser.parse_args(argv)
        return int(args.run(args))
    except KeyboardInterrupt:
        # Ctrl-C is the user's choice, not a failure to explain: no traceback.
        return INTERRUPTED
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        if collecting:
            gc.enable()


def _misspelt_command(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """`archc sumary`: the nearest command, where argparse would list all twelve."""
    from archc.suggest import did_you_mean

    if not words or words[0].startswith("-"):
        return None
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if words[0] in commands:
        return None
    near = did_you_mean(words[0], sorted(commands))
    return f"archc: unknown command `{words[0]}`{near}" if near else None


def run() -> NoReturn:
    """The ``archc`` program (the console script and ``python -m archc``): `main`, then exit.

    At exit the interpreter runs one last cycle collection over every object still alive: the
    ~10^5 that importing pydantic and lark and building the models leave, ~30 ms of the ~0.2 s
    that `archc lint` takes on ResNet-152 (benchmarks/bench_lint.py). The process is ending and
    the operating system takes its memory back, so those objects are frozen (`gc.freeze`: left
    out of every later collection) instead; objects that their reference counts free are freed
    as before, and atexit handlers and stream flushing run as usual. Only the program does this:
    `main` leaves the collector as it found it for callers in a longer-lived process.
    """
    code = main()
    gc.freeze()
    raise SystemExit(code)
