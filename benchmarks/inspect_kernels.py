"""Compile archc's fused-conv kernels for a GPU target offline (no GPU needed) and report what
the generated code looks like: vectorised loads, async copies, wgmma, registers, spills, shared
memory.

    python3 benchmarks/inspect_kernels.py                    # sm_90, the default cases
    python3 benchmarks/inspect_kernels.py --arch 80 --dump DIR   # also write .ttgir/.ptx per case
    python3 benchmarks/inspect_kernels.py --activation silu      # another fused epilogue

Each case is one ResNet-50 geometry with one tile config, specialised the way the JIT would
specialise a real launch: pointers and integer arguments divisible by 16 get ``tt.divisibility``,
integer arguments equal to 1 become constants, and ``do_not_specialize`` arguments are plain i32.

Counts reported per case (from the PTX unless noted):

* ``cp16``/``cp8``/``cp4``: ``cp.async`` copies of 16/8/4 bytes (global → shared, pipelined);
* ``tma``: ``cp.async.bulk.tensor`` (TMA) copies;
* ``ldv4``/``ld1``: vector (``ld.global.v4``, …) and scalar (``ld.global.b16``…) global loads;
* ``stv4``/``st1``: the same for global stores (the epilogue);
* ``wgmma``/``mma``: Hopper warp-group MMAs and Ampere-style ``mma.sync``;
* ``regs``, ``stack`` (bytes of stack frame: register spills, from ``cuobjdump -res-usage``),
  ``local`` (``ld/st.local`` in the PTX), ``smem`` (bytes of shared memory);
* ``loop``: PTX instructions (less ``mov.b32``) in the main loop; ``sass_loop``/``sass_mma``:
  SASS instructions and HGMMA/HMMA in it (the real per-K-step cost: one PTX ``div`` is ~20 SASS);
* ``mul64``/``div64``: 64-bit multiplies and divisions/remainders (a 64-bit ``div`` is a
  software routine of ~70 instructions; index arithmetic that fits 32 bits should not use it).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # must compile, not interpret

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402


def load_fused_conv(installed: bool = True, path: Path | None = None):
    """archc.kernels.fused_conv, or (no install, as on the GPU machine, or ``path`` given)
    ./kernels/fused_conv.py (or ``path``) loaded by path. The module goes into sys.modules before
    it runs: ``@dataclass`` looks its class's module up there."""
    if installed and path is None:
        try:
            from archc.kernels import fused_conv

            return fused_conv
        except Exception:  # noqa: BLE001 - no install: load ./kernels directly
            pass
    import importlib.util

    path = path or ROOT / "kernels" / "fused_conv.py"
    name = f"archc_kernels_fused_conv_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


fc = load_fused_conv()


def _jit(kernel):
    """The JITFunction under an Autotuner (or the function itself)."""
    while not isinstance(kernel, triton.runtime.jit.JITFunction):
        kernel = kernel.fn
    return kernel


def with_heuristics(kernel, args: dict) -> dict:
    """``args`` plus the values of the kernel's ``@triton.heuristics`` (computed from the
    arguments and the config, as at a launch)."""
    args = dict(args)
    while not isinstance(kernel, triton.runtime.jit.JITFunction):
        if isinstance(kernel, triton.runtime.autotuner.Heuristics):
            for name, rule in kernel.values.items():
                args[name] = rule(args)
        kernel = kernel.fn
    return args


def build_source(kernel, args: dict, dtype: str = "bf16") -> ASTSource:
    """An ASTSource for ``kernel`` with ``args`` (name → value); a value that is a string
    starting with ``*`` is a pointer of that type, a bool or a name listed as constexpr is a
    constant, an int is specialised as the JIT would."""
    args = with_heuristics(kernel, args)
    fn = _jit(kernel)
    signature, constexprs, attrs = {}, {}, {}
    no_spec = set(fn.do_not_specialize) | {
        fn.arg_names[i] for i in fn.do_not_specialize if isinstance(i, int)
    }
    for i, name in enumerate(fn.arg_names):
        param = fn.params[i]
        value = args[name]
        if param.is_constexpr:
            signature[name] = "constexpr"
            constexprs[name] = value
        elif isinstance(value, str) and value.startswith("*"):
            signature[name] = value
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, int):
            if name in no_spec:
                signature[name] = "i32"
            elif value == 1:
                signature[name] = "constexpr"
                constexprs[name] = 1
            else:
                signature[name] = "i32" if -(2**31) <= value < 2**31 else "i64"
                if value % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            raise TypeError(f"{name}={value!r}")
    return ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)


