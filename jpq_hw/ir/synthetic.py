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


def random_conv_qnet(input_shape: Sequence[int], convs: Sequence[tuple[int, int, int, int]],
                     dense: Sequence[int] = (), *, density: float = 0.3, weight_bits: int = 5,
                     input_format: IntFormat = IntFormat(8, False), hidden_format: IntFormat = IntFormat(6, False),
                     output_format: IntFormat = IntFormat(10, True), relu_last: bool = False, bias: bool = True,
                     seed: int = 0) -> QNet:
    """An image network: ``convs`` as ``(out_channels, kernel, stride, padding)``, then, where
    ``dense`` names output sizes, a flatten into those linear layers. Hidden layers use ReLU and
    ``hidden_format``; the last one ``output_format`` (ReLU only with ``relu_last``). Shifts are
    calibrated as :func:`random_qnet`'s."""
    rng = np.random.default_rng(seed)
    w_max = (1 << (weight_bits - 1)) - 1
    x = rng.integers(input_format.lo, input_format.hi, size=(64, *input_shape), endpoint=True)
    specs = [("conv2d", s) for s in convs] + [("linear", n) for n in dense]
    layers = []
    for i, (kind, spec) in enumerate(specs):
        last = i == len(specs) - 1
        out = output_format if last else hidden_format
        relu = relu_last or not last
        if kind == "conv2d":
            o, k, stride, pad = spec
            shape = (o, x.shape[1], k, k)
        else:
            o, stride, pad = spec, 1, 0
            shape = (o, int(np.prod(x.shape[1:])))
        w = rng.integers(-w_max - 1, w_max, size=shape, endpoint=True)
        w = np.where(rng.random(shape) < density, w, 0).astype(np.int64)
        b = rng.integers(-4 * w_max, 4 * w_max, size=o, endpoint=True) if bias else np.zeros(o, np.int64)
        name = f"conv{i + 1}" if kind == "conv2d" else f"fc{i + 1}"
        layer = QLayer(name, kind, w, b.astype(np.int64), 0, relu, out, stride, pad)
        acc = accumulate(layer, x)
        p99 = float(np.percentile(np.abs(acc), 99)) if acc.size else 0.0
        shift = max(int(np.ceil(np.log2(p99 + 1))) - (out.bits - (1 if out.signed else 0)), 0)
        layer = QLayer(name, kind, w, layer.bias, shift, relu, out, stride, pad)
        layers.append(layer)
        x = requantize(accumulate(layer, x), shift, relu, out)
    return QNet(tuple(input_shape), input_format, tuple(layers), {"generator": "random_conv_qnet", "seed": seed})
