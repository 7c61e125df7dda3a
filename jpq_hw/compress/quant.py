"""Fixed-point fake quantization whose forward pass *is* the checkpoint's integer semantics.

:class:`QuantNet` holds a pruned chain's float weights, biases and masks, and computes on the
integer grid. Every tensor is an integer times a power of two:

- input ``x = x_int * 2**e_in`` (``x_int`` in the input format, e.g. unsigned 5-bit pixels, ``e_in = -4``);
- weights of layer ``l``: ``q = levels(w / 2**e_w) * mask``, the nearest allowed level to the scaled
  float weight (ties to the larger level); the levels are the integers in
  ``[-(2**(b_w-1) - 1), 2**(b_w-1) - 1]`` (symmetric, so ``b_w = 2`` is ternary ``{-1, 0, +1}``),
  restricted with a CSD budget ``k`` to those with at most ``k`` nonzero CSD digits
  (:func:`jpq_hw.arith.csd.csd_digits`), i.e. at most ``k - 1`` adders per weight;
- bias in accumulator units: ``b_int = floor(b / 2**e_acc + 1/2)``, ``e_acc = e_in + e_w``;
- accumulator ``acc = b_int + sum q * x_int`` (exact integers);
- output ``y_int = clamp(max(floor((acc + 2**(s-1)) / 2**s), 0 if relu), lo, hi)`` with ``shift
  s = e_out - e_acc >= 0`` and ``[lo, hi]`` the output format: hidden layers ``b_a`` bits, unsigned
  after a ReLU, signed otherwise; the last layer (the logits) signed (unsigned after a final ReLU),
  with the smallest shift (normally 0) and width that make saturation impossible for any input;
- float value of the output: ``y_int * 2**e_out``; the next layer's ``e_in = e_out``.

This is contract.md section 1 layer by layer, so export (:mod:`jpq_hw.compress.export`) reads the
integers and shifts off unchanged. :meth:`QuantNet.forward_int` runs it in float64, which is exact
while every accumulator stays below ``2**52`` in magnitude (checked). Training (:meth:`QuantNet.forward`,
any float dtype) uses straight-through estimators: rounding to levels passes the gradient unchanged
inside the level range and zero outside; the requantization passes ``2**-s`` inside the output range
and zero where it saturates (or where the ReLU is off).

Scales are chosen by :meth:`QuantNet.calibrate` on a batch: ``e_w`` per layer minimises the squared
error of the kept weights over ``e_hi - 4 .. e_hi`` (``e_hi``: the finest exponent that does not
clip the largest weight); ``e_out`` per hidden layer minimises the squared error of the layer's
float activations (``relu(acc) * 2**e_acc``) over the same kind of window, never finer than ``e_acc``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..arith.csd import csd_digits
from ..errors import JpqError
from ..ir.qnet import IntFormat
from .chain import Block

EXACT_LIMIT = 1 << 52  # |integers| below this are exact in float64, with room for the +1/2 of rounding


def check_bits(what: str, bits: int) -> None:
    """Refuse bit widths outside 2..16 (one line)."""
    if not (isinstance(bits, int) and not isinstance(bits, bool) and 2 <= bits <= 16):
        raise JpqError(f"{what} must be an integer in 2..16, got {bits!r}")


@lru_cache(maxsize=None)
def _levels(bits: int, max_digits: int | None) -> tuple[int, ...]:
    top = (1 << (bits - 1)) - 1
    return tuple(q for q in range(-top, top + 1) if max_digits is None or len(csd_digits(q)) <= max_digits)


def weight_levels(bits: int, max_digits: int | None = None) -> torch.Tensor:
    """The allowed integer weights, ascending, as float64 (see the module docstring)."""
    check_bits("weight bits", bits)
    if max_digits is not None and not (isinstance(max_digits, int) and max_digits >= 1):
        raise JpqError(f"the CSD digit budget must be an integer >= 1, got {max_digits!r}")
    return torch.tensor(_levels(bits, max_digits), dtype=torch.float64)


def nearest_level(v: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Each value of ``v`` rounded to the nearest of ``levels`` (ascending), ties to the larger one."""
    v64 = v.double()
    idx = torch.searchsorted(levels, v64).clamp(1, levels.numel() - 1) if levels.numel() > 1 else None
    if idx is None:
        return torch.full_like(v64, float(levels[0]))
    lo = levels[idx - 1]
    hi = levels[idx]
    out = torch.where((v64 - lo) >= (hi - v64), hi, lo)
    out = torch.where(v64 <= levels[0], levels[0], out)
    return torch.where(v64 >= levels[-1], levels[-1], out)


