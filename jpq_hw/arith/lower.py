"""Lowering: a :class:`~jpq_hw.ir.QNet` of linear layers becomes one :class:`AdderGraph`.

Each layer is lowered in three steps:

1. Inputs whose value is a known constant (an upstream neuron that can only output one value,
   e.g. a ReLU that never fires) are folded into the bias: they cost no adders.
2. A *matrix strategy* turns the layer's integer weight matrix into one signed :class:`Term` per
   output (``None`` for an all-zero row). Strategies are the replaceable part of the lowering;
   ``csd`` (this module) writes every nonzero weight as its CSD digits and sums all digits of a row
   with :meth:`GraphBuilder.sum_terms`. Sharing strategies (MCM / CMVM) register here as well.
3. A :class:`Requant` node per output adds the bias and the rounding constant, shifts, applies
   ReLU and saturates, exactly as contract.md section 1 says.

Finally nodes no output depends on (neurons whose every outgoing weight is zero) are removed.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import JpqError
from ..ir.qnet import QNet
from .csd import csd_digits
from .graph import AdderGraph, GraphBuilder, Term
from .optimize import LEVELS as OPTIMIZE_LEVELS, optimized_strategy

MatrixStrategy = Callable[[GraphBuilder, np.ndarray, Sequence[int]], list[Term | None]]
"""``strategy(builder, weight[out, in], input_node_ids) -> one Term (or None) per output row``."""


def csd_strategy(builder: GraphBuilder, weight: np.ndarray, inputs: Sequence[int]) -> list[Term | None]:
    """Per-weight CSD, no sharing: a row with digits ``d`` costs ``d - 1`` adders."""
    digit_cache: dict[int, list[tuple[int, int]]] = {}
    terms: list[Term | None] = []
    for row in weight:
        digits: list[Term] = []
        for i in np.flatnonzero(row):
            w = int(row[i])
            ds = digit_cache.get(w)
            if ds is None:
                ds = digit_cache[w] = csd_digits(w)
            digits.extend(Term(inputs[i], p, d < 0) for p, d in ds)
        terms.append(builder.sum_terms(digits))
    return terms


STRATEGIES: dict[str, MatrixStrategy] = {"csd": csd_strategy}
# sharing passes (jpq_hw.arith.optimize): ``none`` is the per-weight CSD baseline
STRATEGIES.update({level: optimized_strategy(level) for level in OPTIMIZE_LEVELS})


def lower_qnet(qnet: QNet, strategy: str = "csd") -> AdderGraph:
    """Lower every layer of ``qnet`` with the named matrix strategy; exact by construction."""
    if strategy not in STRATEGIES:
        raise JpqError(f"unknown lowering strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    if len(qnet.input_shape) != 1:
        raise JpqError("image inputs ([C, H, W]) need conv2d streaming, which this version does not lower yet")
    for layer in qnet.layers:
        if layer.kind != "linear":
            raise JpqError(f"layer {layer.name!r}: {layer.kind} layers are not lowered yet "
                           "(conv2d streaming comes in a later version)")
    lower_matrix = STRATEGIES[strategy]
    b = GraphBuilder()
    current = [b.input(qnet.input.lo, qnet.input.hi) for _ in range(qnet.input_shape[0])]
    for li, layer in enumerate(qnet.layers):
        b.layer = li
        weight = layer.weight.astype(np.int64)
        offset = [int(v) for v in layer.bias]
        const = np.array([b.nodes[n].lo == b.nodes[n].hi for n in current], dtype=bool)
        if const.any():
            values = np.array([b.nodes[n].lo for n in current], dtype=object)
            for o in range(layer.n_out):
                offset[o] += int(np.dot(weight[o, const].astype(object), values[const]))
            weight = np.where(const[None, :], 0, weight)
        terms = lower_matrix(b, weight, current)
        rounding = 1 << (layer.shift - 1) if layer.shift > 0 else 0
        current = [b.requant(t, offset[o] + rounding, layer.shift, layer.relu, layer.out, li)
                   for o, t in enumerate(terms)]
    graph = b.build(current, [layer.name for layer in qnet.layers])
    return graph.without_dead_nodes()
