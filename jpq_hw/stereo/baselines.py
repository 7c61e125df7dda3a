"""Classical stereo baselines at the hardware's scale (16 integer disparities, left reference).

``census_wta`` is the baseline the hardware network must beat; ``sgbm`` (OpenCV, an optional
``bench`` extra, imported lazily) is a stronger software reference.
"""

from __future__ import annotations

import numpy as np


def census_transform(img: np.ndarray, census: int = 3) -> np.ndarray:
    """Census bits [census*census - 1, H, W] (bool) of a grey image [H, W].

    Bit ``k`` of pixel (y, x) is ``img(y + dy, x + dx) < img(y, x)`` (neighbour strictly darker
    than the centre) for the ``census*census - 1`` offsets (dy, dx) != (0, 0) in row-major order.
    Neighbours outside the image are taken from the nearest edge pixel (edge replication), so
    border bits compare real pixel values.
    """
    img = np.asarray(img, dtype=np.int64)
    r = census // 2
    p = np.pad(img, r, mode="edge")
    h, w = img.shape
    bits = []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            bits.append(p[r + dy:r + dy + h, r + dx:r + dx + w] < img)
    return np.stack(bits)


def hamming_cost_volume(fl: np.ndarray, fr: np.ndarray, disparities: int = 16) -> np.ndarray:
    """Cost volume [D, H, W] (int64) of binary features [F, H, W]:
    ``cost[d, y, x] = sum_f fl[f, y, x] XOR fr[f, y, x - d]``, and ``F`` (the maximum) where
    ``x - d < 0``."""
    F, h, w = fl.shape
    cost = np.full((disparities, h, w), F, dtype=np.int64)
    for d in range(disparities):
        if d < w:
            cost[d, :, d:] = (fl[:, :, d:] != fr[:, :, :w - d]).sum(axis=0)
    return cost


def box_sum(vol: np.ndarray, box: int) -> np.ndarray:
    """``box x box`` sum over the last two axes with zero padding (same size output)."""
    r = box // 2
    p = np.pad(vol, [(0, 0)] * (vol.ndim - 2) + [(r, r), (r, r)])
    c = p.cumsum(axis=-1).cumsum(axis=-2)
    c = np.pad(c, [(0, 0)] * (vol.ndim - 2) + [(1, 0), (1, 0)])
    h, w = vol.shape[-2:]
    return (c[..., box:box + h, box:box + w] - c[..., :h, box:box + w]
            - c[..., box:box + h, :w] + c[..., :h, :w])


def wta(cost: np.ndarray) -> np.ndarray:
    """Winner-take-all: argmin over axis 0, ties to the smallest disparity (int64 [H, W])."""
    return np.argmin(cost, axis=0).astype(np.int64)


def census_wta(left: np.ndarray, right: np.ndarray, disparities: int = 16, census: int = 3,
               box: int = 5) -> np.ndarray:
    """Census + Hamming + box + winner-take-all disparity (int64 [H, W], 0..disparities-1).

    1. :func:`census_transform` (``census x census``, 8 bits for 3x3: neighbour < centre, edge
       replication at the image border) of both images;
    2. :func:`hamming_cost_volume` over d = 0..disparities-1, cost = number of bits (8) where
       ``x - d < 0``;
    3. :func:`box_sum` ``box x box`` per disparity, zero padded;
    4. :func:`wta`: argmin over d, ties -> smallest d.
    """
    cl = census_transform(left, census)
    cr = census_transform(right, census)
    return wta(box_sum(hamming_cost_volume(cl, cr, disparities), box))


def sgbm(left: np.ndarray, right: np.ndarray, disparities: int = 16, block: int = 5,
         fill: bool = True) -> np.ndarray:
    """OpenCV semi-global block matching (float64 [H, W] disparities, px).

    Settings follow OpenCV's documentation/samples: ``StereoSGBM_create(minDisparity=0,
    numDisparities=16, blockSize=5, P1=8*cn*block**2, P2=32*cn*block**2)`` with cn = 1 channel,
    the other parameters at their defaults (mode SGBM, uniquenessRatio 10, disp12MaxDiff 0 ->
    disabled, speckle filter off); ``compute(left_u8, right_u8)`` returns 16x fixed point, divided
    by 16 here.

    Invalid outputs (``< minDisparity``, i.e. -1 after scaling: rejected by the uniqueness test and
    the left border strip where no full disparity range exists) are, with ``fill=True`` (default),
    filled per row from the nearest valid pixel, preferring the smaller (background) of the left
    and right neighbours (the usual Middlebury-style hole filling); every pixel then has a value
    and counts in the metrics. ``fill=False`` leaves them as NaN.
    """
    import cv2

    cn = 1
    matcher = cv2.StereoSGBM_create(minDisparity=0, numDisparities=disparities, blockSize=block,
                                    P1=8 * cn * block * block, P2=32 * cn * block * block)
    raw = matcher.compute(np.asarray(left, np.uint8), np.asarray(right, np.uint8))
    disp = raw.astype(np.float64) / 16.0
    disp[raw < 0] = np.nan
    return fill_holes(disp) if fill else disp


def fill_holes(disp: np.ndarray) -> np.ndarray:
    """Fill NaN pixels of each row with min(nearest valid to the left, nearest valid to the right);
    a row with no valid pixel is filled with 0."""
    out = disp.copy()
    h, w = disp.shape
    for y in range(h):
        row = disp[y]
        ok = np.isfinite(row)
        if ok.all():
            continue
        if not ok.any():
            out[y] = 0.0
            continue
        idx = np.arange(w)
        li = np.maximum.accumulate(np.where(ok, idx, -1))
        ri = np.minimum.accumulate(np.where(ok, idx, w)[::-1])[::-1]
        lv = np.where(li >= 0, row[np.clip(li, 0, w - 1)], np.inf)
        rv = np.where(ri < w, row[np.clip(ri, 0, w - 1)], np.inf)
        out[y] = np.where(ok, row, np.minimum(lv, rv))
    return out
