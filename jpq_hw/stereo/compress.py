"""Compression of a :class:`~jpq_hw.stereo.model.StereoNet` by jpq-hw's own stages, and its export.

The learned part of the stereo network is its feature extractor, a chain of conv layers applied
to one grey image. It is compressed as any chain (:mod:`jpq_hw.compress`): its convs are the
:class:`~jpq_hw.compress.chain.Block` s,

1. **pruning**: :class:`~jpq_hw.compress.pruner.Pruner` with a criterion of
   :mod:`jpq_hw.compress.criteria` (``taylor`` by default) over a ``gradual`` schedule
   (:class:`~jpq_hw.compress.schedules.Schedule`), ``recover`` fine-tuning, inside the stereo
   training loop (:func:`jpq_hw.stereo.train.train_float`, the stereo loss);
2. **quantization**: :class:`~jpq_hw.compress.quant.QuantNet` of the pruned chain (masks held),
   calibrated on training images and trained (QAT) through :class:`QuantStereoNet`, whose feature
   bits are the sign of the QuantNet's integer last layer;
3. **export** (:func:`stereo_qnet`): the integer chain made siamese, a ``hamming_cost`` (its
   output format saturates the cost at the model's ``cost_cap``), a ``box_sum``, an ``argmin``
   (docs/contract.md), and checked exact against the fake-quantized model on real frames
   (:func:`check_stereo_exact`).

Siamese convs become block-diagonal conv2d layers over the two channels of the stream: the left
image (input channel 0) feeds output channels ``0..C-1``, the right image (channel 1) channels
``C..2C-1``, with the same kernel. The last layer's output is one bit per feature: 1 exactly where
its integer accumulator is ``>= 1`` (the float model's ``z > 0``), a conv2d with ``out_bits`` 1.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..compress.chain import Block
from ..compress.criteria import make_criterion
from ..compress.export import plain, to_qnet
from ..compress.pruner import Pruner
from ..compress.quant import QuantNet, QuantSpec
from ..compress.schedules import Schedule
from ..errors import JpqError
from ..ir.qnet import ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, QLayer, QNet
from .baselines import box_sum, hamming_cost_volume, wta
from .model import StereoNet, _SigmoidSTE
from .train import Data, train_float


@dataclass
class StereoCompressConfig:
    """Choices of the stereo compression (defaults: ``examples/stereo.py``)."""

    sparsity: float = 0.95          # over all feature-conv weights (global)
    criterion: str = "taylor"
    mode: str = "recover"
    prune_events: int = 20
    prune_end: float = 0.6          # the masks freeze at this fraction of the pruning run
    prune_steps: int = 3000         # stereo training steps with pruning
    prune_lr: float = 2e-3
    weight_bits: int = 6
    act_bits: int = 6               # hidden feature maps (unsigned after their ReLU)
    qat_steps: int = 1500
    qat_lr: float = 5e-4
    batch: int = 8
    crop: tuple[int, int] | None = None
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return plain(dict(self.__dict__))


@dataclass
class StereoCompressResult:
    qnet: QNet                      # the stream-ready stereo network ([2, H, W] in, [1, H, W] out)
    model: StereoNet                # the pruned float model (masks squashed)
    quant: QuantNet                 # the fake-quantized feature chain
    masks: list[torch.Tensor]
    seconds: dict[str, float] = field(default_factory=dict)


def feature_blocks(model: StereoNet) -> list[Block]:
    """The feature convs as chain blocks (a ReLU after every conv but the last)."""
    n = len(model.features)
    return [Block(f"feat{i + 1}", conv, i < n - 1, path=f"features.{i}") for i, conv in enumerate(model.features)]


class QuantStereoNet(nn.Module):
    """The stereo pipeline over a fake-quantized feature chain: the float model's relaxation
    (:meth:`StereoNet.forward`) with the QuantNet's last layer as the pre-activation."""

    def __init__(self, net: StereoNet, quant: QuantNet):
        super().__init__()
        self.net, self.quant = net, quant
        self.D, self.F, self.box = net.D, net.F, net.box
        self.features: list[nn.Module] = []  # no float convs of its own (train_float's L1 term)

    @property
    def log_t(self) -> nn.Parameter:
        return self.net.log_t

    def preactivation(self, img: torch.Tensor) -> torch.Tensor:
        x = img if img.dim() == 4 else img.unsqueeze(1)
        return self.quant(x.to(torch.float32))

    def forward(self, left: torch.Tensor, right: torch.Tensor):
        bl = _SigmoidSTE.apply(self.preactivation(left), self.net.tau)
        br = _SigmoidSTE.apply(self.preactivation(right), self.net.tau)
        return self.net.disparity_from_bits(bl, br)


