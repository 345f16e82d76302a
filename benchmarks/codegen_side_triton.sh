#!/usr/bin/env bash
# The codegen check (benchmarks/codegen_check.py) under another Triton than the project's own:
# by default 3.6.0, the GPU machine's. Triton goes into a side folder (pip --target, no
# dependencies: torch and torchvision come from the running environment, which must have them)
# put first on PYTHONPATH; nothing in the project's environment changes.
#
#   bash benchmarks/codegen_side_triton.sh                 # check against triton-3.6.0.json
#   bash benchmarks/codegen_side_triton.sh --update        # write triton-3.6.0.json
#   TRITON_VERSION=3.7.1 bash benchmarks/codegen_side_triton.sh --fast
#
# Arguments go to codegen_check.py. PYTHON picks the interpreter (default: .venv/bin/python if
# it exists, else python3); SIDE_DIR the folder (default .side-triton/VERSION, git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
version="${TRITON_VERSION:-3.6.0}"
python="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
side="${SIDE_DIR:-.side-triton/$version}"
if [ ! -f "$side/triton/__init__.py" ]; then
    echo "installing triton==$version into $side" >&2
    "$python" -m pip install -q --no-deps --target "$side" "triton==$version"
fi
got="$(PYTHONPATH="$side" "$python" -c 'import triton; print(triton.__version__)')"
if [ "$got" != "$version" ]; then
    echo "expected triton $version from $side, got $got" >&2
    exit 2
fi
# Triton's own compile cache is per version too: keep the side version's apart.
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$HOME/.triton/cache-$version}"
PYTHONPATH="$side${PYTHONPATH:+:$PYTHONPATH}" exec "$python" benchmarks/codegen_check.py "$@"
