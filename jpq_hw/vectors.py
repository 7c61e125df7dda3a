"""Test vectors for a lowered network: the user's own first, then the extremes, then real data and
seeded random inputs.

Order (all within the input format ``[lo, hi]``): the user's inputs (``jpq-hw lower --inputs``),
all minimum, all maximum, alternating min/max in both phases, all zero (where zero is not the
minimum), one-hot maxima for the first inputs, real inputs of the checkpoint's data set (where its
meta names one, :func:`jpq_hw.datasets.dataset_inputs`), then random vectors in three flavours:
uniform over the full range, uniform over a quarter of it (typical small activations), and sparse
(most elements at zero or the minimum). Expected outputs always come from
:func:`jpq_hw.reference.run_reference`, never from the adder graph.
"""

from __future__ import annotations

import numpy as np

from pathlib import Path

from .errors import JpqError
from .ir.qnet import QNet
from .reference import run_reference


def make_inputs(qnet: QNet, count: int = 1000, seed: int = 0, extra: np.ndarray | None = None,
                first: np.ndarray | None = None) -> np.ndarray:
    """``count`` input vectors [count, n_in] (int64): ``first`` rows (the user's), the extremes, ``extra``
    rows (e.g. real data), then random ones up to ``count`` (every ``first`` and fixed row is kept)."""
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
    if first is not None and len(first):
        fixed = np.concatenate([np.asarray(first, dtype=np.int64).reshape(len(first), n), fixed])
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


def make_vectors(qnet: QNet, count: int = 1000, seed: int = 0, extra: np.ndarray | None = None,
                 first: np.ndarray | None = None):
    """``(x, y)``: inputs from :func:`make_inputs` and the reference outputs for them."""
    x = make_inputs(qnet, count, seed, extra, first)
    return x, run_reference(qnet, x.reshape(len(x), *qnet.input_shape)).reshape(len(x), -1)


def read_inputs(path: str | Path, qnet: QNet) -> np.ndarray:
    """A user's input vectors from a ``.npy`` file: ``[N, n_in]`` or ``[N, *input_shape]`` (or one
    vector), integers in the network's input format; a :class:`JpqError` names what is wrong."""
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise JpqError(f"inputs file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as e:
        raise JpqError(f"{str(path)!r} is not a readable .npy array ({str(e).splitlines()[0] if str(e) else e})") from None
    n = int(np.prod(qnet.input_shape))
    if a.ndim == 0 or a.size % n or (a.ndim > 1 and int(np.prod(a.shape[1:])) != n) or (a.ndim == 1 and a.size != n):
        raise JpqError(f"{str(path)!r}: shape {list(a.shape)} does not hold vectors of the network's "
                       f"{list(qnet.input_shape)} inputs ([N, {n}] or [N, {', '.join(map(str, qnet.input_shape))}])")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise JpqError(f"{str(path)!r}: inputs must be integers in the network's input format "
                           f"(quantize them first: x_int = round(x / 2**input_exp))")
    elif a.dtype.kind not in "iub":
        raise JpqError(f"{str(path)!r}: dtype {a.dtype} is not an integer array")
    a = a.reshape(-1, n).astype(np.int64)
    lo, hi = qnet.input.lo, qnet.input.hi
    if len(a) and (a.min() < lo or a.max() > hi):
        bad = int(np.argwhere((a < lo) | (a > hi))[0][0])
        raise JpqError(f"{str(path)!r}: vector {bad} leaves the {qnet.input.bits}-bit "
                       f"{'signed' if qnet.input.signed else 'unsigned'} input range [{lo}, {hi}]")
    return a
