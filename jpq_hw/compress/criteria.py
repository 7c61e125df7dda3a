"""Pruning criteria: one score per weight, higher means more worth keeping.

A criterion sees the weights through two calls:

- :meth:`Criterion.observe` after every backward pass, with the weights ``w`` and their gradients
  ``g = dL/dw`` of that mini-batch (``w`` is the dense shadow in ``recover`` mode, so pruned weights
  are scored too);
- :meth:`Criterion.scores` when a pruning step chooses masks.

Exact definitions (``l`` runs over the prunable layers, ``t`` over observed mini-batches):

``magnitude``
    ``s = |w|``.
``taylor``
    The first-order Taylor estimate of the loss change when a weight is set to zero,
    ``x_t = |w_t * g_t|`` per weight for mini-batch ``t``, accumulated as an exponential moving
    average with bias-free start: ``s_1 = x_1``, ``s_t = beta * s_{t-1} + (1 - beta) * x_t``
    (default ``beta = 0.9``). Before any observation, scores fall back to ``|w|``.
``random``
    ``s ~ U(0, 1)`` per weight, drawn once from a seeded generator and then fixed, so successive
    masks are nested (a floor to compare the others with).
``blend``
    ``s = alpha * T / mean(T) + (1 - alpha) * M / mean(M)`` with ``T`` the taylor score, ``M = |w|``
    and each mean taken over all prunable weights of the model together (so the relative scale of
    the layers is kept; default ``alpha = 0.5``).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import JpqError

CRITERIA = ("taylor", "magnitude", "random", "blend")


class Criterion:
    """Base class: ``observe`` (optional) and ``scores``."""

    name = "criterion"
    needs_gradients = False

    def observe(self, weights: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
        """Accumulate one mini-batch's weights and gradients (no-op unless the score needs them)."""

    def scores(self, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError


class Magnitude(Criterion):
    """``s = |w|``."""

    name = "magnitude"

    def scores(self, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [w.detach().abs().float() for w in weights]


class Taylor(Criterion):
    """``s`` = EMA over mini-batches of ``|w * dL/dw|`` (see the module docstring)."""

    name = "taylor"
    needs_gradients = True

    def __init__(self, beta: float = 0.9):
        if not 0.0 <= beta < 1.0:
            raise JpqError(f"taylor EMA factor beta must lie in [0, 1), got {beta}")
        self.beta = beta
        self.ema: list[torch.Tensor] | None = None
        self.count = 0

    def observe(self, weights: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
        xs = [(w.detach() * g.detach()).abs().float() if g is not None else torch.zeros_like(w, dtype=torch.float32)
              for w, g in zip(weights, grads)]
        if self.ema is None:
            self.ema = xs
        else:
            self.ema = [self.beta * e + (1.0 - self.beta) * x for e, x in zip(self.ema, xs)]
        self.count += 1

    def scores(self, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if self.ema is None:
            return [w.detach().abs().float() for w in weights]
        return [e.clone() for e in self.ema]


class Random(Criterion):
    """Fixed uniform random scores from a seeded generator."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._scores: list[torch.Tensor] | None = None

    def scores(self, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if self._scores is None or [s.shape for s in self._scores] != [w.shape for w in weights]:
            gen = torch.Generator().manual_seed(self.seed)
            self._scores = [torch.rand(w.shape, generator=gen) for w in weights]
        return [s.to(w.device, copy=True) for s, w in zip(self._scores, weights)]


class Blend(Criterion):
    """``alpha * T / mean(T) + (1 - alpha) * M / mean(M)`` (means over all prunable weights)."""

    name = "blend"
    needs_gradients = True

    def __init__(self, alpha: float = 0.5, beta: float = 0.9):
        if not 0.0 <= alpha <= 1.0:
            raise JpqError(f"blend weight alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha
        self.taylor = Taylor(beta)

    def observe(self, weights: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
        self.taylor.observe(weights, grads)

    def scores(self, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        t = self.taylor.scores(weights)
        m = Magnitude().scores(weights)
        t_mean = _global_mean(t)
        m_mean = _global_mean(m)
        return [self.alpha * ti / t_mean + (1.0 - self.alpha) * mi / m_mean for ti, mi in zip(t, m)]


def _global_mean(ts: Sequence[torch.Tensor]) -> float:
    total = sum(float(t.sum()) for t in ts)
    count = sum(t.numel() for t in ts)
    mean = total / max(count, 1)
    return mean if mean > 0 else 1.0


def make_criterion(name: str, *, beta: float = 0.9, alpha: float = 0.5, seed: int = 0) -> Criterion:
    """The criterion called ``name`` (one of :data:`CRITERIA`)."""
    if name == "taylor":
        return Taylor(beta)
    if name == "magnitude":
        return Magnitude()
    if name == "random":
        return Random(seed)
    if name == "blend":
        return Blend(alpha, beta)
    raise JpqError(f"unknown pruning criterion {name!r} (known: {', '.join(CRITERIA)})")
