"""iCE40 cells of a stream's own hardware: windows, line buffers, collectors, handshake registers.

The adder graphs of the stages are priced by :mod:`jpq_hw.cost.ice40`; this module adds what
``rtl_templates/stream_lib.v.j2`` builds around them. Only the bits that some adder reads are
counted (yosys removes the rest): a window element whose weights are all zero costs nothing, and a
line buffer keeps only the rows and channels that a used window element still needs.

- window: one flip-flop and one masking LUT per used bit;
- line buffer: one flip-flop per bit (``W`` per used row bit), or block RAM where
  :func:`jpq_hw.hdl.stream_verilog.line_buffer_in_ram` says so (SB_RAM40_4K: 256x16, 512x8,
  1024x4 or 2048x2, the fewest blocks for the memory's whole width, as yosys maps it) and its
  address counter;
- position counters, masks and handshakes: a fixed part per stage (:data:`CONTROL_LUT4`);
- collector: one flip-flop per used bit of the frame;
- output register: one flip-flop per bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from ..arith.graph import AdderGraph, range_width
from ..hdl.stream_verilog import line_buffer_in_ram
from ..stream.net import ConvStage, StreamNet

BRAM_SHAPES = ((256, 16), (512, 8), (1024, 4), (2048, 2))  # SB_RAM40_4K depth x width
CONTROL_LUT4 = {"conv": 40, "dense": 8}  # counters, comparisons and handshakes (measured with yosys)
CONTROL_FF = {"conv": 4, "dense": 2}


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


def used_input_bits(graph: AdderGraph) -> list[int]:
    """For each graph input, the bits of it that some node reads (0 where nothing reads it)."""
    users = graph.consumers()
    return [range_width(graph.nodes[n].lo, graph.nodes[n].hi)[0] if users[n] and graph.nodes[n].lo != graph.nodes[n].hi
            else 0 for n in graph.inputs]


def bram_blocks(depth: int, width: int) -> int:
    """SB_RAM40_4K blocks for a memory of ``depth`` words of ``width`` bits."""
    if width == 0:
        return 0
    return min(ceil(depth / d) * ceil(width / w) for d, w in BRAM_SHAPES)


def stream_cost(net: StreamNet) -> StreamCost:
    out = StreamCost()
    for st in net.stages:
        used = used_input_bits(st.graph)
        c = StageStreamCost()
        if isinstance(st, ConvStage):
            k, ch = st.kernel, st.inp.channels
            window_bits = sum(used)
            c.ff += window_bits + 2 * k + CONTROL_FF["conv"]
            c.lut4 += window_bits + CONTROL_LUT4["conv"]
            # rows 1..K-1 of a channel are stored where a window row at or above them is used
            stored = 0
            for i in range(ch):
                rows = [u for u in range(k) for v in range(k) if used[(u * k + v) * ch + i]]
                if rows and min(rows) < k - 1:
                    width = max(used[(u * k + v) * ch + i] for u in range(k) for v in range(k))
                    stored += (k - 1 - min(rows)) * width
            c.line_buffer_bits = stored * st.inp.width
            if line_buffer_in_ram(st):  # yosys keeps the memory's full width
                c.bram = bram_blocks(st.inp.width, (k - 1) * st.inp.pixel_bits)
                aw = max(1, (st.inp.width - 1).bit_length())
                c.ff += aw
                c.lut4 += aw + 2
                c.carry += max(aw - 2, 0)
            else:
                c.ff += c.line_buffer_bits
        else:
            c.ff += sum(used) + CONTROL_FF["dense"] + max(1, (st.inp.pixels - 1).bit_length())
            c.lut4 += CONTROL_LUT4["dense"]
        c.ff += st.out.pixel_bits
        out.stages.append(c)
    return out
