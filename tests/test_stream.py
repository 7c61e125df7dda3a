"""Image networks as streams, without a simulator: the stages against the reference, the window's
position logic, the handshake timing, the report, and the networks that cannot stream."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jpq_hw.cli import main
from jpq_hw.cost import ICE40
from jpq_hw.errors import JpqError
from jpq_hw.ir import IntFormat, QLayer, QNet, random_conv_qnet, save_checkpoint
from jpq_hw.reference import run_reference
from jpq_hw.stream import ConvStage, check_stream, lower_stream
from jpq_hw.stream.timing import simulate_handshakes, window_slot

NETS = [
    dict(input_shape=(2, 7, 9), convs=[(3, 3, 1, 1), (4, 5, 2, 2)], input_format=IntFormat(6, True)),
    dict(input_shape=(1, 6, 5), convs=[(3, 1, 1, 0), (5, 3, 2, 0)], dense=[7, 4], input_format=IntFormat(4, False)),
    dict(input_shape=(3, 6, 6), convs=[(2, 5, 1, 2), (2, 3, 2, 1)], dense=[3], input_format=IntFormat(2, True),
         hidden_format=IntFormat(3, True), bias=False),
    dict(input_shape=(2, 4, 4), convs=[], dense=[5], input_format=IntFormat(3, True)),
]


@pytest.mark.parametrize("spec", NETS)
@pytest.mark.parametrize("optimize", ["none", "best"])
def test_stages_equal_reference(spec, optimize):
    qnet = random_conv_qnet(**spec, seed=3)
    net = lower_stream(qnet, optimize, cost_model=ICE40)
    x = np.random.default_rng(0).integers(qnet.input.lo, qnet.input.hi, size=(20, *qnet.input_shape), endpoint=True)
    check_stream(net, qnet, x)
    got = net.beats(x)
    want = run_reference(qnet, x)
    assert got.shape[0] == 20 and got.shape[2] == net.out.channels
    assert np.array_equal(got.reshape(20, -1), want.reshape(20, net.out.channels, -1).transpose(0, 2, 1).reshape(20, -1))


def test_a_wrong_stage_is_caught():
    qnet = random_conv_qnet(**NETS[0], seed=3)
    bad = QNet(qnet.input_shape, qnet.input, (qnet.layers[0], _with_weight(qnet.layers[1], 1)))
    net = lower_stream(bad, cost_model=ICE40)
    x = np.random.default_rng(0).integers(qnet.input.lo, qnet.input.hi, size=(20, *qnet.input_shape), endpoint=True)
    with pytest.raises(AssertionError, match="differ from the reference"):
        check_stream(net, qnet, x)


def _with_weight(layer: QLayer, delta: int) -> QLayer:
    w = layer.weight.copy()
    w.flat[np.flatnonzero(w)[0]] += delta
    return QLayer(layer.name, layer.kind, w, layer.bias, layer.shift, layer.relu, layer.out, layer.stride, layer.padding)


@pytest.mark.parametrize("k, s, p, h, w", [(3, 1, 1, 5, 6), (5, 2, 2, 7, 9), (3, 2, 0, 6, 5), (1, 1, 0, 3, 4),
                                           (3, 2, 1, 2, 3), (5, 1, 2, 3, 3), (5, 1, 1, 6, 4)])
def test_window_slots_cover_every_output_once_in_order(k, s, p, h, w):
    """Slots over frames back to back (the next frame's first rows finish the previous frame's
    bottom padding) emit each output position of each frame exactly once, in raster order."""
    qnet = QNet((1, h, w), IntFormat(4, False),
                (QLayer("c", "conv2d", np.ones((1, 1, k, k), np.int64), np.zeros(1, np.int64), 0, False,
                        IntFormat(12, False), s, p),))
    st = lower_stream(qnet, cost_model=ICE40).stages[0]
    assert isinstance(st, ConvStage)
    frames = 3
    emitted = []
    tail = False
    for f in range(frames + 1):  # the extra frame only finishes the last one's padding
        for r in range(h):
            for c in range(w):
                emit, pr, pc = window_slot(st, r, c, tail)
                served = f - 1 if tail and (r - (c < p)) < p else f
                if emit and served < frames:
                    emitted.append((served, (pr - k + 1) // s, (pc - k + 1) // s))
                if p and r == p and c == p - 1:
                    tail = False
            # (a frame's last pixel sets the tail)
        tail = p > 0
    oh, ow = st.out.height, st.out.width
    assert emitted == [(f, r, c) for f in range(frames) for r in range(oh) for c in range(ow)]


def test_timing_one_pixel_per_clock():
    qnet = random_conv_qnet((1, 64, 64), [(2, 3, 1, 1), (2, 3, 2, 1)], seed=1, density=0.3)
    t = simulate_handshakes(lower_stream(qnet, "none", cost_model=ICE40))
    assert t.cycles_per_frame <= 1.05 * 64 * 64
    assert t.latency_cycles >= 64 + 2  # the first output waits for a row and a pixel, and two registers


def test_lower_writes_a_stream_report(tmp_path, capsys):
    qnet = random_conv_qnet(**NETS[1], seed=4)
    save_checkpoint(qnet, tmp_path / "c.pt")
    assert main(["lower", str(tmp_path / "c.pt"), "-o", str(tmp_path / "out")]) == 0
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    assert r["interface"] == "stream" and r["input"] == {"channels": 1, "height": 6, "width": 5, "bits": 4,
                                                         "signed": False}
    assert r["output"]["channels"] == 4 and r["output"]["height"] == r["output"]["width"] == 1
    assert r["cycles_per_frame"] == 30 and r["latency_cycles"] > 0 and r["bram_estimate"] == 0
    assert [s["kind"] for s in r["layers"]] == ["conv2d", "conv2d", "dense"]
    assert r["layers"][2]["layers"] == ["fc3", "fc4"]
    assert r["test_vectors"] == 16  # frames by default
    out = capsys.readouterr().out
    assert "cycles per frame" in out and "flatten + linear" in out


def _conv(k=3, stride=1, padding=1, shape=(1, 1, 3, 3)):
    return QLayer("c", "conv2d", np.ones(shape, np.int64), np.zeros(shape[0], np.int64), 0, False,
                  IntFormat(8, False), stride, padding)


@pytest.mark.parametrize("layers, shape, message", [
    ([_conv(padding=2, shape=(1, 1, 3, 3))], (1, 8, 8), "padding 2 is more than"),
    ([_conv(padding=0, shape=(1, 1, 5, 5))], (1, 4, 8), "kernel does not fit"),
    ([_conv(padding=0, shape=(1, 1, 3, 1))], (1, 8, 8), "only square kernels stream"),
    ([_conv(padding=0, shape=(1, 1, 3, 3))], (1, 1, 3), "kernel does not fit"),
    ([_conv(padding=1, shape=(1, 1, 3, 3))], (1, 1, 4), "too small to stream"),
    ([_conv(padding=1, shape=(64, 64, 3, 3))], (64, 8, 2048), "block RAMs"),
])
def test_what_cannot_stream_is_refused_in_one_line(tmp_path, capsys, layers, shape, message):
    """One clear line and a non-zero exit, and no output left behind."""
    fmt = IntFormat(8, False)
    try:
        qnet = QNet(shape, fmt, tuple(layers))
    except JpqError as e:  # a shape the checkpoint format itself refuses
        assert message in str(e)
        return
    save_checkpoint(qnet, tmp_path / "bad.pt")
    assert main(["lower", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_flat_designs_say_flat(tmp_path):
    from jpq_hw.ir import random_qnet

    save_checkpoint(random_qnet([6, 3], seed=1), tmp_path / "f.pt")
    assert main(["lower", str(tmp_path / "f.pt"), "-o", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["interface"] == "flat"


@pytest.mark.parametrize("every", [1, 2])
def test_pipelined_stages_add_their_registers_to_the_latency(every):
    """A stage whose graph has L register stages replaces its one output register by them: the
    first output comes sum(L - 1) cycles later, the frame period does not change."""
    from jpq_hw.hdl.stream_verilog import stage_schedule

    qnet = random_conv_qnet(**NETS[2], seed=3)
    net = lower_stream(qnet, cost_model=ICE40)
    lat = [stage_schedule(st.graph, every).latency for st in net.stages]
    assert all(n >= 1 for n in lat)
    base, piped = simulate_handshakes(net), simulate_handshakes(net, latencies=lat)
    assert piped.latency_cycles == base.latency_cycles + sum(n - 1 for n in lat)
    assert piped.cycles_per_frame == base.cycles_per_frame == 36


def test_pipeline_flag_for_streams(tmp_path):
    qnet = random_conv_qnet(**NETS[1], seed=4)
    save_checkpoint(qnet, tmp_path / "c.pt")
    assert main(["lower", str(tmp_path / "c.pt"), "-o", str(tmp_path / "out"), "--pipeline", "1"]) == 0
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    assert r["pipeline_every"] == 1 and all(s["kernel_latency"] >= 1 for s in r["layers"] if s["adders"])
    assert main(["lower", str(tmp_path / "c.pt"), "-o", str(tmp_path / "bad"), "--pipeline", "-1"]) != 0
