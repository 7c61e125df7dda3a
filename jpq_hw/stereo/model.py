"""Binary-feature stereo network: what the streaming hardware implements, plus its relaxation.

Exact (hard) pipeline, implemented bit-exactly by the hardware and by :func:`hard_disparity`:

1. A shared (siamese) feature extractor on each 8-bit grey image ``x`` (0..255 integers, fed as
   ``x * input_scale``, ``input_scale = 2**-8``): a chain of ``nn.Conv2d`` (stride 1, square
   kernel k, zero padding ``(k-1)//2``, bias), ReLU between them, none after the last.
2. Binarisation of the last conv's pre-activation ``z``: feature bit = ``z > 0`` -> ``F`` bits.
3. Hamming cost volume over ``D`` disparities: ``cost[d](y, x) = sum_f L_f(y, x) XOR
   R_f(y, x - d)``; ``cost = F`` where ``x - d < 0``; with ``cost_cap``, ``min(cost, cost_cap)``
   (a saturated cost: a bad match counts the same however bad, which makes the box sum robust).
4. ``box x box`` sum of each disparity's cost map, zero padded.
5. Winner-take-all: argmin over d, ties to the smallest d -> integer disparity 0..D-1.

Training relaxation (:meth:`StereoNet.forward`): bits are straight-through (forward ``z > 0``,
backward the derivative of ``sigmoid(z / tau)``) or soft (``sigmoid(z / tau)``), the Hamming
distance of soft bits is ``l + r - 2 l r``, the box is the same, and the argmin becomes a
soft-argmin over ``-cost / T`` with a learned temperature ``T``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from .baselines import box_sum, hamming_cost_volume, wta


class _SigmoidSTE(torch.autograd.Function):
    """Forward: ``(z > 0)`` as float. Backward: ``d/dz sigmoid(z / tau)``."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, tau: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.tau = tau
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        s = torch.sigmoid(z / ctx.tau)
        return grad * s * (1 - s) / ctx.tau, None


