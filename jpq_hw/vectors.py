"""Test vectors for a lowered network: the extremes first, then seeded random inputs.

Order (all within the input format ``[lo, hi]``): all minimum, all maximum, alternating min/max in
both phases, all zero (where zero is not the minimum), one-hot maxima for the first inputs, then
random vectors in three flavours: uniform over the full range, uniform over a quarter of it
(typical small activations), and sparse (most elements at zero or the minimum). Expected outputs
always come from :func:`jpq_hw.reference.run_reference`, never from the adder graph.
"""

from __future__ import annotations

import numpy as np

from .ir.qnet import QNet
from .reference import run_reference


def make_inputs(qnet: QNet, count: int = 1000, seed: int = 0, extra: np.ndarray | None = None) -> np.ndarray:
    """``count`` input vectors [count, n_in] (int64); ``extra`` rows (e.g. real data) go after the extremes."""
    n = int(np.prod(qnet.input_shape))
    lo, hi = qnet.input.lo, qnet.input.hi
    rng = np.random.default_rng(seed)
    alt = np.arange(n) % 2 == 0
    rows = [np.full(n, lo), np.full(n, hi), np.where(alt, lo, hi), np.where(alt, hi, lo)]
    if lo < 0:
        rows.append(np.zeros(n, dtype=np.int64))
    for i in range(min(n, 8)):
        one_hot = np.full(n, 0 if lo <= 0 else lo)
        one_hot[i] = hi
        rows.append(one_hot)
    fixed = np.stack(rows).astype(np.int64)
    if extra is not None and len(extra):
        fixed = np.concatenate([fixed, np.asarray(extra, dtype=np.int64).reshape(len(extra), n)])
    left = max(count - len(fixed), 0)
    k1, k2 = left // 2, left // 4
    k3 = left - k1 - k2
    uniform = rng.integers(lo, hi, size=(k1, n), endpoint=True)
    q_lo, q_hi = lo // 4, max(hi // 4, lo // 4)
    small = rng.integers(q_lo, q_hi, size=(k2, n), endpoint=True)
    base = 0 if lo <= 0 <= hi else lo
    sparse = np.where(rng.random((k3, n)) < 0.7, base, rng.integers(lo, hi, size=(k3, n), endpoint=True))
    x = np.concatenate([fixed, uniform, small, sparse]).astype(np.int64)
    return x[:max(count, len(fixed))]


def make_vectors(qnet: QNet, count: int = 1000, seed: int = 0, extra: np.ndarray | None = None):
    """``(x, y)``: inputs from :func:`make_inputs` and the reference outputs for them."""
    x = make_inputs(qnet, count, seed, extra)
    return x, run_reference(qnet, x).reshape(len(x), -1)
