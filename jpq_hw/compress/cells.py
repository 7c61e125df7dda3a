"""Weights priced in logic cells, and masks chosen under a cell budget (``--lut-budget``).

The lowering (:mod:`jpq_hw.arith`) turns every kept weight into shift-add hardware, so what a weight
costs is not a bit operation but cells of the target (iCE40: SB_LUT4). This module prices weights in
those cells and chooses masks whose network fits a budget, the way the pruning stage chooses masks
for a sparsity.

**Price of a weight.** Layer ``l``'s float weights are quantized as the quantization stage would
(:func:`~jpq_hw.compress.quant.choose_weight_exp` over the candidate kept weights, then the nearest
level): ``q``. A kept ``q`` with ``d(q)`` nonzero CSD digits puts ``d(q)`` shifted copies of its
input into its row's sum. Weights of one input whose ``|q|`` have the same odd part (the
*fundamental*) share its product, which the lowering builds once (``d - 1`` adders) and then adds
into each row (one term each). So a group of ``k`` kept weights of one input with one fundamental
costs ``d + k - 1`` *terms*, and each member is priced its share, ``t = (d + k - 1) / k``; a weight
outside the mask is priced what adding it would cost, ``1`` term when the group exists, else ``d``.
A term of layer ``l`` costs ``c_l`` cells: the layer's cells in the estimate ``jpq-hw lower``
reports with its defaults (output stages included) divided by its terms, measured on the current
network quantized as calibrated (:meth:`CellBudget.calibrate`; before the first measurement
``c_l`` is the accumulator width, about one SB_LUT4 per bit of an adder). The price of a weight is
``p = c_l * t`` and a network's predicted cells are the sum over its kept weights.

**Masks under a budget.** The pruning schedule's events aim at predicted cells instead of a
sparsity: event ``j`` of ``n`` at ``C_j = C_0 - (C_0 - B') * r_j`` with ``C_0`` the dense network's
prediction, ``B'`` the budget less a margin and ``r_j`` the schedule's progress (gradual: ``1 - (1 -
j/n)**3``). A mask keeps the eligible weights in decreasing order of ``s / p`` (*priced*: the
criterion's score per cell, a greedy knapsack) or of ``s`` (*unpriced*), while the sum of prices
stays within ``C_j``. After the schedule the network is measured (quantized as calibrated, lowered
and estimated) and pruned further where it is over; after quantization-aware training the pipeline
measures the exported network again and repeats until it fits (:func:`jpq_hw.compress.pipeline.compress`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..arith.csd import csd_digits
from ..errors import JpqError
from .chain import Block
from .quant import QuantNet, QuantSpec, choose_weight_exp, nearest_level, weight_levels

MARGIN = 0.97  # the schedule aims at this fraction of the budget: QAT moves the weights a little


def budget_cells(qnet: Any, target: str = "ice40") -> tuple[int, list[int]]:
    """The cells ``jpq-hw lower`` estimates for ``qnet`` with its defaults (combinational,
    ``--optimize best``): the network's total and each layer's LUT4 places
    (:meth:`~jpq_hw.target.Target.logic_cells`: iCE40 SB_LUT4, a carry riding in its LUT's cell;
    ECP5 LUT4 plus two per CCU2C)."""
    from ..flow import lower_graph
    from ..target import get_target

    family = get_target(target)
    graph, sched = lower_graph(qnet, target=target)
    cost = family.cost.estimate(graph, sched)
    per_layer = [int(family.logic_cells(layer.lut4, layer.carry)) for layer in cost.layers]
    return sum(per_layer), per_layer


def _odd_part(q: torch.Tensor) -> torch.Tensor:
    """``|q|`` with its trailing zero bits removed (0 stays 0); int64."""
    a = q.abs().long()
    out = a.clone()
    nz = out != 0
    while True:
        even = nz & (out % 2 == 0)
        if not bool(even.any()):
            return out
        out[even] //= 2


def weight_terms(q: torch.Tensor, kept: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """Terms of each weight of one layer (see the module docstring), shaped like ``q``.

    ``q``: integer weights [out, ...] (float or int); ``kept``: bool mask; ``digits``: nonzero CSD
    digits of each ``q``. A zero ``q`` costs nothing."""
    out_n = q.shape[0]
    q2 = q.reshape(out_n, -1).long()
    k2 = kept.reshape(out_n, -1).bool() & (q2 != 0)
    d2 = digits.reshape(out_n, -1).double()
    fan_in = q2.shape[1]
    fund = _odd_part(q2)
    key = fund * fan_in + torch.arange(fan_in).unsqueeze(0)  # (fundamental, input) groups
    kept_keys = key[k2]
    if kept_keys.numel():
        uniq, counts = torch.unique(kept_keys, return_counts=True)
        pos = torch.searchsorted(uniq, key.flatten()).clamp(max=uniq.numel() - 1)
        found = uniq[pos] == key.flatten()
        group = torch.where(found, counts[pos], torch.zeros_like(pos)).reshape(key.shape).double()
    else:
        group = torch.zeros_like(q2, dtype=torch.float64)
    share = (d2 + group - 1.0) / group.clamp(min=1.0)      # kept: an equal share of the group's terms
    add = torch.where(group > 0, torch.ones_like(d2), d2)  # not kept: what adding it costs
    terms = torch.where(k2, share, add)
    return torch.where(q2 != 0, terms, torch.zeros_like(terms)).reshape(q.shape)


@dataclass
class Measurement:
    """A network measured by :func:`budget_cells`: total and per-layer cells, and its kept weights."""

    cells: int
    layer_cells: list[int]
    nnz: int


@dataclass
class CellBudget:
    """Prices weights of a chain in cells and chooses masks within a budget (module docstring).

    ``calib_x``: integer inputs on which the quantization stage's exponents are calibrated when the
    network is measured; ``input_shape``: the network's input shape (without the batch)."""

    blocks: Sequence[Block]
    spec: QuantSpec
    budget: int
    calib_x: torch.Tensor
    input_shape: tuple[int, ...]
    target: str = "ice40"
    priced: bool = False
    margin: float = MARGIN
    cells_per_term: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    dense_cells: float | None = None

    def __post_init__(self):
        self.levels = [weight_levels(self.spec.w_bits(i), self.spec.csd_digits) for i in range(len(self.blocks))]
        top = max(int(levels[-1]) for levels in self.levels)
        self._digits = torch.tensor([len(csd_digits(v)) for v in range(0, top + 1)], dtype=torch.float64)
        if not self.cells_per_term:
            self.cells_per_term = self._analytic_cells_per_term()

    # ------------------------------------------------------------------ prices
    def _analytic_cells_per_term(self) -> list[float]:
        """Before any measurement: the accumulator width (about one SB_LUT4 per adder bit)."""
        out = []
        in_bits = self.spec.input_bits
        for i, b in enumerate(self.blocks):
            fan_in = b.module.weight[0].numel()
            out.append(float(in_bits + self.spec.w_bits(i) - 1 + math.ceil(math.log2(max(fan_in, 2)))))
            in_bits = self.spec.a_bits(i)
        return out

    def quantized(self, weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each layer's integer weights as the quantization stage would round them (masks held for the scale)."""
        out = []
        for w, m, levels in zip(weights, masks, self.levels):
            w = w.detach().double().cpu()
            m = m.detach().cpu()
            if not bool(m.any()):
                m = torch.ones_like(m)
            e = choose_weight_exp(w * m, m, levels)
            out.append(nearest_level(w * 2.0 ** -e, levels))
        return out

    def prices(self, weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Cells of each weight (kept: its share; not kept: what adding it costs), from the float weights."""
        out = []
        for q, m, c in zip(self.quantized(weights, masks), masks, self.cells_per_term):
            digits = self._digits[q.abs().long()]
            out.append((weight_terms(q, m.detach().cpu().bool(), digits) * c).float())
        return out

    def predict(self, weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> float:
        """Predicted cells of the network with ``masks``."""
        return float(sum(float((p * m.detach().cpu()).sum()) for p, m in zip(self.prices(weights, masks), masks)))

    # ------------------------------------------------------------------ measurement
    @torch.no_grad()
    def measure(self, masks: Sequence[torch.Tensor], recalibrate: bool = True) -> Measurement:
        """Quantize the chain as calibrated (no training), lower it, and read its cells (and, with
        ``recalibrate``, re-calibrate the cells per term from it: :meth:`measure_qnet`)."""
        from .export import to_qnet

        device = self.blocks[0].module.weight.device  # the training device
        qnet_model = QuantNet(self.blocks, [m.detach().to(device) for m in masks], self.spec).cpu()
        qnet_model.calibrate(self.calib_x.double().cpu())
        return self.measure_qnet(to_qnet(qnet_model, self.input_shape, {}), recalibrate)

    def measure_qnet(self, qnet: Any, recalibrate: bool = True) -> Measurement:
        """Measure an exported network; with ``recalibrate`` set every layer's cells per term from it
        (its cells over its integer weights' terms) and record the measurement in :attr:`history`."""
        cells, layer_cells = budget_cells(qnet, self.target)
        nnz = int(sum(int(np.count_nonzero(layer.weight)) for layer in qnet.layers))
        if recalibrate:
            for i, (layer, c) in enumerate(zip(qnet.layers, layer_cells)):
                q = torch.as_tensor(np.asarray(layer.weight)).double()
                terms = float(weight_terms(q, q != 0, self._digits[q.abs().long()]).sum())
                if terms > 0 and c > 0:
                    self.cells_per_term[i] = c / terms
            self.history.append({"cells": cells, "layers": list(layer_cells), "nnz": nnz})
        return Measurement(cells, layer_cells, nnz)

    # ------------------------------------------------------------------ choosing masks
    def select(self, scores: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
               cells: float, eligible: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Masks keeping the best weights (by ``s / p`` when priced, else ``s``) whose prices sum to at
        most ``cells``; ``eligible`` (bool per weight) restricts the choice. Ties by position."""
        prices = self.prices(weights, masks)
        flat_s = torch.cat([s.detach().double().cpu().flatten() for s in scores])
        flat_p = torch.cat([p.double().flatten() for p in prices])
        ok = torch.ones_like(flat_s, dtype=torch.bool) if eligible is None else \
            torch.cat([e.detach().cpu().bool().flatten() for e in eligible])
        free = flat_p <= 0  # weights that round to 0 cost nothing but are kept only if they score
        rank = flat_s / flat_p.clamp(min=1e-9) if self.priced else flat_s.clone()
        rank[~ok] = -math.inf
        rank[free & ok] = -math.inf  # a weight the grid rounds to zero is not worth a place in the mask
        order = torch.argsort(-rank, stable=True)
        cum = torch.cumsum(flat_p[order], 0)
        chosen = order[(cum <= cells) & torch.isfinite(rank[order])]
        keep = torch.zeros_like(flat_s, dtype=torch.bool)
        keep[chosen] = True
        out, offset = [], 0
        for s in scores:
            n = s.numel()
            out.append(keep[offset:offset + n].view(s.shape).to(torch.float32).to(s.device))
            offset += n
        return out

    def cut(self, scores: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
            measured: int, goal: float) -> list[torch.Tensor]:
        """Masks within ``masks`` for a network measured at ``measured`` cells to come down to ``goal``:
        the prediction scaled by ``goal / measured`` (the measurement corrects the prices)."""
        cells = self.predict(weights, masks) * goal / measured
        return self.select(scores, weights, masks, cells, [m.bool() for m in masks])

    def start(self, weights: Sequence[torch.Tensor]) -> None:
        """Price the dense network (``C_0``)."""
        ones = [torch.ones_like(w, device="cpu") for w in weights]
        self.dense_cells = self.predict(weights, ones)


def cell_target(schedule: Any, j: int, dense: float, goal: float) -> float:
    """The cells event ``j`` (1-based) of ``schedule`` aims at, from ``dense`` (the dense network's
    prediction) to ``goal``: ``gradual`` on its cubic ramp, ``iterative`` geometrically (every event
    removes the same fraction of the cells left), ``oneshot`` at once."""
    if dense <= goal:
        return goal
    if schedule.kind == "oneshot":
        return goal
    r = j / schedule.steps
    if schedule.kind == "iterative":
        return dense * (goal / dense) ** r
    return dense - (dense - goal) * (1.0 - (1.0 - r) ** 3)


def smallest_network(blocks: Sequence[Block]) -> list[torch.Tensor]:
    """Masks of the smallest network in which every output depends on the input (the floor below
    which a cell budget cannot go): every output of the last layer keeps its largest weight, and
    every unit those weights read keeps its own largest weight, back to the input (a ``conv2d``
    layer, or one feeding a ``conv2d``: every output channel keeps one)."""
    masks: list[torch.Tensor] = []
    needed: torch.Tensor | None = None  # units of this layer's output that the next layer reads
    for i in range(len(blocks) - 1, -1, -1):
        w = blocks[i].module.weight.detach().abs().cpu()
        rows = w.reshape(w.shape[0], -1)
        m = torch.zeros_like(rows)
        use = needed if needed is not None else torch.ones(rows.shape[0], dtype=torch.bool)
        for o in torch.nonzero(use).flatten().tolist():
            m[o, int(torch.argmax(rows[o]))] = 1.0
        both_linear = blocks[i].kind == "linear" and i > 0 and blocks[i - 1].kind == "linear"
        needed = m.bool().any(dim=0) if both_linear else None
        masks.append(m.reshape(w.shape))
    return masks[::-1]


def check_budget(budget: Any) -> None:
    """Refuse a budget that is not a positive integer (one line)."""
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise JpqError(f"the cell budget must be a positive integer (SB_LUT4), got {budget!r}")
