"""Lowering of an image network: a :class:`~jpq_hw.ir.QNet` with a ``[C, H, W]`` input becomes a
:class:`~jpq_hw.stream.net.StreamNet`.

Every conv2d layer becomes a :class:`ConvStage`: its weight ``[O, C, k, k]`` unrolled to a matrix
``[O, k*k*C]`` over the window (element ``(u*k + v)*C + i``) and lowered with the same adder
sharing as a linear layer (:func:`jpq_hw.arith.lower.lower_layers`). The first linear layer and
all that follow it become one :class:`DenseStage`. The layers without weights become their own
stages: ``hamming_cost`` a :class:`HammingStage`, ``argmin`` an :class:`ArgminStage`, ``box_sum`` a
:class:`ConvStage` whose window sums its columns (``column_sums``) and whose kernel graph adds the
``k`` column sums of each channel. The kernel's inputs get the exact range of
the stage before it, widened to hold 0 where the layer pads (the value of the padding): a channel
that can only be 0 costs nothing, and a constant channel folds into the bias unless padding makes
it vary.

What cannot stream is refused with one line (:class:`~jpq_hw.errors.JpqError`): a layer kind the
stream does not support, a kernel that is not square, a padding larger than ``(k - 1) / 2`` (the
border outputs of one frame are produced while the next frame's first rows arrive, which only those
paddings allow) and a frame too small for its window; line buffers larger than the target's block
RAM are refused by :func:`jpq_hw.stream.design.lower_stream_design`, which knows the target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arith.graph import AdderGraph, Requant
from ..arith.lower import lower_layers
from ..arith.optimize import DEFAULT_OPTIMIZE
from ..errors import JpqError
from ..ir.qnet import QLayer, QNet
from .net import ArgminStage, ConvStage, DenseStage, Frame, HammingStage, Stage, StreamNet

if TYPE_CHECKING:
    from ..cost.model import CostModel


def check_streamable(qnet: QNet) -> None:
    """Raise a one-line :class:`JpqError` where ``qnet`` cannot be lowered as a stream."""
    if len(qnet.input_shape) != 3:
        raise JpqError(f"a stream needs a [C, H, W] input, the network takes {list(qnet.input_shape)}")
    shape = qnet.input_shape
    flat = False
    for layer in qnet.layers:
        if layer.kind in ("conv2d", "box_sum"):
            if flat:
                raise JpqError(f"layer {layer.name!r}: a {layer.kind} layer after a linear one cannot stream")
            if layer.kind == "box_sum":
                from ..hdl.stream_verilog import MAX_BOX

                if layer.size > MAX_BOX:
                    raise JpqError(f"layer {layer.name!r}: a {layer.size}x{layer.size} box_sum is larger than the "
                                   f"{MAX_BOX}x{MAX_BOX} the stream supports")
                kh = kw = layer.size
                p = (layer.size - 1) // 2
            else:
                _, _, kh, kw = layer.weight.shape
                p = layer.padding
            _, h, w = shape
            k = kh
            if kh != kw:
                raise JpqError(f"layer {layer.name!r}: only square kernels stream, got {kh}x{kw}")
            if 2 * p > k - 1:
                raise JpqError(f"layer {layer.name!r}: padding {p} is more than (k - 1) / 2 = {(k - 1) // 2} "
                               f"for a {k}x{k} kernel, which the stream does not support")
            if k > h + 2 * p or k > w + 2 * p:
                raise JpqError(f"layer {layer.name!r}: a {k}x{k} kernel is larger than its padded "
                               f"{h + 2 * p}x{w + 2 * p} input")
            if k > 1 and (min(h, w) < 2 or min(h, w) <= p):
                raise JpqError(f"layer {layer.name!r}: a {h}x{w} frame is too small to stream through "
                               f"a {k}x{k} window with padding {p}")
        elif layer.kind == "linear":
            flat = True
        elif layer.kind in ("hamming_cost", "argmin"):
            if flat:
                raise JpqError(f"layer {layer.name!r}: a {layer.kind} layer after a linear one cannot stream")
        else:
            raise JpqError(f"layer {layer.name!r}: {layer.kind} layers do not stream")
        shape = layer.output_shape(shape)


def lower_stream(qnet: QNet, optimize: str = DEFAULT_OPTIMIZE, *, cost_model: "CostModel",
                 max_depth: int | None = None) -> StreamNet:
    """The stages of ``qnet`` (module docstring), each graph exact by construction."""
    check_streamable(qnet)
    c, h, w = qnet.input_shape
    frame = Frame(c, h, w, qnet.input)
    ranges = [(qnet.input.lo, qnet.input.hi)] * c  # per channel
    stages: list[Stage] = []
    layers = qnet.layers
    li = 0
    while li < len(layers):
        layer = layers[li]
        if layer.kind == "conv2d":
            o, ci, k, _ = layer.weight.shape
            matrix = layer.weight.transpose(0, 2, 3, 1).reshape(o, k * k * ci)  # element (u*k + v)*C + i
            if layer.padding:  # a window element can also be the zero padding
                window_ranges = [(min(lo, 0), max(hi, 0)) for lo, hi in ranges] * (k * k)
            else:
                window_ranges = list(ranges) * (k * k)
            graph = lower_layers([layer], window_ranges, optimize, cost_model=cost_model, max_depth=max_depth,
                                 weights=[matrix], first_layer=li)
            _, oh, ow = layer.output_shape((frame.channels, frame.height, frame.width))
            out = Frame(o, oh, ow, layer.out)
            stages.append(ConvStage(layer.name, (li,), frame, out, k, layer.stride, layer.padding, graph))
            ranges = _output_ranges(graph)
            frame = out
            li += 1
        elif layer.kind == "box_sum":
            k, ci = layer.size, frame.channels
            ones = np.zeros((ci, k * ci), dtype=np.int64)  # column sum v*C + i feeds channel i
            for v in range(k):
                ones[np.arange(ci), v * ci + np.arange(ci)] = 1
            p = (k - 1) // 2
            # a column sum: k values, any of them the padding's zero where the layer pads
            col_ranges = [(k * min(lo, 0), k * max(hi, 0)) if p else (k * lo, k * hi) for lo, hi in ranges]
            as_linear = QLayer(layer.name, "linear", ones, np.zeros(ci, np.int64), 0, False, layer.out)
            graph = lower_layers([as_linear], col_ranges * k, optimize, cost_model=cost_model, max_depth=max_depth,
                                 weights=[ones], first_layer=li)
            out = Frame(ci, frame.height, frame.width, layer.out)
            stages.append(ConvStage(layer.name, (li,), frame, out, k, 1, p, graph, column_sums=True))
            ranges = _output_ranges(graph)
            frame = out
            li += 1
        elif layer.kind in ("hamming_cost", "argmin"):
            oc, oh, ow = layer.output_shape((frame.channels, frame.height, frame.width))
            out = Frame(oc, oh, ow, layer.out)
            if layer.kind == "hamming_cost":
                stages.append(HammingStage(layer.name, (li,), frame, out, layer.disparities))
                ranges = [(0, min(frame.channels // 2, layer.out.hi))] * oc
            else:
                stages.append(ArgminStage(layer.name, (li,), frame, out))
                ranges = [(0, frame.channels - 1)]
            frame = out
            li += 1
        else:
            dense = layers[li:]
            flat_ranges = [r for r in ranges for _ in range(frame.pixels)]  # [C, H, W] order
            graph = lower_layers(dense, flat_ranges, optimize, cost_model=cost_model, max_depth=max_depth,
                                 first_layer=li)
            out = Frame(dense[-1].n_out, 1, 1, dense[-1].out)
            name = dense[0].name if len(dense) == 1 else f"{dense[0].name}..{dense[-1].name}"
            stages.append(DenseStage(name, tuple(range(li, len(layers))), frame, out, graph))
            li = len(layers)
    return StreamNet(Frame(c, h, w, qnet.input), tuple(stages), tuple(layer.name for layer in layers))


def _output_ranges(graph: AdderGraph) -> list[tuple[int, int]]:
    """The exact range of each output of ``graph`` (one per output channel)."""
    out = []
    for o in graph.outputs:
        n = graph.nodes[o]
        assert isinstance(n, Requant)
        out.append((n.lo, n.hi))
    return out


def check_stream(net: StreamNet, qnet: QNet, x: np.ndarray) -> None:
    """Assert that ``net`` computes the integer reference of ``qnet`` on frames ``x``."""
    from ..reference import run_reference

    got, want = net.run(x), run_reference(qnet, x)
    want = want.reshape(got.shape)
    if not np.array_equal(got, want):
        bad = int(np.argwhere(got != want)[0][0])
        raise AssertionError(f"internal error: the stream's stages differ from the reference on frame {bad}")
