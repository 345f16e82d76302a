"""Test setup. Triton runs in its interpreter on CPU tensors when no GPU is present; that must be
decided before triton is first imported, hence here, at the very top."""

import os
import shutil

if not shutil.which("nvidia-smi") and "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "1"

# Under pytest-xdist (the README's test command runs `-n auto`) each worker runs its own tests:
# one torch thread each, so that two workers on two cores do not fight over them. Read by torch
# when it is first imported, which is after this file.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
