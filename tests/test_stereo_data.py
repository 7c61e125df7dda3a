"""Fast tests of the stereo data, baselines and metrics (jpq_hw.stereo)."""

from __future__ import annotations

import numpy as np
import pytest

from jpq_hw.stereo.baselines import box_sum, census_transform, census_wta, hamming_cost_volume, wta
from jpq_hw.stereo.data import make_training_pairs, motorcycle_quarter, motorcycle_valid_count
from jpq_hw.stereo.metrics import score


def test_motorcycle_quarter_shapes_and_ranges():
    left, right, gt = motorcycle_quarter()
    for a in (left, right, gt):
        assert a.shape == (125, 185)
    assert left.dtype == np.int64 and right.dtype == np.int64
    assert 0 <= left.min() and left.max() <= 255 and 0 <= right.min() and right.max() <= 255
    valid = np.isfinite(gt)
    assert not np.isinf(gt).any()  # invalid is NaN, never inf
    n = motorcycle_valid_count()
    assert n == valid.sum()
    assert 0.70 < n / gt.size < 0.80  # 17,451 of 23,125 (75.5%)
    assert 1.5 < gt[valid].min() and gt[valid].max() < 15.5


def test_motorcycle_quarter_rule():
    """Recompute one block by hand from the full-resolution pair."""
    from skimage.color import rgb2gray
    from skimage.data import stereo_motorcycle

    left_rgb, _, disp = stereo_motorcycle()
    left, _, gt = motorcycle_quarter()
    y, x = 60, 100
    blk = rgb2gray(left_rgb)[4 * y:4 * y + 4, 4 * x:4 * x + 4] * 255
    assert left[y, x] == int(np.floor(blk.mean() + 0.5))
    dblk = disp[4 * y:4 * y + 4, 4 * x:4 * x + 4]
    if np.isfinite(dblk).all():
        assert gt[y, x] == pytest.approx(dblk.mean() / 4)
    else:
        assert np.isnan(gt[y, x])


def test_census_wta_recovers_known_shift():
    rng = np.random.default_rng(0)
    h, w, d = 40, 80, 6
    scene = rng.integers(0, 256, size=(h, w + d))
    left = scene[:, :w]           # left(y, x) = scene(y, x)
    right = scene[:, d:]          # right(y, x - d) = scene(y, x) = left(y, x)
    pred = census_wta(left, right)
    assert (pred[:, 16:] == d).mean() > 0.98


def test_census_wta_on_generated_pairs():
    left, right, disp, valid = make_training_pairs(4, size=(48, 72), seed=3)
    fracs = []
    for i in range(4):
        gt = np.where(valid[i], disp[i], np.nan)
        fracs.append(1 - score(census_wta(left[i], right[i]), gt)["bad2"])
    assert np.median(fracs) > 0.75


def test_census_and_cost_helpers():
    img = np.array([[5, 1, 9], [3, 5, 7], [5, 2, 8]])
    bits = census_transform(img)
    assert bits.shape == (8, 3, 3)
    # Centre (1, 1) = 5; neighbours row-major (5, 1, 9, 3, 7, 5, 2, 8) < 5?
    assert bits[:, 1, 1].tolist() == [False, True, False, True, False, False, True, False]
    fl = np.ones((2, 1, 4), bool)
    fr = np.zeros((2, 1, 4), bool)
    c = hamming_cost_volume(fl, fr, 3)
    assert c.tolist() == [[[2, 2, 2, 2]], [[2, 2, 2, 2]], [[2, 2, 2, 2]]]
    assert box_sum(np.ones((1, 3, 3), np.int64), 3)[0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    assert wta(np.array([[[3]], [[1]], [[1]]])).tolist() == [[1]]  # tie -> smallest d


def test_score_hand_cases():
    gt = np.array([[1.0, 2.0, np.nan], [4.0, 5.0, 6.0]])
    pred = np.array([[1.0, 3.5, 100.0], [4.0, 7.5, 6.5]])
    s = score(pred, gt)
    assert s["valid"] == 5
    assert s["epe"] == pytest.approx((0 + 1.5 + 0 + 2.5 + 0.5) / 5)
    assert s["bad1"] == pytest.approx(2 / 5)
    assert s["bad2"] == pytest.approx(1 / 5)
    assert score(gt, gt)["epe"] == 0.0
    with pytest.raises(ValueError):
        score(np.full_like(gt, np.nan), gt)


def test_generator_deterministic_and_ranges():
    a = make_training_pairs(3, size=(32, 48), seed=7)
    b = make_training_pairs(3, size=(32, 48), seed=7)
    c = make_training_pairs(3, size=(32, 48), seed=8)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    left, right, disp, valid = a
    assert left.shape == right.shape == disp.shape == valid.shape == (3, 32, 48)
    assert left.dtype == np.uint8 and valid.dtype == bool
    assert disp.min() >= 0 and disp.max() <= 15
    assert 0.5 < valid.mean() < 1.0
    # Pixels whose match leaves the right image are invalid.
    cols = np.arange(48)[None, None, :]
    assert not (valid & (cols - disp < 0)).any()
    # First pairs do not depend on n.
    assert np.array_equal(make_training_pairs(1, size=(32, 48), seed=7)[0][0], left[0])


def test_census_init_model_reproduces_census_bits():
    torch = pytest.importorskip("torch")
    from jpq_hw.stereo.model import StereoNet, census_init, hard_bits

    left, _, _ = motorcycle_quarter()
    m = StereoNet(hidden=(), kernels=(3,), F=8, box=5)
    census_init(m)
    bits = hard_bits(m, left)
    ref = census_transform(left)
    assert np.array_equal(bits[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1])
    # The relaxed pipeline with straight-through bits gives exactly the integer costs.
    with torch.no_grad():
        t = torch.as_tensor(left[None, :40, :60], dtype=torch.float32)
        c = m.cost_volume(m.bits(t), m.bits(t))[0].numpy()
    b = hard_bits(m, left[:40, :60])
    assert np.array_equal(c, hamming_cost_volume(b, b, 16))
