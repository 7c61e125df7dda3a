"""Compression aimed at a cell budget (``CompressConfig.lut_budget``, ``--lut-budget``).

:mod:`jpq_hw.compress.cells` prices weights in cells and chooses masks whose prices fit; this module
runs the pipeline around it:

- :func:`start_budget` (at the start of :func:`~jpq_hw.compress.pipeline.prune`): refuses an image
  network and a budget below the smallest network of the shape, calibrates the cells per term on a
  network near the budget, and prices the dense one;
- :func:`budget_event` (each pruning event): masks for the event's cells
  (:func:`~jpq_hw.compress.cells.cell_target`); once within twice the budget, the network is measured
  (quantized as calibrated, lowered, estimated) after every event, and the last event cuts it until
  the measurement is within the aim;
- :func:`fit_budget` (after quantization): measures the exported network and, while it is over the
  budget, drops the kept weights of least score per cell and quantizes again;
- :func:`compress_to_budget` (what :func:`~jpq_hw.compress.pipeline.compress` runs): prune, quantize,
  fit; a pass that uses less than :data:`USED` of the budget is followed by one aimed from its drift
  (the factor by which the cells moved between the last event and the quantized network: the
  weights keep training after the mask froze), and the pass that uses more of the budget is kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from ..errors import JpqError
from .cells import MARGIN, CellBudget, cell_target, smallest_network
from .models import Data
from .pipeline import (CompressConfig, ProgressFn, PruneResult, QuantizeResult, _calibration_inputs, _Setup, _spec,
                       prune, quantize)
from .pruner import Pruner
from .schedules import Schedule

MAX_CUTS = 8  # cuts after quantization before a budget is declared out of reach
USED = 0.95  # a budget pass that uses less than this fraction of the budget is followed by another one
MAX_AIM = 1.5  # the most a later pass aims at (times the budget)


def fit_budget(pruned: PruneResult, quant: QuantizeResult, train_data: Data, test_data: Data,
               config: CompressConfig, say: Callable[[str], None]) -> tuple[PruneResult, QuantizeResult]:
    """Measure the exported network; while it is over the budget, drop the kept weights of least
    score per cell (as the pruning stage ranks them) and quantize again (QAT from the pruned float
    weights). Records the final measurement in ``pruned.budget``."""
    assert config.lut_budget is not None and pruned.scores is not None
    blocks = list(pruned.model.blocks)  # type: ignore[union-attr]
    calib_int = _calibration_inputs(torch.as_tensor(train_data[0]), config)
    budget = CellBudget(blocks, _spec(config, [b.name for b in blocks]), config.lut_budget, calib_int, pruned.input_shape,
                        target=config.lut_target, priced=config.priced)
    unit = cell_unit(config.lut_target)
    measured = budget.measure_qnet(quant.qnet)
    qat_cells = measured.cells
    cuts = 0
    while measured.cells > budget.budget:
        if cuts == MAX_CUTS:
            raise JpqError(f"the network stays over the budget of {budget.budget} {unit} after {cuts} cuts "
                           f"({measured.cells} {unit}); try a larger budget")
        weights = [b.module.weight.detach() for b in blocks]
        masks = budget.cut(pruned.scores, weights, pruned.masks, measured.cells, budget.budget * budget.margin)
        with torch.no_grad():
            for b, m in zip(blocks, masks):
                b.module.weight.mul_(m.to(b.module.weight.device))
        pruned = dataclasses.replace(pruned, masks=masks)
        quant = quantize(pruned.model, masks, train_data, test_data, config)
        cuts += 1
        measured = budget.measure_qnet(quant.qnet)
        say(f"cut {cuts}: {measured.cells} {unit} after quantization ({measured.nnz} weights)")
    info = dict(pruned.budget or {})
    info.update({"cells": measured.cells, "layer_cells": measured.layer_cells, "unit": unit, "qat_cells": qat_cells,
                 "cuts_after_qat": cuts})
    say(f"{measured.cells} {unit} estimated, budget {budget.budget}")
    return dataclasses.replace(pruned, budget=info), quant


def start_budget(config: CompressConfig, s: _Setup, calib_int: torch.Tensor, say: Callable[[str], None],
                 aim: float | None) -> CellBudget:
    """A :class:`CellBudget` for ``config``; refuses a budget below the smallest network of the shape."""
    if len(s.input_shape) != 1:
        raise JpqError(f"a cell budget prices flat networks (input [N]); this one takes images {list(s.input_shape)}, "
                       "which jpq-hw lowers to a pixel stream: use --sparsity")
    budget = CellBudget(s.blocks, s.spec, int(config.lut_budget), calib_int, s.input_shape,
                        target=config.lut_target, priced=config.priced, margin=MARGIN if aim is None else aim)
    floor = budget.measure(smallest_network(s.blocks), recalibrate=False)  # a network unlike the budget's
    unit = cell_unit(config.lut_target)
    if floor.cells > budget.budget:
        raise JpqError(f"a budget of {budget.budget} {unit} is below the smallest network of this shape "
                       f"(every output reached from the input by one weight per unit: {floor.cells} {unit})")
    # calibrate the cells per term on a network near the budget's regime: the largest weights
    # the first (analytic) prices fit in twice the budget
    weights = [b.module.weight.detach() for b in s.blocks]
    ones = [torch.ones_like(w) for w in weights]
    budget.measure(budget.select([w.abs() for w in weights], weights, ones, 2.0 * budget.budget))
    budget.start(weights)
    say(f"cell budget {budget.budget} {unit}; the dense network is priced at about {budget.dense_cells:.0f}")
    return budget


def cell_unit(target: str) -> str:
    from ..target import get_target

    return get_target(target).cell_names["lut4"]


def budget_event(budget: CellBudget, pruner: Pruner, schedule: Schedule, j: int, n_events: int,
                 exclude: list[torch.Tensor] | None, say: Callable[[str], None]) -> None:
    """Event ``j`` of a budget-driven schedule: choose masks for the event's cells; measure the network
    once it is near the budget, and at the last event cut it until the measurement fits."""
    shadows = pruner.shadows
    masks = [m.detach().clone() for m in pruner.masks]
    cells = cell_target(schedule, j, budget.dense_cells, budget.budget * budget.margin)
    new = budget.select(pruner.criterion.scores(shadows), shadows, masks, cells, pruner.eligible(exclude))
    pruner.apply(new)
    last = j == n_events
    if not last and cells > 2 * budget.budget:
        return
    measured = budget.measure(new)  # re-calibrates the cells per term
    say(f"event {j}/{n_events}: aimed at {cells:.0f} cells, measured {measured.cells} ({measured.nnz} weights)")
    if not last:
        return
    goal = budget.budget * budget.margin
    for _ in range(8):
        if measured.cells <= goal:
            return
        new = budget.cut(pruner.criterion.scores(shadows), shadows, new, measured.cells, goal)
        pruner.apply(new)
        measured = budget.measure(new)
        say(f"  cut to {measured.cells} cells ({measured.nnz} weights)")


def compress_to_budget(model: torch.nn.Module, train_data: Data, test_data: Data, config: CompressConfig, *,
                       progress: ProgressFn | None = None,
                       log: Callable[[str], None] | None = None) -> tuple[PruneResult, QuantizeResult]:
    """Prune and quantize ``model`` within ``config.lut_budget`` (module docstring); the pruned result's
    ``budget`` records every pass and the measurements."""
    assert config.lut_budget is not None
    aim = MARGIN
    passes: list[dict[str, Any]] = []
    best: tuple[PruneResult, QuantizeResult] | None = None
    for attempt in range(1, config.budget_passes + 1):
        pruned = prune(model, train_data, test_data, config, progress=progress, log=log, aim=aim)
        quant = quantize(pruned.model, pruned.masks, train_data, test_data, config, progress=progress, log=log)
        pruned, quant = fit_budget(pruned, quant, train_data, test_data, config, log or (lambda msg: None))
        info = pruned.budget
        assert info is not None
        info["pass"] = attempt
        passes.append({k: info[k] for k in ("pass", "aim", "pruned_cells", "qat_cells", "cells", "cuts_after_qat")})
        if best is None or info["cells"] > best[0].budget["cells"]:  # type: ignore[index]
            best = pruned, quant  # the pass that uses more of the budget (no test data decides)
        if info["cells"] >= USED * config.lut_budget or attempt == config.budget_passes:
            break
        # fine-tuning after the mask froze, and QAT, moved the weights and with them the cells (mostly
        # down: weights grow, their integers shrink); aim the next pass so that the result lands on the budget
        drift = info["qat_cells"] / max(info["pruned_cells"], 1)
        aim = min(MARGIN / max(drift, 1e-3), MAX_AIM)
        if log:
            log(f"pass {attempt} used {info['cells']} of {config.lut_budget} cells (the cells moved by x{drift:.3f} "
                f"after the mask froze); pass {attempt + 1} aims at {aim:.3f} of the budget")
    assert best is not None
    pruned, quant = best
    if pruned.budget is not None:
        pruned.budget["passes"] = passes
    return pruned, quant