class _RoundToLevels(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.bounds = (float(levels[0]) - 0.5, float(levels[-1]) + 0.5)
        return nearest_level(v, levels).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        return grad * ((v >= lo) & (v <= hi)).to(grad.dtype), None


class _RoundHalfUp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.floor(v.double() + 0.5).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad


class _Requant(torch.autograd.Function):
    """``clamp(floor(acc / 2**s + 1/2), lo, hi)`` (``s > 0``) or ``clamp(acc, lo, hi)``; STE backward."""

    @staticmethod
    def forward(ctx, acc: torch.Tensor, shift: int, lo: float, hi: float) -> torch.Tensor:  # type: ignore[override]
        t = torch.floor(acc * (2.0 ** -shift) + 0.5) if shift > 0 else acc
        ctx.save_for_backward(t)
        ctx.shift, ctx.lo, ctx.hi = shift, lo, hi
        return t.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (t,) = ctx.saved_tensors
        inside = ((t >= ctx.lo) & (t <= ctx.hi)).to(grad.dtype)
        return grad * inside * (2.0 ** -ctx.shift), None, None, None


@dataclass(frozen=True)
class QuantSpec:
    """Bit widths and the input format of the quantized network.

    ``layer_weight_bits`` / ``layer_act_bits`` (one entry per layer, or empty) give each layer its own
    weight bits and hidden output bits (mixed precision); where empty, every layer has
    ``weight_bits`` / ``act_bits``. The last layer's output bits are never set (its format holds
    every possible logit)."""

    weight_bits: int = 6
    act_bits: int = 8
    csd_digits: int | None = None
    input_bits: int = 8
    input_signed: bool = False
    input_exp: int = 0
    layer_weight_bits: tuple[int, ...] = ()
    layer_act_bits: tuple[int, ...] = ()

    def __post_init__(self):
        check_bits("weight bits", self.weight_bits)
        check_bits("activation bits", self.act_bits)
        for b in self.layer_weight_bits:
            check_bits("weight bits", b)
        for b in self.layer_act_bits:
            check_bits("activation bits", b)
        if self.csd_digits is not None and not (isinstance(self.csd_digits, int) and self.csd_digits >= 1):
            raise JpqError(f"the CSD digit budget must be an integer >= 1, got {self.csd_digits!r}")
        if not (isinstance(self.input_bits, int) and 1 <= self.input_bits <= 32):
            raise JpqError(f"input bits must be an integer in 1..32, got {self.input_bits!r}")

    @property
    def input_format(self) -> IntFormat:
        return IntFormat(self.input_bits, self.input_signed)

    def w_bits(self, i: int) -> int:
        """Layer ``i``'s weight bits."""
        return self.layer_weight_bits[i] if self.layer_weight_bits else self.weight_bits

    def a_bits(self, i: int) -> int:
        """Layer ``i``'s output bits (a hidden layer's activations)."""
        return self.layer_act_bits[i] if self.layer_act_bits else self.act_bits


@dataclass(frozen=True)
class LayerPlan:
    """Exponents and formats of one layer: ``acc`` has scale ``2**e_acc``, the output ``2**e_out``."""

    e_in: int
    e_w: int
    e_acc: int
    shift: int
    e_out: int
    out: IntFormat | None  # None: the last layer in training (no clamp)


class QuantLayer(nn.Module):
    """One checkpoint layer with float weights, a fixed mask and power-of-two exponents."""

    def __init__(self, block: Block, mask: torch.Tensor):
        super().__init__()
        m = block.module
        self.name = block.name
        self.kind = block.kind
        self.stride = block.stride
        self.padding = block.padding
        self.relu = block.relu
        w = m.weight.detach().clone().float()
        self.register_buffer("mask", mask.detach().clone().float().reshape(w.shape))
        self.weight = nn.Parameter(w * self.mask)
        self.bias = nn.Parameter(m.bias.detach().clone().float()) if m.bias is not None else None
        self.weight_exp = 0
        self.out_exp = 0

    def conv(self, x: torch.Tensor, q: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(torch.flatten(x, 1), q, b)
        return F.conv2d(x, q, b, stride=self.stride, padding=self.padding)


class QuantNet(nn.Module):
    """The fake-quantized network of a pruned chain (see the module docstring for exact semantics)."""

    def __init__(self, blocks: Sequence[Block], masks: Sequence[torch.Tensor], spec: QuantSpec):
        super().__init__()
        if len(blocks) != len(masks):
            raise JpqError(f"got {len(masks)} masks for {len(blocks)} layers")
        for what, widths in (("weight", spec.layer_weight_bits), ("activation", spec.layer_act_bits)):
            if widths and len(widths) != len(blocks):
                raise JpqError(f"got {len(widths)} per-layer {what} widths for {len(blocks)} layers")
        self.spec = spec
        self.layers = nn.ModuleList(QuantLayer(b, m) for b, m in zip(blocks, masks))
        for i in range(len(blocks)):
            self.register_buffer(f"levels{i}", weight_levels(spec.w_bits(i), spec.csd_digits), persistent=False)

    def levels_of(self, i: int) -> torch.Tensor:
        """Layer ``i``'s allowed integer weights (ascending, float64)."""
        return getattr(self, f"levels{i}")

    # ------------------------------------------------------------------ integers
    def int_weight(self, i: int) -> torch.Tensor:
        """Layer ``i``'s integer weights (float64 values, with a straight-through gradient to ``weight``)."""
        layer = self.layers[i]
        v = layer.weight.double() * (2.0 ** -layer.weight_exp)
        return _RoundToLevels.apply(v, self.levels_of(i)) * layer.mask.double()

    def int_bias(self, i: int, e_acc: int) -> torch.Tensor | None:
        """Layer ``i``'s bias in accumulator units ``2**e_acc`` (float64 integers, STE gradient)."""
        b = self.layers[i].bias
        if b is None:
            return None
        return _RoundHalfUp.apply(b.double() * (2.0 ** -e_acc))

    def plan(self, exact: bool = True) -> list[LayerPlan]:
        """Every layer's exponents, shift and output format.

        The last layer's format depends on its integer weights (worst-case accumulator); with
        ``exact=False`` (training) it is left open and the layer does not clamp.
        """
        plans: list[LayerPlan] = []
        e_in = self.spec.input_exp
        in_fmt = self.spec.input_format
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            e_acc = e_in + layer.weight_exp
            if i < n - 1:
                e_out = max(layer.out_exp, e_acc)
                out: IntFormat | None = IntFormat(self.spec.a_bits(i), signed=not layer.relu)
                shift = e_out - e_acc
            elif exact:
                with torch.no_grad():
                    q = self.int_weight(i)
                    b = self.int_bias(i, e_acc)
                shift, out = _last_format(q, b, in_fmt, layer.relu)
                e_out = e_acc + shift
            else:
                shift, out, e_out = 0, None, e_acc
            plans.append(LayerPlan(e_in, layer.weight_exp, e_acc, shift, e_out, out))
            e_in = e_out
            if out is not None:
                in_fmt = out
        return plans

    # ------------------------------------------------------------------ forward passes
    def forward(self, x_int: torch.Tensor) -> torch.Tensor:
        """Float logits ``y_int * 2**e_out`` of the last layer, for integer inputs ``x_int``.

        Computes in ``x_int``'s dtype (float32 for training); use :meth:`forward_int` for exact integers.
        """
        plans = self.plan(exact=False)
        x = x_int
        for i, (layer, p) in enumerate(zip(self.layers, plans)):
            q = self.int_weight(i).to(x.dtype)
            b = self.int_bias(i, p.e_acc)
            acc = layer.conv(x, q, b.to(x.dtype) if b is not None else None)
            if p.out is None:
                x = torch.relu(acc) if layer.relu else acc
            else:
                lo = max(p.out.lo, 0) if layer.relu else p.out.lo
                x = _Requant.apply(acc, p.shift, float(lo), float(p.out.hi))
        return x * (2.0 ** plans[-1].e_out)

    @torch.no_grad()
    def forward_int(self, x_int: torch.Tensor | Sequence, all_layers: bool = False):
        """The exact integer outputs (int64) of the last layer, or of every layer: contract.md semantics."""
        x = torch.as_tensor(x_int).double()
        plans = self.plan(exact=True)
        fmt = self.spec.input_format
        outs = []
        for i, (layer, p) in enumerate(zip(self.layers, plans)):
            q = self.int_weight(i)
            b = self.int_bias(i, p.e_acc)
            bound = _acc_bound(q, b, fmt) + (1 << p.shift)
            if bound >= EXACT_LIMIT:
                raise JpqError(f"layer {layer.name!r}: its accumulator can reach {bound.bit_length()} bits; "
                               "exact fake-quant simulation supports at most 52")
            acc = layer.conv(x, q, b)
            assert p.out is not None
            lo = max(p.out.lo, 0) if layer.relu else p.out.lo
            x = _Requant.apply(acc, p.shift, float(lo), float(p.out.hi))
            outs.append(x.long())
            fmt = p.out
        return outs if all_layers else outs[-1]

    # ------------------------------------------------------------------ calibration
    @torch.no_grad()
    def calibrate(self, x_int: torch.Tensor, weights: bool = True, activations: bool = True) -> None:
        """Choose ``e_w`` (per layer) and ``e_out`` (per hidden layer) on the batch ``x_int``."""
        x = torch.as_tensor(x_int).double()
        e_in = self.spec.input_exp
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            if weights:
                layer.weight_exp = choose_weight_exp(layer.weight.detach() * layer.mask, layer.mask, self.levels_of(i))
            e_acc = e_in + layer.weight_exp
            if i == n - 1:
                break
            q = self.int_weight(i)
            b = self.int_bias(i, e_acc)
            acc = layer.conv(x, q, b)
            fmt = IntFormat(self.spec.a_bits(i), signed=not layer.relu)
            if activations:
                a = acc * (2.0 ** e_acc)
                if layer.relu:
                    a = torch.relu(a)
                layer.out_exp = choose_act_exp(a, fmt, e_min=e_acc)
            e_out = max(layer.out_exp, e_acc)
            lo = max(fmt.lo, 0) if layer.relu else fmt.lo
            x = _Requant.apply(acc, e_out - e_acc, float(lo), float(fmt.hi))
            e_in = e_out

    def exponents(self) -> dict[str, int]:
        """``{"input": e_in, "<layer>.weight": e_w, "<layer>.acc": e_acc, "<layer>.out": e_out}``."""
        d = {"input": int(self.spec.input_exp)}
        for layer, p in zip(self.layers, self.plan(exact=True)):
            d[f"{layer.name}.weight"] = int(p.e_w)
            d[f"{layer.name}.acc"] = int(p.e_acc)
            d[f"{layer.name}.out"] = int(p.e_out)
        return d


def _acc_bound(q: torch.Tensor, b: torch.Tensor | None, fmt: IntFormat) -> int:
    """An upper bound of ``|acc|`` over every input in ``fmt`` (exact per output, maximised)."""
    lo, hi = _acc_range(q, b, fmt)
    return int(max(abs(lo), abs(hi)))


def _acc_range(q: torch.Tensor, b: torch.Tensor | None, fmt: IntFormat) -> tuple[int, int]:
    """The smallest and largest accumulator value any input in ``fmt`` can produce (over outputs)."""
    w = q.reshape(q.shape[0], -1)
    pos = w.clamp(min=0).sum(1)
    neg = w.clamp(max=0).sum(1)
    bias = b if b is not None else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
    # conv2d: zero padding can only shrink the range, so the unpadded bound is safe and attainable inside
    acc_hi = bias + pos * fmt.hi + neg * fmt.lo
    acc_lo = bias + pos * fmt.lo + neg * fmt.hi
    return int(acc_lo.min()), int(acc_hi.max())


def _last_format(q: torch.Tensor, b: torch.Tensor | None, in_fmt: IntFormat, relu: bool) -> tuple[int, IntFormat]:
    """The smallest shift (0 unless the logits need more than 32 bits) and the narrowest format that
    holds every possible output of the last layer."""
    acc_lo, acc_hi = _acc_range(q, b, in_fmt)
    for shift in range(0, 63):
        half = (1 << (shift - 1)) if shift > 0 else 0
        t_lo = (acc_lo + half) >> shift
        t_hi = (acc_hi + half) >> shift
        if relu:
            t_lo = max(t_lo, 0)
            bits = max(int(max(t_hi, 0)).bit_length(), 1)
            fmt = IntFormat(bits, False) if bits <= 32 else None
        else:
            bits = max(int(t_hi).bit_length(), int(-t_lo - 1).bit_length() if t_lo < 0 else 0) + 1
            bits = max(bits, 2)
            fmt = IntFormat(bits, True) if bits <= 32 else None
        if fmt is not None:
            return shift, fmt
    raise JpqError("the last layer's accumulator does not fit 32 output bits at any shift")


def choose_weight_exp(w: torch.Tensor, mask: torch.Tensor, levels: torch.Tensor, window: int = 4) -> int:
    """The exponent ``e`` in ``e_hi - window .. e_hi`` minimising ``sum (w - 2**e * level(w / 2**e))**2``
    over the kept weights; ``e_hi`` is the finest exponent at which the largest ``|w|`` does not clip.
    Ties go to the larger exponent. A layer with no nonzero weight gets 0."""
    kept = w.detach().double()[mask.bool()]
    top = float(kept.abs().max()) if kept.numel() else 0.0
    if top == 0.0:
        return 0
    max_level = float(levels[-1])
    e_hi = math.ceil(math.log2(top / max_level))
    best, best_err = e_hi, math.inf
    for e in range(e_hi, e_hi - window - 1, -1):
        err = float(((kept - nearest_level(kept * 2.0 ** -e, levels) * 2.0 ** e) ** 2).sum())
        if err < best_err:
            best, best_err = e, err
    return best


def choose_act_exp(a: torch.Tensor, fmt: IntFormat, e_min: int, window: int = 4) -> int:
    """The exponent ``e >= e_min`` in ``e_hi - window .. e_hi`` minimising the squared error of
    ``clamp(floor(a / 2**e + 1/2), lo, hi) * 2**e`` against ``a``; ties to the larger exponent."""
    a = a.detach().double()
    top = float(a.abs().max()) if a.numel() else 0.0
    if top == 0.0:
        return e_min
    e_hi = max(math.ceil(math.log2(top / fmt.hi)), e_min)
    best, best_err = e_hi, math.inf
    for e in range(e_hi, max(e_hi - window, e_min) - 1, -1):
        q = torch.floor(a * 2.0 ** -e + 0.5).clamp(fmt.lo, fmt.hi) * 2.0 ** e
        err = float(((a - q) ** 2).sum())
        if err < best_err:
            best, best_err = e, err
    return best
