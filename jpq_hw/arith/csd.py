"""Canonical signed digit (CSD) recoding.

``csd_digits(c)`` returns the non-adjacent form of the integer ``c``: a list of ``(position, sign)``
with ``c == sum(sign * 2**position)``, no two nonzero digits adjacent. It has the fewest nonzero
digits of any signed-digit form, so ``x * c`` needs ``len(csd_digits(c)) - 1`` adders.
"""

from __future__ import annotations


def csd_digits(c: int) -> list[tuple[int, int]]:
    """Nonzero CSD digits of ``c`` as ``(position, +1 | -1)``, least significant first."""
    c = int(c)
    digits: list[tuple[int, int]] = []
    pos = 0
    while c != 0:
        if c & 1:
            d = 2 - (c & 3)  # +1 if c = 1 (mod 4), -1 if c = 3 (mod 4)
            digits.append((pos, d))
            c -= d
        c >>= 1
        pos += 1
    return digits


def csd_cost(c: int) -> int:
    """Adders needed for ``x * c`` alone: nonzero CSD digits minus one (0 for zero or a power of two)."""
    return max(len(csd_digits(c)) - 1, 0)


def binary_digits(c: int) -> list[tuple[int, int]]:
    """Plain binary digits of ``|c|`` with the sign of ``c``: the baseline CSD is compared with."""
    c = int(c)
    sign = -1 if c < 0 else 1
    c = abs(c)
    return [(p, sign) for p in range(c.bit_length()) if (c >> p) & 1]


def adding_digits(c: int) -> list[tuple[int, int]]:
    """The binary digits of ``c`` where they are no more than its CSD digits (all of one sign: the
    sums need no subtractor), else its CSD digits."""
    binary, csd = binary_digits(c), csd_digits(c)
    return binary if len(binary) <= len(csd) else csd
