"""iCE40 cells of a stream's own hardware: windows, line buffers, collectors, handshake registers.

The adder graphs of the stages are priced by :mod:`jpq_hw.cost.ice40`; this module adds what
``rtl_templates/stream_lib.v.j2`` builds around them. Only the bits that some adder reads are
counted (yosys removes the rest): a window element whose weights are all zero costs nothing, and a
line buffer keeps only the rows and channels that a used window element still needs.

- window: a shift chain of flip-flops from the first used column, one masking LUT per used bit
  of a border element (the middle rows and columns are never padding), and where the layer pads,
  one LUT per used pixel bit (zero pixels while a frame's tail runs on its own);
- line buffer: one flip-flop per bit (``W`` per used row bit), or block RAM where
  :func:`jpq_hw.hdl.stream_verilog.line_buffer_in_ram` says so (SB_RAM40_4K: 256x16, 512x8,
  1024x4 or 2048x2, the fewest blocks for the memory's whole width, as yosys maps it); a flip-flop
  line buffer shares its first stages with the window's chains (the same bits: yosys merges them);
- position counters, frame tail, stride and padding tests: fitted to yosys (:data:`CONTROL_BASE`,
  plus :data:`CONTROL_EDGE` per border row or column in use);
- collector: one flip-flop per used bit of the frame;
- output register (a stage whose graph has no pipeline registers): one flip-flop per bit that
  can change and is read;
- the stages without weights, fitted to yosys ``synth_ice40`` of their modules in
  ``rtl_templates/stream_lib.v.j2``: a Hamming cost volume (:func:`hamming_cells`) and a
  winner-take-all (:func:`argmin_cells`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from ..arith.graph import AdderGraph, range_width
from ..hdl.stream_verilog import column_sum_bits, line_buffer_in_ram
from ..stream.net import ArgminStage, ConvStage, DenseStage, HammingStage, StreamNet

BRAM_SHAPES = ((256, 16), (512, 8), (1024, 4), (2048, 2))  # SB_RAM40_4K depth x width
# The window's position logic (counters, frame tail, stride and padding tests), fitted to yosys
# synth_ice40 of rtl_templates/stream_lib.v.j2's window (kernels 3 and 5, padding 0 and (K-1)/2,
# frames 4x5 to 300 wide, flip-flop and block-RAM line buffers), less what is modelled apart (masks,
# the tail's zero pixels, shift chains, line buffer), in two parts: the base, measured with only the
# window's centre read, cells = c . (1, b, p > 0, ram, b * (p > 0)) with b the bits of the two
# position counters, within 8 cells of yosys; and the test of each border row or column that holds
# a used element, measured as the rest with the whole window read, cells = c . (1, b), within 2.
CONTROL_BASE = {"lut4": (5.77, 1.51, 9.83, 10.94, 1.47), "carry": (-8.63, 1.95, -8.04, 6.78, 2.0),
                "ff": (0.61, 1.03, 1.94, 7.79, 0.0)}
CONTROL_EDGE = {"lut4": (0.81, 0.04), "carry": (-1.43, 0.47), "ff": (1.0, 0.0)}


# SB_LUT4 of one disparity of a Hamming cost volume (XOR, popcount, border and saturation) for F
# features, measured with yosys synth_ice40 (D = 16, less the column logic); between and past the
# measured F, interpolated and extrapolated linearly.
POPCOUNT_LUT4 = {1: 3.0, 2: 4.0, 3: 6.2, 4: 9.0, 5: 10.0, 6: 12.1, 7: 13.0, 8: 19.0, 9: 20.0, 10: 22.0, 11: 23.0,
                 12: 27.0, 13: 28.0, 14: 31.0, 15: 32.0, 16: 38.0, 20: 49.0, 24: 59.0, 32: 79.0}
# SB_LUT4 of a D-way winner-take-all over B-bit values, fitted to yosys synth_ice40 (D 2..32, B 4..12,
# within 3% from D = 4, 12% below): c . ((D-1)*B, (D-2)*B, index mux bits, signed * (D-1), 1)
ARGMIN_LUT4 = (0.459, 1.083, 0.651, 2.886, 6.32)


def _popcount_lut4(f: int) -> float:
    keys = sorted(POPCOUNT_LUT4)
    if f in POPCOUNT_LUT4:
        return POPCOUNT_LUT4[f]
    if f > keys[-1]:
        return POPCOUNT_LUT4[keys[-1]] * f / keys[-1]
    lo = max(k for k in keys if k < f)
    hi = min(k for k in keys if k > f)
    return POPCOUNT_LUT4[lo] + (POPCOUNT_LUT4[hi] - POPCOUNT_LUT4[lo]) * (f - lo) / (hi - lo)


def hamming_cells(features: int, disparities: int, width: int, out_bits: int) -> "StageStreamCost":
    """Cells of ``TOP_hamming``: per disparity a popcount; the right features of D-1 pixels, the
    column counter and the in-row flags in flip-flops; the output register (its bits that vary)."""
    f, d = features, disparities
    count_bits = f.bit_length()  # a count 0..F
    ww = _counter_bits(width)
    c = StageStreamCost()
    c.lut4 = round(d * _popcount_lut4(f)) + (ww + 4 if d > 1 else 0)
    c.carry = (d * (count_bits - 1) if f > 3 else 0) + (max(ww - 2, 0) if d > 1 else 0)
    c.ff = ((d - 1) * (f + 1) + ww if d > 1 else 0) + d * min(out_bits, count_bits) + 1
    return c


def argmin_index_mux_bits(d: int) -> int:
    """Index bits that the winner-take-all tree's inner nodes select (nodes that compare two real
    channels; channels past ``d`` are never taken)."""
    levels = max(1, (d - 1).bit_length())
    total = 0

    def node(lo: int, hi: int, height: int) -> None:
        nonlocal total
        if hi - lo <= 1:
            return
        mid = (lo + hi) // 2
        if mid >= d:
            node(lo, mid, height - 1)
            return
        total += height - 1
        node(lo, mid, height - 1)
        node(mid, hi, height - 1)

    node(0, 1 << levels, levels)
    return total


def argmin_cells(channels: int, bits: int, signed: bool, out_bits: int, pipeline: int = 0) -> "StageStreamCost":
    """Cells of ``TOP_argmin``: a comparison tree of D-1 comparators (one carry per value bit each),
    the value and index multiplexers, the output register; with ``pipeline`` N the registers of
    the nodes every N levels (value and index bits) and their valid bits."""
    d, b = channels, bits
    f = ((d - 1) * b, max(d - 2, 0) * b, argmin_index_mux_bits(d), int(signed) * (d - 1), 1)
    c = StageStreamCost()
    c.lut4 = round(sum(k * v for k, v in zip(ARGMIN_LUT4, f))) if d > 1 else 0
    c.carry = (d - 1) * b if b > 2 else 0  # comparisons of 1- and 2-bit values are LUTs alone
    c.ff = min(out_bits, max(1, (d - 1).bit_length())) + 1
    levels = max(1, (d - 1).bit_length())
    if pipeline > 0:
        for h in range(pipeline, levels, pipeline):  # registered nodes: ceil(d / 2**h) hold real channels
            c.ff += -(-d // (1 << h)) * (b + h) + 1
    return c


def _window_control(k: int, h: int, w: int, p: int, ram: bool, edge_lines: int) -> dict[str, int]:
    """``edge_lines``: the border rows and columns (of 4p) that hold a used element."""
    bits = _counter_bits(h + 2 * p + k + 1) + _counter_bits(w + 2 * p + k + 1) + 2
    base = (1, bits, p > 0, ram, bits * (p > 0))
    edge = (1, bits)
    return {key: max(0, round(sum(c * f for c, f in zip(CONTROL_BASE[key], base))
                              + edge_lines * max(0.0, sum(c * f for c, f in zip(CONTROL_EDGE[key], edge)))))
            for key in CONTROL_BASE}


def box_window_cells(st: ConvStage, used: list[int]) -> "StageStreamCost":
    """Cells of a box stage's window (``column_sums``) outside its kernel graph: the line buffer
    (as a conv window's), per used channel one sum of the entering column's ``k`` rows (yosys: a
    tree of LUTs and one carry chain; a masking LUT per bit of a border row), the shift register of ``k`` column sums from the first
    used column, and the position logic (:data:`CONTROL_BASE`, :data:`CONTROL_EDGE`)."""
    k, ch, p, b = st.kernel, st.inp.channels, st.padding, st.inp.fmt.bits
    sb = column_sum_bits(st)
    ram = line_buffer_in_ram(st)
    c = StageStreamCost()
    stored = 0
    for j in range(ch):
        cols = [v for v in range(k) if used[v * ch + j]]
        if not cols:
            continue
        width = max(used[v * ch + j] for v in cols)  # the bits of the column sum that are read
        stored += b
        if p:
            c.lut4 += b  # the tail's zero pixels
        c.lut4 += 2 * p * b  # masks of the border rows
        c.lut4 += (k - 1) * sb
        c.carry += max(sb - 2, 0)  # one sum of k terms: a compressor tree in LUTs, one carry chain
        c.ff += (k - min(cols)) * width + (0 if ram else (k - 1) * st.inp.width * b)
    c.line_buffer_bits = stored * (k - 1) * st.inp.width
    if ram:
        c.bram = bram_blocks(st.inp.width, (k - 1) * st.inp.pixel_bits)
    edge_lines = 4 * p if stored else 0
    ctl = _window_control(k, st.inp.height, st.inp.width, p, ram, edge_lines)
    c.lut4 += ctl["lut4"]
    c.carry += ctl["carry"]
    c.ff += ctl["ff"]
    return c


def _counter_bits(n: int) -> int:
    return max(1, (n - 1).bit_length())  # $clog2(n)


@dataclass
class StageStreamCost:
    """Cells of one stage outside its adder graph."""

    lut4: int = 0
    carry: int = 0
    ff: int = 0
    bram: int = 0
    line_buffer_bits: int = 0  # the bits the line buffer holds (after unused ones are removed)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class StreamCost:
    stages: list[StageStreamCost] = field(default_factory=list)


def varying_bits(lo: int, hi: int) -> int:
    """Bits of a value in ``[lo, hi]`` that can change: those above the highest bit in which ``lo``
    and ``hi`` differ are the same for every value (yosys removes their flip-flops)."""
    if lo == hi:
        return 0
    if lo >= 0 or hi < 0:
        return (lo ^ hi).bit_length()
    return range_width(lo, hi)[0]


def used_input_bits(graph: AdderGraph) -> list[int]:
    """For each graph input, the bits of it that some node reads and that can change (0 where
    nothing reads it)."""
    users = graph.consumers()
    return [varying_bits(graph.nodes[n].lo, graph.nodes[n].hi) if users[n] else 0 for n in graph.inputs]


def bram_blocks(depth: int, width: int) -> int:
    """SB_RAM40_4K blocks for a memory of ``depth`` words of ``width`` bits."""
    if width == 0:
        return 0
    return min(ceil(depth / d) * ceil(width / w) for d, w in BRAM_SHAPES)


def stream_cost(net: StreamNet, latencies=None, pipeline: int = 0) -> StreamCost:
    """``latencies``: the register stages of each stage's graph (their flip-flops, valid bits
    included, are the graph's, :meth:`RegisterSchedule.register_bits`); a stage without any has an
    output register instead. ``pipeline``: ``--pipeline N`` (an argmin's tree registers)."""
    out = StreamCost()
    stages = list(net.stages)
    latencies = latencies or [0] * len(stages)
    used_by = [used_input_bits(st.graph) if st.graph is not None else [st.inp.fmt.bits] * st.inp.channels
               for st in stages]
    for i, st in enumerate(stages):
        used = used_by[i]
        if isinstance(st, HammingStage):
            out.stages.append(hamming_cells(st.features, st.disparities, st.inp.width, st.out.fmt.bits))
            continue
        if isinstance(st, ArgminStage):
            out.stages.append(argmin_cells(st.inp.channels, st.inp.fmt.bits, st.inp.fmt.signed, st.out.fmt.bits,
                                           pipeline))
            continue
        c = StageStreamCost()
        if isinstance(st, ConvStage) and st.column_sums:
            c = box_window_cells(st, used)
        elif isinstance(st, ConvStage):
            k, ch, p = st.kernel, st.inp.channels, st.padding
            ram = line_buffer_in_ram(st)
            stored = 0  # bits per frame column that the line buffer holds
            for j in range(ch):
                use = [[used[(u * k + v) * ch + j] for v in range(k)] for u in range(k)]
                rows = [u for u in range(k) if any(use[u])]
                if not rows:
                    continue
                width = max(max(row) for row in use)
                if p:  # a frame's tail runs on zero pixels: one LUT per pixel bit that goes anywhere
                    c.lut4 += width
                for u in rows:  # masks of the border elements that are used
                    c.lut4 += sum(use[u][v] for v in range(k) if u < p or u >= k - p or v < p or v >= k - p)
                for u in range(min(rows), k):
                    # row u's window chain runs from its first used column; a row that the line
                    # buffer stores too (below the first used row) shares its first stages with
                    # that chain (the same bits shifted on the same slots: yosys merges them)
                    chain = k - min((v for v in range(k) if use[u][v]), default=k)
                    line = st.inp.width if u > min(rows) else 0
                    if line:
                        stored += width
                    c.ff += (chain if ram else max(line, chain)) * width
            c.line_buffer_bits = stored * st.inp.width
            if ram:  # yosys keeps the memory's full width
                c.bram = bram_blocks(st.inp.width, (k - 1) * st.inp.pixel_bits)
            edge_lines = 0
            if p:
                is_used = [[any(used[(u * k + v) * ch + j] for j in range(ch)) for v in range(k)] for u in range(k)]
                border = [u for u in range(k) if u < p or u >= k - p]
                edge_lines = (sum(any(is_used[u]) for u in border)
                              + sum(any(is_used[u][v] for u in range(k)) for v in border))
            ctl = _window_control(k, st.inp.height, st.inp.width, p, ram, edge_lines)
            c.lut4 += ctl["lut4"]
            c.carry += ctl["carry"]
            c.ff += ctl["ff"]
        else:
            n = st.inp.pixels
            for j in range(st.inp.channels):  # the collector's shift chain from the first used beat
                beats = [b for b in range(n) if used[j * n + b]]
                if beats:
                    c.ff += (n - min(beats)) * max(used[j * n + b] for b in beats)
            nw = _counter_bits(n)
            c.ff += nw + 1
            c.lut4 += nw + 3
            c.carry += max(nw - 2, 0)
        if not latencies[i]:
            nxt = (stages[i + 1], used_by[i + 1]) if i + 1 < len(stages) else None
            c.ff += _held_bits(st, nxt) + 1
        out.stages.append(c)
    return out


def _held_bits(st, nxt) -> int:
    """Bits of a stage's output register that can change and that something reads: every such bit
    at the network's output, else those of the channels the next stage uses (``nxt``: that stage
    and its :func:`used_input_bits`)."""
    g = st.graph
    varying = [varying_bits(g.nodes[o].lo, g.nodes[o].hi) for o in g.outputs]
    if nxt is None:
        return sum(varying)
    nxt, used = nxt
    c = st.out.channels
    if not isinstance(nxt, (ConvStage, DenseStage)):  # a stage without weights reads every channel
        read = [True] * c
    elif isinstance(nxt, ConvStage):
        read = [any(used[e] for e in range(j, len(used), c)) for j in range(c)]
    else:
        n = nxt.inp.pixels
        read = [any(used[j * n:(j + 1) * n]) for j in range(c)]
    return sum(v for v, r in zip(varying, read) if r)
