"""Stereo data: the Motorcycle evaluation pair at quarter resolution, and synthetic training pairs.

Convention (rectified pair, left image is the reference): a left pixel at column ``x`` with
disparity ``d`` shows the same scene point as the right pixel at column ``x - d``::

    left(y, x) = right(y, x - d(y, x))

Images are unsigned 8-bit grey values (0..255). Disparities are in pixels of the image they belong
to (quarter resolution for everything here).

The evaluation pair is ``skimage.data.stereo_motorcycle()`` (Middlebury 2014 "Motorcycle", shipped
inside scikit-image, no download). It is never used for training: the training pairs are rendered
in code from *other* images that ship with scikit-image (:data:`TEXTURE_SOURCES`), warped by known
disparity maps (:func:`make_training_pairs`).
"""

from __future__ import annotations

import functools

import numpy as np

#: Quarter-resolution Motorcycle size (rows, columns).
MOTORCYCLE_QUARTER_SHAPE = (125, 185)

#: scikit-image images used as textures for the synthetic training pairs (all load offline).
#: ``stereo_motorcycle`` is deliberately absent.
TEXTURE_SOURCES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel",
                   "text", "coins", "moon", "page", "immunohistochemistry", "hubble_deep_field",
                   "cell", "clock")


def to_grey255(img: np.ndarray) -> np.ndarray:
    """Grey level in [0, 255] (float64): ``skimage.color.rgb2gray(img) * 255`` for RGB(A) input,
    the value rescaled to 0..255 for a single-channel image."""
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    if img.ndim == 3:
        if img.shape[2] == 4:
            img = rgba2rgb(img)
        return rgb2gray(img) * 255.0
    return img_as_float(img) * 255.0


def block_mean(a: np.ndarray, f: int = 4) -> np.ndarray:
    """Mean over non-overlapping ``f x f`` blocks; ``a`` is cropped to a multiple of ``f`` first
    (trailing rows/columns dropped)."""
    h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    a = a[:h, :w]
    return a.reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def quantize_u8(a: np.ndarray) -> np.ndarray:
    """Round half up (``floor(a + 0.5)``) and clip to 0..255; int64."""
    return np.clip(np.floor(np.asarray(a, dtype=np.float64) + 0.5), 0, 255).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _motorcycle_quarter_cached():
    from skimage.data import stereo_motorcycle

    left_rgb, right_rgb, disp = stereo_motorcycle()
    left = quantize_u8(block_mean(to_grey255(left_rgb)))
    right = quantize_u8(block_mean(to_grey255(right_rgb)))
    d = np.asarray(disp, dtype=np.float64)
    invalid = ~np.isfinite(d)
    d = np.where(invalid, 0.0, d) / 4.0
    gt = block_mean(d)
    gt[block_mean(invalid.astype(np.float64)) > 0] = np.nan
    for a in (left, right, gt):
        a.setflags(write=False)
    return left, right, gt


def motorcycle_quarter() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Middlebury Motorcycle pair at quarter resolution: ``(left, right, gt)``, each [125, 185].

    Exact rule (scikit-image's ``stereo_motorcycle()`` is 500x741 RGB + a float disparity whose
    invalid pixels are ``+inf``):

    - images: grey = ``skimage.color.rgb2gray(rgb) * 255``; crop to 500x740 (drop the last column);
      mean over each 4x4 block; round half up and clip to 0..255. int64 arrays.
    - ground truth: the disparity divided by 4 (quarter-resolution pixels), mean over each 4x4 block
      of the same crop; a block containing any invalid (non-finite) pixel is invalid and holds NaN.
      float64. Valid values lie in about 1.8..15.0 px; :func:`motorcycle_valid_count` counts them.

    The arrays are fresh copies (the cached originals are read-only).
    """
    left, right, gt = _motorcycle_quarter_cached()
    return left.copy(), right.copy(), gt.copy()


def motorcycle_valid_count() -> int:
    """Number of valid (non-NaN) ground-truth pixels of :func:`motorcycle_quarter`."""
    return int(np.isfinite(_motorcycle_quarter_cached()[2]).sum())


# ----------------------------------------------------------------------------------------------
# Synthetic training pairs
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _textures() -> tuple[np.ndarray, ...]:
    import skimage.data as skd

    return tuple(to_grey255(getattr(skd, name)()).astype(np.float32) for name in TEXTURE_SOURCES)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth random field in about [-1, 1]: a random grid of ``cells`` upsampled bicubically."""
    from scipy.ndimage import zoom

    g = rng.uniform(-1.0, 1.0, size=(cells[0] + 3, cells[1] + 3))
    z = zoom(g, ((shape[0] + 8) / g.shape[0], (shape[1] + 8) / g.shape[1]), order=3, mode="nearest")
    return z[4:4 + shape[0], 4:4 + shape[1]]