def conv_args(c, k, r, stride, pad, hw, n=256, res=False, res_layout="cl", dtype="bf16", cfg=None):
    """Arguments of _conv_kernel for an NHWC input (N, C, hw, hw); arguments a kernel version
    does not have are ignored."""
    oh = (hw + 2 * pad - r) // stride + 1
    ptr = f"*{dtype}"
    res_strides = _res_strides(n, k, oh, res, res_layout)
    a = dict(
        x_ptr=ptr, w_ptr=ptr, out_ptr=ptr, bias_ptr=ptr, res_ptr=ptr,
        M=n * oh * oh, K=k, C=c, H=hw, W=hw, OH=oh, OW=oh, R=r, S=r,
        STRIDE_H=stride, STRIDE_W=stride, PAD_H=pad, PAD_W=pad,
        sxn=c * hw * hw, sxc=1, sxh=hw * c, sxw=c,
        FLAT=c < 32,
    )  # fmt: skip
    return _finish(a, res_strides, res, res_layout, cfg)


def gemm_args(c, k, hw, n=256, res=False, res_layout="cl", dtype="bf16", cfg=None):
    ptr = f"*{dtype}"
    a = dict(
        x_ptr=ptr, w_ptr=ptr, out_ptr=ptr, bias_ptr=ptr, res_ptr=ptr,
        M=n * hw * hw, K=k, C=c, OH=hw, OW=hw,
    )  # fmt: skip
    return _finish(a, _res_strides(n, k, hw, res, res_layout), res, res_layout, cfg)


def _res_strides(n, k, oh, res, layout):
    if not res:
        return (0, 0, 0, 0)
    if layout == "cl":  # channels_last (N, K, OH, OW): strides n, k, h, w
        return (k * oh * oh, 1, oh * k, k)
    return (k * oh * oh, oh * oh, oh, 1)  # NCHW


# The epilogue's activation (--activation): kernels before the named epilogues take RELU, later
# ones ACT and SLOPE; each ignores the others' arguments.
EPILOGUE = ["relu"]


def _finish(a, res_strides, res, res_layout, cfg):
    srn, srk, srh, srw = res_strides
    a.update(srn=srn, srk=srk, srh=srh, srw=srw)
    a.update(
        HAS_BIAS=True, HAS_RES=res, PRECISION="ieee", UPCAST=False, ROUND_TF32=False,
        RELU=EPILOGUE[0] == "relu", ACT=EPILOGUE[0], SLOPE=0.01 if EPILOGUE[0] != "relu" else 0.0,
    )  # fmt: skip
    # As the launcher decides: a channels_last residual is addressed like the output.
    a["RES_DENSE"] = bool(res) and res_layout == "cl"
    a.update(cfg.kwargs)
    return a


def count(ptx: str) -> dict:
    def n(pattern):
        return len(re.findall(pattern, ptx))

    cp = r"cp\.async\.c[ag]\.shared\.global(?:\.L2::\w+)?\s*\[[^\]]*\],\s*\[[^\]]*\],\s*"
    ld_all, st_all = n(r"\bld\.global\."), n(r"\bst\.global\.")
    ldv, stv = n(r"\bld\.global\.(?:\w+\.)*v[248]\."), n(r"\bst\.global\.(?:\w+\.)*v[248]\.")
    return {
        "cp16": n(cp + r"(?:16|0x10)\b"),
        "cp8": n(cp + r"(?:8|0x8)\b"),
        "cp4": n(cp + r"(?:4|0x4)\b"),
        "cp2": n(cp + r"(?:2|0x2)\b"),
        "tma": n(r"cp\.async\.bulk\.tensor"),
        "ldv4": n(r"\bld\.global\.(?:\w+\.)*v4\."),
        "ldv2": n(r"\bld\.global\.(?:\w+\.)*v2\."),
        "ld1": ld_all - ldv,
        "stv4": n(r"\bst\.global\.(?:\w+\.)*v4\."),
        "st1": st_all - stv,
        "wgmma": n(r"wgmma\.mma_async"),
        "mma": n(r"\bmma\.sync"),
        "local": n(r"\b(?:ld|st)\.local\b"),
        "mul64": n(r"mul\.(?:lo|wide)\.[su]64"),
        "div64": n(r"(?:div|rem)\.[su]64"),
    }


