"""The dense baseline: the same layer built with one generic multiplier per weight.

Hardware engineers compare jpq-hw's shift-add layers against this. The multiplier costs are
*measured*: ``bench/dense_multipliers.py`` synthesizes ``y = a * b`` (activation ``a`` of ``bx`` bits,
unsigned or signed; weight ``b`` signed, ``bw`` bits; full-width product) with yosys ``synth_ice40``
without DSP blocks and stores SB_LUT4 / SB_CARRY in ``ice40_multipliers.json`` beside this file.

Widths that were not measured are estimated:

- inside the measured grid: bilinear interpolation in (bx, bw) between the four nearest points;
- outside it: the nearest grid point (widths clamped to the grid), scaled by ``bx*bw / (bx'*bw')``
  for SB_LUT4 (an array multiplier grows with the number of partial-product bits) and by
  ``(bx+bw) / (bx'+bw')`` for SB_CARRY (the carry chains grow with the product width).

:func:`dense_layer_cost` is an *estimate*, not a synthesis result: it adds ``n_in * n_out``
multipliers (every weight, zero or not: that is what "dense" means) and, per output, an adder tree
of ``n_in - 1`` adders of ``acc_bits`` bits, each adder bit costing 1 SB_LUT4 + 1 SB_CARRY (yosys
measures ``n + 1`` LUT4 and ``n`` CARRY for an n-bit add with an n+1-bit result). Registers, the
bias, requantization and the activation function are left out, as they are the same in both designs.
"""

from __future__ import annotations

import functools
import json
from bisect import bisect_right
from importlib import resources
from pathlib import Path

from ..errors import JpqError

TABLE_NAME = "ice40_multipliers.json"


@functools.lru_cache(maxsize=1)
def load_table() -> dict:
    """The measured table (``header``, ``multipliers``, ``adders``, ``subtractors``)."""
    try:
        text = resources.files("jpq_hw.cost").joinpath(TABLE_NAME).read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        path = Path(__file__).with_name(TABLE_NAME)
        if not path.exists():
            raise JpqError(f"{TABLE_NAME} is missing; regenerate it with `python bench/dense_multipliers.py`")
        text = path.read_text()
    return json.loads(text)


@functools.lru_cache(maxsize=2)
def _grid(x_signed: bool) -> tuple[list[int], list[int], dict[tuple[int, int], tuple[int, int]]]:
    prefix = "s" if x_signed else "u"
    pts: dict[tuple[int, int], tuple[int, int]] = {}
    for key, v in load_table()["multipliers"].items():
        if key[0] == prefix:
            bx, bw = key[1:].split("xs")
            pts[int(bx), int(bw)] = (int(v["lut4"]), int(v["carry"]))
    xs = sorted({k[0] for k in pts})
    ws = sorted({k[1] for k in pts})
    if not pts or len(pts) != len(xs) * len(ws):
        raise JpqError(f"{TABLE_NAME}: the {prefix}*x* multipliers do not form a full grid")
    return xs, ws, pts


def _bracket(grid: list[int], v: float) -> tuple[int, int, float]:
    """Neighbours ``lo <= v <= hi`` in ``grid`` and the weight of ``hi``."""
    i = min(max(bisect_right(grid, v) - 1, 0), len(grid) - 1)
    if i == len(grid) - 1 or grid[i] == v:
        return grid[i], grid[i], 0.0
    lo, hi = grid[i], grid[i + 1]
    return lo, hi, (v - lo) / (hi - lo)


def multiplier_cost(bx: int, x_signed: bool, bw: int) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) of one generic ``bx``-bit x signed ``bw``-bit multiplier on iCE40.

    Exact where measured, else interpolated / extrapolated as described in the module notes.
    """
    if bx < 1 or bw < 1:
        raise JpqError(f"multiplier widths must be >= 1, got bx={bx}, bw={bw}")
    xs, ws, pts = _grid(bool(x_signed))
    cx = min(max(bx, xs[0]), xs[-1])
    cw = min(max(bw, ws[0]), ws[-1])
    x0, x1, tx = _bracket(xs, cx)
    w0, w1, tw = _bracket(ws, cw)
    lut = carry = 0.0
    for (gx, fx) in ((x0, 1 - tx), (x1, tx)):
        for (gw, fw) in ((w0, 1 - tw), (w1, tw)):
            f = fx * fw
            if f:
                lut += f * pts[gx, gw][0]
                carry += f * pts[gx, gw][1]
    lut *= (bx * bw) / (cx * cw)
    carry *= (bx + bw) / (cx + cw)
    return round(lut), round(carry)


def dense_layer_cost(n_in: int, n_out: int, bx: int, x_signed: bool, bw: int, acc_bits: int) -> dict[str, int]:
    """Estimated iCE40 cells of a dense ``n_in -> n_out`` layer built from generic multipliers.

    Returns ``lut4``, ``carry``, ``multipliers`` (``n_in * n_out``) and ``adders``
    (``n_out * (n_in - 1)``, each ``acc_bits`` wide: 1 SB_LUT4 + 1 SB_CARRY per bit).
    """
    if n_in < 1 or n_out < 1:
        raise JpqError(f"layer size must be >= 1 x 1, got {n_in} x {n_out}")
    if acc_bits < 1:
        raise JpqError(f"accumulator width must be >= 1, got {acc_bits}")
    m_lut, m_carry = multiplier_cost(bx, x_signed, bw)
    multipliers = n_in * n_out
    adders = n_out * (n_in - 1)
    return {
        "lut4": multipliers * m_lut + adders * acc_bits,
        "carry": multipliers * m_carry + adders * acc_bits,
        "multipliers": multipliers,
        "adders": adders,
    }
