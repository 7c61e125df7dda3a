"""Verilog of a :class:`~jpq_hw.stream.StreamNet`: one file, the top module and all it needs.

The file holds, all prefixed with the top module's name so that two designs can share a project:

- ``TOP_window``, ``TOP_delay``, ``TOP_collect``, ``TOP_hold``, ``TOP_hamming``, ``TOP_argmin``:
  the stream's building blocks (``rtl_templates/stream_lib.v.j2``: line buffer and window, delay
  line, frame collector, handshake register, and the stages without weights: Hamming cost volume
  and winner-take-all), written once by hand with their exact behaviour in their comments;
- ``TOP_s<i>``: the adder graph of stage ``i`` as a combinational module with ``x`` and ``y``
  (:func:`jpq_hw.hdl.verilog.emit_verilog`, the same emitter as flat designs);
- ``TOP``: the stages wired as one stream (``rtl_templates/stream_top.v.j2``).

Nothing here decides anything: the line buffer's storage comes from :func:`line_buffer_in_ram`.
"""

from __future__ import annotations

from ..arith.graph import range_width
from ..arith.registers import place_registers
from ..stream.net import ArgminStage, ConvStage, HammingStage, StreamNet
from .verilog import _environment, check_identifier, emit_verilog

LINE_BUFFER_RAM_MIN_BITS = 256  # smaller line buffers stay in flip-flops (a block RAM holds 4096 bits)
MAX_BOX = 15  # the largest box_sum the window's column adder is written for


def line_buffer_bits(stage: ConvStage) -> int:
    """Bits a conv stage's line buffer holds: K-1 rows of the frame width."""
    return (stage.kernel - 1) * stage.inp.pixel_bits * stage.inp.width


def line_buffer_in_ram(stage: ConvStage) -> bool:
    """Whether the line buffer goes into block RAM (else flip-flops)."""
    return stage.kernel > 1 and line_buffer_bits(stage) >= LINE_BUFFER_RAM_MIN_BITS


def column_sum_bits(stage: ConvStage) -> int:
    """Bits of one column sum of a box stage's window (two's complement where the input is signed):
    the sum of ``k`` values of the input format, and more than the input's own bits."""
    return column_sum_bits_of(stage.kernel, stage.inp.fmt)


def column_sum_bits_of(k: int, fmt) -> int:
    """:func:`column_sum_bits` of a window of ``k`` rows over values of ``fmt``."""
    return max(range_width(k * min(fmt.lo, 0), k * max(fmt.hi, 0))[0], fmt.bits + 1)


def argmin_latency(channels: int, pipeline: int) -> int:
    """Register stages inside an argmin's comparison tree: one every ``pipeline`` levels below its
    root (``{p}_argmin``'s ``PIPE``); its output register comes on top."""
    levels = max(1, (channels - 1).bit_length())
    return (levels - 1) // pipeline if pipeline > 0 else 0


def kernel_input_bits(stage) -> int:
    """Bits of one input element of a stage's graph: a window value, or a box stage's column sum."""
    return column_sum_bits(stage) if isinstance(stage, ConvStage) and stage.column_sums else stage.inp.fmt.bits


def stage_schedule(graph, pipeline: int):
    """The registers of a stage's graph: a register stage every ``pipeline`` adder levels (none
    for 0, or for a graph without adders)."""
    sched = place_registers(graph, pipeline)
    return sched if sched.latency else place_registers(graph, 0)


def kernel_module(top: str, index: int) -> str:
    return f"{top}_s{index}"


def emit_stream_verilog(net: StreamNet, *, top: str, source: str = "", version: str = "", pipeline: int = 0) -> str:
    """The Verilog text of the whole stream design, top module ``top``; with ``pipeline`` N, each
    stage's graph gets a register stage every N adder levels (:func:`stage_schedule`)."""
    check_identifier(top)
    env = _environment()
    parts = [env.get_template("stream_lib.v.j2").render(p=top, version=version, max_box=MAX_BOX)]
    stages = []
    for i, st in enumerate(net.stages):
        if isinstance(st, HammingStage):
            stages.append(dict(kind="hamming", in_width=st.inp.pixel_bits, f=st.features, d=st.disparities,
                               w=st.inp.width, ob=st.out.fmt.bits,
                               title=f"{st.name}, Hamming cost of {st.features} binary features over "
                                     f"{st.disparities} disparities"))
            continue
        if isinstance(st, ArgminStage):
            stages.append(dict(kind="argmin", in_width=st.inp.pixel_bits, d=st.inp.channels, b=st.inp.fmt.bits,
                               signed=int(st.inp.fmt.signed), ob=st.out.fmt.bits, pipe=pipeline,
                               title=f"{st.name}, argmin over {st.inp.channels} channels (ties: the lowest)"))
            continue
        module = kernel_module(top, i)
        g = st.graph
        sched = stage_schedule(g, pipeline)
        sums = isinstance(st, ConvStage) and st.column_sums
        b_in = kernel_input_bits(st)
        parts.append(emit_verilog(g, sched, top=module, b_in=b_in, b_out=st.out.fmt.bits,
                                  source=source, version=version, enable=True))
        common = dict(module=module, in_width=st.inp.pixel_bits, out_width=st.out.pixel_bits, pix=st.inp.pixel_bits,
                      latency=sched.latency)
        if isinstance(st, ConvStage):
            title = (f"{st.name}, box sum {st.kernel}x{st.kernel} of {st.inp.channels} channels (column sums, then rows)"
                     if sums else f"{st.name}, conv2d {st.kernel}x{st.kernel}/{st.stride} pad {st.padding}, "
                                  f"{st.inp.channels} -> {st.out.channels} channels, "
                                  f"{st.inp.height}x{st.inp.width} -> {st.out.height}x{st.out.width}")
            stages.append(dict(common, kind="conv", k=st.kernel, h=st.inp.height, w=st.inp.width, s=st.stride,
                               p=st.padding, ram=int(line_buffer_in_ram(st)), sum=sums, c=st.inp.channels,
                               b=st.inp.fmt.bits, sb=b_in, signed=int(st.inp.fmt.signed),
                               kernel_in_width=(st.kernel * st.inp.channels * b_in if sums
                                                else st.kernel ** 2 * st.inp.pixel_bits),
                               title=title))
        else:
            n, b, c = st.inp.pixels, st.inp.fmt.bits, st.inp.channels
            pix = st.inp.pixel_bits
            # element ch*n + k (torch.flatten of [C, H, W]) is channel ch of beat k; highest first
            flat = [f"c{i}_frame[{k * pix + ch * b} +: {b}]" for ch in reversed(range(c)) for k in reversed(range(n))]
            stages.append(dict(common, kind="dense", n=n, frame_width=n * pix, flat=flat,
                               title=f"{st.name}, flatten [{c}, {st.inp.height}, {st.inp.width}] and linear, "
                                     f"{c * n} -> {st.out.channels}, one beat per frame"))
    summary = (f"[{net.inp.channels}, {net.inp.height}, {net.inp.width}] {net.inp.fmt.bits}-bit in, "
               f"{len(net.stages)} stages, {net.adders} adders")
    parts.append(env.get_template("stream_top.v.j2").render(
        version=version, source=source, summary=summary, top=top, lib=top, stages=stages,
        stage_names=[s.name for s in net.stages], in_width=net.inp.pixel_bits, out_width=net.out.pixel_bits))
    return "\n".join(parts)
