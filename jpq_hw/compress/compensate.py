"""Compensation: refit a pruned layer's remaining weights by least squares (no retraining).

For the layers of a chain in order, with ``X`` a calibration batch:

- ``Z`` is the *dense* layer's pre-activation output on the *dense* network's input to it;
- ``A`` is the input the *pruned* (already compensated) network gives the layer, as rows
  (``Linear``: one row per sample; ``Conv2d``: one row per sample and output position, the
  ``unfold`` patch in ``[in_ch, kh, kw]`` order), with a column of ones when the layer has a bias;
- for every output ``o`` with kept input set ``S_o`` (its mask, plus the bias), the new weights solve
  the ridge problem ``min ||A[:, S_o] v - Z[:, o]||^2 + lam * ||v||^2`` with
  ``lam = damp * mean(diag(A^T A))`` (default ``damp = 1e-3``), in float64.

Pruned weights stay exactly zero; the layer's outputs match the dense layer's as well as its
remaining weights allow, and the error of earlier layers is corrected downstream.

A weight whose input is 0 on every calibration sample (a column of ``A`` that is all zero: a
corner pixel of the digits, a hidden unit whose ReLU never fires) is refit to exactly 0, so keeping
it would waste a place in the mask: :func:`dead_weights` finds these weights in the pruned network,
and the ``compensate`` mode never keeps one (the pruning stage excludes them from every mask it
chooses, then drops any kept weight that still comes out exactly 0), so masks and nonzeros agree.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .chain import Block


def _rows(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as a [rows, fan_in] matrix (patches for conv2d)."""
    m = block.module
    if block.kind == "linear":
        return torch.flatten(x, 1)
    kh, kw = m.kernel_size
    cols = F.unfold(x, (kh, kw), padding=block.padding, stride=block.stride)  # [N, C*kh*kw, L]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _targets(z: torch.Tensor) -> torch.Tensor:
    """Pre-activation outputs as [rows, out] (conv2d: one row per sample and position)."""
    if z.dim() == 2:
        return z
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


@torch.no_grad()
def compensate(blocks: Sequence[Block], dense_weights: Sequence[torch.Tensor],
               dense_biases: Sequence[torch.Tensor | None], masks: Sequence[torch.Tensor], x: torch.Tensor,
               *, damp: float = 1e-3) -> None:
    """Refit every block's kept weights (and bias) in place; ``block.module.weight`` must be writable.

    ``dense_weights`` / ``dense_biases`` are the layers before pruning, ``masks`` the current masks.
    """
    h_dense = x.double()
    h_pruned = x.double()
    for block, wd, bd, mask in zip(blocks, dense_weights, dense_biases, masks):
        m = block.module
        wd = wd.double()
        bd = bd.double() if bd is not None else None
        if block.kind == "linear":
            z_dense = F.linear(torch.flatten(h_dense, 1), wd, bd)
        else:
            z_dense = F.conv2d(h_dense, wd, bd, stride=block.stride, padding=block.padding)
        a = _rows(block, h_pruned)
        has_bias = m.bias is not None
        if has_bias:
            a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)], dim=1)
        z = _targets(z_dense)
        gram = a.T @ a
        rhs = a.T @ z  # [fan_in (+1), out]
        lam = damp * float(gram.diagonal().mean()) if gram.numel() else 0.0
        lam = lam if lam > 0 else 1e-12
        fan_in = mask[0].numel()
        mflat = mask.reshape(mask.shape[0], -1).bool()
        new_w = torch.zeros(mask.shape[0], fan_in, dtype=torch.float64, device=a.device)
        new_b = torch.zeros(mask.shape[0], dtype=torch.float64, device=a.device)
        for o in range(mask.shape[0]):
            idx = torch.nonzero(mflat[o]).flatten()
            if has_bias:
                idx = torch.cat([idx, torch.tensor([fan_in], device=idx.device)])
            if idx.numel() == 0:
                continue
            g = gram[idx][:, idx] + lam * torch.eye(idx.numel(), dtype=torch.float64, device=a.device)
            v = torch.linalg.solve(g, rhs[idx, o])
            if has_bias:
                new_b[o] = v[-1]
                v = v[:-1]
                idx = idx[:-1]
            new_w[o, idx] = v
        weight = new_w.view(mask.shape).to(m.weight.dtype)
        _set_weight(m, weight)
        if has_bias:
            m.bias.copy_(new_b.to(m.bias.dtype))
        # propagate: dense path with dense weights, pruned path with the refit weights
        h_dense = torch.relu(z_dense) if block.relu else z_dense
        if block.kind == "linear":
            z_pruned = F.linear(torch.flatten(h_pruned, 1), weight.double(), m.bias.double() if has_bias else None)
        else:
            z_pruned = F.conv2d(h_pruned, weight.double(), m.bias.double() if has_bias else None,
                                stride=block.stride, padding=block.padding)
        h_pruned = torch.relu(z_pruned) if block.relu else z_pruned


@torch.no_grad()
def dead_weights(blocks: Sequence[Block], x: torch.Tensor) -> list[torch.Tensor]:
    """Per block, bool shaped like its weight: the weights whose input is 0 on every sample of ``x``
    as the network (its current, pruned weights) computes it."""
    h = x.double()
    out = []
    for block in blocks:
        m = block.module
        w = m.weight.detach().double()
        live = (_rows(block, h) != 0).any(dim=0)  # [fan_in]
        out.append((~live).unsqueeze(0).expand(w.shape[0], -1).reshape(w.shape).clone())
        b = m.bias.detach().double() if m.bias is not None else None
        if block.kind == "linear":
            z = F.linear(torch.flatten(h, 1), w, b)
        else:
            z = F.conv2d(h, w, b, stride=block.stride, padding=block.padding)
        h = torch.relu(z) if block.relu else z
    return out


def _set_weight(module: torch.nn.Module, weight: torch.Tensor) -> None:
    """Write the weight, through a mask parametrization when one is attached (its shadow)."""
    if hasattr(module, "parametrizations") and "weight" in module.parametrizations:  # type: ignore[operator]
        module.parametrizations.weight.original.copy_(weight)  # type: ignore[union-attr]
    else:
        module.weight.copy_(weight)
