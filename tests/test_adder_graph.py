"""The adder graph's interpreter must equal the integer reference; ranges must hold every value."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jpq_hw.arith import GraphBuilder, Term, lower_qnet, place_registers, range_width, registers
from jpq_hw.arith.graph import Add, Requant
from jpq_hw.cost import ICE40
from jpq_hw.ir import IntFormat, QLayer, QNet, random_qnet
from jpq_hw.reference import run_reference
from jpq_hw.vectors import make_inputs

formats = st.builds(IntFormat, st.integers(1, 12), st.booleans())


@st.composite
def sparse_nets(draw):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 12)) for _ in range(n_layers + 1)]
    in_fmt = draw(formats)
    layers = []
    for i in range(n_layers):
        wbits = draw(st.integers(2, 10))
        density = draw(st.floats(0.0, 1.0))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        lim = 1 << (wbits - 1)
        w = rng.integers(-lim, lim, size=(sizes[i + 1], sizes[i]))
        w = np.where(rng.random(w.shape) < density, w, 0)
        b = rng.integers(-1000, 1000, size=sizes[i + 1]) if draw(st.booleans()) else np.zeros(sizes[i + 1], int)
        layers.append(QLayer(f"l{i}", "linear", w.astype(np.int64), b.astype(np.int64), draw(st.integers(0, 12)),
                             draw(st.booleans()), draw(formats)))
    return QNet((sizes[0],), in_fmt, tuple(layers))


@settings(max_examples=150, deadline=None)
@given(sparse_nets(), st.integers(0, 2**32 - 1))
def test_lowered_graph_equals_reference(qnet, seed):
    graph = lower_qnet(qnet, cost_model=ICE40)
    x = make_inputs(qnet, 200, seed)
    assert np.array_equal(graph.evaluate(x, check_ranges=True), run_reference(qnet, x))


@settings(max_examples=60, deadline=None)
@given(sparse_nets(), st.integers(0, 8))
def test_schedule_is_consistent(qnet, every):
    graph = lower_qnet(qnet, cost_model=ICE40)
    s = place_registers(graph, every)
    if every == 0:
        assert s.latency == 0 and not any(s.delays)
        return
    assert s.latency == -(-graph.depth // every)
    for nid, users in enumerate(graph.consumers()):
        node = graph.nodes[nid]
        for u in users:
            assert s.stage[u] >= s.stage[nid]
            if node.lo != node.hi:
                assert s.delays[nid] >= s.stage[u] - s.stage[nid]
    for o in graph.outputs:
        if graph.nodes[o].lo != graph.nodes[o].hi:
            assert s.delays[o] == s.latency - s.stage[o]
    # at most `every` adder levels between two registers, and no more flip-flops than every node
    # placed as early as it can go
    within = []
    for nid, node in enumerate(graph.nodes):
        ops = (node.a, node.b) if isinstance(node, Add) else (node.term.node,) if isinstance(node, Requant) and node.term else ()
        within.append(0 if not ops and not isinstance(node, Requant) else
                      1 + max((within[u] for u in ops if s.stage[u] == s.stage[nid]), default=0))
        assert within[nid] <= every
        assert 0 <= s.stage[nid] < s.latency
    sweeps, registers.SWEEPS = registers.SWEEPS, 0
    try:
        as_early_as_possible = place_registers(graph, every)
    finally:
        registers.SWEEPS = sweeps
    assert s.register_bits(graph) <= as_early_as_possible.register_bits(graph)


def test_registers_move_a_shallow_wide_output_late():
    """``5x`` is an output one level deep beside a three-level chain: computed in the last stage it
    holds only itself once (x is held for the chain anyway), not three times."""
    b = GraphBuilder()
    x = b.input(-128, 127)
    chain = b.add(x, x, 0, 1)
    chain = b.add(chain, x, 0, 3)
    chain = b.add(chain, x, 0, 5)
    five = b.add(x, x, 0, 2)
    g = b.build([chain, five])
    s = place_registers(g, 1)
    assert s.latency == 3 and s.stage[five] == 2 and s.delays[five] == 1
    assert s.delays[x] == 2  # the chain's last adder reads x in stage 2
    # 3x, 11x, 43x (10, 12, 14 bits) one register each, 5x (11 bits) one, x (8 bits) two, the valid chain
    assert s.register_bits(g) == 10 + 12 + 14 + 11 + 2 * 8 + 3  # as early as possible: 5x held 3 times, 88


@given(st.integers(-300, 300), st.integers(0, 300))
def test_range_width_holds_exactly_the_range(lo, span):
    hi = lo + span
    bits, signed = range_width(lo, hi)
    if signed:
        assert -(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1
        assert bits == 1 or lo < -(1 << (bits - 2)) or hi > (1 << (bits - 2)) - 1
    else:
        assert lo >= 0 and hi < (1 << bits)
        assert bits == 1 or hi >= 1 << (bits - 1)


def test_exact_ranges_beat_interval_arithmetic():
    b = GraphBuilder()
    x = b.input(0, 31)
    n = b.add(x, x, 3, 0, subtract=True)  # 8x - x = 7x
    assert (b.nodes[n].lo, b.nodes[n].hi) == (0, 217)  # interval arithmetic would say [-31, 248]


def test_subtractions_are_kept_to_one_per_sum():
    b = GraphBuilder()
    xs = [b.input(-8, 7) for _ in range(6)]
    t = b.sum_terms([Term(x, i % 3, neg=i % 2 == 1) for i, x in enumerate(xs)])
    subs = [n for n in b.nodes if isinstance(n, Add) and n.subtract]
    assert len(subs) == 1 and not t.neg


def test_constant_neurons_fold_into_the_next_bias():
    # fc1 row 0 is all zero: its output is the constant relu(bias >> shift); fc2 must not spend adders on it
    w1 = np.array([[0, 0], [3, 5]])
    w2 = np.array([[7, 1]])
    net = QNet((2,), IntFormat(4, False), (
        QLayer("fc1", "linear", w1, np.array([40, 0]), 2, True, IntFormat(6, False)),
        QLayer("fc2", "linear", w2, np.array([0]), 0, False, IntFormat(10, True))))
    g = lower_qnet(net, cost_model=ICE40)
    x = make_inputs(net, 300)
    assert np.array_equal(g.evaluate(x), run_reference(net, x))
    fc2_adders = [n for n in g.nodes if isinstance(n, Add) and n.layer == 1]
    assert fc2_adders == []  # 7 * const folds into the offset; 1 * h1 is a plain wire
    assert [n.offset for n in g.nodes if isinstance(n, Requant) and n.layer == 1] == [7 * 10]


def test_dead_neurons_are_removed():
    w1 = np.array([[1, 2], [3, 5]])
    w2 = np.array([[0, 3]])  # hidden neuron 0 is never read
    net = QNet((2,), IntFormat(4, False), (
        QLayer("fc1", "linear", w1, np.zeros(2, int), 0, True, IntFormat(6, False)),
        QLayer("fc2", "linear", w2, np.zeros(1, int), 0, False, IntFormat(10, True))))
    g = lower_qnet(net, cost_model=ICE40)
    assert sum(isinstance(n, Requant) for n in g.nodes) == 2  # one hidden, one output


def test_per_weight_csd_adder_count():
    # one row, weights 7 (8-1) and 105 (128-32+8+1): 2 + 4 digits -> 5 adders
    net = QNet((2,), IntFormat(8, False), (QLayer("fc", "linear", np.array([[7, 105]]), np.zeros(1, int), 0, False,
                                                   IntFormat(16, True)),))
    assert lower_qnet(net, "none", cost_model=ICE40).stats()["adders"] == 5


@pytest.mark.parametrize("seed", range(3))
def test_random_networks_lower_exactly(seed):
    net = random_qnet([64, 32, 10], density=0.2, seed=seed)
    x = make_inputs(net, 500, seed)
    assert np.array_equal(lower_qnet(net, cost_model=ICE40).evaluate(x), run_reference(net, x))