def _texture_layer(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A grey texture on a grid of ``shape``: a random image, scale, rotation, flip, offset and
    contrast, sampled bilinearly (mirror padding)."""
    from scipy.ndimage import map_coordinates

    src = _textures()[rng.integers(len(TEXTURE_SOURCES))]
    scale = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))  # source px per rendered px
    ang = rng.uniform(-np.pi, np.pi) if rng.random() < 0.3 else rng.uniform(-0.2, 0.2)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    c, s = np.cos(ang) * scale, np.sin(ang) * scale
    flip = -1.0 if rng.random() < 0.5 else 1.0
    sy = c * yy - s * xx * flip + rng.uniform(0, src.shape[0])
    sx = s * yy + c * xx * flip + rng.uniform(0, src.shape[1])
    tex = map_coordinates(src, [sy, sx], order=1, mode="mirror").astype(np.float64)
    m = tex.mean()
    gain = rng.uniform(0.25, 1.2)
    return np.clip(m + gain * (tex - m) + rng.uniform(-40, 40), 0, 255)


def _shape_mask(rng: np.random.Generator, shape: tuple[int, int], xlim: float) -> np.ndarray:
    """A random foreground silhouette (ellipse, rotated rectangle, thin bar, star polygon or
    blob) on a grid of ``shape``; centred within columns ``0..xlim``."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = rng.uniform(0, h), rng.uniform(0, xlim)
    ang = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
    v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
    size = min(h, xlim)
    kind = rng.integers(5)
    if kind == 0:  # ellipse
        a, b = rng.uniform(0.08, 0.4, size=2) * size
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if kind == 1:  # rectangle
        a, b = rng.uniform(0.08, 0.4, size=2) * size
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if kind == 2:  # thin bar (like spokes, pipes)
        a, b = rng.uniform(0.3, 0.8) * size, rng.uniform(0.01, 0.05) * size + 3
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if kind == 3:  # star-shaped polygon
        r = np.hypot(u, v)
        th = np.arctan2(v, u)
        r0 = rng.uniform(0.1, 0.35) * size
        rad = np.full_like(th, r0)
        for k in range(1, 5):
            rad += r0 * rng.uniform(-0.25, 0.25) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
        return r <= rad
    blob = _smooth_noise(rng, shape, (int(rng.integers(2, 5)), int(rng.integers(3, 7))))
    return blob > rng.uniform(0.2, 0.5)


def _sample_x(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of each row of ``a`` [H, Wa] at fractional columns ``x`` [H, W]
    (clamped to the array)."""
    wa = a.shape[1]
    x = np.clip(x, 0, wa - 1.000001)
    x0 = x.astype(np.int64)
    t = x - x0
    flat = x0 + (np.arange(a.shape[0]) * wa)[:, None]
    af = a.reshape(-1)
    return af[flat] + (af[flat + 1] - af[flat]) * t


def _solve_source(disp: np.ndarray, xr: np.ndarray, iters: int = 4) -> np.ndarray:
    """Left-view column ``x`` with ``x - disp(y, x) = xr`` (fixed-point iteration; the fields'
    slopes are far below 1, so it converges geometrically)."""
    x = xr + _sample_x(disp, xr)
    for _ in range(iters):
        x = xr + _sample_x(disp, x)
    return x


def _render_pair(rng: np.random.Generator, size: tuple[int, int], max_disp: float = 15.0,
                 factor: int = 4, noise: float = 2.5, photometric: float = 0.15) -> tuple[np.ndarray, ...]:
    """One synthetic pair at ``size`` (quarter resolution), rendered at ``factor`` x resolution and
    block-averaged like :func:`motorcycle_quarter`. Returns (left u8, right u8, disp, valid)."""
    H, W = size
    h, w = H * factor, W * factor
    wext = w + int(np.ceil(max_disp * factor)) + 2 * factor  # left-view columns the right view sees
    shape = (h, wext)
    yy, xx = np.mgrid[0:h, 0:wext].astype(np.float64)
    yq, xq = yy / factor, xx / factor  # quarter-resolution coordinates

    # Background: slanted plane + smooth bumps, disparity in [0, ~11].
    base = rng.uniform(0.0, 9.0)
    field = (base + rng.uniform(-3, 3) * (xq / W) + rng.uniform(-3, 3) * (yq / H)
             + rng.uniform(0, 1.5) * _smooth_noise(rng, shape, (2, 3)))
    layers = [(np.ones(shape), np.clip(field, 0.0, max_disp), _texture_layer(rng, shape))]
    # Foreground layers (fronto-parallel or slanted), in front of the background on average.
    for _ in range(int(rng.integers(0, 5))):
        mask = _shape_mask(rng, shape, wext).astype(np.float64)
        d0 = min(float(np.median(field)) + rng.uniform(1.0, 8.0), max_disp - rng.uniform(0, 1.0))
        if rng.random() < 0.5:
            disp = np.full(shape, d0)
        else:
            disp = d0 + rng.uniform(-2, 2) * ((xq - xq.mean()) / W) + rng.uniform(-2, 2) * ((yq - yq.mean()) / H)
        layers.append((mask, np.clip(disp, 0.0, max_disp), _texture_layer(rng, shape)))

    dhi = [L[1] * factor for L in layers]  # disparities in high-resolution pixels
    xs = np.mgrid[0:h, 0:w][1].astype(np.float64)

    def view(xr: np.ndarray, solve: bool):
        """Visible layer index, its disparity (hi-res) and colour at right-view (solve=True) or
        left-view columns ``xr``. Nearest wins (largest disparity)."""
        best_d = np.full(xr.shape, -1.0)
        best_i = np.zeros(xr.shape, np.int64)
        col = np.zeros(xr.shape)
        for i, ((mask, _, tex), d) in enumerate(zip(layers, dhi)):  # mask: float 0/1
            const = d.min() == d.max()
            x = (xr + d.flat[0] if const else _solve_source(d, xr)) if solve else xr
            cover = _sample_x(mask, x) >= 0.5
            di = np.full(x.shape, d.flat[0]) if const else _sample_x(d, x)
            take = cover & (di > best_d)
            best_d = np.where(take, di, best_d)
            best_i = np.where(take, i, best_i)
            col = np.where(take, _sample_x(tex, x), col)
        return best_i, best_d, col

    li, ld, lcol = view(xs, solve=False)
    _, _, rcol = view(xs, solve=True)
    # A left pixel is valid if its point lands inside the right image and is not occluded there.
    xr = xs - ld
    ri, _, _ = view(xr, solve=True)
    valid_hi = (xr >= 0) & (ri == li)

    left = block_mean(lcol, factor)
    right = block_mean(rcol, factor)
    disp = block_mean(ld, factor) / factor
    valid = block_mean(valid_hi.astype(np.float64), factor) == 1.0

    # Photometric differences between the cameras, then sensor noise and 8-bit quantisation.
    def camera(img):
        gain = rng.uniform(1 - photometric, 1 + photometric)
        bias = rng.uniform(-80, 80) * photometric
        gamma = rng.uniform(1 - photometric / 1.5, 1 + photometric / 1.5)
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma * gain + bias
        return quantize_u8(img + rng.normal(0, rng.uniform(0.0, noise), img.shape))

    return camera(left), camera(right), disp.astype(np.float32), valid


def make_training_pairs(n: int, size: tuple[int, int] = (64, 96), seed: int = 0, *,
                        noise: float = 2.5, photometric: float = 0.15
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` synthetic stereo pairs with known disparity, deterministic for a given ``seed``.

    Each scene: a textured background whose disparity is a slanted plane plus smooth bumps
    (0..~11 px), and 0..4 textured foreground layers (ellipses, rectangles, thin bars, star
    polygons, blobs; fronto-parallel or slanted; nearer than the background), z-buffered so they
    occlude each other. Textures are random crops/scales/rotations of :data:`TEXTURE_SOURCES`.
    Both views are rendered exactly (backward warping, left(y, x) = right(y, x - d)) at 4x the
    requested size and 4x4 block-averaged, as :func:`motorcycle_quarter` builds the evaluation
    pair. Then each view gets its own gain (``1 +- photometric``), bias (``+- 80 * photometric``
    grey levels), gamma (``1 +- photometric / 1.5``) and Gaussian noise (sigma uniform in
    ``0..noise``), and is rounded to 0..255. Defaults: ``noise=2.5, photometric=0.15`` (gain
    0.85..1.15, bias +-12, gamma 0.9..1.1).

    Returns ``(left, right, disp, valid)``: left/right uint8 [n, H, W]; disp float32 [n, H, W] in
    0..15 (quarter-resolution px, block mean like the Motorcycle ground truth); valid bool
    [n, H, W]: False where the point leaves the right image (x - d < 0) or is occluded in it
    (block rule: any invalid sub-pixel makes the pixel invalid).
    """
    H, W = size
    rng = np.random.default_rng(seed)
    out_l = np.empty((n, H, W), np.uint8)
    out_r = np.empty((n, H, W), np.uint8)
    out_d = np.empty((n, H, W), np.float32)
    out_v = np.empty((n, H, W), bool)
    for i in range(n):
        pair_rng = np.random.default_rng(rng.integers(2**63))
        l, r, d, v = _render_pair(pair_rng, size, noise=noise, photometric=photometric)
        out_l[i], out_r[i], out_d[i], out_v[i] = l, r, d, v
    return out_l, out_r, out_d, out_v
