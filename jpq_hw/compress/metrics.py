"""Cost metrics of a compressed network, read from its :class:`~jpq_hw.ir.QNet`.

Per layer (``m`` outputs / output channels, ``n`` inputs / input channels, ``k x k`` kernel, ``1`` for
linear; ``P`` output positions, ``1`` for linear; ``size = m*n*k^2`` weights, ``nnz`` of them nonzero):

sparsity
    ``1 - nnz / size`` (per layer, and over all weights for the total).
weight memory, bits (weights only; biases are not counted)
    ``dense_float32 = 32 * size``. Sparse quantized, two index formats, the smaller one is used and named:
    ``csr``: ``nnz * (b_w + ceil(log2(cols)))`` value and column-index bits plus ``m * ceil(log2(cols + 1))``
    bits of per-row counts, with ``cols = n*k^2``; ``bitmap``: one presence bit per weight plus ``nnz * b_w``.
BOPs (bit operations of one inference; Baskin et al., UNIQ; Hawks et al. 2021)
    ``P * m*n*k^2 * (p*b_a*b_w + b_a + b_w + log2(n*k^2))`` with ``p = nnz / size`` the kept fraction,
    ``b_w`` the weight bits and ``b_a`` the bits of the layer's *input* (the input format for the first
    layer). The dense float baseline uses ``b_a = b_w = 32`` and ``p = 1``.
adders
    the adders of the graph ``jpq-hw lower`` builds with its defaults (``--optimize best``, the iCE40
    cost model), so that ``compress`` and ``lower`` report one count (an image network's: the sum
    over its stream stages; the deepest stage's depth).
lut4
    a flat network's estimated SB_LUT4 as ``jpq-hw lower`` reports it with its defaults (combinational,
    iCE40, output stages included): what ``--lut-budget`` holds the network to. ``None`` for image
    networks (``jpq-hw lower`` reports their stream cost).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..errors import JpqError
from ..ir.qnet import QNet


def bops(m: int, n: int, k2: int, positions: int, p: float, b_a: int, b_w: int) -> float:
    """``positions * m*n*k2 * (p*b_a*b_w + b_a + b_w + log2(n*k2))``."""
    return float(positions * m * n * k2 * (p * b_a * b_w + b_a + b_w + math.log2(n * k2)))


def _clog2(v: int) -> int:
    return max(math.ceil(math.log2(v)), 0) if v > 1 else 0


def layer_memory(rows: int, cols: int, nnz: int, b_w: int) -> dict[str, Any]:
    """Bits of one weight matrix ``rows x cols`` with ``nnz`` nonzeros of ``b_w`` bits (see the module docstring)."""
    csr = nnz * (b_w + _clog2(cols)) + rows * _clog2(cols + 1)
    bitmap = rows * cols + nnz * b_w
    fmt = "csr" if csr <= bitmap else "bitmap"
    return {"dense_float32_bits": 32 * rows * cols, "csr_bits": csr, "bitmap_bits": bitmap,
            "sparse_bits": min(csr, bitmap), "index_format": fmt}


def compute_metrics(qnet: QNet, weight_bits: int | Sequence[int], *, adders: bool = True) -> dict[str, Any]:
    """Per-layer and total sparsity, memory, BOPs and (linear networks) adders; plain types only.
    ``weight_bits``: of every layer, or one per layer (mixed precision)."""
    shapes = qnet.shapes
    layers = []
    in_bits = qnet.input.bits
    per_layer = [int(weight_bits)] * len(qnet.layers) if isinstance(weight_bits, int) else [int(b) for b in weight_bits]
    for i, layer in enumerate(qnet.layers):
        weight_bits = per_layer[i]
        w = layer.weight
        m = int(w.shape[0])
        if layer.kind == "linear":
            n, k2, positions = int(w.shape[1]), 1, 1
        else:
            n, k2 = int(w.shape[1]), int(w.shape[2] * w.shape[3])
            out_shape = shapes[i + 1]
            positions = int(out_shape[1] * out_shape[2])
        size = int(w.size)
        nnz = layer.nnz
        p = nnz / size
        mem = layer_memory(m, n * k2, nnz, weight_bits)
        layers.append({
            "name": layer.name, "kind": layer.kind, "shape": [int(s) for s in w.shape], "weights": size, "nnz": nnz,
            "sparsity": 1.0 - p, "weight_bits": int(weight_bits), "input_bits": int(in_bits),
            "out_bits": int(layer.out.bits), "out_signed": bool(layer.out.signed), "shift": int(layer.shift),
            "memory": mem,
            "bops": bops(m, n, k2, positions, p, in_bits, weight_bits),
            "bops_dense_float32": bops(m, n, k2, positions, 1.0, 32, 32),
        })
        in_bits = layer.out.bits
    size = sum(layer["weights"] for layer in layers)
    nnz = sum(layer["nnz"] for layer in layers)
    dense_bits = sum(layer["memory"]["dense_float32_bits"] for layer in layers)
    sparse_bits = sum(layer["memory"]["sparse_bits"] for layer in layers)
    formats = sorted({layer["memory"]["index_format"] for layer in layers})
    total_bops = sum(layer["bops"] for layer in layers)
    dense_bops = sum(layer["bops_dense_float32"] for layer in layers)
    out: dict[str, Any] = {
        "layers": layers,
        "weights": size, "nnz": nnz, "sparsity": 1.0 - nnz / size,
        "memory": {"dense_float32_bits": dense_bits, "sparse_bits": sparse_bits,
                   "index_format": formats[0] if len(formats) == 1 else "per layer: " + ", ".join(
                       f"{layer['name']} {layer['memory']['index_format']}" for layer in layers),
                   "compression": dense_bits / sparse_bits if sparse_bits else math.inf,
                   "counts": "weights only (biases excluded)"},
        "bops": total_bops, "bops_dense_float32": dense_bops,
        "bops_reduction": dense_bops / total_bops if total_bops else math.inf,
        "adders": None, "adders_note": None, "lut4": None,
    }
    if adders:
        from ..arith.optimize import DEFAULT_OPTIMIZE
        from ..cost import ICE40

        try:  # what `jpq-hw lower` builds with its defaults, so that both commands give one count
            if len(qnet.input_shape) == 1:
                from ..flow import lower_graph

                graph, sched = lower_graph(qnet, target="ice40", optimize=DEFAULT_OPTIMIZE)
                stats = graph.stats()
                out["adders"] = int(stats["adders"])
                out["adder_depth"] = int(stats["depth"])
                out["lut4"] = int(ICE40.estimate(graph, sched).total("lut4"))
            else:
                from ..stream import lower_stream

                net = lower_stream(qnet, DEFAULT_OPTIMIZE, cost_model=ICE40)
                out["adders"] = net.adders
                out["adder_depth"] = max(s.graph.depth for s in net.stages)
            out["adders_note"] = f"as jpq-hw lower builds it: --optimize {DEFAULT_OPTIMIZE}, --target ice40"
        except JpqError as e:
            out["adders_note"] = f"not lowered: {e}"
    else:
        out["adders_note"] = "not computed"
    return out