class StereoNet(nn.Module):
    """Siamese conv feature extractor -> binary features -> Hamming cost -> box -> argmin.

    ``hidden``: output channels of the non-final convs (e.g. ``(8,)``); ``kernels``: one kernel
    size per conv (``len(hidden) + 1`` of them); ``F``: binary features (output channels of the
    last conv); ``D``: disparities 0..D-1; ``box``: aggregation window; ``tau``: temperature of
    the bit relaxation in units of the pre-activation (``2**-6`` = 4 grey levels of a first-layer
    pixel difference; 1.0 made the relaxation almost linear and trained badly); ``binarize``:
    ``'soft'`` (sigmoid bits, the default) or ``'ste'`` (hard forward, sigmoid backward).

    Attributes used by the rest of the project: ``features`` (an ``nn.ModuleList`` of the
    ``nn.Conv2d`` layers, in order), ``F``, ``D``, ``box``, ``input_scale``, ``kernels``.
    """

    def __init__(self, hidden: Sequence[int] = (8,), kernels: Sequence[int] = (5, 3), F: int = 16,
                 D: int = 16, box: int = 3, input_scale: float = 2.0 ** -8, tau: float = 1.0,
                 binarize: str = "ste", cost_cap: int | None = None):
        super().__init__()
        hidden = tuple(int(c) for c in hidden)
        kernels = tuple(int(k) for k in kernels)
        if len(kernels) != len(hidden) + 1:
            raise ValueError("need one kernel size per conv: len(kernels) == len(hidden) + 1")
        if any(k % 2 == 0 for k in kernels):
            raise ValueError("kernel sizes must be odd")
        if binarize not in ("ste", "soft"):
            raise ValueError("binarize must be 'ste' or 'soft'")
        chans = (1,) + hidden + (int(F),)
        self.features = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernels[i], stride=1, padding=(kernels[i] - 1) // 2, bias=True)
            for i in range(len(kernels)))
        self.hidden, self.kernels = hidden, kernels
        self.F, self.D, self.box = int(F), int(D), int(box)
        self.input_scale = float(input_scale)
        self.tau = float(tau)
        self.binarize = binarize
        self.cost_cap = None if cost_cap is None else int(cost_cap)
        # Soft-argmin temperature (training only; the hard pipeline has none): T = exp(log_t).
        self.log_t = nn.Parameter(torch.tensor(float(np.log(2.0))))

    def config(self) -> dict:
        """Constructor arguments (to rebuild the model from a state dict)."""
        return dict(hidden=list(self.hidden), kernels=list(self.kernels), F=self.F, D=self.D, box=self.box,
                    input_scale=self.input_scale, tau=self.tau, binarize=self.binarize, cost_cap=self.cost_cap)

    def n_weights(self) -> int:
        """Number of conv weights (biases excluded) in the feature extractor."""
        return sum(c.weight.numel() for c in self.features)

    def preactivation(self, img: torch.Tensor) -> torch.Tensor:
        """Last conv's pre-activation [B, F, H, W] of grey images [B, H, W] or [B, 1, H, W]
        holding 0..255 values (any float dtype)."""
        x = img if img.dim() == 4 else img.unsqueeze(1)
        x = x.to(torch.float32) * self.input_scale
        for i, conv in enumerate(self.features):
            x = conv(x)
            if i < len(self.features) - 1:
                x = torch.relu(x)
        return x

    def bits(self, img: torch.Tensor) -> torch.Tensor:
        """Relaxed feature bits used in training: straight-through or soft (see class doc)."""
        z = self.preactivation(img)
        if self.binarize == "ste":
            return _SigmoidSTE.apply(z, self.tau)
        return torch.sigmoid(z / self.tau)

    def cost_volume(self, bl: torch.Tensor, br: torch.Tensor) -> torch.Tensor:
        """Hamming cost [B, D, H, W] of (soft) bits [B, F, H, W]: ``sum_f l + r - 2 l r`` with
        ``r`` taken at ``x - d``; ``F`` where ``x - d < 0``."""
        B, F, H, W = bl.shape
        D = self.D
        dev = bl.device
        # All pairwise products along each row, M[b, y, x, x'] = sum_f l[f, y, x] r[f, y, x'], then
        # the diagonals x' = x - d (clamped; the clamped ones are overwritten by F below).
        m = torch.matmul(bl.permute(0, 2, 3, 1), br.permute(0, 2, 1, 3))  # [B, H, W, W]
        x = torch.arange(W, device=dev)[:, None]
        d = torch.arange(D, device=dev)[None, :]
        idx = (x - d).clamp(min=0)  # [W, D]
        corr = m.gather(-1, idx.expand(B, H, W, D))  # [B, H, W, D]
        cost = (bl.sum(1)[..., None] + br.sum(1)[..., idx] - 2 * corr).permute(0, 3, 1, 2)
        outside = (x < d).T  # [D, W]
        cost = torch.where(outside[None, :, None, :], torch.full_like(cost, float(F)), cost)
        return cost if self.cost_cap is None else torch.clamp(cost, max=float(self.cost_cap))

    def aggregate(self, cost: torch.Tensor) -> torch.Tensor:
        """``box x box`` sum per disparity, zero padded (same size)."""
        k = self.box
        return Fn.avg_pool2d(cost, k, stride=1, padding=k // 2, count_include_pad=True) * (k * k)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Relaxed pipeline: ``(soft disparity [B, H, W], aggregated cost [B, D, H, W])``."""
        return self.disparity_from_bits(self.bits(left), self.bits(right))

    def disparity_from_bits(self, bl: torch.Tensor, br: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The relaxed pipeline after the feature bits: cost volume, box, soft-argmin."""
        agg = self.aggregate(self.cost_volume(bl, br))
        prob = torch.softmax(-agg / self.log_t.exp(), dim=1)
        disp = (prob * torch.arange(self.D, dtype=prob.dtype, device=prob.device).view(1, -1, 1, 1)).sum(1)
        return disp, agg


@torch.no_grad()
def hard_bits(model: StereoNet, img_u8: np.ndarray) -> np.ndarray:
    """Exact feature bits [F, H, W] (bool): last conv pre-activation > 0, computed in float64."""
    x = torch.as_tensor(np.asarray(img_u8), dtype=torch.float64)[None, None] * model.input_scale
    for i, conv in enumerate(model.features):
        x = Fn.conv2d(x, conv.weight.detach().double(), None if conv.bias is None else conv.bias.detach().double(),
                      stride=1, padding=conv.padding)
        if i < len(model.features) - 1:
            x = torch.relu(x)
    return (x[0] > 0).numpy()


def hard_disparity(model: StereoNet, left_u8: np.ndarray, right_u8: np.ndarray) -> np.ndarray:
    """The exact hard pipeline (module docstring, steps 1-5) on one pair of grey images [H, W]
    (0..255): integer disparity int64 [H, W] in 0..D-1. Costs and box sums are exact integers
    (:mod:`jpq_hw.stereo.baselines` helpers), argmin ties go to the smallest d."""
    bl, br = hard_bits(model, left_u8), hard_bits(model, right_u8)
    cost = hamming_cost_volume(bl, br, model.D)
    if model.cost_cap is not None:
        cost = np.minimum(cost, model.cost_cap)
    return wta(box_sum(cost, model.box))


@torch.no_grad()
def census_init(model: StereoNet, seed: int = 0, gain: float = 1.0) -> None:
    """Initialise the FIRST conv (1 input channel) as pixel-pair comparisons: output channel ``c``
    gets ``+gain`` at the kernel centre, ``-gain`` at one other tap and bias ``-gain * 0.5 *
    input_scale``. Taps: the 8 neighbours of the 3x3 census (row-major) first, then distinct random
    taps of the kernel (seeded). For a one-conv model this makes bit ``c`` exactly the census bit
    ``img(neighbour) < img(centre)`` of :func:`jpq_hw.stereo.baselines.census_transform` (except at
    the image border, where the conv zero-pads), i.e. census 3x3 is the starting point."""
    conv = model.features[0]
    cout, cin, k, _ = conv.weight.shape
    if cin != 1:
        raise ValueError("census_init needs a first conv with one input channel")
    r = k // 2
    ring = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    others = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if max(abs(dy), abs(dx)) > 1]
    rng = np.random.default_rng(seed)
    others = [others[i] for i in rng.permutation(len(others))]
    taps = (ring + others) if k > 1 else []
    conv.weight.zero_()
    for c in range(cout):
        dy, dx = taps[c % len(taps)]
        conv.weight[c, 0, r, r] = gain
        conv.weight[c, 0, r + dy, r + dx] = -gain
    conv.bias.fill_(-gain * 0.5 * model.input_scale)
