"""Per-layer weight and activation widths chosen under a cell budget (``--widths search``).

Mixed precision in the spirit of DJPQ (Wang et al. 2020, "Differentiable Joint Pruning and
Quantization"), but priced in the cells of the circuit instead of bit operations: under a cell
budget, a narrower width buys cheaper weights (fewer CSD digits, narrower adders and output stages),
so more of them fit; which trade is worth it depends on the layer.

The search runs in two stages, each candidate scored by a short proxy run of the
whole budget-driven pipeline (:func:`jpq_hw.compress.pipeline.compress` with ``prune_epochs`` and
``qat_epochs`` divided by :data:`PROXY_FRACTION`, one budget pass) trained on the training data less
a validation split and scored on that split (:func:`validation_split`: every fifth sample of each
class, in a seeded order), never on the test data. Widths of a candidate: one weight width per layer
and one output width per hidden layer, each in :data:`MIN_BITS` .. :data:`MAX_BITS`.

1. A coarse grid of uniform widths: every layer's weights at each of :data:`GRID_WEIGHT_BITS`, every
   hidden layer's outputs at each of :data:`GRID_ACT_BITS` (the configured widths join the grid).
2. A coordinate descent from the best of the grid: every round tries each single change of one
   layer's width by one bit and moves to the best candidate when it beats the current one; the
   search stops after a round without a move or after :data:`MAX_ROUNDS` rounds.

The best is the highest validation accuracy; ties go to the candidate scored first (the grid in
order, then the current point of the descent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..errors import JpqError

if TYPE_CHECKING:
    from torch import nn

    from .models import Data
    from .pipeline import CompressConfig

MIN_BITS = 3
MAX_BITS = 8
MAX_ROUNDS = 2
GRID_WEIGHT_BITS = (3, 4, 6)
GRID_ACT_BITS = (4, 6, 8)
PROXY_FRACTION = 4  # proxy runs train a quarter of the configured epochs
VALIDATION_EVERY = 5  # every fifth sample of each class is held out for validation


def validation_split(data: "Data", seed: int) -> tuple["Data", "Data"]:
    """``(train, validation)``: every :data:`VALIDATION_EVERY`-th sample of each class (in a seeded
    order) held out."""
    x, y = (torch.as_tensor(v) for v in data)
    gen = torch.Generator().manual_seed(seed + 7919)
    held = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        held[idx[::VALIDATION_EVERY]] = True
    if held.all() or not held.any():
        raise JpqError("the training data are too small to hold out a validation split for --widths search")
    return (x[~held], y[~held]), (x[held], y[held])


@dataclass(frozen=True)
class Widths:
    """One candidate: weight bits per layer and output bits per hidden layer (in layer order)."""

    weight: tuple[int, ...]
    act: tuple[int, ...]

    def describe(self, names: list[str]) -> str:
        w = ", ".join(f"{n} w{b}" for n, b in zip(names, self.weight))
        a = ", ".join(f"{n} a{b}" for n, b in zip(names, self.act))
        return f"{w}; {a}" if a else w

    def neighbours(self, max_weight: int) -> list["Widths"]:
        out = []
        for i, b in enumerate(self.weight):
            for d in (-1, 1):
                if MIN_BITS <= b + d <= max_weight:
                    out.append(Widths(self.weight[:i] + (b + d,) + self.weight[i + 1:], self.act))
        for i, b in enumerate(self.act):
            for d in (-1, 1):
                if MIN_BITS <= b + d <= MAX_BITS:
                    out.append(Widths(self.weight, self.act[:i] + (b + d,) + self.act[i + 1:]))
        return out


def config_with(config: "CompressConfig", names: list[str], widths: Widths) -> "CompressConfig":
    """``config`` with ``widths`` as its per-layer widths (and fixed from now on)."""
    return dataclasses.replace(config, widths="fixed",
                               layer_weight_bits=dict(zip(names, widths.weight)),
                               layer_act_bits=dict(zip(names[:-1], widths.act)))


Evaluate = Callable[[Widths], tuple[float, dict[str, Any]]]
"""A candidate's validation accuracy and what to record of its trial."""


def proxy_evaluator(model: "nn.Module", train_data: "Data", config: "CompressConfig", names: list[str]) -> Evaluate:
    """Scores widths by the proxy run of the module docstring."""
    from .pipeline import compress

    fit, val = validation_split(train_data, config.seed)
    proxy = dataclasses.replace(config, widths="fixed", budget_passes=1, verify=False, adders=False,
                                prune_epochs=max(config.prune_epochs // PROXY_FRACTION, 1),
                                qat_epochs=max(config.qat_epochs // PROXY_FRACTION, 1))

    def evaluate(w: Widths) -> tuple[float, dict[str, Any]]:
        r = compress(model, fit, val, config_with(proxy, names, w))
        return r.accuracies["quantized"], {"cells": r.metrics["budget"]["cells"], "nnz": r.metrics["nnz"]}

    return evaluate


def search_widths(start: Widths, evaluate: Evaluate, names: list[str], *,
                  log: Callable[[str], None] | None = None) -> tuple[Widths, list[dict[str, Any]]]:
    """The widths the search of the module docstring (the grid, then the coordinate descent)
    chooses, ``start`` scored first; and every trial (widths, validation accuracy, what ``evaluate``
    recorded), in the order run."""
    say = log or (lambda msg: None)
    trials: list[dict[str, Any]] = []
    seen: dict[Widths, float] = {}

    def score(w: Widths) -> float:
        if w not in seen:
            acc, extra = evaluate(w)
            seen[w] = acc
            trials.append({"weight_bits": list(w.weight), "act_bits": list(w.act), "val_accuracy": acc, **extra})
            say(f"widths {w.describe(names)}: validation {acc:.4f}"
                + (f" at {extra['cells']} cells" if "cells" in extra else ""))
        return seen[w]

    best, best_acc = start, score(start)
    n_act = len(start.act)
    for wb in GRID_WEIGHT_BITS:
        for ab in GRID_ACT_BITS if n_act else (None,):
            cand = Widths((wb,) * len(start.weight), (ab,) * n_act if n_act else ())
            acc = score(cand)
            if acc > best_acc:
                best, best_acc = cand, acc
    for _ in range(MAX_ROUNDS):
        round_best, round_acc = best, best_acc
        for cand in best.neighbours(MAX_BITS):
            acc = score(cand)
            if acc > round_acc:
                round_best, round_acc = cand, acc
        if round_best == best:
            break
        best, best_acc = round_best, round_acc
    say(f"widths chosen: {best.describe(names)} (validation {best_acc:.4f})")
    return best, trials


def start_widths(config: "CompressConfig", names: list[str]) -> Widths:
    """The configured widths of layers ``names`` (per-layer where given)."""
    from .pipeline import _spec

    spec = _spec(config, names)
    n = len(names)
    return Widths(tuple(spec.w_bits(i) for i in range(n)), tuple(spec.a_bits(i) for i in range(n - 1)))
