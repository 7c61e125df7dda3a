"""Amaranth backend: the same :class:`AdderGraph` and :class:`RegisterSchedule` as an Amaranth component.

:class:`QNetComponent` can be placed inside a user's own Amaranth design (its pipeline registers,
if any, are in the clock domain it is given, ``sync`` by default). :func:`emit_amaranth_verilog`
wraps it in a top level with exactly the ports of contract.md section 2 (``clk`` drives a
reset-less domain: the interface has no reset) and converts it to Verilog through
:mod:`~jpq_hw.hdl.netlist_verilog`.

The backend is a thin transcription: one signal per node (``n<id>``, its width from the node's
range), one register per delay of the register schedule. Amaranth's arithmetic is exact for signed and unsigned
operands, and each ``.eq`` truncates to the node's width, which its range guarantees to be enough.
"""

from __future__ import annotations

import os

from amaranth import ClockDomain, ClockSignal, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arith.graph import Add, AdderGraph, Input, Requant, bare_negation, range_width, threshold
from ..arith.optimize import DEFAULT_OPTIMIZE
from ..arith.registers import RegisterSchedule
from ..ir.checkpoint import load_checkpoint
from ..ir.qnet import QNet


def _shape(lo: int, hi: int):
    w, s = range_width(lo, hi)
    return signed(w) if s else unsigned(w)


class QNetComponent(wiring.Component):
    """A lowered network: ``x`` in, ``y`` out (plus ``in_valid`` / ``out_valid`` when pipelined).

    Element ``i`` of ``x`` is ``x[i*b_in : (i+1)*b_in]``, two's complement where signed; likewise ``y``
    (contract.md section 2). Place it in your own design::

        m.submodules.net = net = QNetComponent("model.pt", pipeline=2)   # or a QNet

    ``network`` is a :class:`~jpq_hw.ir.QNet` or a checkpoint path; it is lowered as ``jpq-hw lower``
    would with the same ``pipeline``, ``optimize`` and ``target``. The pipeline registers (if any)
    are in the clock domain ``domain``; :attr:`latency` cycles separate an input from its result.
    :meth:`from_graph` wraps an adder graph that is already lowered and scheduled.
    """

    def __init__(self, network: QNet | str | os.PathLike, *, pipeline: int = 0, optimize: str = DEFAULT_OPTIMIZE,
                 target: str = "ice40", domain: str = "sync", max_depth: int | None = None):
        from ..flow import lower_graph

        try:
            qnet = network if isinstance(network, QNet) else load_checkpoint(network)
            graph, sched = lower_graph(qnet, target=target, optimize=optimize, pipeline=pipeline, max_depth=max_depth)
        except BaseException:
            self._MustUse__silence = True  # no "created but never used" warning for a component never made
            raise
        self.qnet = qnet
        self._setup(graph, sched, qnet.input.bits, qnet.output.bits, domain)

    @classmethod
    def from_graph(cls, graph: AdderGraph, sched: RegisterSchedule, *, b_in: int, b_out: int,
                   domain: str = "sync") -> "QNetComponent":
        """The component of an adder graph already lowered and scheduled (what the flow's backend uses)."""
        self = cls.__new__(cls)
        self.qnet = None
        self._setup(graph, sched, b_in, b_out, domain)
        return self

    def _setup(self, graph: AdderGraph, sched: RegisterSchedule, b_in: int, b_out: int, domain: str) -> None:
        self.graph, self.sched, self.b_in, self.b_out, self.domain = graph, sched, b_in, b_out, domain
        members = {"x": In(len(graph.inputs) * b_in), "y": Out(len(graph.outputs) * b_out)}
        if sched.pipelined:
            members.update(in_valid=In(1), out_valid=Out(1))
        wiring.Component.__init__(self, members)

    @property
    def latency(self) -> int:
        """Cycles from ``in_valid`` to ``out_valid`` (0: combinational)."""
        return self.sched.latency

    def elaborate(self, platform):
        m = Module()
        g, s = self.graph, self.sched
        sync = m.d[self.domain] if s.pipelined else None
        # keep: yosys must map the graph as lowered, not merge chains of additions (see hdl/verilog.py)
        # (not the inputs: one that nothing reads must not keep the logic that drives it alive)
        # (nor a bare negation: yosys can lose a kept one, see arith.graph.bare_negation)
        unkept = [isinstance(n, Input) or (isinstance(n, Requant) and bare_negation(n)) for n in g.nodes]
        value = [Signal(_shape(n.lo, n.hi), name=f"n{i}", attrs={} if unkept[i] else {"keep": 1})
                 for i, n in enumerate(g.nodes)]
        delayed = [[v] for v in value]  # delayed[i][k]: node i after k registers
        for i, d in enumerate(s.delays):
            for k in range(1, d + 1):
                r = Signal(value[i].shape(), name=f"n{i}_d{k}", reset_less=True)  # data: only out_valid resets
                sync += r.eq(delayed[i][-1])
                delayed[i].append(r)

        def read(i: int, stage: int):
            node = g.nodes[i]
            if node.lo == node.hi or not s.pipelined:
                return value[i]
            return delayed[i][stage - s.stage[i]]

        for i, n in enumerate(g.nodes):
            stage = s.stage[i]
            if n.lo == n.hi:
                m.d.comb += value[i].eq(n.lo)
            elif isinstance(n, Input):
                m.d.comb += value[i].eq(self.x[n.index * self.b_in:(n.index + 1) * self.b_in])
            elif isinstance(n, Add):
                a = read(n.a, stage) << n.shift_a
                b = read(n.b, stage) << n.shift_b
                m.d.comb += value[i].eq(a - b if n.subtract else a + b)
            else:
                self._requant(m, i, n, read(n.term.node, stage), value[i])

        for j, o in enumerate(g.outputs):
            src = read(o, s.latency) if s.pipelined else value[o]
            m.d.comb += self.y[j * self.b_out:(j + 1) * self.b_out].eq(src)
        if s.pipelined:
            valid = Signal(s.latency, init=0)
            sync += valid.eq(Cat_shift(valid, self.in_valid))
            m.d.comb += self.out_valid.eq(valid[-1])
        return m

    @staticmethod
    def _requant(m: Module, i: int, n: Requant, term_value, out_signal) -> None:
        cmp = threshold(n)
        if cmp is not None:  # a 1-bit output: one comparison, as the Verilog emitter writes it
            op, c = cmp
            m.d.comb += out_signal.eq(term_value >= c if op == ">=" else term_value <= c)
            return
        acc = Signal(_shape(n.acc_lo, n.acc_hi), name=f"n{i}_acc")
        t = term_value << n.term.shift
        # off - t as ~(t - (off + 1)), as the Verilog emitter writes it (no bit of t inverted;
        # a difference is a signed value, so ~ is -x - 1)
        m.d.comb += acc.eq(~(t - (n.offset + 1)) if n.term.neg else t + n.offset)
        v = acc >> n.shift  # arithmetic for signed acc: floor division
        # like the Verilog emitter: a ReLU or a saturation test only where the range says it can act
        t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
        if n.relu and t_lo < 0:
            v, t_lo = Mux(v < 0, 0, v), 0
        if t_lo < n.out.lo:
            v = Mux(v < n.out.lo, n.out.lo, v)
        if t_hi > n.out.hi:
            v = Mux(v > n.out.hi, n.out.hi, v)
        m.d.comb += out_signal.eq(v)


