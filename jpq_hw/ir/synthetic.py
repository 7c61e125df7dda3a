"""Seeded random sparse integer networks, for tests, simulations and benchmarks.

Each layer's ``shift`` is calibrated on random inputs so that the 99th percentile of ``|acc|``
lands near the top of the output range: outputs then use their whole range and saturate sometimes,
which exercises the rounding, ReLU and clamping logic as well as the adders.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .qnet import ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, QLayer, QNet
from ..reference import accumulate, requantize, run_layer


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


def random_stereo_qnet(height: int, width: int, convs: Sequence[tuple[int, int]], *, disparities: int = 4,
                       cost_bits: int | None = None, aggregate: str | None = "box", box: int = 3, argmin: bool = True,
                       density: float = 0.3, weight_bits: int = 5, hidden_format: IntFormat = IntFormat(4, False),
                       seed: int = 0) -> QNet:
    """A stereo network of the shape ``examples/stereo.pt`` has, with random sparse weights.

    Input ``[2, height, width]`` of 8-bit unsigned grey levels (channel 0 left, 1 right). ``convs``
    as ``(features, kernel)`` (stride 1, padding ``(k - 1) / 2``) form a siamese extractor: each
    layer's weight is block-diagonal, the left half reading the left channels and the right half the
    right ones with the same kernel; the last layer's output is 1 bit (a threshold, its bias set
    near the median so that about half the bits are set). Then a ``hamming_cost`` over
    ``disparities`` (``cost_bits``: its output format, default the width that holds F), an
    aggregation (``"box_sum"``: a ``box_sum`` layer of size ``box``; ``"box"``: the same as a conv2d
    of ones; ``"conv"``: a random signed conv over all cost maps; None: none) and, with ``argmin``,
    the winner-take-all."""
    rng = np.random.default_rng(seed)
    w_max = (1 << (weight_bits - 1)) - 1
    in_fmt = IntFormat(8, False)
    x = rng.integers(0, 255, size=(16, 2, height, width), endpoint=True)
    layers = []
    ch = 1
    for i, (f, k) in enumerate(convs):
        last = i == len(convs) - 1
        half = rng.integers(-w_max - 1, w_max, size=(f, ch, k, k), endpoint=True)
        half = np.where(rng.random(half.shape) < density, half, 0)
        half[0, 0, k // 2, k // 2] = half[0, 0, k // 2, k // 2] or 1  # no layer without weights
        w = np.zeros((2 * f, 2 * ch, k, k), dtype=np.int64)
        w[:f, :ch], w[f:, ch:] = half, half
        out = IntFormat(1, False) if last else hidden_format
        layer = QLayer(f"feat{i + 1}", "conv2d", w, np.zeros(2 * f, np.int64), 0, True, out, 1, (k - 1) // 2)
        acc = accumulate(layer, x)
        if last:  # bit = 1 where acc + bias >= 1: bias near minus the median of each channel
            med = np.median(acc.transpose(1, 0, 2, 3).reshape(2 * f, -1)[:f], axis=1).astype(np.int64)
            b = np.concatenate([1 - med, 1 - med])
            shift = 0
        else:
            p99 = float(np.percentile(np.abs(acc), 99)) if acc.size else 0.0
            shift = max(int(np.ceil(np.log2(p99 + 1))) - out.bits, 0)
            b = np.zeros(2 * f, np.int64)
        layer = QLayer(layer.name, "conv2d", w, b, shift, True, out, 1, (k - 1) // 2)
        layers.append(layer)
        x = run_layer(layer, x)
        ch = f
    f = ch
    cost = HammingCostLayer("cost", disparities, IntFormat(cost_bits or f.bit_length(), False))
    layers.append(cost)
    x = run_layer(cost, x)
    if aggregate == "box_sum":
        hi = box * box * cost.out.hi
        layers.append(BoxSumLayer("aggregate", box, IntFormat(hi.bit_length(), False)))
    elif aggregate == "box":
        w = np.zeros((disparities, disparities, box, box), dtype=np.int64)
        for d in range(disparities):
            w[d, d] = 1
        hi = box * box * cost.out.hi
        layers.append(QLayer("aggregate", "conv2d", w, np.zeros(disparities, np.int64), 0, False,
                             IntFormat(hi.bit_length(), False), 1, (box - 1) // 2))
    elif aggregate == "conv":
        w = rng.integers(-w_max - 1, w_max, size=(disparities, disparities, box, box), endpoint=True)
        w = np.where(rng.random(w.shape) < density, w, 0).astype(np.int64)
        layer = QLayer("aggregate", "conv2d", w, np.zeros(disparities, np.int64), 0, False, IntFormat(6, True),
                       1, (box - 1) // 2)
        acc = accumulate(layer, x)
        p99 = float(np.percentile(np.abs(acc), 99)) if acc.size else 0.0
        shift = max(int(np.ceil(np.log2(p99 + 1))) - 5, 0)
        layers.append(QLayer("aggregate", "conv2d", w, layer.bias, shift, False, IntFormat(6, True), 1, (box - 1) // 2))
    if argmin:
        layers.append(ArgminLayer("disparity", IntFormat(max(disparities - 1, 1).bit_length(), False)))
    return QNet((2, height, width), in_fmt, tuple(layers), {"generator": "random_stereo_qnet", "seed": seed})
