"""Sharing passes (MCM, CMVM/CSE, ``best``): every graph equals the reference, and sharing pays."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jpq_hw.arith import GraphBuilder, lower_qnet
from jpq_hw.arith.cmvm import TieBreak, cse
from jpq_hw.arith.csd import csd_cost
from jpq_hw.cost import ICE40
from jpq_hw.arith.mcm import mcm_graph, mcm_plan, mcm_residual, odd_part
from jpq_hw.arith.graph import adder_bits
from jpq_hw.arith.plan import Plan, build_plan, csd_plan
from jpq_hw.arith.optimize import (DEPTH_RATE, OPTIMIZE, PREFILTER, check_optimize, choose_plan, csd_adders,
                                   csd_lengths, lower_matrix, merge_rows, orient_plan, pair_work)
from jpq_hw.errors import JpqError
from jpq_hw.ir import IntFormat, QLayer, QNet
from jpq_hw.reference import run_reference
from jpq_hw.vectors import make_inputs

WIDE = IntFormat(32, True)


def sparse_matrix(rng, n_out, n_in, density, bits):
    lim = 1 << (bits - 1)
    w = rng.integers(-lim, lim, size=(n_out, n_in), endpoint=False)
    return np.where(rng.random(w.shape) < density, w, 0).astype(np.int64)


def build_matrix(optimize, weight, ranges):
    """An AdderGraph computing ``weight @ x`` exactly (one unclamped output stage per row)."""
    b = GraphBuilder()
    inputs = [b.input(lo, hi) for lo, hi in ranges]
    terms, _ = lower_matrix(b, weight, inputs, optimize, ICE40)
    assert len(terms) == weight.shape[0]
    outs = [b.requant(t, 0, 0, False, WIDE, 0) for t in terms]
    return b.build(outs), b, len(inputs), terms


def random_inputs(rng, ranges, n=64):
    lo = np.array([r[0] for r in ranges])
    hi = np.array([r[1] for r in ranges])
    x = rng.integers(lo, hi, size=(n, len(ranges)), endpoint=True)
    x[0], x[1] = lo, hi  # the extremes exercise the ranges
    return x


@st.composite
def matrices(draw):
    n_out = draw(st.integers(1, 10))
    n_in = draw(st.integers(1, 10))
    bits = draw(st.integers(2, 10))
    density = draw(st.sampled_from([0.05, 0.2, 0.5, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = sparse_matrix(rng, n_out, n_in, density, bits)
    if draw(st.booleans()) and n_out > 1:  # repeated rows, negated and shifted
        w[-1] = -(w[0] << draw(st.integers(0, 3)))
    ranges = []
    for _ in range(n_in):
        fmt = IntFormat(draw(st.integers(1, 12)), draw(st.booleans()))
        ranges.append((fmt.lo, fmt.hi) if draw(st.booleans()) else (fmt.lo // 2, fmt.hi))
    return w, ranges


@settings(max_examples=60, deadline=None)
@given(matrices(), st.integers(0, 2**32 - 1))
def test_every_optimize_choice_equals_the_reference(case, seed):
    w, ranges = case
    x = random_inputs(np.random.default_rng(seed), ranges)
    want = x @ w.T
    for name in OPTIMIZE:
        graph, *_ = build_matrix(name, w, ranges)
        assert np.array_equal(graph.evaluate(x, check_ranges=True), want), name


@settings(max_examples=60, deadline=None)
@given(matrices())
def test_plans_compute_the_matrix(case):
    w, _ = case
    p = csd_plan(w)
    assert np.array_equal(p.matrix(), w)
    ties = [cse(p, tie_break=t) for t in TieBreak] + [cse(p, tie_break=TieBreak.RANDOM, seed=123)]
    for plan in (*ties, mcm_plan(w), mcm_residual(cse(p)), cse(mcm_plan(w))):
        assert np.array_equal(plan.matrix(), w)
        assert plan.adders <= p.adders + len(plan.defs)  # never a term more than it started with


@st.composite
def sparse_nets(draw):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 12)) for _ in range(n_layers + 1)]
    layers = []
    for i in range(n_layers):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        w = sparse_matrix(rng, sizes[i + 1], sizes[i], draw(st.floats(0.0, 1.0)), draw(st.integers(2, 9)))
        b = rng.integers(-1000, 1000, size=sizes[i + 1])
        layers.append(QLayer(f"l{i}", "linear", w, b.astype(np.int64), draw(st.integers(0, 10)), draw(st.booleans()),
                             IntFormat(draw(st.integers(2, 12)), draw(st.booleans()))))
    return QNet((sizes[0],), IntFormat(draw(st.integers(1, 10)), draw(st.booleans())), tuple(layers))


@settings(max_examples=40, deadline=None)
@given(sparse_nets(), st.integers(0, 2**32 - 1))
def test_lowered_networks_equal_the_reference(qnet, seed):
    x = make_inputs(qnet, 100, seed)
    want = run_reference(qnet, x)
    for name in OPTIMIZE:
        assert np.array_equal(lower_qnet(qnet, name, cost_model=ICE40).evaluate(x, check_ranges=True), want), name


def test_mcm_graph_builds_every_constant_from_earlier_ones():
    for consts in ([105, 621, 815, 831], list(range(1, 300, 7)), [3], [1, 2, 4], [45, 45 * 64], [32767, 21845]):
        values = {1}
        for f, (a, la, b, lb, sg) in mcm_graph(consts):
            assert a in values and b in values and f == (a << la) + sg * (b << lb) and f % 2 == 1
            values.add(f)
        assert {odd_part(c)[0] for c in consts if c} <= values


def test_mcm_is_never_worse_than_csd_for_one_constant():
    for c in range(1, 1024, 2):
        assert len(mcm_graph([c])) <= csd_cost(c)
    # and it finds non-CSD decompositions: 45 = 5 * 9 in two adders (CSD needs three)
    assert len(mcm_graph([45])) == 2 < csd_cost(45)


def test_mcm_on_a_literature_fir_set_is_near_its_lower_bound():
    # MCM benchmark DEMPSTER02_25 (bench/fir_sets.py): 13 unique odd fundamentals, 44 adders in CSD
    coeffs = [-710, 327, 505, 582, 398, -35, -499, -662, -266, 699, 1943, 2987, 3395]
    unique = {odd_part(c)[0] for c in coeffs} - {1}
    assert len(unique) == 13 and sum(csd_cost(c) for c in unique) == 44
    assert 13 <= len(mcm_graph(coeffs)) <= 17


def test_csd_counting_helpers_agree_with_the_plan():
    rng = np.random.default_rng(3)
    w = sparse_matrix(rng, 30, 40, 0.2, 9)
    assert csd_adders(w) == csd_plan(w).adders
    lengths = csd_lengths(w)
    assert lengths.sum() == sum(len(r) for r in csd_plan(w).rows)
    assert pair_work(w) == sum(len(r) * (len(r) - 1) // 2 for r in csd_plan(w).rows)


@pytest.mark.parametrize("shape,density,bits", [((64, 64), 0.05, 8), ((64, 64), 0.10, 8), ((16, 144), 0.10, 8),
                                                ((64, 64), 0.10, 4), ((32, 96), 0.05, 8)])
def test_sharing_never_costs_more_adders_than_csd(shape, density, bits):
    w = sparse_matrix(np.random.default_rng(7), *shape, density, bits)
    ranges = [(-128, 127)] * shape[1]
    adders = {}
    for name in OPTIMIZE:
        graph, *_ = build_matrix(name, w, ranges)
        adders[name] = graph.stats()["adders"]
    assert adders["mcm"] <= adders["none"] and adders["cmvm"] <= adders["none"] and adders["best"] <= adders["none"]
    if bits == 8 and density >= 0.05:
        assert adders["best"] <= 0.8 * adders["none"]


def test_best_trades_depth_for_cells_at_its_rate_and_builds_it():
    w = sparse_matrix(np.random.default_rng(11), 40, 40, 0.1, 8)
    ranges = [(0, 255)] * 40
    winner, cands = choose_plan(w, ranges, "best", ICE40)
    priced = [c for c in cands if c.cost is not None]
    assert len(priced) >= 2 and winner in priced
    fewest = min(c.adders for c in cands)
    assert all(c.cost is not None for c in cands if c.adders <= fewest)  # the fewest-adder plan is priced
    def score(c):
        return c.cost * (1 + DEPTH_RATE) ** c.depth

    assert score(winner) == min(score(c) for c in priced)
    assert all(c.cost >= winner.cost or c.depth > winner.depth for c in priced)  # none cheaper and as shallow
    # the real build costs exactly what the scratch build said
    b = GraphBuilder()
    inputs = [b.input(lo, hi) for lo, hi in ranges]
    terms = build_plan(b, winner.plan, inputs, ICE40, winner.flips)
    assert ICE40.price(b, terms) == winner.cost


def test_small_layers_price_plans_with_more_adders_too():
    """Six taps of 12-bit constants: Hcub's MCM needs the fewest adders (9), but they are deep and
    wide; writing each constant in its own CSD digits shares nothing, takes 17 adders, and costs
    fewer cells (each sums shifted copies of the 8-bit input, the low bits passing through). On a
    layer this small every candidate is priced (a pre-filter on adder counts would have dropped
    CSD), each as it would be built (oriented), and the lowered circuit costs exactly the winner's
    price."""
    w = np.array([[292], [-217], [-2021], [178], [1116], [989]])
    ranges = [(-128, 127)]
    winner, cands = choose_plan(w, ranges, "best", ICE40)
    assert all(c.cost is not None for c in cands)
    fewest = min(c.adders for c in cands)
    assert winner.adders > PREFILTER * fewest + 2
    assert winner.cost < min(c.cost for c in cands if c.adders <= PREFILTER * fewest + 2)
    b = GraphBuilder()
    terms, used = lower_matrix(b, w, [b.input(-128, 127)], "best", ICE40)
    assert used is winner or used.name == winner.name
    assert ICE40.price(b, terms) == winner.cost
    graph = b.build([b.requant(t, 0, 0, False, WIDE, 0) for t in terms])
    x = np.arange(-128, 128)[:, None]
    assert np.array_equal(graph.evaluate(x), x @ w.T)


def test_depth_is_traded_for_a_sliver_of_cells_and_bounded_on_request():
    w = sparse_matrix(np.random.default_rng(5), 12, 40, 0.3, 8)  # a plan 4 levels deeper costs 0.5 % less
    ranges = [(-128, 127)] * 40
    free, cands = choose_plan(w, ranges, "best", ICE40)
    priced = [c for c in cands if c.cost is not None]
    assert free.depth <= max(c.depth for c in priced) - 3 and free.cost <= min(c.cost for c in priced) * 1.01
    tight, cands = choose_plan(w, ranges, "best", ICE40, max_depth=7)
    assert tight.depth <= 7 and "cse-depth" in [c.name for c in cands]
    impossible, cands = choose_plan(w, ranges, "best", ICE40, max_depth=2)  # rows of 45 digits need 6 levels
    assert impossible.depth == min(c.depth for c in cands if c.depth is not None) >= 6
    b = GraphBuilder()
    inputs = [b.input(lo, hi) for lo, hi in ranges]
    terms, _ = lower_matrix(b, w, inputs, "best", ICE40, max_depth=7)
    x = random_inputs(np.random.default_rng(1), ranges)
    graph = b.build([b.requant(t, 0, 0, False, WIDE, 0) for t in terms])
    assert np.array_equal(graph.evaluate(x), x @ w.T)


def test_best_is_deterministic():
    w = sparse_matrix(np.random.default_rng(5), 24, 30, 0.15, 8)
    g1, *_ = build_matrix("best", w, [(-128, 127)] * 30)
    g2, *_ = build_matrix("best", w, [(-128, 127)] * 30)
    assert g1.nodes == g2.nodes and g1.outputs == g2.outputs


def test_equal_rows_are_computed_once():
    base = np.array([[3, 0, -5, 7, 0, 9]])
    w = np.concatenate([base, -base, base * 4, np.zeros_like(base), -base * 2])
    rows = merge_rows(w)
    assert len(rows.unique) == 1 and rows.rep == (0, 0, 0, -1, 0)
    graph, *_ = build_matrix("cmvm", w, [(-8, 7)] * 6)
    single, *_ = build_matrix("cmvm", base, [(-8, 7)] * 6)
    assert graph.stats()["adders"] == single.stats()["adders"]
    x = random_inputs(np.random.default_rng(0), [(-8, 7)] * 6)
    assert np.array_equal(graph.evaluate(x), x @ w.T)


def test_subtraction_orientation_follows_the_cost():
    # 7x inside a sum: built as x - (x << 3) (the low three bits pass through, only the rest
    # needs the carry chain) and read negated: the negation moves into the sum's negative side
    b = GraphBuilder()
    x, y = b.input(0, 255), b.input(0, 255)
    [t] = build_plan(b, Plan(2, [(0, 3, 0, 0, -1)], [[(2, 0, 1), (1, 0, 1)]]), [x, y], ICE40)
    sub = [n for n in b.nodes if getattr(n, "subtract", False)]
    assert len(sub) == 2 and sub[0].shift_b == 3 and (sub[0].lo, sub[0].hi) == (-7 * 255, 0)
    # 7x as an output of its own: (x << 3) - x, for a negated output would make the output
    # stage subtract as well
    b = GraphBuilder()
    x = b.input(0, 255)
    [t] = build_plan(b, Plan(1, [(0, 3, 0, 0, -1)], [[(1, 0, 1)]]), [x], ICE40)
    n = b.nodes[t.node]
    assert not t.neg and n.subtract and n.shift_a == 3 and (n.lo, n.hi) == (0, 7 * 255)


def _priced_build(plan, ranges, flips=None):
    b = GraphBuilder()
    inputs = [b.input(lo, hi) for lo, hi in ranges]
    terms = build_plan(b, plan, inputs, ICE40, flips)
    return b, terms, ICE40.price(b, terms)


def test_orientation_for_the_whole_circuit():
    """105x, 621x, 815x, 831x (an FIR set): the local rule builds 3x as x - (x << 2) (its two low
    bits pass through), and the negation reaches 815x, a row of negated terms only, which its output
    stage then negates at full width (the MCM plan). Oriented for the whole circuit no output is
    negated, the build is cheaper, no deeper, and exact."""
    w = np.array([[105], [621], [815], [831]])
    ranges = [(-128, 127)]
    plan = mcm_plan(w)
    lb, local_terms, local = _priced_build(plan, ranges)
    assert any(t.neg for t in local_terms)
    flips = orient_plan(plan, ranges, ICE40)
    b, terms, oriented = _priced_build(plan, ranges, flips)
    assert not any(t.neg for t in terms) and oriented < local
    graph = b.build([b.requant(t, 0, 0, False, WIDE, 0) for t in terms])
    assert graph.depth <= lb.build([lb.requant(t, 0, 0, False, WIDE, 0) for t in local_terms]).depth
    x = np.arange(-128, 128)[:, None]
    assert np.array_equal(graph.evaluate(x), x @ w.T)
    # lower_matrix builds choose_plan's winner as oriented when it was ranked
    winner, _ = choose_plan(w, ranges, "best", ICE40)
    assert winner.flips is not None
    b = GraphBuilder()
    built = build_plan(b, winner.plan, [b.input(-128, 127)], ICE40, winner.flips)
    b = GraphBuilder()
    assert lower_matrix(b, w, [b.input(-128, 127)], "best", ICE40)[0] == built
    # with no work allowed, the local rule's orientation
    assert orient_plan(plan, ranges, ICE40, work=0) == {}
    # work that one pass would not fit: nothing is built or priced at all
    n = plan.n_inputs + len(plan.defs)

    class NoPricing:
        def __getattr__(self, name):
            raise AssertionError(f"orient_plan asked the cost model for {name}")

    assert orient_plan(plan, ranges, NoPricing(), work=3 * n - 1) == {}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 12), st.floats(0.1, 1.0))
def test_orientation_is_exact_and_never_dearer(seed, n_in, n_out, density):
    rng = np.random.default_rng(seed)
    w = sparse_matrix(rng, n_out, n_in, density, 8)
    if not w.any():
        return
    ranges = [(-128, 127)] * n_in
    winner, _ = choose_plan(w, ranges, "best", ICE40)
    _, _, local = _priced_build(winner.plan, ranges)
    b, terms, oriented = _priced_build(winner.plan, ranges, orient_plan(winner.plan, ranges, ICE40))
    assert oriented <= local
    graph = b.build([b.requant(t, 0, 0, False, WIDE, 0) if t is not None else b.requant(None, 0, 0, False, WIDE, 0)
                     for t in terms])
    x = random_inputs(rng, ranges)
    assert np.array_equal(graph.evaluate(x), x @ w.T)


def test_wide_weights_fall_back_to_csd_chains():
    rng = np.random.default_rng(2)
    w = rng.integers(-(1 << 26), 1 << 26, size=(6, 5))  # 27-bit weights: wider than mcm.MAX_BITS
    w[rng.random(w.shape) < 0.3] = 0
    ranges = [(-8, 7)] * 5
    x = random_inputs(rng, ranges)
    for name in OPTIMIZE:
        graph, *_ = build_matrix(name, w, ranges)
        assert np.array_equal(graph.evaluate(x), x @ w.T), name


def test_weighted_cse_and_cross_only_cse_compute_the_matrix():
    w = sparse_matrix(np.random.default_rng(9), 20, 30, 0.2, 8)
    p = csd_plan(w)
    for plan in (cse(p, weighted=True, ranges=[(0, 255)] * 30, tie_break=TieBreak.DEEP_FIRST), cse(p, same_var=False),
                 mcm_residual(cse(p, same_var=False))):
        assert np.array_equal(plan.matrix(), w)
    assert all(a != b for a, _, b, _, _ in cse(p, same_var=False).defs)


def test_an_unknown_optimize_choice_is_one_jpq_error_everywhere():
    """The same bad value gives the same user-facing error from every entry point."""
    qnet = QNet((2,), IntFormat(4, True), (QLayer("l", "linear", np.array([[1, 3]]), np.zeros(1, np.int64), 0, False,
                                                  WIDE),))
    b = GraphBuilder()
    inputs = [b.input(-8, 7), b.input(-8, 7)]
    calls = [lambda: check_optimize("csd"), lambda: lower_qnet(qnet, "csd", cost_model=ICE40),
             lambda: lower_matrix(b, np.array([[1, 3]]), inputs, "csd", ICE40),
             lambda: choose_plan(np.array([[1, 3]]), [(-8, 7)] * 2, "csd", ICE40)]
    for call in calls:
        with pytest.raises(JpqError, match=r"unknown --optimize choice 'csd' \(known: best, mcm, cmvm, none\)"):
            call()


class FreeNegation:
    """A cost model unlike iCE40's: negating an output costs nothing (only the adders count)."""

    name = "free-negation"

    def adder(self, bits, subtract):
        return 2 * bits if subtract else bits

    def negation(self, width):
        return 0


