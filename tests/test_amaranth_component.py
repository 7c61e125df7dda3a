"""QNetComponent inside a user's own Amaranth design, checked in Amaranth's simulator (no Verilator)."""

import numpy as np
from amaranth import Module, Signal
from amaranth.sim import Simulator

from jpq_hw.arith import lower_qnet, place_registers
from jpq_hw.hdl.amaranth_backend import QNetComponent
from jpq_hw.cost import ICE40
from jpq_hw.design_folder import pack, unpack
from jpq_hw.ir import IntFormat, random_qnet
from jpq_hw.reference import run_reference
from jpq_hw.vectors import make_inputs

NET = random_qnet([6, 5, 3], density=0.6, weight_bits=5, input_format=IntFormat(4, True),
                  hidden_format=IntFormat(5, False), output_format=IntFormat(9, True), seed=5)


def test_combinational_component_in_a_user_design():
    g = lower_qnet(NET, cost_model=ICE40)
    net = QNetComponent(g, place_registers(g, 0), b_in=4, b_out=9)
    top = Module()
    top.submodules.net = net
    seen = Signal(net.y.shape())  # a user's logic reading the network's output
    top.d.comb += seen.eq(net.y)
    x = make_inputs(NET, 60, seed=1)
    expected = run_reference(NET, x)
    got = []

    async def bench(ctx):
        for row in x:
            ctx.set(net.x, pack(row.tolist(), 4, True))
            got.append(unpack(ctx.get(seen), 3, 9, True))

    sim = Simulator(top)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(got), expected)


def test_pipelined_component_in_the_users_sync_domain():
    g = lower_qnet(NET, cost_model=ICE40)
    sched = place_registers(g, 2)
    net = QNetComponent(g, sched, b_in=4, b_out=9)
    top = Module()
    top.submodules.net = net
    x = make_inputs(NET, 40, seed=2)
    expected = run_reference(NET, x)
    results = []

    async def bench(ctx):
        for cycle in range(len(x) + sched.latency + 1):
            if cycle < len(x):
                ctx.set(net.x, pack(x[cycle].tolist(), 4, True))
                ctx.set(net.in_valid, 1)
            else:
                ctx.set(net.in_valid, 0)
            await ctx.tick()
            if ctx.get(net.out_valid):
                results.append((cycle, unpack(ctx.get(net.y), 3, 9, True)))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [c for c, _ in results] == [i + sched.latency - 1 for i in range(len(x))]
    assert np.array_equal(np.array([y for _, y in results]), expected)
