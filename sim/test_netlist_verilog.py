"""The Verilog writer of the Amaranth backends (:mod:`jpq_hw.hdl.netlist_verilog`) against Amaranth.

Each design below is an Amaranth component that uses the cells the writer writes (arithmetic and
bitwise operations on signed, unsigned and mixed operands, comparisons, reductions, multiplexers, a
``Switch``, floor division and modulo by constants, shifts, flip-flops with initial values, a memory
with initial contents and a synchronous read port). Its Verilog must pass ``verilator --lint-only
-Wall`` with no warning, and a simulator running that Verilog (:func:`jpq_hw.sim.words.simulate_words`)
must give, bit for bit, what Amaranth's own simulator gives on the same random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from jpq_hw.hdl.netlist_verilog import amaranth_to_verilog

IN_BITS = 24


def _fields(x: Signal):
    a = x[0:8].as_signed()          # signed 8
    b = x[8:14]                     # unsigned 6
    c = x[14:19].as_signed()        # signed 5
    d = x[19:24]                    # unsigned 5
    return a, b, c, d


def _results(m: Module, a, b, c, d) -> list:
    """Expressions covering the cells the writer writes."""
    sel = Signal(unsigned(3))
    m.d.comb += sel.eq(d[:3])
    case = Signal(signed(9))
    with m.Switch(sel):
        with m.Case(0):
            m.d.comb += case.eq(a + 1)
        with m.Case(1, 2):
            m.d.comb += case.eq(-c)
        with m.Case(5):
            m.d.comb += case.eq(b)
        with m.Default():
            m.d.comb += case.eq(a - b)
    return [
        a + b, a - b, b - d, a * c, b * d, -a, -b, ~b, ~a, a & c, b | d, a ^ b,
        a < c, a <= b, b > d, c >= d, a == c, b != d, b < 0, d <= 31, a > 127, c >= -16, 0 > d,
        b.any(), b.all(), b.xor(), (a != 0) & (b != 0), ~b.any(),
        Mux(d[0], a, c), Mux(a < 0, b, d),
        a % 3, a // 3, b % 5, b // 5, a % 4, a // 8, c % 7,
        a >> 2, a << 3, b >> 1, a.shift_right(3), b.shift_left(2),
        case, Cat(a[7], b[2:5], Const(5, 3)),
    ]


class _Comb(wiring.Component):
    def __init__(self, out_bits: int):
        super().__init__({"x": In(IN_BITS), "y": Out(out_bits)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(Cat(*[r.as_value() if hasattr(r, "as_value") else r
                                    for r in _results(m, *_fields(self.x))]))
        return m


class _Seq(wiring.Component):
    """Registers with initial values, an accumulator and a memory (initial contents, a synchronous
    read port that reads the old word while it is written)."""

    def __init__(self):
        super().__init__({"x": In(IN_BITS), "y": Out(8 + 12 + 10 + 10 + 6)})

    def elaborate(self, platform):
        m = Module()
        a, b, c, d = _fields(self.x)
        r1 = Signal(signed(8), init=-5)
        acc = Signal(signed(12), init=77)
        m.d.sync += [r1.eq(a), acc.eq(acc + Mux(d[0], a, -c))]
        m.submodules.mem = mem = memory.Memory(shape=10, depth=12, init=[(37 * k + 3) % 1024 for k in range(12)])
        wr, rd = mem.write_port(), mem.read_port(domain="sync")
        m.d.comb += [wr.addr.eq(b % 12), wr.data.eq(Cat(a, d[:2])), wr.en.eq(d[4]), rd.addr.eq(c.as_unsigned() % 12)]
        cnt = Signal(range(6), init=3)
        m.d.sync += cnt.eq(Mux(cnt == 5, 0, cnt + 1))
        m.d.comb += self.y.eq(Cat(r1, acc, rd.data, (rd.data + wr.data)[:10], cnt, Const(0, 3)))
        return m


def _width_of_results() -> int:
    m = Module()
    m._MustUse__silence = True  # a module built only to measure the results' widths
    x = Signal(IN_BITS)
    return sum(len(r) for r in _results(m, *_fields(x)))


def _amaranth_outputs(dut, words, clocked: bool) -> list[int]:
    sim = Simulator(dut)
    got = []

    async def bench(ctx):
        for w in words:
            ctx.set(dut.x, int(w))
            if clocked:
                await ctx.tick()
            got.append(ctx.get(dut.y))

    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.simulator
@pytest.mark.parametrize("kind", ["combinational", "sequential"])
def test_written_verilog_equals_amaranth(kind, simulators, tmp_path):
    from jpq_hw.sim.runner import lint_verilog
    from jpq_hw.sim.words import simulate_words

    if not simulators:
        pytest.skip("no simulator")
    clocked = kind == "sequential"
    dut = _Seq() if clocked else _Comb(_width_of_results())
    text = amaranth_to_verilog(dut, top="top")
    f = tmp_path / "top.v"
    f.write_text(text)
    assert lint_verilog([f], "top") == []
    rng = np.random.default_rng(5)
    words = [0, (1 << IN_BITS) - 1, 0x80, 0x7F] + [int(v) for v in rng.integers(0, 1 << IN_BITS, 300)]
    # the same component again for Amaranth's simulator (a component elaborates once per use)
    want = _amaranth_outputs(_Seq() if clocked else _Comb(_width_of_results()), words, clocked)
    got = simulate_words([f], "top", "x", "y", IN_BITS, len(dut.y), words, tmp_path,
                         clock="clk" if clocked else None, latency=1 if clocked else 0,
                         tie={"rst": "1'b0"} if clocked else None)
    assert [int(g, 2) for g in got] == want
