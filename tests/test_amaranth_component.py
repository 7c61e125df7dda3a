"""QNetComponent inside a user's own Amaranth design, checked in Amaranth's simulator (no Verilator)."""

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.hdl import Fragment
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
    net = QNetComponent(NET)  # lowered as `jpq-hw lower` would, with its defaults
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
    net = QNetComponent(NET, pipeline=2)
    sched = net.sched
    assert net.latency == sched.latency >= 2
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


def test_the_component_from_a_checkpoint_and_from_a_graph(tmp_path):
    from jpq_hw.errors import JpqError
    from jpq_hw.ir import save_checkpoint

    save_checkpoint(NET, tmp_path / "net.pt")
    from_file = QNetComponent(tmp_path / "net.pt", optimize="none")
    g = lower_qnet(NET, "none", cost_model=ICE40)
    assert from_file.graph.nodes == g.nodes and from_file.qnet.layers[0].name == NET.layers[0].name
    wrapped = QNetComponent.from_graph(g, place_registers(g, 0), b_in=4, b_out=9)
    assert wrapped.qnet is None and len(wrapped.x) == 6 * 4 and len(wrapped.y) == 3 * 9
    for component in (from_file, wrapped):
        Fragment.get(component, None)  # both elaborate
    for bad, words in ((dict(optimize="csd"), "unknown --optimize choice"), (dict(pipeline=-1), "--pipeline"),
                       (dict(target="xilinx"), "unknown target")):
        with pytest.raises(JpqError, match=words):
            QNetComponent(NET, **bad)
    with pytest.raises(JpqError, match="does not exist"):
        QNetComponent(tmp_path / "missing.pt")


def test_the_readme_classifier_example():
    """examples/amaranth_classifier.py: the component inside a user's design, against the reference."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "amaranth_classifier.py"
    spec = importlib.util.spec_from_file_location("amaranth_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--images", "30"]) > 0.7  # raises if any class differs from the reference's argmax


def test_stream_component_in_a_user_design():
    """StreamComponent between a user's source and sink, in Amaranth's simulator: frames back to
    back with bubbles and back-pressure, every output beat equal to the reference."""
    import random

    from amaranth.lib import stream, wiring

    from jpq_hw.hdl.amaranth_stream import StreamComponent
    from jpq_hw.ir import random_conv_qnet

    qnet = random_conv_qnet((2, 5, 6), [(3, 3, 1, 1), (2, 3, 2, 1)], dense=[3], density=0.6,
                            input_format=IntFormat(4, False), hidden_format=IntFormat(4, False),
                            output_format=IntFormat(8, True), seed=7)
    net = StreamComponent(qnet)
    top = Module()
    top.submodules.net = net
    src = stream.Signature(8).create()  # a user's source, connected as a design would
    wiring.connect(top, src, net.i)
    frames = make_inputs(qnet, 12, seed=2).reshape(-1, 2, 5, 6)  # extremes first, then random
    want = run_reference(qnet, frames).reshape(len(frames), 3)
    assert len(np.unique(want, axis=0)) > 1  # a network whose output varies
    beats = [pack([int(f[ch, r, c]) for ch in range(2)], 4, False) for f in frames for r in range(5) for c in range(6)]
    got = []
    rng = random.Random(3)

    async def source(ctx):
        for word in beats:
            while rng.random() < 0.3:  # a bubble
                ctx.set(src.valid, 0)
                await ctx.tick()
            ctx.set(src.valid, 1)
            ctx.set(src.payload, word)
            await ctx.tick().until(src.ready)
        ctx.set(src.valid, 0)

    async def sink(ctx):
        while len(got) < len(want):
            ready = rng.random() < 0.6
            ctx.set(net.o.ready, ready)
            await ctx.delay(1e-9)
            if ready and ctx.get(net.o.valid):
                got.append(unpack(ctx.get(net.o.payload), 3, 8, True))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert np.array_equal(np.array(got), want)
