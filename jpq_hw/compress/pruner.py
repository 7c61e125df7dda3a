"""Masks and fine-tuning modes, in the shape of ``torch.ao.pruning``.

:class:`Pruner` attaches a 0/1 mask to the ``weight`` of every ``Linear`` / ``Conv2d`` of a chain
as a ``torch.nn.utils.parametrize`` parametrization (:meth:`Pruner.prepare`), re-chooses the masks
with a criterion (:meth:`Pruner.step`), and makes them permanent (:meth:`Pruner.squash`). The
module's ``weight`` then reads ``mask * original`` where ``original`` is the dense *shadow*.

Fine-tuning modes (:data:`MODES`):

``frozen``
    The effective weight is ``mask * w`` with the ordinary product rule, so pruned weights get a zero
    gradient; their shadow is set to zero at every pruning step and after every optimizer step, so
    they stay exactly zero. Masks only shrink: a later step chooses among the weights still kept.
``recover``
    The effective weight is ``mask * w`` in the forward pass but the gradient reaches the dense shadow
    unmasked (a straight-through mask, as in dynamic network surgery / DPF): the shadow of a pruned
    weight gets ``dL/dw_eff``, the gradient the masked network would follow if that one weight were
    present, and the optimizer moves it by that gradient. Every pruning step re-chooses the mask among
    *all* weights by the criterion (a weight pruned too early can come back), then sets to zero the
    shadow of every weight that is not kept both before and after the step: the weights the new mask
    prunes (as ``frozen`` does) and the weights that come back. So (1) between two steps a pruned
    shadow learns, open loop, from zero: a pruned weight comes back at the next step only if what it
    learned in that one interval (its magnitude, or its Taylor score ``|w * g|``, 0 for ``w = 0``)
    beats the weights kept; (2) it comes back at ``0`` and from then on learns with the network (closed
    loop), so a step never adds an open-loop value to the network. Optimizer state (momentum) is left
    as it is. :meth:`Pruner.freeze` (at the end of the schedule) zeroes the pruned shadows and
    switches to ``frozen``.

    Why (issue 16): a pruned weight's gradient is a what-if for that one weight; the masked network
    cannot act on it, so nothing makes it shrink, and with SGD at lr 0.1 and Nesterov momentum 0.9 a
    shadow that is never reset grows with the time it has been pruned, not with its merit. On
    digits-mlp at 95 % (magnitude, gradual schedule) the mean pruned shadow grew from 0.02 to 0.5; from
    the 10th step on 70-100 of the 200-500 kept weights came back per step (displacing as many kept
    ones, so the effective weights changed by 50-100 % of their norm per step); the weights coming
    back, alone, threw the training loss from ~0.1-0.3 to 6-58, and the run ended at chance (loss
    2.27, accuracy 13 %; ``frozen``: 94 %). Restarting the pruned shadows at every step bounds the
    drift to one interval and fixed the MLP, but on digits-cnn one interval of open-loop drift was
    still enough: 61 weights came back at once with values above the kept ones and took the loss from
    0.02 to 31 (accuracy 10 %). Hence both rules. ``bench/recover_vs_frozen.py`` measures recover
    against frozen (``bench/results/recover_vs_frozen.md``).
``compensate``
    No fine-tuning: after each pruning step, every layer's remaining weights and its bias are refit by
    least squares (:func:`jpq_hw.compress.compensate.compensate`).

Mask selection (:func:`select_masks`) keeps exactly ``round((1 - s) * n)`` weights: of each layer
with a per-layer target, of all layers together with a global target. An optional per-layer floor
``f`` first reserves the ``ceil(f * n_l)`` best weights of every layer (at least one when ``f > 0``).
Ties in the score are broken by position (earlier index kept), so masks are deterministic.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import JpqError
from .chain import Block
from .criteria import Criterion
from .schedules import Schedule

MODES = ("frozen", "recover", "compensate")
SCOPES = ("global", "layer")


class _StraightThroughMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return w * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


class Mask(nn.Module):
    """Parametrization ``w -> mask * w``; with ``straight_through`` the gradient skips the mask."""

    def __init__(self, mask: torch.Tensor, straight_through: bool = False):
        super().__init__()
        self.register_buffer("mask", mask)
        self.straight_through = straight_through

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.straight_through:
            return _StraightThroughMask.apply(w, self.mask)
        return w * self.mask


def _keep_count(n: int, sparsity: float) -> int:
    return int(round((1.0 - sparsity) * n))


def _order(score: torch.Tensor) -> torch.Tensor:
    """Flat indices from the best score to the worst, ties by position."""
    return torch.argsort(-score.flatten().double(), stable=True)


def select_masks(scores: Sequence[torch.Tensor], sparsity: float | Sequence[float], *, scope: str = "global",
                 floor: float = 0.0, eligible: Sequence[torch.Tensor] | None = None,
                 names: Sequence[str] | None = None) -> list[torch.Tensor]:
    """0/1 float masks keeping the best-scored weights (see the module docstring).

    ``sparsity`` is one number (global scope: of all weights together; layer scope: of every layer)
    or one per layer (layer scope). ``eligible`` (bool per weight) restricts the choice, e.g. to the
    weights still kept in ``frozen`` mode; when fewer are eligible than the target keeps, all are kept.
    """
    names = list(names) if names is not None else [f"layer{i}" for i in range(len(scores))]
    if scope not in SCOPES:
        raise JpqError(f"unknown sparsity scope {scope!r} (known: {', '.join(SCOPES)})")
    if not 0.0 <= floor < 1.0:
        raise JpqError(f"per-layer floor must lie in [0, 1), got {floor}")
    flat = []
    for i, s in enumerate(scores):
        f = s.detach().flatten().double().clone()
        if eligible is not None:
            f[~eligible[i].flatten().bool()] = -math.inf
        flat.append(f)
    n_eligible = [int(torch.isfinite(f).sum()) for f in flat]
    reserve = [min(max(math.ceil(floor * f.numel()), 1) if floor > 0 else 0, ne) for f, ne in zip(flat, n_eligible)]
    keep_flat = [torch.zeros(f.numel(), dtype=torch.bool, device=f.device) for f in flat]

    if isinstance(sparsity, (int, float)):
        per_layer = [float(sparsity)] * len(flat)
        global_target = float(sparsity) if scope == "global" else None
    else:
        per_layer = [float(s) for s in sparsity]
        if len(per_layer) != len(flat):
            raise JpqError(f"got {len(per_layer)} sparsity targets for {len(flat)} layers")
        global_target = None
    for s in per_layer:
        _check_sparsity(s)

    if global_target is None:
        for i, f in enumerate(flat):
            k = min(max(_keep_count(f.numel(), per_layer[i]), reserve[i]), n_eligible[i])
            keep_flat[i][_order(f)[:k]] = True
    else:
        total = sum(f.numel() for f in flat)
        k_total = min(_keep_count(total, global_target), sum(n_eligible))
        if sum(reserve) > k_total:
            raise JpqError(f"the per-layer floor {floor} keeps {sum(reserve)} weights, more than the "
                           f"{k_total} that sparsity {global_target} allows")
        rest_scores = []
        for i, f in enumerate(flat):
            order = _order(f)
            keep_flat[i][order[:reserve[i]]] = True
            r = f.clone()
            r[keep_flat[i]] = -math.inf
            rest_scores.append(r)
        cat = torch.cat(rest_scores)
        k_rest = k_total - sum(reserve)
        chosen = _order(cat)[:k_rest]
        chosen_mask = torch.zeros(cat.numel(), dtype=torch.bool, device=cat.device)
        chosen_mask[chosen] = True
        offset = 0
        for i, f in enumerate(flat):
            keep_flat[i] |= chosen_mask[offset:offset + f.numel()]
            offset += f.numel()
    return [k.view(s.shape).to(torch.float32) for k, s in zip(keep_flat, scores)]


def _check_sparsity(s: float) -> None:
    if not (isinstance(s, (int, float)) and 0.0 <= s < 1.0):
        raise JpqError(f"sparsity must lie in [0, 1), got {s!r}")


class Pruner:
    """Masks on the weights of a :class:`~jpq_hw.compress.chain.Block` chain, chosen by a criterion.

    ``sparsity`` is the final target: one float, or ``{layer name: sparsity}`` (forces layer scope).
    """

    def __init__(self, blocks: Sequence[Block], criterion: Criterion, *, mode: str = "recover",
                 scope: str = "global", floor: float = 0.0, sparsity: float | Mapping[str, float] = 0.0):
        if mode not in MODES:
            raise JpqError(f"unknown fine-tuning mode {mode!r} (known: {', '.join(MODES)})")
        if scope not in SCOPES:
            raise JpqError(f"unknown sparsity scope {scope!r} (known: {', '.join(SCOPES)})")
        self.blocks = list(blocks)
        self.criterion = criterion
        self.mode = mode
        self.scope = scope
        self.floor = floor
        self.names = [b.name for b in self.blocks]
        if isinstance(sparsity, Mapping):  # keyed by layer name or by module path ("0" in an unnamed Sequential)
            keys = [(b.name, b.path) for b in self.blocks]
            unknown = set(sparsity) - {k for pair in keys for k in pair}
            if unknown:
                raise JpqError(f"sparsity given for unknown layers {sorted(unknown)} (layers: {', '.join(self.names)})")
            self.final = [float(sparsity.get(name, sparsity.get(path, 0.0))) for name, path in keys]
            self.scope = "layer"
        else:
            self.final = [float(sparsity)] * len(self.blocks)
        for s in self.final:
            _check_sparsity(s)
        if not 0.0 <= floor < 1.0:
            raise JpqError(f"per-layer floor must lie in [0, 1), got {floor}")
        if self.scope == "global" and floor > 0:
            sizes = [b.module.weight.numel() for b in self.blocks]
            reserve = sum(max(math.ceil(floor * n), 1) for n in sizes)
            keep = _keep_count(sum(sizes), self.final[0])
            if reserve > keep:
                raise JpqError(f"the per-layer floor {floor} keeps at least {reserve} weights, more than the {keep} "
                               f"that sparsity {self.final[0]} allows")
        self.frozen = mode != "recover"
        self.prepared = False

    # ------------------------------------------------------------------ parametrizations
    def prepare(self) -> None:
        """Attach an all-ones mask to every weight."""
        for b in self.blocks:
            w = b.module.weight
            parametrize.register_parametrization(
                b.module, "weight", Mask(torch.ones_like(w.detach()), straight_through=not self.frozen))
        self.prepared = True

    def _param(self, b: Block) -> Mask:
        return b.module.parametrizations.weight[0]  # type: ignore[union-attr,index]

    @property
    def shadows(self) -> list[torch.Tensor]:
        """The dense weights behind the masks (the parameters the optimizer updates)."""
        return [b.module.parametrizations.weight.original for b in self.blocks]  # type: ignore[union-attr]

    @property
    def masks(self) -> list[torch.Tensor]:
        return [self._param(b).mask for b in self.blocks]

    # ------------------------------------------------------------------ training hooks
    def observe(self) -> None:
        """Give the criterion this mini-batch's shadows and their gradients (call after backward)."""
        shadows = self.shadows
        self.criterion.observe(shadows, [w.grad for w in shadows])

    @torch.no_grad()
    def after_step(self) -> None:
        """In frozen mode keep pruned shadows exactly zero (an optimizer with momentum would move them)."""
        if self.frozen:
            for w, m in zip(self.shadows, self.masks):
                w.mul_(m)

    @torch.no_grad()
    def _restart(self, old: Sequence[torch.Tensor]) -> None:
        """After a pruning step (masks ``old`` before it): zero the shadows of the weights not kept both
        before and after, i.e. the pruned ones and those coming back (see the module docstring)."""
        for w, m, o in zip(self.shadows, self.masks, old):
            w.mul_(m * o)

    def target(self, schedule: Schedule, j: int) -> float | list[float]:
        """The sparsity argument of :meth:`step` for event ``j`` (1-based) of ``schedule``."""
        if self.scope == "global":
            return schedule.sparsity(j, self.final[0])
        return [schedule.sparsity(j, f) for f in self.final]

    @torch.no_grad()
    def step(self, sparsity: float | Sequence[float],
             exclude: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Re-choose every mask for ``sparsity`` (global scope: one number; layer scope: one per layer);
        weights marked in ``exclude`` (bool, per layer) are never kept."""
        if not self.prepared:
            raise JpqError("Pruner.step() before prepare()")
        scores = self.criterion.scores(self.shadows)
        new = select_masks(scores, sparsity, scope=self.scope, floor=self.floor, eligible=self.eligible(exclude),
                           names=self.names)
        old = [m.clone() for m in self.masks]
        for b, m in zip(self.blocks, new):
            self._param(b).mask.copy_(m)
        self._restart(old)
        return new

    def eligible(self, exclude: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor] | None:
        """The weights a pruning step may keep (bool per layer; ``None``: all): in ``frozen`` mode the
        ones kept now (masks only shrink), less those marked in ``exclude``."""
        eligible = [m.bool() for m in self.masks] if self.frozen else None
        if exclude is None:
            return eligible
        base = eligible if eligible is not None else [torch.ones_like(x, dtype=torch.bool) for x in exclude]
        return [e & ~x.bool() for e, x in zip(base, exclude)]

    @torch.no_grad()
    def apply(self, masks: Sequence[torch.Tensor]) -> None:
        """Set the masks to ``masks`` (0/1, one per layer), chosen outside (e.g. under a cell budget);
        the shadows restart as at :meth:`step`."""
        old = [m.detach().clone() for m in self.masks]
        for b, m in zip(self.blocks, masks):
            self._param(b).mask.copy_(m.reshape(self._param(b).mask.shape))
        self._restart(old)

    @torch.no_grad()
    def drop_zeros(self) -> int:
        """Unmask kept weights whose shadow is exactly 0 (so masks and nonzeros agree); returns how many."""
        dropped = 0
        for w, b in zip(self.shadows, self.blocks):
            mask = self._param(b).mask
            zero = (mask > 0) & (w == 0)
            dropped += int(zero.sum())
            mask[zero] = 0.0
        return dropped

    @torch.no_grad()
    def freeze(self) -> None:
        """End of the schedule: zero the pruned shadows, masks hold from now on (``frozen`` mode)."""
        self.frozen = True
        for b in self.blocks:
            self._param(b).straight_through = False
        self.after_step()

    @torch.no_grad()
    def squash(self) -> list[torch.Tensor]:
        """Remove the parametrizations, leaving ``weight = mask * w``; returns the masks."""
        masks = [m.clone() for m in self.masks]
        for b in self.blocks:
            parametrize.remove_parametrizations(b.module, "weight", leave_parametrized=True)
        self.prepared = False
        return masks

    def sparsity(self) -> float:
        """The current fraction of masked weights over all layers."""
        masks = self.masks
        return 1.0 - sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)
