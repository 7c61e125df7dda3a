"""QNet: the integer network, exactly as a version-1 checkpoint describes it.

A :class:`QNet` is the first of jpq-hw's three representations. It holds only integers and
fixed-point formats (numpy ``int64`` arrays, no torch), and its meaning is the integer semantics of
contract.md section 1, which :func:`jpq_hw.reference.run_reference` executes:

    acc = bias + W x                     (exact: no intermediate value wraps)
    t   = floor((acc + 2**(shift-1)) / 2**shift)   if shift > 0, else acc
    t   = max(t, 0)                      if relu
    y   = clamp(t, lo, hi)               the out format's range

Besides the weight layers (:class:`QLayer`) a network of images may hold layers without weights
(docs/contract.md, "jpq-hw's extensions to section 1"): :class:`HammingCostLayer` (a stereo cost
volume of binary features), :class:`BoxSumLayer` (a box filter of each channel) and
:class:`ArgminLayer` (winner-take-all over channels).

Every instance is validated on construction: shapes chain, formats are in range, and the
accumulator of every layer fits in a signed 64-bit integer, so that the reference may use int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

from ..errors import JpqError

WEIGHT_KINDS = ("linear", "conv2d")
LAYER_KINDS = WEIGHT_KINDS + ("hamming_cost", "argmin", "box_sum")
MAX_ACC_BITS = 62  # |acc| < 2**62 keeps every sum of two accumulator values inside int64


@dataclass(frozen=True)
class IntFormat:
    """A two's complement (``signed``) or plain binary integer of ``bits`` bits."""

    bits: int
    signed: bool

    def __post_init__(self):
        if not (isinstance(self.bits, int) and 1 <= self.bits <= 32):
            raise JpqError(f"bit width must be an integer in 1..32, got {self.bits!r}")

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True, eq=False)
class QLayer:
    """One integer layer; ``weight`` is [out, in] (linear) or [out_ch, in_ch, kh, kw] (conv2d)."""

    name: str
    kind: str
    weight: np.ndarray
    bias: np.ndarray  # [out], accumulator units; zeros where the checkpoint had None
    shift: int
    relu: bool
    out: IntFormat
    stride: int = 1
    padding: int = 0

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.weight))

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nnz / self.weight.size

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of this layer's output for an input of ``input_shape``; raises if they do not chain."""
        if self.kind == "linear":
            n_in = prod(input_shape)
            if self.weight.shape[1] != n_in:
                raise JpqError(
                    f"layer {self.name!r}: weight has {self.weight.shape[1]} inputs but the layer "
                    f"before it gives {n_in} values (shape {list(input_shape)})")
            return (self.n_out,)
        if len(input_shape) != 3:
            raise JpqError(f"layer {self.name!r}: conv2d needs a [C, H, W] input, got shape {list(input_shape)}")
        c, h, w = input_shape
        _, in_ch, kh, kw = self.weight.shape
        if in_ch != c:
            raise JpqError(f"layer {self.name!r}: weight has {in_ch} input channels but its input has {c}")
        oh = (h + 2 * self.padding - kh) // self.stride + 1
        ow = (w + 2 * self.padding - kw) // self.stride + 1
        if oh < 1 or ow < 1:
            raise JpqError(f"layer {self.name!r}: a {kh}x{kw} kernel does not fit a {h}x{w} input")
        return (self.n_out, oh, ow)


class _ImageLayer:
    """What the layers without weights share: an image input, and no rule on its format unless
    the layer says so (:meth:`check_input`)."""

    name: str
    kind: str
    nnz = 0

    def _image_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        if len(input_shape) != 3:
            raise JpqError(f"layer {self.name!r}: {self.kind} needs a [C, H, W] input, got shape {list(input_shape)}")
        return input_shape  # type: ignore[return-value]

    def check_input(self, fmt: IntFormat) -> None:
        pass


@dataclass(frozen=True, eq=False)
class HammingCostLayer(_ImageLayer):
    """A stereo cost volume of binary features over ``disparities`` disparities.

    Input ``[2F, H, W]`` of 1-bit unsigned values: channels ``0..F-1`` are the left image's features,
    ``F..2F-1`` the right image's, in the same order. Output ``[D, H, W]``::

        cost[d, r, c] = sum_f  x[f, r, c] XOR x[F + f, r, c - d]     where c - d >= 0
        cost[d, r, c] = F                                            where c - d <  0
        y = min(cost, hi)        (hi: the largest value of the unsigned ``out`` format)
    """

    name: str
    disparities: int
    out: IntFormat
    kind = "hamming_cost"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = self._image_shape(input_shape)
        if c % 2 or c == 0:
            raise JpqError(f"layer {self.name!r}: hamming_cost needs an even number of channels "
                           f"(left features, then right features), got {c}")
        if not 1 <= self.disparities <= w:
            raise JpqError(f"layer {self.name!r}: {self.disparities} disparities for a frame {w} pixels wide "
                           "(1 up to the width)")
        if self.out.signed:
            raise JpqError(f"layer {self.name!r}: a hamming_cost output is unsigned")
        return (self.disparities, h, w)

    def check_input(self, fmt: IntFormat) -> None:
        if fmt != IntFormat(1, False):
            raise JpqError(f"layer {self.name!r}: hamming_cost reads binary features (1-bit unsigned), "
                           f"its input is {fmt.bits}-bit {'signed' if fmt.signed else 'unsigned'}")


