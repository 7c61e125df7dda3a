"""Disparity error metrics on the valid ground-truth pixels."""

from __future__ import annotations

import numpy as np


def score(pred: np.ndarray, gt: np.ndarray) -> dict:
    """Errors of ``pred`` against ``gt`` over the pixels where ``gt`` is finite (NaN/inf = invalid).

    Returns ``dict(epe, bad1, bad2, valid)``: ``epe`` = mean ``|pred - gt|`` (px); ``bad1`` /
    ``bad2`` = fraction of valid pixels with ``|pred - gt| > 1`` / ``> 2`` (strictly greater);
    ``valid`` = number of valid pixels. A non-finite prediction on a valid pixel is not allowed
    (fill holes first; :func:`jpq_hw.stereo.baselines.sgbm` does) and raises ``ValueError``.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs gt {gt.shape}")
    m = np.isfinite(gt)
    n = int(m.sum())
    if n == 0:
        raise ValueError("no valid ground-truth pixel")
    if not np.isfinite(pred[m]).all():
        raise ValueError("prediction is not finite on some valid pixels")
    err = np.abs(pred[m] - gt[m])
    return dict(epe=float(err.mean()), bad1=float((err > 1).mean()), bad2=float((err > 2).mean()), valid=n)


def format_score(s: dict) -> str:
    """``'EPE 0.871  bad>1 21.3%  bad>2 9.9%'``."""
    return f"EPE {s['epe']:.3f}  bad>1 {100 * s['bad1']:.1f}%  bad>2 {100 * s['bad2']:.1f}%"