def quant_bits(quant: QuantNet, img_u8: np.ndarray) -> np.ndarray:
    """Exact feature bits [F, H, W] of the fake-quantized chain: its integer last layer ``>= 1``."""
    z = quant.forward_int(torch.as_tensor(np.asarray(img_u8, dtype=np.int64))[None, None])
    return (z[0] >= 1).numpy()


def quant_disparity(quant: QuantNet, net: StereoNet, left_u8: np.ndarray, right_u8: np.ndarray) -> np.ndarray:
    """The exact hard pipeline of the quantized network (the function the checkpoint computes)."""
    cost = hamming_cost_volume(quant_bits(quant, left_u8), quant_bits(quant, right_u8), net.D)
    cap = net.cost_cap
    return wta(box_sum(np.minimum(cost, cap) if cap else cost, net.box))


def _input_exp(net: StereoNet) -> int:
    e = float(np.log2(net.input_scale))
    if e != round(e):
        raise JpqError(f"the model's input scale {net.input_scale} is not a power of two")
    return int(round(e))


def compress_stereo(model: StereoNet, data: Data, config: StereoCompressConfig | None = None, *,
                    shape: tuple[int, int] = (125, 185), log: Callable[[str], None] | None = None,
                    meta: dict | None = None) -> StereoCompressResult:
    """Prune, quantize and export ``model`` (a copy; see the module docstring); ``data`` is the
    training pool ``(left, right, disparity, valid)``; ``shape`` the frame of the exported network."""
    config = config or StereoCompressConfig()
    say = log or (lambda msg: None)
    seconds = {}
    model = copy.deepcopy(model)
    blocks = feature_blocks(model)

    # ------------------------------------------------------------------ stage 1: pruning
    t0 = time.perf_counter()
    criterion = make_criterion(config.criterion, seed=config.seed)
    pruner = Pruner(blocks, criterion, mode=config.mode, sparsity=config.sparsity)
    schedule = Schedule("gradual", config.prune_events, 0.0, config.prune_end)
    refresh = config.mode == "recover"
    events: dict[int, list[int]] = {}
    for j, t in enumerate(schedule.event_steps(config.prune_steps, refresh), start=1):
        events.setdefault(t, []).append(j)
    freeze_at = schedule.freeze_step(config.prune_steps)
    pruner.prepare()

    class Hooks:
        @staticmethod
        def before_step(step: int) -> None:
            for j in events.get(step, ()):
                pruner.step(pruner.target(schedule, j))
            if step == freeze_at and not pruner.frozen:
                pruner.freeze()

        @staticmethod
        def after_backward(step: int) -> None:
            if criterion.needs_gradients:
                pruner.observe()

        @staticmethod
        def after_step(step: int) -> None:
            pruner.after_step()

    if criterion.needs_gradients:  # scores from one pass before the first event
        _observe_once(model, data, pruner, config)
    train_float(model, config.prune_steps, seed=config.seed, data=data, batch=config.batch, lr=config.prune_lr,
                crop=config.crop, hooks=Hooks)
    pruner.freeze()
    masks = pruner.squash()
    model.eval()
    seconds["prune"] = time.perf_counter() - t0
    kept = int(sum(int(m.sum()) for m in masks))
    total = sum(m.numel() for m in masks)
    say(f"pruned to {1 - kept / total:.4f} sparsity ({kept} of {total} weights kept)")

    # ------------------------------------------------------------------ stage 2: quantization
    t0 = time.perf_counter()
    spec = QuantSpec(config.weight_bits, config.act_bits, None, 8, False, _input_exp(model))
    quant = QuantNet(blocks, masks, spec)
    left = np.asarray(data[0])
    calib = torch.as_tensor(left[:64], dtype=torch.float64)[:, None]
    quant.calibrate(calib)
    qmodel = QuantStereoNet(model, quant)
    if config.qat_steps:
        train_float(qmodel, config.qat_steps, seed=config.seed + 1, data=data, batch=config.batch, lr=config.qat_lr,
                    crop=config.crop)
    qmodel.eval()
    seconds["quantize"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ export
    full_meta = {"compress_config": config.to_dict(), "stereo": model.config(), **(meta or {})}
    qnet = stereo_qnet(quant, model, shape, meta=full_meta)
    return StereoCompressResult(qnet, model, quant, masks, seconds)


def _observe_once(model: StereoNet, data: Data, pruner: Pruner, config: StereoCompressConfig) -> None:
    """One forward / backward over a few batches so that the Taylor score has gradients to start from."""
    from .train import stereo_loss

    rng = np.random.default_rng(config.seed + 7919)
    L, R, D, V = (torch.as_tensor(np.asarray(a)) for a in data)
    model.train()
    for _ in range(8):
        idx = torch.as_tensor(rng.integers(0, len(L), size=config.batch))
        model.zero_grad(set_to_none=True)
        stereo_loss(model, L[idx].float(), R[idx].float(), D[idx].float(), V[idx]).backward()
        pruner.observe()
    model.zero_grad(set_to_none=True)
    model.eval()


def single_image_weights(qnet: QNet) -> list[np.ndarray]:
    """The learned weights of one image: the left block of each siamese (block-diagonal) feature
    conv of a network :func:`stereo_qnet` wrote (its first layers, the conv2d layers before the
    ``hamming_cost``), in order."""
    out = []
    for layer in qnet.layers:
        if layer.kind == "hamming_cost":
            break
        if isinstance(layer, QLayer) and layer.kind == "conv2d":
            o, c = layer.weight.shape[:2]
            out.append(layer.weight[:o // 2, :c // 2])
    return out


def block_diagonal(weight: np.ndarray) -> np.ndarray:
    """[O, C, k, k] -> [2O, 2C, k, k]: the left channels to the first half, the right to the second."""
    o, c, kh, kw = weight.shape
    w = np.zeros((2 * o, 2 * c, kh, kw), dtype=np.int64)
    w[:o, :c] = weight
    w[o:, c:] = weight
    return w


def stereo_qnet(quant: QuantNet, net: StereoNet, shape: tuple[int, int], meta: dict | None = None) -> QNet:
    """The stream-ready integer network of the quantized feature chain ``quant`` and the fixed
    stages of ``net`` (module docstring): input ``[2, H, W]`` 8-bit unsigned (left, right), output
    ``[1, H, W]``, the disparity ``0..D-1``."""
    h, w = shape
    single = to_qnet(quant, (1, h, w), meta)
    layers = []
    n = len(single.layers)
    for i, layer in enumerate(single.layers):
        last = i == n - 1
        if last:  # the feature bit: the integer output >= 1, i.e. acc >= 2**shift
            out, relu = IntFormat(1, False), True
        else:
            out, relu = layer.out, layer.relu
        layers.append(QLayer(layer.name, "conv2d", block_diagonal(layer.weight), np.concatenate([layer.bias] * 2),
                             layer.shift, relu, out, layer.stride, layer.padding))
    f, d, k = net.F, net.D, net.box
    cap = min(net.cost_cap or f, f)
    if cap < f and cap != (1 << cap.bit_length()) - 1:
        raise JpqError(f"a cost cap of {cap} is not the top of an unsigned format (1, 3, 7, 15, ...)")
    layers.append(HammingCostLayer("cost", d, IntFormat(cap.bit_length(), False)))
    layers.append(BoxSumLayer("aggregate", k, IntFormat((k * k * cap).bit_length(), False)))
    layers.append(ArgminLayer("disparity", IntFormat(max(d - 1, 1).bit_length(), False)))
    return QNet((2, h, w), IntFormat(8, False), tuple(layers), dict(single.meta))


def check_stereo_exact(qnet: QNet, quant: QuantNet, net: StereoNet, left_u8: np.ndarray, right_u8: np.ndarray) -> None:
    """Raise unless the checkpoint's integer reference equals the quantized model's hard pipeline
    on the frame ``(left, right)``."""
    from ..reference import run_reference

    got = run_reference(qnet, np.stack([left_u8, right_u8])[None].astype(np.int64))[0, 0]
    want = quant_disparity(quant, net, left_u8, right_u8)
    if not np.array_equal(got, want):
        raise JpqError(f"internal error: the exported stereo network differs from the quantized model on "
                       f"{int(np.sum(got != want))} pixels (please report this)")


def save_float_model(model: StereoNet, path) -> None:
    """The float model as a weights-only file: ``{"config": StereoNet arguments, "state_dict": ...}``."""
    from ..outputs import output_file

    with output_file(path, checked=False) as tmp:
        torch.save({"config": model.config(), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}},
                   tmp)


def load_float_model(path) -> StereoNet:
    """A :class:`StereoNet` saved by :func:`save_float_model`."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    model = StereoNet(**data["config"])
    model.load_state_dict(data["state_dict"])
    model.eval()
    return model