@dataclass(frozen=True, eq=False)
class ArgminLayer(_ImageLayer):
    """Winner-take-all over channels. Input ``[D, H, W]`` of any format; output ``[1, H, W]``::

        y[0, r, c] = the smallest d with x[d, r, c] == min_j x[j, r, c]     (ties: the smallest index)

    The unsigned ``out`` format must hold ``D - 1``.
    """

    name: str
    out: IntFormat
    kind = "argmin"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = self._image_shape(input_shape)
        if self.out.signed or self.out.hi < c - 1:
            raise JpqError(f"layer {self.name!r}: argmin over {c} channels needs an unsigned output of at least "
                           f"{max(c - 1, 1).bit_length()} bits, got {self.out.bits}-bit "
                           f"{'signed' if self.out.signed else 'unsigned'}")
        return (1, h, w)


@dataclass(frozen=True, eq=False)
class BoxSumLayer(_ImageLayer):
    """The sum of each channel over a ``size x size`` window centred on each pixel (a box filter;
    ``size`` odd), zero padded by ``(size - 1) / 2`` on every side. Input ``[C, H, W]`` of any
    format; output ``[C, H, W]``::

        y[c, r, col] = clamp(sum_{|u|, |v| <= (size - 1) / 2} xpad[c, r + u, col + v], lo, hi)

    (the same as a conv2d of ones on each channel alone, stride 1; streamed as column sums and a
    row sum: ``2 (size - 1)`` adders per channel instead of ``size**2 - 1``)."""

    name: str
    size: int
    out: IntFormat
    kind = "box_sum"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._image_shape(input_shape)
        if self.size < 1 or self.size % 2 == 0:
            raise JpqError(f"layer {self.name!r}: the box size must be odd and >= 1, got {self.size}")
        return tuple(input_shape)


Layer = QLayer | HammingCostLayer | ArgminLayer | BoxSumLayer
"""Any layer of a :class:`QNet`; weight layers are :class:`QLayer` (``kind`` in :data:`WEIGHT_KINDS`)."""


@dataclass(frozen=True, eq=False)
class QNet:
    """A validated integer network: input format and shape, layers in order, free-form meta."""

    input_shape: tuple[int, ...]
    input: IntFormat
    layers: tuple[Layer, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.layers:
            raise JpqError("the network has no layers")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise JpqError(f"layer names are not unique: {names}")
        shape = self.input_shape
        fmt = self.input
        for layer in self.layers:
            shape = layer.output_shape(shape)
            if isinstance(layer, QLayer):
                _check_accumulator(layer, fmt.lo, fmt.hi)
            else:
                layer.check_input(fmt)
            fmt = layer.out

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Input shape, then the output shape of every layer."""
        shapes = [self.input_shape]
        for layer in self.layers:
            shapes.append(layer.output_shape(shapes[-1]))
        return shapes

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[-1]

    @property
    def output(self) -> IntFormat:
        return self.layers[-1].out

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)


def _check_accumulator(layer: QLayer, x_lo: int, x_hi: int) -> None:
    """Refuse layers whose exact accumulator could leave the int64 range the reference computes in."""
    w = layer.weight.reshape(layer.n_out, -1)
    bias = layer.bias
    x_max = max(abs(x_lo), abs(x_hi))
    w_max = max(abs(int(w.min())), abs(int(w.max()))) if w.size else 0
    b_max = max(abs(int(bias.min())), abs(int(bias.max()))) if bias.size else 0
    if w.shape[1] * w_max * x_max + b_max >= 1 << 62:  # int64 could wrap: exact Python integers (slow)
        w, bias = w.astype(object), bias.astype(object)
    pos = np.where(w > 0, w, 0).sum(axis=1)
    neg = np.where(w < 0, w, 0).sum(axis=1)
    acc_hi = bias + pos * x_hi + neg * x_lo
    acc_lo = bias + pos * x_lo + neg * x_hi
    bound = max(max(abs(int(v)) for v in acc_hi), max(abs(int(v)) for v in acc_lo))
    if bound + (1 << layer.shift) >= 1 << MAX_ACC_BITS:
        raise JpqError(
            f"layer {layer.name!r}: its accumulator can reach {bound.bit_length() + 1} bits; "
            f"at most {MAX_ACC_BITS} are supported")