def Cat_shift(reg: Signal, new):
    """``{reg[len-2:0], new}``: shift ``new`` into a register chain at bit 0."""
    from amaranth import Cat

    return Cat(new, reg[:-1]) if len(reg) > 1 else new


class _StandaloneTop(wiring.Component):
    """Contract-level wrapper: exposes ``clk`` and drives a reset-less ``sync`` domain from it."""

    def __init__(self, net: QNetComponent):
        self.net = net
        members = {"x": In(len(net.x)), "y": Out(len(net.y))}
        if net.sched.pipelined:
            members = {"clk": In(1), "in_valid": In(1), "out_valid": Out(1), **members}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = self.net
        m.d.comb += [self.net.x.eq(self.x), self.y.eq(self.net.y)]
        if self.net.sched.pipelined:
            m.domains.sync = ClockDomain("sync", reset_less=True)
            m.d.comb += [ClockSignal("sync").eq(self.clk), self.net.in_valid.eq(self.in_valid),
                         self.out_valid.eq(self.net.out_valid)]
        return m


def emit_amaranth_verilog(graph: AdderGraph, sched: RegisterSchedule, *, top: str, b_in: int, b_out: int,
                          source: str = "", version: str = "") -> str:
    """Verilog for ``graph`` produced through Amaranth: its RTLIL, flattened by yosys, written with
    every width explicit by :mod:`~jpq_hw.hdl.netlist_verilog` (lint-clean, unlike ``write_verilog``)."""
    from .netlist_verilog import amaranth_to_verilog

    net = QNetComponent.from_graph(graph, sched, b_in=b_in, b_out=b_out)
    header = [f"// Generated by jpq-hw {version} from {source or 'a network'} through its Amaranth backend "
              "(QNetComponent); do not edit.",
              f"// {len(graph.inputs)} inputs, {len(graph.outputs)} outputs; Amaranth's netlist flattened by yosys "
              "and written with every operand at its operation's width."]
    return amaranth_to_verilog(_StandaloneTop(net), top=top, header=header, prefix="net.")
