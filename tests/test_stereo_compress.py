"""The stereo example's compression and its shipped checkpoint (``examples/stereo.pt``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jpq_hw.ir import load_checkpoint
from jpq_hw.reference import run_reference
from jpq_hw.stereo.baselines import census_wta
from jpq_hw.stereo.compress import (StereoCompressConfig, check_stereo_exact, compress_stereo, load_float_model,
                                    save_float_model)
from jpq_hw.stereo.data import make_training_pairs, motorcycle_quarter
from jpq_hw.stereo.metrics import score
from jpq_hw.stereo.model import StereoNet, census_init, hard_disparity
from jpq_hw.stream import lower_stream
from jpq_hw.cost import ICE40

ROOT = Path(__file__).resolve().parents[1]


def test_compress_stereo_exports_an_exact_stream_network(tmp_path):
    torch.manual_seed(0)
    data = make_training_pairs(12, size=(24, 40), seed=3)
    model = StereoNet(hidden=(3,), kernels=(5, 3), F=6, D=8, box=5, cost_cap=3)
    census_init(model)
    config = StereoCompressConfig(sparsity=0.9, prune_steps=12, prune_events=3, qat_steps=6, batch=2, weight_bits=4,
                                  act_bits=4)
    r = compress_stereo(model, data, config, shape=(20, 30))
    kinds = [layer.kind for layer in r.qnet.layers]
    assert kinds == ["conv2d", "conv2d", "hamming_cost", "box_sum", "argmin"]
    assert r.qnet.input_shape == (2, 20, 30) and r.qnet.output_shape == (1, 20, 30)
    kept = sum(int(m.sum()) for m in r.masks)
    assert kept == round(0.1 * sum(m.numel() for m in r.masks))
    first = r.qnet.layers[0].weight
    assert np.array_equal(first[:3, :1], first[3:, 1:]) and not first[:3, 1:].any() and not first[3:, :1].any()
    assert r.qnet.layers[1].out.bits == 1 and r.qnet.layers[2].out.bits == 2  # threshold bits; costs capped at 3
    rng = np.random.default_rng(0)
    for _ in range(3):  # the exported network equals the quantized model, and streams
        left, right = rng.integers(0, 256, size=(2, 20, 30))
        check_stereo_exact(r.qnet, r.quant, r.model, left, right)
    x = rng.integers(0, 256, size=(2, 2, 20, 30))
    net = lower_stream(r.qnet, cost_model=ICE40)
    assert np.array_equal(net.run(x), run_reference(r.qnet, x))
    save_float_model(model, tmp_path / "f.pt")
    back = load_float_model(tmp_path / "f.pt")
    assert np.array_equal(hard_disparity(back, left, right), hard_disparity(model, left, right))


def test_the_shipped_stereo_network():
    """Interface, sparsity and width, and the accuracy on Motorcycle it records (and must keep)."""
    qnet = load_checkpoint(ROOT / "examples" / "stereo.pt")
    assert qnet.input_shape == (2, 125, 185) and qnet.input.bits == 8 and not qnet.input.signed
    assert qnet.output_shape == (1, 125, 185)
    learned = qnet.meta["learned_weights"]
    assert 1 - learned["nonzero"] / learned["total"] >= 0.95
    assert all(int(np.abs(layer.weight).max()) <= 127 for layer in qnet.layers if layer.kind == "conv2d")
    assert qnet.meta["weight_bits"] <= 8
    left, right, gt = motorcycle_quarter()
    got = score(run_reference(qnet, np.stack([left, right])[None])[0, 0], gt)
    recorded = qnet.meta["motorcycle"]
    assert got["epe"] == pytest.approx(recorded["compressed"]["epe"])
    census = score(census_wta(left, right, 16, 3, 5), gt)
    assert got["epe"] < census["epe"] and got["bad2"] < census["bad2"]  # the target
    assert got["epe"] <= 1.10 * recorded["float"]["epe"]
    model = load_float_model(ROOT / "examples" / "stereo-float.pt")
    assert score(hard_disparity(model, left, right), gt)["epe"] == pytest.approx(recorded["float"]["epe"])
