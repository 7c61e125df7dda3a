"""Training of :class:`jpq_hw.stereo.model.StereoNet` on synthetic pairs, with hooks for a pruner.

- :func:`training_pool`: a cached pool of synthetic pairs (:func:`jpq_hw.stereo.data.make_training_pairs`).
- :func:`stereo_loss`: the loss, reusable by other training loops.
- :func:`train_float`: Adam + cosine learning rate; calls ``hooks.before_step(step)``,
  ``hooks.after_backward(step)`` and ``hooks.after_step(step)`` around each step.
- :func:`magnitude_masks`, :class:`MagnitudePruning`: a simple global magnitude pruner (keep the
  top ``1 - s`` of ``|w|`` over all feature convs, biases dense) used to choose the architecture.
- :func:`evaluate_motorcycle`: the exact hard pipeline scored on the Motorcycle pair.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as Fn

from .data import make_training_pairs, motorcycle_quarter
from .metrics import score
from .model import StereoNet, hard_disparity

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def training_pool(n: int = 1500, size: tuple[int, int] = (64, 96), seed: int = 1,
                  cache_dir: str | None = None) -> Data:
    """``make_training_pairs(n, size, seed)``, cached as an ``.npz`` in ``cache_dir`` (default: the
    ``JPQ_STEREO_CACHE`` environment variable, else no cache). Rendering costs about 0.1 s/pair."""
    cache_dir = cache_dir or os.environ.get("JPQ_STEREO_CACHE")
    path = None
    if cache_dir:
        path = os.path.join(cache_dir, f"stereo_pool_n{n}_{size[0]}x{size[1]}_s{seed}.npz")
        if os.path.exists(path):
            z = np.load(path)
            return z["left"], z["right"], z["disp"], z["valid"]
    data = make_training_pairs(n, size=size, seed=seed)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(path, left=data[0], right=data[1], disp=data[2], valid=data[3])
    return data


def stereo_loss(model: StereoNet, left: torch.Tensor, right: torch.Tensor, gt: torch.Tensor,
                valid: torch.Tensor, ce_weight: float = 0.5) -> torch.Tensor:
    """Training loss of a batch: left/right [B, H, W] (0..255 floats), gt [B, H, W] disparity,
    valid [B, H, W] bool.

    ``smooth_l1(soft_argmin, gt)`` (beta 1) averaged over valid pixels, plus ``ce_weight`` times the
    cross-entropy of ``softmax(-agg / T)`` against gt split linearly between its two neighbouring
    integer disparities (this sharpens the cost minimum, so the hard argmin agrees with the soft one).
    """
    disp, agg = model(left, right)
    v = valid.to(torch.bool)
    nv = v.sum().clamp(min=1)
    loss = (Fn.smooth_l1_loss(disp, gt, reduction="none", beta=1.0) * v).sum() / nv
    if ce_weight:
        logp = torch.log_softmax(-agg / model.log_t.exp(), dim=1)
        g = gt.clamp(0, model.D - 1)
        lo = g.floor().long().clamp(max=model.D - 2)
        w_hi = g - lo
        ce = -(logp.gather(1, lo[:, None])[:, 0] * (1 - w_hi) + logp.gather(1, lo[:, None] + 1)[:, 0] * w_hi)
        loss = loss + ce_weight * (ce * v).sum() / nv
    return loss


def _call(hooks: Any, name: str, step: int) -> None:
    if hooks is None:
        return
    fn = hooks.get(name) if isinstance(hooks, dict) else getattr(hooks, name, None)
    if fn is not None:
        fn(step)


def train_float(model: StereoNet, steps: int = 3000, seed: int = 0, data: Data | None = None, *,
                batch: int = 8, lr: float = 3e-3, weight_decay: float = 0.0, crop: tuple[int, int] | None = None,
                ce_weight: float = 0.5, l1: float = 0.0, hooks: Any = None, log_every: int = 0,
                loss_fn: Callable[..., torch.Tensor] | None = None) -> list[float]:
    """Train ``model`` in place for ``steps`` Adam steps (cosine learning-rate decay to 5%).

    ``data``: ``(left, right, disp, valid)`` arrays [N, H, W] (default :func:`training_pool`).
    Each step draws ``batch`` pairs (with replacement, seeded by ``seed``), optionally a random
    ``crop`` (h, w), and a random vertical flip (rows flip in both views; horizontal flips would
    break the left-reference convention). ``l1`` adds ``l1 * sum |w|`` over the feature convs.
    ``hooks``: an object or dict with optional ``before_step(step)``, ``after_backward(step)``
    (gradients are populated, the optimizer has not stepped) and ``after_step(step)``; e.g. a
    pruner observing Taylor scores in ``after_backward`` and re-applying masks in ``after_step``.
    ``loss_fn`` defaults to :func:`stereo_loss` (called with ``ce_weight``).
    Returns the per-step losses.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if data is None:
        data = training_pool()
    L, R, D, V = (torch.as_tensor(np.asarray(a)) for a in data)
    n, H, W = L.shape
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(steps, 1))))
    losses = []
    model.train()
    t0 = time.time()
    for step in range(steps):
        _call(hooks, "before_step", step)
        idx = torch.as_tensor(rng.integers(0, n, size=batch))
        l, r, g, v = L[idx].float(), R[idx].float(), D[idx].float(), V[idx]
        if crop is not None:
            y0 = int(rng.integers(0, H - crop[0] + 1))
            x0 = int(rng.integers(0, W - crop[1] + 1))
            sl = (slice(None), slice(y0, y0 + crop[0]), slice(x0, x0 + crop[1]))
            l, r, g, v = l[sl], r[sl], g[sl], v[sl]
        if rng.random() < 0.5:
            l, r, g, v = (t.flip(1) for t in (l, r, g, v))
        loss = (loss_fn or stereo_loss)(model, l, r, g, v, ce_weight=ce_weight)
        if l1:
            loss = loss + l1 * sum(c.weight.abs().sum() for c in model.features)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _call(hooks, "after_backward", step)
        opt.step()
        sched.step()
        _call(hooks, "after_step", step)
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
    model.eval()
    return losses


