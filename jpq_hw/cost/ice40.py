"""iCE40 cost estimate of a lowered network: SB_LUT4, SB_CARRY and flip-flops per layer.

The model counts one-bit cells, as ``yosys synth_ice40`` maps them:

- An adder bit is one SB_LUT4 (the sum) plus one SB_CARRY; a subtractor bit costs about two
  SB_LUT4 (the inverted operand needs its own LUT) plus one SB_CARRY. Low bits that pass through
  (:func:`~jpq_hw.arith.graph.adder_bits`) cost nothing.
- A Requant node adds its offset (bias plus rounding) with a carry chain over the accumulator bits
  above the shared trailing zeros, then saturates: each clamp condition is a comparison against a
  constant (about one LUT per two bits of the compared value) plus a multiplexer LUT per output bit.
- A register bit is one flip-flop (SB_DFF); the valid chain adds ``latency`` more.

The sim tests synthesize every design with yosys and print this estimate next to the real counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arith.graph import Add, AdderGraph, Requant, adder_bits, range_width
from ..arith.pipeline import Schedule

SUB_LUT_PER_BIT = 2


@dataclass
class LayerCost:
    name: str
    adders: int = 0
    subtractors: int = 0
    adder_bits: int = 0
    lut4: int = 0
    carry: int = 0
    ff: int = 0
    depth: int = 0  # adder levels this layer adds (its Requant stage included)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NetworkCost:
    layers: list[LayerCost] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(getattr(layer, key) for layer in self.layers)


def _trailing_zeros(v: int) -> int:
    return (v & -v).bit_length() - 1 if v else 1 << 30


def requant_cells(n: Requant) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) estimate of one output stage."""
    if n.lo == n.hi:
        return 0, 0
    t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
    wt, st = range_width(t_lo, t_hi)
    wa = wt + n.shift
    lut = carry = 0
    off = n.offset % (1 << wa)
    if off or n.term.neg:
        free = min(n.term.shift, _trailing_zeros(off))
        bits = max(wa - free, 0)
        carry += bits
        lut += bits * (SUB_LUT_PER_BIT if n.term.neg else 1)
    w, _ = range_width(n.lo, n.hi)
    conditions = 0
    if n.relu and t_lo < 0:
        conditions += 1  # the sign bit itself: no comparator
        t_lo = 0
    for needed in (t_hi > n.out.hi, t_lo < n.out.lo):
        if needed:
            conditions += 1
            lut += (wt + 1) // 2
    lut += w * ((conditions + 1) // 2)
    return lut, carry


def estimate(graph: AdderGraph, sched: Schedule) -> NetworkCost:
    """Per-layer cell estimate of ``graph`` scheduled by ``sched``."""
    layers = [LayerCost(name) for name in graph.layer_names] or [LayerCost("0")]
    for i, n in enumerate(graph.nodes):
        w, _ = range_width(n.lo, n.hi)
        if isinstance(n, Add):
            c = layers[n.layer]
            bits = adder_bits(graph, n)
            c.adders += 1
            c.adder_bits += bits
            c.carry += bits
            if n.subtract:
                c.subtractors += 1
                c.lut4 += SUB_LUT_PER_BIT * bits
            else:
                c.lut4 += bits
            c.depth = max(c.depth, n.level)
        elif isinstance(n, Requant):
            c = layers[n.layer]
            lut, carry = requant_cells(n)
            c.lut4 += lut
            c.carry += carry
            c.depth = max(c.depth, n.level)
        else:
            c = layers[0]
        c.ff += w * sched.delays[i]
    layers[-1].ff += sched.latency
    previous_end = 0
    for c in layers:  # global level at the end of each layer -> levels added by the layer
        c.depth, previous_end = max(c.depth - previous_end, 0), max(c.depth, previous_end)
    return NetworkCost(layers)
