"""The layer kinds without weights (``hamming_cost``, ``box_sum``, ``argmin``): their integer semantics against a
direct per-pixel reading of docs/contract.md, the checkpoint format, the refusals, the stream stages
and their timing, the cost model, and the 1-bit threshold output stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpq_hw.arith.graph import threshold
from jpq_hw.cli import main
from jpq_hw.cost import ICE40
from jpq_hw.cost.stream import argmin_cells, argmin_index_mux_bits, hamming_cells
from jpq_hw.errors import JpqError
from jpq_hw.ir import (ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, QLayer, QNet, load_checkpoint, qnet_from_dict,
                       qnet_to_dict, random_stereo_qnet, save_checkpoint)
from jpq_hw.reference import run_layer, run_reference
from jpq_hw.stream import ArgminStage, HammingStage, check_stream, lower_stream
from jpq_hw.stream.timing import simulate_handshakes


def _hamming_by_pixel(x: np.ndarray, d_count: int, hi: int) -> np.ndarray:
    """contract.md, hamming_cost, one pixel at a time."""
    f = x.shape[0] // 2
    _, h, w = x.shape
    y = np.zeros((d_count, h, w), dtype=np.int64)
    for d in range(d_count):
        for r in range(h):
            for c in range(w):
                cost = f if c - d < 0 else sum(int(x[i, r, c]) ^ int(x[f + i, r, c - d]) for i in range(f))
                y[d, r, c] = min(cost, hi)
    return y


@settings(max_examples=40, deadline=None)
@given(f=st.integers(1, 5), d=st.integers(1, 6), h=st.integers(1, 4), w=st.integers(1, 8), bits=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_hamming_cost_is_the_contract(f, d, h, w, bits, seed):
    d = min(d, w)
    x = np.random.default_rng(seed).integers(0, 2, size=(2, 2 * f, h, w))
    layer = HammingCostLayer("cost", d, IntFormat(bits, False))
    y = run_layer(layer, x)
    for b in range(2):
        assert np.array_equal(y[b], _hamming_by_pixel(x[b], d, layer.out.hi))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 9), signed=st.booleans(), seed=st.integers(0, 2**16))
def test_argmin_takes_the_first_minimum(c, signed, seed):
    rng = np.random.default_rng(seed)
    lo, hi = (-3, 3) if signed else (0, 4)  # few values: many ties
    x = rng.integers(lo, hi, size=(3, c, 2, 5), endpoint=True)
    y = run_layer(ArgminLayer("wta", IntFormat(4, False)), x)
    for b, r, col in np.ndindex(3, 2, 5):
        v = list(x[b, :, r, col])
        assert y[b, 0, r, col] == v.index(min(v))


@settings(max_examples=30, deadline=None)
@given(k=st.sampled_from([1, 3, 5]), c=st.integers(1, 3), signed=st.booleans(), bits=st.integers(2, 8),
       seed=st.integers(0, 2**16))
def test_box_sum_is_a_conv_of_ones_per_channel(k, c, signed, bits, seed):
    """box_sum equals the conv2d of contract.md section 1 with a kernel of ones on each channel alone."""
    rng = np.random.default_rng(seed)
    fmt = IntFormat(bits, signed)
    x = rng.integers(-4 if signed else 0, 5, size=(2, c, 6, 7))
    box = BoxSumLayer("box", k, fmt)
    w = np.zeros((c, c, k, k), np.int64)
    for i in range(c):
        w[i, i] = 1
    conv = QLayer("conv", "conv2d", w, np.zeros(c, np.int64), 0, False, fmt, 1, (k - 1) // 2)
    assert np.array_equal(run_layer(box, x), run_layer(conv, x))


def test_checkpoint_round_trip_and_validation(tmp_path):
    qnet = random_stereo_qnet(5, 9, [(3, 3)], disparities=4, seed=1)
    assert [layer.kind for layer in qnet.layers] == ["conv2d", "hamming_cost", "conv2d", "argmin"]
    save_checkpoint(qnet, tmp_path / "s.pt")
    back = load_checkpoint(tmp_path / "s.pt")
    assert [layer.kind for layer in back.layers] == ["conv2d", "hamming_cost", "conv2d", "argmin"]
    assert back.layers[1].disparities == 4 and back.output_shape == (1, 5, 9)
    x = np.random.default_rng(0).integers(0, 256, size=(3, 2, 5, 9))
    assert np.array_equal(run_reference(qnet, x), run_reference(back, x))
    boxed = random_stereo_qnet(5, 9, [(3, 3)], disparities=4, aggregate="box_sum", box=5, seed=1)
    save_checkpoint(boxed, tmp_path / "b.pt")
    again = load_checkpoint(tmp_path / "b.pt")
    assert again.layers[2].kind == "box_sum" and again.layers[2].size == 5
    assert qnet_to_dict(boxed)["layers"][2] == {"name": "aggregate", "kind": "box_sum", "size": 5, "out_bits": 7,
                                                "out_signed": False}
    d = qnet_to_dict(qnet)
    assert d["layers"][1] == {"name": "cost", "kind": "hamming_cost", "disparities": 4, "out_bits": 2,
                              "out_signed": False}
    assert d["layers"][3] == {"name": "disparity", "kind": "argmin", "out_bits": 2, "out_signed": False}


def _feat(out_fmt=IntFormat(1, False), channels=4):
    return QLayer("f", "conv2d", np.ones((channels, 2, 3, 3), np.int64), np.zeros(channels, np.int64), 0, True,
                  out_fmt, 1, 1)


@pytest.mark.parametrize("layers, message", [
    ([_feat(IntFormat(2, False)), HammingCostLayer("c", 2, IntFormat(3, False))], "reads binary features"),
    ([_feat(channels=3), HammingCostLayer("c", 2, IntFormat(3, False))], "even number of channels"),
    ([_feat(), HammingCostLayer("c", 9, IntFormat(3, False))], "9 disparities for a frame 8 pixels wide"),
    ([_feat(), HammingCostLayer("c", 2, IntFormat(3, True))], "output is unsigned"),
    ([_feat(), HammingCostLayer("c", 5, IntFormat(3, False)), ArgminLayer("a", IntFormat(2, False))],
     "needs an unsigned output of at least 3 bits"),
])
def test_bad_layers_are_refused(layers, message):
    with pytest.raises(JpqError, match=message):
        QNet((2, 6, 8), IntFormat(8, False), tuple(layers))


def test_flat_networks_refuse_them():
    with pytest.raises(JpqError, match="needs a \\[C, H, W\\] input"):
        QNet((16,), IntFormat(1, False), (ArgminLayer("a", IntFormat(4, False)),))
    d = qnet_to_dict(random_stereo_qnet(5, 9, [(3, 3)], seed=1))
    d["layers"][1]["disparities"] = 0
    with pytest.raises(JpqError, match="disparities must be an integer >= 1"):
        qnet_from_dict(d)
    d = qnet_to_dict(random_stereo_qnet(5, 9, [(3, 3)], aggregate="box_sum", seed=1))
    d["layers"][2]["size"] = 4
    with pytest.raises(JpqError, match="size must be an odd integer"):
        qnet_from_dict(d)


@pytest.mark.parametrize("spec", [
    dict(height=6, width=10, convs=[(3, 3), (4, 3)], disparities=5),
    dict(height=5, width=8, convs=[(5, 5)], disparities=8, cost_bits=2, aggregate="conv"),
    dict(height=4, width=7, convs=[(2, 3)], disparities=1, aggregate=None),
    dict(height=4, width=7, convs=[(2, 3)], disparities=3, aggregate=None, argmin=False),
    dict(height=7, width=9, convs=[(3, 3)], disparities=4, cost_bits=2, aggregate="box_sum", box=5),
    dict(height=5, width=6, convs=[(2, 3)], disparities=3, aggregate="box_sum", box=3),
])
def test_stream_stages_equal_reference(spec):
    qnet = random_stereo_qnet(**spec, seed=7)
    net = lower_stream(qnet, cost_model=ICE40)
    x = np.random.default_rng(1).integers(0, 256, size=(6, *qnet.input_shape))
    check_stream(net, qnet, x)
    kinds = [type(s) for s in net.stages]
    assert HammingStage in kinds and (ArgminStage in kinds) == spec.get("argmin", True)
    t = simulate_handshakes(net)
    assert t.cycles_per_frame == spec["height"] * spec["width"]  # one pixel per clock, no padding tail cost


def test_lower_reports_the_new_stages(tmp_path):
    save_checkpoint(random_stereo_qnet(6, 12, [(3, 3)], disparities=4, seed=2), tmp_path / "s.pt")
    assert main(["lower", str(tmp_path / "s.pt"), "-o", str(tmp_path / "out")]) == 0
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["kind"] for s in r["layers"]] == ["conv2d", "hamming_cost", "conv2d", "argmin"]
    cost = r["layers"][1]
    assert cost["nonzero_weights"] == 0 and cost["adders"] == 0 and cost["lut4_estimate"] > 0
    assert r["output"] == {"channels": 1, "height": 6, "width": 12, "bits": 2, "signed": False}
    assert "Hamming cost, 4 disparities" in (tmp_path / "out" / "report.md").read_text()


def test_cost_of_the_new_stages_follows_yosys():
    """Spot checks against yosys synth_ice40 of the library modules (measured; see cost/stream.py)."""
    assert (hamming_cells(8, 16, 185, 4).lut4, hamming_cells(8, 16, 185, 4).carry, hamming_cells(8, 16, 185, 4).ff) \
        == (316, 54, 208)
    assert hamming_cells(2, 16, 64, 4).carry == 4  # a 2-bit popcount needs no carry chain
    a = argmin_cells(16, 8, False, 4)
    assert (a.lut4, a.carry, a.ff) == (190, 120, 5)
    assert argmin_cells(16, 8, True, 4).lut4 == 233 and argmin_cells(16, 2, False, 4).carry == 0
    assert argmin_index_mux_bits(16) == 11 and argmin_index_mux_bits(2) == 0


@pytest.mark.parametrize("neg", [False, True])
@pytest.mark.parametrize("shift", [0, 3])
def test_one_bit_outputs_are_thresholds(neg, shift):
    """threshold(n) agrees with the requantisation of contract.md on every accumulator value."""
    from jpq_hw.arith.graph import Requant, Term, requant_value

    lo, hi = -50, 70
    for offset in (-9, 0, 5, 17):
        for tshift in (0, 2):
            acc = [(-(v << tshift) if neg else (v << tshift)) + offset for v in range(lo, hi + 1)]
            n = Requant(Term(0, tshift, neg), offset, shift, True, IntFormat(1, False), min(acc), max(acc), 0, 1, 1, 0)
            op, c = threshold(n)
            for v, a in zip(range(lo, hi + 1), acc):
                want = requant_value(a, shift, True, IntFormat(1, False))
                assert want == int(v >= c if op == ">=" else v <= c), (v, a, op, c)
