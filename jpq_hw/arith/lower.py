"""Lowering: a :class:`~jpq_hw.ir.QNet` of linear layers becomes one :class:`AdderGraph`.

Each layer is lowered in three steps:

1. Inputs whose value is a known constant (an upstream neuron that can only output one value,
   e.g. a ReLU that never fires) are folded into the bias: they cost no adders.
2. The layer's integer weight matrix becomes one signed :class:`Term` per output (``None`` for an
   all-zero row), built with the adder sharing that ``optimize`` names and priced by the target's
   cost model (:func:`jpq_hw.arith.optimize.lower_matrix`; the choices are listed in that module).
3. A :class:`Requant` node per output adds the bias and the rounding constant, shifts, applies
   ReLU and saturates, exactly as contract.md section 1 says.

Finally nodes no output depends on (neurons whose every outgoing weight is zero) are removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import JpqError
from ..ir.qnet import QNet
from .graph import AdderGraph, GraphBuilder
from .optimize import DEFAULT_OPTIMIZE, check_optimize, lower_matrix

if TYPE_CHECKING:
    from ..cost.model import CostModel


def lower_qnet(qnet: QNet, optimize: str = DEFAULT_OPTIMIZE, *, cost_model: "CostModel",
               max_depth: int | None = None) -> AdderGraph:
    """Lower every layer of ``qnet`` with the adder sharing ``optimize`` names, plans priced by
    ``cost_model`` (a target's, e.g. :data:`jpq_hw.cost.ICE40`) and, with ``max_depth``, each
    layer's adders bounded to that many levels where a plan can be; exact by construction."""
    check_optimize(optimize)
    if max_depth is not None and max_depth < 1:
        raise JpqError(f"--max-depth must be >= 1 (adder levels per layer), got {max_depth}")
    if len(qnet.input_shape) != 1:
        raise JpqError("image inputs ([C, H, W]) need conv2d streaming, which this version does not lower yet")
    for layer in qnet.layers:
        if layer.kind != "linear":
            raise JpqError(f"layer {layer.name!r}: {layer.kind} layers are not lowered yet "
                           "(conv2d streaming comes in a later version)")
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
        terms, _ = lower_matrix(b, weight, current, optimize, cost_model, max_depth)
        rounding = 1 << (layer.shift - 1) if layer.shift > 0 else 0
        current = [b.requant(t, offset[o] + rounding, layer.shift, layer.relu, layer.out, li)
                   for o, t in enumerate(terms)]
    graph = b.build(current, [layer.name for layer in qnet.layers])
    return graph.without_dead_nodes()