def magnitude_masks(model: StereoNet, sparsity: float) -> list[torch.Tensor]:
    """0/1 masks (one per feature conv weight) keeping the ``round((1 - sparsity) * n)`` largest
    ``|w|`` over all feature convs together (global; ties broken by position, earlier kept)."""
    ws = [c.weight.detach().reshape(-1) for c in model.features]
    allw = torch.cat(ws).abs()
    keep = int(round((1 - sparsity) * allw.numel()))
    order = torch.argsort(-allw, stable=True)
    flat = torch.zeros_like(allw)
    flat[order[:keep]] = 1.0
    out, i = [], 0
    for c, w in zip(model.features, ws):
        out.append(flat[i:i + w.numel()].view_as(c.weight))
        i += w.numel()
    return out


class MagnitudePruning:
    """Hooks for :func:`train_float`: gradual global magnitude pruning with frozen masks.

    At each step in ``schedule`` (a dict ``step -> sparsity``) the masks are re-chosen among the
    weights still kept (:func:`magnitude_masks` on the masked weights); after every optimizer step
    the pruned weights are set back to zero.
    """

    def __init__(self, model: StereoNet, schedule: dict[int, float]):
        self.model, self.schedule = model, dict(schedule)
        self.masks: list[torch.Tensor] | None = None

    def apply(self) -> None:
        if self.masks is not None:
            with torch.no_grad():
                for c, m in zip(self.model.features, self.masks):
                    c.weight.mul_(m)

    def before_step(self, step: int) -> None:
        if step in self.schedule:
            self.apply()
            self.masks = magnitude_masks(self.model, self.schedule[step])
            self.apply()

    def after_step(self, step: int) -> None:
        self.apply()


def nonzero_weights(model: StereoNet) -> int:
    """Number of nonzero feature-conv weights."""
    return int(sum((c.weight != 0).sum() for c in model.features))


def evaluate_motorcycle(model: StereoNet) -> dict:
    """:func:`jpq_hw.stereo.metrics.score` of :func:`hard_disparity` on the quarter-resolution
    Motorcycle pair."""
    left, right, gt = motorcycle_quarter()
    return score(hard_disparity(model, left, right), gt)


def evaluate_pairs(model: StereoNet, data: Data, count: int = 100) -> dict:
    """Mean hard-pipeline scores over the first ``count`` pairs of ``data`` (synthetic validation)."""
    L, R, D, V = data
    rows = [score(hard_disparity(model, L[i], R[i]), np.where(V[i], D[i], np.nan)) for i in range(min(count, len(L)))]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("epe", "bad1", "bad2")}


def prune_and_finetune(model: StereoNet, sparsity: float = 0.95, steps: int = 2000, stages: Sequence[float] = (0.5, 0.75, 0.875),
                       seed: int = 1, data: Data | None = None, **kw) -> MagnitudePruning:
    """Gradual magnitude pruning to ``sparsity``: the sparsities in ``stages`` and then ``sparsity``
    at evenly spaced steps in the first half of ``steps``; fine-tune to the end with the mask."""
    targets = list(stages) + [sparsity]
    half = steps // 2
    schedule = {int(i * half / len(targets)): s for i, s in enumerate(targets)}
    pr = MagnitudePruning(model, schedule)
    train_float(model, steps, seed=seed, data=data, hooks=pr, **kw)
    pr.apply()
    return pr
