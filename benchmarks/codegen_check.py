"""Codegen check of archc's fused-conv kernels for sm_90, with no GPU: compile every tile config
the autotuner can offer for a representative set of layers, read the machine code, and compare
it with the committed baseline of this Triton version (``benchmarks/codegen/``).

    python3 benchmarks/codegen_check.py                  # full sweep, against the baseline
    python3 benchmarks/codegen_check.py --fast           # the representative subset (a quick test)
    python3 benchmarks/codegen_check.py --update         # rewrite this Triton's baseline
    python3 benchmarks/codegen_check.py --json FILE      # also write the measured rows

Layers: every distinct convolution of torchvision's resnet50 (its stem is also resnet18's),
vgg16 and alexnet, at batch 256 (gpu_check's timing batch), channels_last, bf16, +residual where
a ResNet block adds one. Per layer, the configs are those the autotuner keeps after its pruning,
plus the one small problems get. A compile is specialised as a launch would be
(``inspect_kernels.build_source``); layers whose specialisation is the same share one compile.

Checked per (layer, config), exit 1 on any failure:

* always: shared memory within the 227 KB a CTA may have; ``wgmma`` present; 16-byte
  ``cp.async`` present; no 64-bit division; no spill in a config the baseline does not have;
* against the baseline: spill bytes, integer SASS instructions per MMA in the main loop, integer
  divisions in the main loop (PTX) and CTAs per SM no worse.

Results are cached per (Triton version, kernel source hash, specialisation, config) in
``$ARCHC_CODEGEN_CACHE`` (default ``~/.cache/archc/codegen``); ``--no-cache`` recompiles.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # must compile, not interpret
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import inspect_kernels as ik  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

BASELINES = HERE / "codegen"
BATCH = 256
NETS = ("resnet50", "vgg16", "alexnet")
# The fast subset: the main config of each kind of compile (flat stem, padded 3x3 on the conv
# kernel, 1x1 GEMM with a residual), by (layer, config).
FAST = (
    ("3->64 7x7 s2 p3 @224", "128x64x32 w4 s4"),
    ("128->128 3x3 s1 p1 @28", "128x128x64 w4 s3"),
    ("64->256 1x1 s1 p0 @56 +res", "128x128x64 w8 s3"),
)
# Part of every cache key: bump when what is measured changes.
MEASURES = 3


def layer_name(g: dict) -> str:
    return f"{g['C']}->{g['K']} {g['R']}x{g['S']} s{g['stride']} p{g['pad']} @{g['H']}" + (
        " +res" if g["residual"] else ""
    )


def layers(nets=NETS) -> list[dict]:
    """Distinct convolutions of the networks (shapes from forward hooks on the meta device)."""
    import torch
    import torchvision

    found: dict[str, dict] = {}
    for net in nets:
        with torch.device("meta"):
            model = getattr(torchvision.models, net)(weights=None).eval()
        hooks = []
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Conv2d):

                def hook(m, inputs, _out, name=name, net=net):
                    g = dict(
                        C=m.in_channels, K=m.out_channels, R=m.kernel_size[0],
                        S=m.kernel_size[1], stride=m.stride[0], pad=m.padding[0],
                        H=inputs[0].shape[2], residual=net.startswith("resnet")
                        and name.endswith("conv3"),
                    )  # fmt: skip
                    entry = found.setdefault(layer_name(g), {**g, "nets": []})
                    if net not in entry["nets"]:
                        entry["nets"].append(net)

                hooks.append(mod.register_forward_hook(hook))
        with torch.no_grad():
            model(torch.empty(1, 3, 224, 224, device="meta"))
        for h in hooks:
            h.remove()
    return [{"name": k, **v} for k, v in found.items()]


def is_gemm(g: dict) -> bool:
    """As the launcher decides for a channels_last input."""
    return g["R"] == g["S"] == 1 and g["stride"] == 1 and g["pad"] == 0


def offered(fc, g: dict) -> tuple[object, list[tuple]]:
    """The kernel a launch of this layer uses and the config shapes its autotuner can try."""
    if is_gemm(g):
        kernel, shapes = fc._gemm_kernel, fc._GEMM_SHAPES
    else:
        kernel, shapes = fc._conv_kernel, fc._CONV_SHAPES
    configs = fc._configs(shapes)
    named = {"K": g["K"], "C": g["C"], "HAS_RES": g["residual"]}
    kept = fc._prune_configs(configs, named, HAS_RES=g["residual"])
    kept = [*kept, fc._small_problem_config(configs, g["K"])]
    by_shape = {}
    for c in kept:
        key = (*(c.kwargs[k] for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K")), c.num_warps, c.num_stages)
        by_shape[key] = c
    return kernel, list(by_shape.items())


def config_name(shape: tuple) -> str:
    bm, bn, bk, w, s = shape
    return f"{bm}x{bn}x{bk} w{w} s{s}"


def k_steps(g: dict, shape: tuple) -> int:
    """Trips of the main loop: one means no loop (the flat path's constant bounds unroll it)."""
    bk = shape[2]
    if is_gemm(g):
        return -(-g["C"] // bk)
    if g["C"] < 32:
        return -(-g["C"] * g["R"] * g["S"] // bk)
    return g["R"] * g["S"] * -(-g["C"] // bk)


def layer_args(fc, g: dict, cfg) -> dict:
    if is_gemm(g):
        return ik.gemm_args(g["C"], g["K"], g["H"], n=BATCH, res=g["residual"], cfg=cfg)
    geo = (g["C"], g["K"], g["R"], g["stride"], g["pad"], g["H"])
    return ik.conv_args(*geo, n=BATCH, res=g["residual"], cfg=cfg)


class Compiler:
    """Compiles (kernel, args, config) for sm_90 and measures the code, with a result cache."""

    def __init__(self, fc, cache: Path | None, options: dict | None = None) -> None:
        self.fc, self.cache, self.options = fc, cache, dict(options or {})
        self.source_hash = hashlib.sha256(Path(fc.__file__).read_bytes()).hexdigest()[:16]
        self.target = GPUTarget("cuda", 90, 32)
        self.compiled = self.cached = 0
        self.memo: dict[str, dict] = {}

    def key(self, kernel, args: dict, shape: tuple) -> str:
        src = ik.build_source(kernel, args)
        # ASTSource.hash(): the function's source and dependencies, signature, constants, attrs.
        # Triton reads DISABLE_MMA_V3 (no wgmma) in C++; its own cache key leaves it out.
        mma_v3 = os.environ.get("DISABLE_MMA_V3", "")
        spec = json.dumps([src.hash(), shape, sorted(self.options.items()), mma_v3])
        text = f"{MEASURES}|{triton.__version__}|sm90|{self.source_hash}|{spec}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def measure(self, kernel, args: dict, shape: tuple) -> dict:
        key = self.key(kernel, args, shape)
        if key in self.memo:
            return self.memo[key]
        path = self.cache / f"{key}.json" if self.cache else None
        if path is not None and path.exists():
            self.cached += 1
            row = json.loads(path.read_text())
        else:
            self.compiled += 1
            row = self._compile(kernel, args, shape)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(row))
        self.memo[key] = row
        return row

    def _compile(self, kernel, args: dict, shape: tuple) -> dict:
        warps, stages = shape[3], shape[4]
        src = ik.build_source(kernel, args)
        opts = {"num_warps": warps, "num_stages": stages, **self.options}
        ck = triton.compile(src, target=self.target, options=opts)
        ptx, cubin = ck.asm["ptx"], ck.asm["cubin"]
        counts = ik.count(ptx)
        md = ck.metadata
        row = {
            "wgmma": counts["wgmma"], "cp16": counts["cp16"], "div64": counts["div64"],
            "loop_div": ik.main_loop(ptx)["loop_div"],
            "smem": md.shared if hasattr(md, "shared") else md.get("shared"),
            **ik.resource_usage(cubin), **ik.sass_loop(cubin),
        }  # fmt: skip
        row["ctas_per_sm"] = ik.ctas_per_sm(row["regs"], warps, row["smem"])
        row["int_per_mma"] = (
            round(row["sass_int"] / row["sass_mma"], 2) if row["sass_mma"] else None
        )
        return row


def measure_all(comp: Compiler, todo: list[dict], wanted, progress: bool = False) -> list[dict]:
    """Rows for every (layer, config) of ``todo`` that ``wanted(layer, config)`` accepts."""
    rows = []
    for i, g in enumerate(todo):
        kernel, shapes = offered(comp.fc, g)
        shapes = [(sh, cfg) for sh, cfg in shapes if wanted(g["name"], config_name(sh))]
        for shape, cfg in shapes:
            row = comp.measure(kernel, layer_args(comp.fc, g, cfg), shape)
            rows.append({"layer": g["name"], "nets": g["nets"], "config": config_name(shape),
                         "kernel": ik._jit(kernel).fn.__name__,
                         "k_steps": k_steps(g, shape), **row})  # fmt: skip
        if progress:
            print(f"[{i + 1}/{len(todo)}] {g['name']}: {len(shapes)} configs", flush=True)
    return rows


def _looped(r: dict) -> bool:
    """A reduction of one step has no loop, so nothing to pipeline (VGG's 3x3x3 stem)."""
    return r.get("k_steps", 2) > 1


# Absolute rules: (name, predicate on a row, message).
RULES = (
    (
        "smem",
        lambda r: r["smem"] <= ik.SM90["smem_cta"],
        "shared memory over the 227 KB a CTA may have",
    ),
    ("wgmma", lambda r: r["wgmma"] > 0, "no wgmma"),
    ("cp16", lambda r: r["cp16"] > 0 or not _looped(r), "no 16-byte cp.async"),
    ("div64", lambda r: r["div64"] == 0, "64-bit division"),
    ("loop", lambda r: r["sass_mma"] > 0 or not _looped(r), "no main loop with an MMA found"),
)


def compare(rows: list[dict], baseline: dict | None) -> list[str]:
    """Regressions of ``rows`` against ``baseline`` (and the absolute rules), one line each."""
    base = {(r["layer"], r["config"]): r for r in (baseline or {}).get("rows", [])}
    problems = []
    for r in rows:
        where = f"{r['layer']} [{r['config']}]"
        problems += [f"{where}: {msg}" for _, ok, msg in RULES if not ok(r)]
        b = base.get((r["layer"], r["config"]))
        if b is None:
            if r["stack"]:
                problems.append(f"{where}: spills {r['stack']} B (a config new to the baseline)")
            continue
        if r["stack"] > b["stack"]:
            problems.append(f"{where}: spills {r['stack']} B, baseline {b['stack']} B")
        if (r["int_per_mma"] or 0) > (b["int_per_mma"] or 0):
            was = b["int_per_mma"] if b["int_per_mma"] is not None else "no loop"
            problems.append(
                f"{where}: {r['int_per_mma']} integer instructions per MMA in the main loop, "
                f"baseline {was}"
            )
        if r.get("loop_div", 0) > b.get("loop_div", r.get("loop_div", 0)):
            problems.append(
                f"{where}: {r['loop_div']} integer divisions in the main loop, "
                f"baseline {b['loop_div']}"
            )
        if r["ctas_per_sm"] < b["ctas_per_sm"]:
            problems.append(f"{where}: {r['ctas_per_sm']} CTAs per SM, baseline {b['ctas_per_sm']}")
    return problems


def default_cache() -> Path:
    return Path(os.environ.get("ARCHC_CODEGEN_CACHE", "~/.cache/archc/codegen")).expanduser()


def baseline_path(version: str = triton.__version__) -> Path:
    return BASELINES / f"triton-{version}.json"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="the representative subset only")
    p.add_argument("--layers", default="", help="only layers whose name contains this")
    p.add_argument("--configs", default="", help="only configs whose name contains this")
    p.add_argument("--update", action="store_true", help="write this Triton's baseline")
    p.add_argument("--baseline", type=Path, default=None, help="compare with this file")
    p.add_argument("--json", type=Path, default=None, help="write the measured rows here")
    p.add_argument("--kernels", type=Path, default=None, help="a fused_conv.py to check instead")
    p.add_argument("--maxnreg", type=int, default=None, help="register cap (forces spills)")
    p.add_argument("--no-cache", action="store_true", help="compile everything again")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.update and (a.fast or a.layers or a.configs or a.kernels or a.maxnreg):
        print("--update writes the whole sweep: drop --fast, --layers, --configs, --kernels, "
              "--maxnreg", file=sys.stderr)  # fmt: skip
        return 2
    for flag, path in (("--kernels", a.kernels), ("--baseline", a.baseline)):
        if path is not None and not path.is_file():
            print(f"codegen_check: {flag} {path}: no such file", file=sys.stderr)
            return 2
    t0 = time.monotonic()
    fc = ik.load_fused_conv(path=a.kernels) if a.kernels else ik.fc
    todo = [g for g in layers() if a.layers in g["name"]]

    def wanted(layer: str, config: str) -> bool:
        return a.configs in config and (not a.fast or (layer, config) in FAST)

    cache = None if a.no_cache else default_cache()
    options = {"maxnreg": a.maxnreg} if a.maxnreg else {}
    comp = Compiler(fc, cache, options)
    rows = measure_all(comp, todo, wanted, progress=not a.fast)
    seconds = time.monotonic() - t0
    result = {"triton": triton.__version__, "target": "sm_90", "batch": BATCH, "rows": rows}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")
    n_layers = len({r["layer"] for r in rows})
    print(f"triton {triton.__version__}, sm_90: {n_layers} layers, {len(rows)} (layer, config) "
          f"rows, {comp.compiled} compiled, {comp.cached} cached, {seconds:.1f} s")  # fmt: skip
    if a.update:
        BASELINES.mkdir(exist_ok=True)
        baseline_path().write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {baseline_path()}")
        return 0
    path = a.baseline or baseline_path()
    baseline = json.loads(path.read_text()) if path.exists() else None
    if baseline is None:
        print(f"no baseline for triton {triton.__version__} ({path}): absolute rules only")
    problems = compare(rows, baseline)
    for line in problems:
        print("REGRESSION", line)
    print("codegen check:", "FAILED" if problems else "passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
