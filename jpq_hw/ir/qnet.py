"""QNet: the integer network, exactly as a version-1 checkpoint describes it.

A :class:`QNet` is the first of jpq-hw's three representations. It holds only integers and
fixed-point formats (numpy ``int64`` arrays, no torch), and its meaning is the integer semantics of
contract.md section 1, which :func:`jpq_hw.reference.run_reference` executes:

    acc = bias + W x                     (exact: no intermediate value wraps)
    t   = floor((acc + 2**(shift-1)) / 2**shift)   if shift > 0, else acc
    t   = max(t, 0)                      if relu
    y   = clamp(t, lo, hi)               the out format's range

Every instance is validated on construction: shapes chain, formats are in range, and the
accumulator of every layer fits in a signed 64-bit integer, so that the reference may use int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

from ..errors import JpqError

LAYER_KINDS = ("linear", "conv2d")
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


@dataclass(frozen=True, eq=False)
class QNet:
    """A validated integer network: input format and shape, layers in order, free-form meta."""

    input_shape: tuple[int, ...]
    input: IntFormat
    layers: tuple[QLayer, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.layers:
            raise JpqError("the network has no layers")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise JpqError(f"layer names are not unique: {names}")
        shape = self.input_shape
        lo, hi = self.input.lo, self.input.hi
        for layer in self.layers:
            shape = layer.output_shape(shape)
            _check_accumulator(layer, lo, hi)
            lo, hi = layer.out.lo, layer.out.hi

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
    w = layer.weight.reshape(layer.n_out, -1).astype(object)
    pos = np.where(w > 0, w, 0).sum(axis=1)
    neg = np.where(w < 0, w, 0).sum(axis=1)
    bias = layer.bias.astype(object)
    acc_hi = bias + pos * x_hi + neg * x_lo
    acc_lo = bias + pos * x_lo + neg * x_hi
    bound = max(max(abs(int(v)) for v in acc_hi), max(abs(int(v)) for v in acc_lo))
    if bound + (1 << layer.shift) >= 1 << MAX_ACC_BITS:
        raise JpqError(
            f"layer {layer.name!r}: its accumulator can reach {bound.bit_length() + 1} bits; "
            f"at most {MAX_ACC_BITS} are supported")
