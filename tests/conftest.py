"""Test setup. Triton runs in its interpreter on CPU tensors when no GPU is present; that must be
decided before triton is first imported, hence here, at the very top."""

import os
import shutil

if not shutil.which("nvidia-smi") and "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "1"
