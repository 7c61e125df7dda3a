"""StreamNet: an image network as a chain of streaming stages (contract.md section 3).

The stream-level representation sits above the :class:`~jpq_hw.arith.AdderGraph`. A frame is an
integer array ``[C, H, W]``; it travels as ``H x W`` beats in raster order, one pixel (all ``C``
channels) per beat. Each stage turns the frames of its input stream into the frames of its output
stream; its exact meaning is its :meth:`run` method, executed with numpy int64 and the adder
graph's own interpreter, and it must equal the integer reference (contract.md section 1) of the
layers it was lowered from (:func:`jpq_hw.stream.lower.lower_stream` checks this on every frame it
is given).

Stage kinds:

:class:`ConvStage` (one conv2d layer)
    Line buffer and window, kernel, requantisation. For output pixel ``(r, c)`` the window holds
    ``xpad[i, r*stride + u, c*stride + v]`` for ``u, v < k`` and every input channel ``i``
    (``xpad``: the frame zero-padded by ``padding`` on every side), element ``(u*k + v)*C + i``:
    pixel by pixel in raster order, channels inside a pixel, as on the bus. The kernel ``graph``
    (an AdderGraph over the ``k*k*C`` window values, its Requant nodes the layer's output stage)
    gives the output pixel's channels. With ``column_sums`` (a ``box_sum`` layer) the window
    hands the kernel, instead, the sum over its ``k`` rows of each column and channel, element
    ``v*C + i`` (column ``v``, channel ``i``), and the kernel adds the ``k`` columns of each
    channel: a box filter in ``2 (k - 1)`` adders per channel.
:class:`DenseStage` (a flatten and one or more linear layers)
    Collects a whole frame into one vector in ``[C, H, W]`` order (``torch.flatten``), runs the
    flat ``graph`` on it and yields one beat per frame: a 1 x 1 frame whose channels are the
    vector.
:class:`HammingStage` (one ``hamming_cost`` layer; no weights, ``graph`` is None)
    One beat out per beat in. Keeps the right-hand features of the last ``D - 1`` pixels of the
    row; pixel ``(r, c)`` yields ``cost[d] = popcount(left(r, c) XOR right(r, c - d))`` for every
    disparity ``d``, ``F`` where ``c - d < 0``, saturated to the output format.
:class:`ArgminStage` (one ``argmin`` layer; no weights, ``graph`` is None)
    One beat out per beat in: the first channel of the pixel that holds its minimum.

The hardware of each kind is written by :mod:`jpq_hw.hdl.stream_verilog`; its handshake timing
by :mod:`jpq_hw.stream.timing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.graph import AdderGraph
from ..ir.qnet import IntFormat


@dataclass(frozen=True)
class Frame:
    """The geometry and element format of a stream: frames of ``[channels, height, width]``."""

    channels: int
    height: int
    width: int
    fmt: IntFormat

    @property
    def pixel_bits(self) -> int:
        """Bits of one beat: every channel of one pixel."""
        return self.channels * self.fmt.bits

    @property
    def pixels(self) -> int:
        return self.height * self.width


@dataclass(frozen=True, eq=False)
class ConvStage:
    """One conv2d layer as a window over the stream and a hardwired kernel (module docstring)."""

    name: str
    layers: tuple[int, ...]  # index of the QNet layer it was lowered from
    inp: Frame
    out: Frame
    kernel: int
    stride: int
    padding: int
    graph: AdderGraph  # k*k*C window values in (k*C column sums with column_sums), the output pixel's channels out
    column_sums: bool = False

    @property
    def kind(self) -> str:
        """The stage's kind in the report: the layer kind it was lowered from."""
        return "box_sum" if self.column_sums else "conv2d"

    def windows(self, x: np.ndarray) -> np.ndarray:
        """Every output pixel's window: [batch, out_h, out_w, k*k*C] for frames ``x`` [batch, C, H, W]."""
        k, s, p = self.kernel, self.stride, self.padding
        xp = np.pad(np.asarray(x, dtype=np.int64), ((0, 0), (0, 0), (p, p), (p, p)))
        oh, ow = self.out.height, self.out.width
        win = np.empty((x.shape[0], oh, ow, k, k, self.inp.channels), dtype=np.int64)
        for u in range(k):
            for v in range(k):
                win[:, :, :, u, v, :] = xp[:, :, u:u + s * oh:s, v:v + s * ow:s].transpose(0, 2, 3, 1)
        return win.reshape(x.shape[0], oh, ow, k * k * self.inp.channels)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Output frames [batch, C_out, H_out, W_out] for input frames [batch, C, H, W]."""
        win = self.windows(x)
        batch, oh, ow, n = win.shape
        if self.column_sums:  # [.., u, v, C] summed over the rows u: element v*C + i
            k, c = self.kernel, self.inp.channels
            win = win.reshape(batch, oh, ow, k, k * c).sum(axis=3)
            n = k * c
        y = self.graph.evaluate(win.reshape(-1, n))
        return y.reshape(batch, oh, ow, self.out.channels).transpose(0, 3, 1, 2)


@dataclass(frozen=True, eq=False)
class DenseStage:
    """A flatten and linear layers: one frame in, one beat (a 1 x 1 frame) out (module docstring)."""

    name: str
    layers: tuple[int, ...]  # indices of the QNet layers it was lowered from
    inp: Frame
    out: Frame  # channels = the vector's length, 1 x 1
    graph: AdderGraph  # C*H*W inputs in [C, H, W] order
    kind = "dense"

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        y = self.graph.evaluate(x.reshape(x.shape[0], -1))
        return y.reshape(x.shape[0], -1, 1, 1)


@dataclass(frozen=True, eq=False)
class HammingStage:
    """A Hamming cost volume over ``disparities`` (module docstring; contract: ``hamming_cost``)."""

    name: str
    layers: tuple[int, ...]
    inp: Frame  # 2F channels of 1 bit: left features, then right features
    out: Frame  # D channels
    disparities: int
    graph = None
    kind = "hamming_cost"

    @property
    def features(self) -> int:
        return self.inp.channels // 2

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        f, w = self.features, self.inp.width
        left, right = x[:, :f], x[:, f:]
        cost = np.full((x.shape[0], self.disparities, self.inp.height, w), f, dtype=np.int64)
        for d in range(self.disparities):
            cost[:, d, :, d:] = np.sum(left[:, :, :, d:] != right[:, :, :, :w - d], axis=1)
        return np.minimum(cost, self.out.fmt.hi)


@dataclass(frozen=True, eq=False)
class ArgminStage:
    """Winner-take-all over channels (module docstring; contract: ``argmin``)."""

    name: str
    layers: tuple[int, ...]
    inp: Frame
    out: Frame  # 1 channel
    graph = None
    kind = "argmin"

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        best = x[:, :1].copy()
        idx = np.zeros_like(best)
        for d in range(1, x.shape[1]):  # a later channel wins only when strictly smaller
            better = x[:, d:d + 1] < best
            best = np.where(better, x[:, d:d + 1], best)
            idx = np.where(better, d, idx)
        return idx


PixelStage = HammingStage | ArgminStage
"""Stages that yield one beat per beat they take, without weights."""
Stage = ConvStage | DenseStage | HammingStage | ArgminStage


@dataclass(frozen=True, eq=False)
class StreamNet:
    """The stages of an image network in stream order; ``inp`` is the network's input stream."""

    inp: Frame
    stages: tuple[Stage, ...]
    layer_names: tuple[str, ...]

    @property
    def out(self) -> Frame:
        return self.stages[-1].out

    def run(self, x: np.ndarray) -> np.ndarray:
        """Output frames [batch, C_out, H_out, W_out] for input frames [batch, C, H, W]."""
        x = np.asarray(x, dtype=np.int64)
        for stage in self.stages:
            x = stage.run(x)
        return x

    def beats(self, x: np.ndarray) -> np.ndarray:
        """The output stream of frames ``x``: [batch, beats per frame, C_out] in raster order."""
        y = self.run(x)
        return y.reshape(y.shape[0], y.shape[1], -1).transpose(0, 2, 1)

    @property
    def adders(self) -> int:
        return sum(len(s.graph.adders) for s in self.stages if s.graph is not None)