def main_loop(ptx: str) -> dict:
    """PTX instructions in the innermost loop (``Inner Loop Header`` to its back branch) with
    the most wgmma (the longest of those), its wgmma count and its integer divisions and
    remainders (``div``/``rem``, each ~20 SASS instructions at 32 bits): the integer work per K
    step beside the MMAs it feeds."""
    lines = ptx.splitlines()
    best = {"loop": 0, "loop_wgmma": 0, "loop_div": 0}
    for i, line in enumerate(lines):
        if "Inner Loop Header" not in line:
            continue
        # The label is on the header's line, or (a comment-only header) on the line before.
        labelled = line if re.match(r"\s*\$\w+:", line) else lines[i - 1]
        label = labelled.split(":")[0].strip()
        if not label.startswith("$"):
            continue
        body = []
        for other in lines[i + 1 :]:
            if re.search(rf"\bbra(?:\.uni)?\s+{re.escape(label)};", other):
                break
            body.append(other.strip())
        instr = [x for x in body if x.endswith(";") and not x.startswith(("//", "."))]
        instr = [x for x in instr if not x.startswith("mov.b32")]  # wgmma register shuffles
        wgmma = sum("wgmma.mma_async" in x for x in instr)
        if (wgmma, len(instr)) > (best["loop_wgmma"], best["loop"]):
            best = {
                "loop": len(instr),
                "loop_wgmma": sum("wgmma.mma_async" in x for x in instr),
                "loop_div": sum(bool(re.match(r"(?:div|rem)\.[su]", x)) for x in instr),
            }
    return best


_BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


# Integer-pipe SASS opcodes (vector and uniform datapath): address, mask and counter work. The
# rest of a conv main loop is MMAs, async copies, barriers and fences.
INTEGER_OPS = frozenset(
    "IMAD IADD3 VIADD ISETP LOP3 SHF LEA SEL IMNMX IABS PRMT PLOP3 P2R R2P SGXT BMSK IMUL MOV "
    "CS2R UIADD3 UIMAD UMOV USHF ULEA UISETP USEL ULOP3 USGXT UPRMT UP2UR UPLOP3 UIMNMX".split()
)


def _opcode(instr: str) -> str:
    """``@!P3 IMAD.MOV R1, ...`` -> ``IMAD``."""
    return re.sub(r"^@!?U?P\w+\s+", "", instr).split()[0].split(".")[0]


def sass_loop(cubin: bytes) -> dict:
    """SASS instructions in the shortest loop (backward ``BRA``) that contains an MMA, its
    HGMMA count and its integer instructions (:data:`INTEGER_OPS`): PTX ``div.s32`` is one line
    but ~20 SASS instructions, so count the SASS."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [str(_BIN / "cuobjdump"), "-sass", f.name], capture_output=True, text=True
        ).stdout
    instr = re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", text)
    addr = [(int(a, 16), op.strip()) for a, op in instr]
    best = {"sass_loop": 0, "sass_mma": 0, "sass_int": 0}
    for at, op in addr:
        m = re.search(r"\bBRA\s+(?:`\()?0x([0-9a-f]+)", op)
        if not m or int(m[1], 16) >= at:
            continue
        body = [o for a, o in addr if int(m[1], 16) <= a <= at]
        mmas = sum(_opcode(o) in ("HGMMA", "HMMA") for o in body)
        if mmas and (not best["sass_loop"] or len(body) < best["sass_loop"]):
            ints = sum(_opcode(o) in INTEGER_OPS for o in body)
            best = {"sass_loop": len(body), "sass_mma": mmas, "sass_int": ints}
    return best


# sm_90 per SM: 64K 32-bit registers in 4 quadrants, 2048 threads, 32 CTAs, 228 KB of shared
# memory of which a CTA may use 227 KB, 1 KB reserved per CTA (CUDA occupancy calculator).
SM90 = {"regs": 65536, "threads": 2048, "ctas": 32, "smem": 233472, "smem_cta": 232448}


def ctas_per_sm(regs: int, warps: int, smem: int, sm: dict = SM90) -> int:
    """Resident CTAs per SM: registers (allocated per warp in units of 256, a warp's registers
    within one quadrant), threads, shared memory (+1 KB per CTA), the CTA limit."""
    per_warp = -(-max(regs, 1) * 32 // 256) * 256
    warps_by_regs = 4 * ((sm["regs"] // 4) // per_warp)
    limits = [warps_by_regs // warps, sm["threads"] // (32 * warps), sm["ctas"]]
    if smem:
        limits.append(sm["smem"] // (smem + 1024) if smem <= sm["smem_cta"] else 0)
    return min(limits)


def resource_usage(cubin: bytes) -> dict:
    """Registers, stack (spill) bytes and static shared memory of a cubin, from ptxas's own
    ``cuobjdump -res-usage`` (CompiledKernel.n_regs/n_spills need a GPU driver to be filled)."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [str(_BIN / "cuobjdump"), "-res-usage", f.name], capture_output=True, text=True
        ).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+)", text)
    return {"regs": int(m[1]), "stack": int(m[2])} if m else {"regs": "?", "stack": "?"}


