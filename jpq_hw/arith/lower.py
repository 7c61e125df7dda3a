"""Lowering: a :class:`~jpq_hw.ir.QNet` of linear layers becomes one :class:`AdderGraph`
(:func:`lower_layers` does the same for any chain of layers, e.g. one stage of an image stream).

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

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import progress
from ..errors import JpqError
from ..ir.qnet import QLayer, QNet
from .graph import AdderGraph, GraphBuilder
from .optimize import DEFAULT_OPTIMIZE, check_optimize, lower_matrix

if TYPE_CHECKING:
    from ..cost.model import CostModel


def lower_qnet(qnet: QNet, optimize: str = DEFAULT_OPTIMIZE, *, cost_model: "CostModel",
               max_depth: int | None = None) -> AdderGraph:
    """Lower every layer of ``qnet`` with the adder sharing ``optimize`` names, plans priced by
    ``cost_model`` (a target's, e.g. :data:`jpq_hw.cost.ICE40`) and, with ``max_depth``, each
    layer's adders bounded to that many levels where a plan can be; exact by construction.

    Flat-vector networks only; image networks are lowered stage by stage by
    :func:`jpq_hw.stream.lower_stream`, which calls :func:`lower_layers` for each stage."""
    if len(qnet.input_shape) != 1:
        raise JpqError("image inputs ([C, H, W]) are lowered as streams (jpq_hw.stream.lower_stream)")
    ranges = [(qnet.input.lo, qnet.input.hi)] * qnet.input_shape[0]
    return lower_layers(qnet.layers, ranges, optimize, cost_model=cost_model, max_depth=max_depth)


def lower_layers(layers: Sequence[QLayer], input_ranges: Sequence[tuple[int, int]],
                 optimize: str = DEFAULT_OPTIMIZE, *, cost_model: "CostModel", max_depth: int | None = None,
                 weights: Sequence[np.ndarray] | None = None, first_layer: int = 0) -> AdderGraph:
    """One adder graph for ``layers`` applied in order to inputs with the given exact ranges.

    ``weights`` replaces each layer's weight by a 2-D matrix [out, in] (a conv2d kernel unrolled
    over its window); by default every layer must be linear. New adders are attributed to layer
    ``first_layer + i`` (the index in the whole network)."""
    check_optimize(optimize)
    if max_depth is not None and max_depth < 1:
        raise JpqError(f"--max-depth must be >= 1 (adder levels per layer), got {max_depth}")
    if weights is None:
        for layer in layers:
            if layer.kind != "linear":
                raise JpqError(f"layer {layer.name!r}: a {layer.kind} layer needs its unrolled weight matrix")
        weights = [layer.weight for layer in layers]
    b = GraphBuilder()
    current = [b.input(lo, hi) for lo, hi in input_ranges]
    for k, (layer, weight) in enumerate(zip(layers, weights)):
        li = first_layer + k
        b.layer = li
        weight = np.asarray(weight).astype(np.int64)
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
        progress.layer_lowered(li)
    names = [""] * first_layer + [layer.name for layer in layers]
    graph = b.build(current, names)
    return graph.without_dead_nodes()
