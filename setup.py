"""The packages of the wheel, discovered rather than listed: every package under archc/, and the
two folders that install under it (kernels/ as archc.kernels, specs/ as archc.specs; the mapping
and the package data are in pyproject.toml). A new subpackage cannot be left out of the wheel
(tests/test_wheel.py installs it in a fresh virtual environment and trains with it)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["archc", "archc.*"]),
        "archc.kernels",
        *(f"archc.kernels.{p}" for p in find_packages("kernels")),
        "archc.specs",
    ]
)