def test_the_optimiser_follows_the_cost_model_it_is_given():
    # 7x as an output of its own (as in test_subtraction_orientation_follows_the_cost): iCE40 pays for
    # a negated output, so it builds (x << 3) - x; where negation is free, the narrower subtractor
    # x - (x << 3) (its low three bits pass through) read negated is cheaper
    plan = Plan(1, [(0, 3, 0, 0, -1)], [[(1, 0, 1)]])
    built = {}
    for model in (ICE40, FreeNegation()):
        b = GraphBuilder()
        [t] = build_plan(b, plan, [b.input(0, 255)], model)
        node = b.nodes[t.node]
        built[model.name] = (node, t.neg, model.adder(adder_bits(node), True) + (model.negation(12) if t.neg else 0))
    (ice, ice_neg, ice_cost), (free, free_neg, free_cost) = built["ice40"], built["free-negation"]
    assert not ice_neg and ice.shift_a == 3 and ice.shift_b == 0 and ice_cost == 2 * 11  # 11-bit subtractor
    assert free_neg and free.shift_a == 0 and free.shift_b == 3 and free_cost == 2 * (12 - 3)  # [-1785, 0], 12 bits


@given(st.integers(0, (1 << 26) - 1), st.integers(0, (1 << 26) - 1), st.integers(-63, 63), st.booleans())
def test_pattern_keys_decode_to_what_was_encoded(a, b, d, neg):
    from jpq_hw.arith.cmvm import _pattern, _pattern_key

    assert _pattern(_pattern_key(a, b, d, int(neg))) == (a, b, d, int(neg))
    keys = _pattern_key(np.array([a, b]), np.array([b, a]), np.array([d, -d]), np.array([neg, not neg]))
    assert [tuple(map(int, x)) for x in zip(*_pattern(keys))] == [(a, b, d, int(neg)), (b, a, -d, int(not neg))]
