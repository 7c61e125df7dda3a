"""The dense baseline: the same layer built with one generic multiplier per weight.

Hardware engineers compare jpq-hw's shift-add layers against this. The multiplier costs are
*measured*: ``bench/dense_multipliers.py`` synthesizes ``y = a * b`` (activation ``a`` of ``bx`` bits,
unsigned or signed; weight ``b`` signed, ``bw`` bits; full-width product) without DSP blocks and
stores the cells in a table per target beside this file (``lut4`` / ``carry`` keys):

- ``ice40_multipliers.json``: ``synth_ice40``, SB_LUT4 / SB_CARRY (``target="ice40"``, the default);
- ``ecp5_multipliers.json``: ``synth_ecp5 -nodsp``, LUT4 / CCU2C (``target="ecp5"``); the PFUMX /
  L6MUX21 that ABC adds to the wider multipliers are not counted (bench/results/dense_multipliers_ecp5.md).

Widths that were not measured are estimated:

- inside the measured grid: bilinear interpolation in (bx, bw) between the four nearest points;
- outside it: the nearest grid point (widths clamped to the grid), scaled by ``bx*bw / (bx'*bw')``
  for SB_LUT4 (an array multiplier grows with the number of partial-product bits) and by
  ``(bx+bw) / (bx'+bw')`` for SB_CARRY (the carry chains grow with the product width).

:func:`dense_layer_cost` is an *estimate*, not a synthesis result: it adds ``n_in * n_out``
multipliers (every weight, zero or not: that is what "dense" means) and, per output, an adder tree
of ``n_in - 1`` adders of ``acc_bits`` bits (:func:`adder_cost`, from the same measurements: on iCE40
each adder bit costs 1 SB_LUT4 + 1 SB_CARRY, yosys measures ``n + 1`` LUT4 and ``n`` CARRY for an
n-bit add with an n+1-bit result; on ECP5 an adder of ``acc_bits`` bits is ``ceil(acc_bits / 2)``
CCU2C and no LUT4, yosys measures ``ceil((n + 1) / 2)`` CCU2C for that add). Registers, the bias,
requantization and the activation function are left out, as they are the same in both designs.
"""

from __future__ import annotations

import functools
import json
from bisect import bisect_right
from importlib import resources
from pathlib import Path

from ..errors import JpqError

TARGETS = ("ice40", "ecp5")
TABLE_NAME = "ice40_multipliers.json"  # the default target's table


def table_name(target: str) -> str:
    """The measured table of ``target`` (``ice40_multipliers.json``, ``ecp5_multipliers.json``)."""
    if target not in TARGETS:
        raise JpqError(f"no dense-multiplier table for target {target!r} (known: {', '.join(TARGETS)})")
    return f"{target}_multipliers.json"


@functools.lru_cache(maxsize=None)
def load_table(target: str = "ice40") -> dict:
    """The measured table of ``target`` (``header``, ``multipliers``, ``adders``, ``subtractors``)."""
    name = table_name(target)
    try:
        text = resources.files("jpq_hw.cost").joinpath(name).read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        path = Path(__file__).with_name(name)
        if not path.exists():
            raise JpqError(f"{name} is missing; regenerate it with `python -m bench.dense_multipliers --target {target}`")
        text = path.read_text()
    return json.loads(text)


@functools.lru_cache(maxsize=None)
def _grid(x_signed: bool, target: str = "ice40") -> tuple[list[int], list[int], dict[tuple[int, int], tuple[int, int]]]:
    prefix = "s" if x_signed else "u"
    pts: dict[tuple[int, int], tuple[int, int]] = {}
    for key, v in load_table(target)["multipliers"].items():
        if key[0] == prefix:
            bx, bw = key[1:].split("xs")
            pts[int(bx), int(bw)] = (int(v["lut4"]), int(v["carry"]))
    xs = sorted({k[0] for k in pts})
    ws = sorted({k[1] for k in pts})
    if not pts or len(pts) != len(xs) * len(ws):
        raise JpqError(f"{table_name(target)}: the {prefix}*x* multipliers do not form a full grid")
    return xs, ws, pts


def _bracket(grid: list[int], v: float) -> tuple[int, int, float]:
    """Neighbours ``lo <= v <= hi`` in ``grid`` and the weight of ``hi``."""
    i = min(max(bisect_right(grid, v) - 1, 0), len(grid) - 1)
    if i == len(grid) - 1 or grid[i] == v:
        return grid[i], grid[i], 0.0
    lo, hi = grid[i], grid[i + 1]
    return lo, hi, (v - lo) / (hi - lo)


def multiplier_cost(bx: int, x_signed: bool, bw: int, target: str = "ice40") -> tuple[int, int]:
    """(LUT, carry cells) of one generic ``bx``-bit x signed ``bw``-bit multiplier on ``target``
    (iCE40: SB_LUT4, SB_CARRY; ECP5: LUT4, CCU2C).

    Exact where measured, else interpolated / extrapolated as described in the module notes.
    """
    if bx < 1 or bw < 1:
        raise JpqError(f"multiplier widths must be >= 1, got bx={bx}, bw={bw}")
    xs, ws, pts = _grid(bool(x_signed), target)
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


def adder_cost(acc_bits: int, target: str = "ice40") -> tuple[int, int]:
    """(LUT, carry cells) of one ``acc_bits``-bit adder of the dense adder tree on ``target``: iCE40
    1 SB_LUT4 + 1 SB_CARRY per bit; ECP5 one CCU2C per two bits (its LUTs are inside) and no LUT4
    (``ecp5_multipliers.json``'s adders: ``ceil((n + 1) / 2)`` CCU2C for an n-bit add)."""
    table_name(target)
    if target == "ecp5":
        return 0, -(-acc_bits // 2)
    return acc_bits, acc_bits


def dense_layer_cost(n_in: int, n_out: int, bx: int, x_signed: bool, bw: int, acc_bits: int,
                     target: str = "ice40") -> dict[str, int]:
    """Estimated ``target`` cells of a dense ``n_in -> n_out`` layer built from generic multipliers.

    Returns ``lut4``, ``carry`` (iCE40: SB_LUT4, SB_CARRY; ECP5: LUT4, CCU2C), ``multipliers``
    (``n_in * n_out``) and ``adders`` (``n_out * (n_in - 1)``, each ``acc_bits`` wide, priced by
    :func:`adder_cost`).
    """
    if n_in < 1 or n_out < 1:
        raise JpqError(f"layer size must be >= 1 x 1, got {n_in} x {n_out}")
    if acc_bits < 1:
        raise JpqError(f"accumulator width must be >= 1, got {acc_bits}")
    m_lut, m_carry = multiplier_cost(bx, x_signed, bw, target)
    a_lut, a_carry = adder_cost(acc_bits, target)
    multipliers = n_in * n_out
    adders = n_out * (n_in - 1)
    return {
        "lut4": multipliers * m_lut + adders * a_lut,
        "carry": multipliers * m_carry + adders * a_carry,
        "multipliers": multipliers,
        "adders": adders,
    }