def compile_case(name, kernel, args, warps, stages, target, dump: Path | None):
    src = build_source(kernel, args)
    opts = {"num_warps": warps, "num_stages": stages}
    ck = triton.compile(src, target=target, options=opts)
    ptx = ck.asm["ptx"]
    row = {"case": name, **count(ptx), **main_loop(ptx)}
    md = ck.metadata
    row.update(resource_usage(ck.asm["cubin"]))
    row.update(sass_loop(ck.asm["cubin"]))
    row["smem"] = md.shared if hasattr(md, "shared") else md.get("shared")
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        (dump / f"{stem}.ptx").write_text(ptx)
        (dump / f"{stem}.ttgir").write_text(ck.asm["ttgir"])
    return row


def _cfg(shape):
    bm, bn, bk, w, s = shape
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8}, w, s), w, s


def cases(all_configs: bool):
    """(name, kernel, args, warps, stages) for representative ResNet-50 layers."""
    conv_shapes = fc._CONV_SHAPES if all_configs else fc._CONV_SHAPES[:1]
    gemm_shapes = fc._GEMM_SHAPES if all_configs else fc._GEMM_SHAPES[:2]
    conv = fc._conv_kernel
    gemm = fc._gemm_kernel
    out = []
    for shape in conv_shapes:
        cfg, w, s = _cfg(shape)
        tag = "x".join(map(str, shape))
        for name, geo in (("128->128 3x3 s1 @28", (128, 128, 3, 1, 1, 28)),
                          ("256->512 1x1 s2 @56", (256, 512, 1, 2, 0, 56))):  # fmt: skip
            out.append((f"conv {name} [{tag}]", conv, conv_args(*geo, cfg=cfg), w, s))
    # The stem (flat path): K = 64, so only configs with BLOCK_N 64 run it.
    stems = [sh for sh in fc._CONV_SHAPES if sh[1] == 64]
    for shape in stems if all_configs else stems[:1]:
        cfg, w, s = _cfg(shape)
        tag = "x".join(map(str, shape))
        out.append((f"conv 3->64 7x7 s2 @224 flat [{tag}]", conv,
                    conv_args(3, 64, 7, 2, 3, 224, cfg=cfg), w, s))  # fmt: skip
    for shape in gemm_shapes:
        cfg, w, s = _cfg(shape)
        tag = "x".join(map(str, shape))
        for name, kw in (("64->256 1x1 @56 +res", dict(res=True)),
                         ("64->256 1x1 @56 +res NCHW", dict(res=True, res_layout="nchw")),
                         ("256->64 1x1 @56", {})):  # fmt: skip
            c, k = map(int, name.split()[0].split("->"))
            out.append((f"gemm {name} [{tag}]", gemm, gemm_args(c, k, 56, cfg=cfg, **kw), w, s))
    return out


COLUMNS = ["cp16", "cp8", "cp4", "tma", "ldv4", "ld1", "stv4", "st1", "wgmma", "mma", "regs",
           "stack", "local", "smem", "mul64", "div64", "loop", "sass_loop", "sass_mma"]  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90)
    p.add_argument("--dump", type=Path, default=None, help="write .ptx/.ttgir per case here")
    p.add_argument("--all-configs", action="store_true", help="every autotune config")
    p.add_argument("--filter", default="", help="only cases whose name contains this")
    p.add_argument("--activation", default="relu", help="the epilogue (archc.kernels.ACTIVATIONS)")
    a = p.parse_args(argv)
    EPILOGUE[0] = a.activation
    target = GPUTarget("cuda", a.arch, 32)
    print(f"triton {triton.__version__}, target sm_{a.arch}, epilogue {a.activation}")
    print("| case | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    rc = 0
    for name, kernel, args, w, s in cases(a.all_configs):
        if a.filter not in name:
            continue
        try:
            row = compile_case(name, kernel, args, w, s, target, a.dump)
            print(f"| {name} w{w} s{s} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
        except Exception as exc:  # noqa: BLE001 - report and go on
            rc = 1
            print(f"| {name} w{w} s{s} | FAILED: {type(exc).__name__}: {str(exc)[:300]} |")
        sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main())
