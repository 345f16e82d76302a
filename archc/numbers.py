"""Printed numbers read at the precision printed.

Lecture tables round: ``224*224*64=3.2M`` is 3,211,264 and ``112*112*64=800K`` is 802,816.
A printed number therefore stands for an interval, and a claim holds when the exact value lies in
it. The rule (docs/accounting.md repeats it):

- A number with a K/M/G suffix (×10³, ×10⁶, ×10⁹; case-insensitive) is rounded to its last
  significant digit. Digits after a decimal point are all significant (``3.2M``: ±0.05M,
  ``1.60M``: ±0.005M); trailing zeros of a whole mantissa are not (``800K`` = 8·10⁵ ± 0.5·10⁵,
  ``150K`` = 15·10⁴ ± 0.5·10⁴, ``25K`` = 25·10³ ± 0.5·10³). The interval is half-open,
  [centre − half a unit, centre + half a unit).
- A number without a suffix is exact, with or without thousands separators: ``1,728`` is 1728,
  ``4096`` is 4096, ``0`` is 0.
- A leading ``~`` or ``≈`` changes nothing: every suffixed number is approximate already.
- ``Ki``, ``Mi``, ``Gi`` are the binary suffixes, 1024, 1024², 1024³, read the same way
  (``159.5Ki`` is 163,328 ± 51.2): a table that says ``params (K = 1024)`` prints them as ``K``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_PRINTED_DIGITS = 40
"""A printed number with more digits is unreadable (E404): no count in a table has them, and
Python refuses to convert very long digit strings (4300) at all."""

MAX_SHOWN = 10**30
"""Numbers from this magnitude on are shown in scientific notation (``≈1.11e4300``): writing
out every digit could exceed Python's limit on converting integers to text."""

_PRINTED = re.compile(
    r"""^\s*[~≈]?\s*
    (?P<mantissa>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?
    \s*(?:(?P<suffix>[kKmMgG])(?P<binary>i)?)?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Printed:
    """The interval ``[low, high)`` a printed number stands for (``low == high`` when exact)."""

    text: str
    low: Fraction
    high: Fraction

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def admits(self, value: int | float | Fraction) -> bool:
        v = Fraction(value)
        return v == self.low if self.exact else self.low <= v < self.high

    def describe(self) -> str:
        """``3.2M`` -> ``3,150,000 ≤ v < 3,250,000``; ``1,728`` -> ``exactly 1,728``."""
        if self.exact:
            return f"exactly {fmt_int(self.low)}"
        return f"{fmt_int(self.low)} ≤ v < {fmt_int(self.high)}"


def read_printed(text: str) -> Printed | None:
    """The interval of a printed number, or None when ``text`` is not one."""
    m = _PRINTED.match(text)
    if m is None:
        return None
    whole = m["mantissa"].replace(",", "")
    fraction = m["fraction"] or ""
    if len(whole) + len(fraction) > MAX_PRINTED_DIGITS:
        return None
    suffix = m["suffix"]
    if suffix is None:
        value = Fraction(int(whole + fraction), 10 ** len(fraction))
        return Printed(text, value, value)
    thousand = 1024 if m["binary"] else 1000
    scale = thousand ** {"k": 1, "m": 2, "g": 3}[suffix.lower()]
    if fraction:
        unit = Fraction(scale, 10 ** len(fraction))
        centre = int(whole + fraction) * unit
    else:
        significant = whole.rstrip("0") or "0"
        unit = Fraction(scale * 10 ** (len(whole) - len(significant)))
        centre = int(whole) * Fraction(scale)
    return Printed(text, centre - unit / 2, centre + unit / 2)


def fmt_int(value: int | float | Fraction) -> str:
    """An integer with thousands separators (``1,728``); a non-integer keeps its decimals."""
    v = Fraction(value)
    if abs(v) >= MAX_SHOWN:
        return _scientific(v)
    if v.denominator == 1:
        return f"{v.numerator:,}"
    return f"{float(v):,g}"


def _scientific(v: Fraction) -> str:
    """``≈1.11e4300``, in integer arithmetic: a float overflows past 1e308."""
    n = abs(round(v))
    exponent = int(math.log10(n))
    # log10 of a huge integer can be off by one in its last place; settle it exactly.
    if 10**exponent > n:
        exponent -= 1
    elif 10 ** (exponent + 1) <= n:
        exponent += 1
    digits = n // 10 ** max(exponent - 2, 0)
    mantissa = f"{digits // 100}.{digits % 100:02d}"
    return f"≈{'-' if v < 0 else ''}{mantissa}e{exponent}"


def fmt_count(value: int) -> str:
    """A count the way lecture tables print it: ``150.5K``, ``3.2M``, ``138.4M``, ``15.5G``."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix}"
    return str(value)


def fmt_bytes(value: int) -> str:
    """Bytes in binary units: ``91.9 MiB``."""
    for suffix, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {suffix}"
    return f"{value} B"
