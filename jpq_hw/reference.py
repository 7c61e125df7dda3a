"""The exact integer reference: contract.md section 1, executed with numpy int64.

This is the golden model. Every simulation, every adder-graph pass and the compression stage's
export are checked against :func:`run_reference`. It is written for clarity, not speed: int64
matrix products (exact, no BLAS) and a direct im2col for conv2d. :class:`~jpq_hw.ir.QNet`
guarantees that no accumulator can leave the int64 range.
"""

from __future__ import annotations

import numpy as np

from .errors import JpqError
from .ir.qnet import ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, Layer, QLayer, QNet


def requantize(acc: np.ndarray, shift: int, relu: bool, out: IntFormat) -> np.ndarray:
    """Round half up by ``2**shift``, apply ReLU if asked, saturate to ``out`` (contract.md)."""
    acc = np.asarray(acc, dtype=np.int64)
    t = (acc + (1 << (shift - 1))) >> shift if shift > 0 else acc  # >> on int64 is floor division
    if relu:
        t = np.maximum(t, 0)
    return np.clip(t, out.lo, out.hi)


def accumulate(layer: QLayer, x: np.ndarray) -> np.ndarray:
    """The exact accumulator of ``layer`` for a batch ``x`` of shape [batch, *input_shape]."""
    x = np.asarray(x, dtype=np.int64)
    batch = x.shape[0]
    if layer.kind == "linear":
        return x.reshape(batch, -1) @ layer.weight.T + layer.bias
    out_ch, in_ch, kh, kw = layer.weight.shape
    p, s = layer.padding, layer.stride
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    oh = (xp.shape[2] - kh) // s + 1
    ow = (xp.shape[3] - kw) // s + 1
    # cols[b, i, u, v, r, c] = xpad[b, i, r*s + u, c*s + v]
    cols = np.empty((batch, in_ch, kh, kw, oh, ow), dtype=np.int64)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = xp[:, :, u:u + s * oh:s, v:v + s * ow:s]
    acc = np.einsum("oiuv,biuvrc->borc", layer.weight, cols, optimize=True)
    return acc + layer.bias[None, :, None, None]


def hamming_cost(layer: HammingCostLayer, x: np.ndarray) -> np.ndarray:
    """The cost volume [batch, D, H, W] of binary features ``x`` [batch, 2F, H, W] (its docstring)."""
    x = np.asarray(x, dtype=np.int64)
    f = x.shape[1] // 2
    left, right = x[:, :f], x[:, f:]
    cost = np.full((x.shape[0], layer.disparities, *x.shape[2:]), f, dtype=np.int64)
    for d in range(layer.disparities):
        cost[:, d, :, d:] = np.sum(left[:, :, :, d:] ^ right[:, :, :, :x.shape[3] - d], axis=1)
    return np.minimum(cost, layer.out.hi)


def box_sum(layer: BoxSumLayer, x: np.ndarray) -> np.ndarray:
    """Each channel's zero-padded ``size x size`` sum, clamped to the output format."""
    x = np.asarray(x, dtype=np.int64)
    k, (h, w) = layer.size, x.shape[2:]
    r = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (r, r), (r, r)))
    y = np.zeros_like(x)
    for u in range(k):
        for v in range(k):
            y += xp[:, :, u:u + h, v:v + w]
    return np.clip(y, layer.out.lo, layer.out.hi)


def argmin_channels(x: np.ndarray) -> np.ndarray:
    """[batch, 1, H, W]: the first channel holding the minimum at each pixel."""
    return np.argmin(np.asarray(x, dtype=np.int64), axis=1)[:, None].astype(np.int64)  # numpy: first on ties


def run_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer's integer output for a batch ``x``."""
    if isinstance(layer, HammingCostLayer):
        return hamming_cost(layer, x)
    if isinstance(layer, ArgminLayer):
        return argmin_channels(x)
    if isinstance(layer, BoxSumLayer):
        return box_sum(layer, x)
    return requantize(accumulate(layer, x), layer.shift, layer.relu, layer.out)


def run_reference(qnet: QNet, x: np.ndarray, *, all_layers: bool = False):
    """Run ``qnet`` on a batch of integer inputs ``x`` of shape [batch, *input_shape].

    Returns the last layer's output as int64 [batch, *output_shape], or with ``all_layers`` the list
    of every layer's output. Inputs outside the network's input format are refused.
    """
    x = np.asarray(x)
    if x.ndim == len(qnet.input_shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(qnet.input_shape):
        raise JpqError(f"input batch has shape {list(x.shape[1:])} per item, the network takes {list(qnet.input_shape)}")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.equal(np.mod(x, 1), 0)):
            raise JpqError("inputs must be integers")
    x = x.astype(np.int64)
    if x.size and (x.min() < qnet.input.lo or x.max() > qnet.input.hi):
        raise JpqError(f"inputs must lie in [{qnet.input.lo}, {qnet.input.hi}] ({qnet.input.bits}-bit "
                       f"{'signed' if qnet.input.signed else 'unsigned'})")
    outs = []
    for layer in qnet.layers:
        x = run_layer(layer, x)
        outs.append(x)
    return outs if all_layers else x
