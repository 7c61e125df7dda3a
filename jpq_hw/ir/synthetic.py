"""Seeded random sparse integer networks, for tests, simulations and benchmarks.

Each layer's ``shift`` is calibrated on random inputs so that the 99th percentile of ``|acc|``
lands near the top of the output range: outputs then use their whole range and saturate sometimes,
which exercises the rounding, ReLU and clamping logic as well as the adders.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .qnet import IntFormat, QLayer, QNet
from ..reference import accumulate, requantize


def random_qnet(sizes: Sequence[int], *, density: float = 0.15, weight_bits: int = 6,
                input_format: IntFormat = IntFormat(8, False), hidden_format: IntFormat = IntFormat(8, False),
                output_format: IntFormat = IntFormat(12, True), bias: bool = True, seed: int = 0) -> QNet:
    """A fully connected ReLU network ``sizes[0] -> ... -> sizes[-1]`` with random sparse weights."""
    rng = np.random.default_rng(seed)
    w_max = (1 << (weight_bits - 1)) - 1
    x = rng.integers(input_format.lo, input_format.hi, size=(256, sizes[0]), endpoint=True)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        out = output_format if last else hidden_format
        w = rng.integers(-w_max - 1, w_max, size=(n_out, n_in), endpoint=True)
        w = np.where(rng.random((n_out, n_in)) < density, w, 0).astype(np.int64)
        b = rng.integers(-4 * w_max, 4 * w_max, size=n_out, endpoint=True) if bias else np.zeros(n_out, np.int64)
        layer = QLayer(f"fc{i + 1}", "linear", w, b.astype(np.int64), 0, not last, out)
        acc = accumulate(layer, x)
        p99 = float(np.percentile(np.abs(acc), 99)) if acc.size else 0.0
        shift = max(int(np.ceil(np.log2(p99 + 1))) - (out.bits - (1 if out.signed else 0)), 0)
        layer = QLayer(layer.name, "linear", w, layer.bias, shift, not last, out)
        layers.append(layer)
        x = requantize(accumulate(layer, x), shift, layer.relu, out)
    return QNet((sizes[0],), input_format, tuple(layers), {"generator": "random_qnet", "seed": seed})
