"""The ``lower`` flow for image networks: a :class:`StreamNet`, its Verilog, timing, cost and report.

:func:`lower_stream_design` makes a :class:`LoweredStream` in memory; :func:`build_stream_report`
describes it (contract.md section 3). :func:`jpq_hw.flow.lower_checkpoint` writes the design
folder, the same layout as a flat design's (:mod:`jpq_hw.design_folder`), with one test vector per
frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import __version__, progress
from ..arith.optimize import DEFAULT_OPTIMIZE
from ..cost.model import CostModel, LayerCost
from ..cost.stream import StreamCost, bram_blocks, stream_cost
from ..design_folder import FramePort, StreamInterface
from ..errors import JpqError
from ..gc_pause import paused_gc
from ..hdl.stream_verilog import (LINE_BUFFER_RAM_MIN_BITS, argmin_latency, emit_stream_verilog, line_buffer_in_ram,
                                  stage_schedule)
from ..hdl.verilog import check_identifier
from ..ir.qnet import QNet
from .lower import lower_stream
from .net import ArgminStage, ConvStage, StreamNet
from .timing import StreamTiming, simulate_handshakes


GRAPH_COST_KEYS = ("adders", "subtractors", "adder_bits", "lut4", "carry", "ff", "depth")  # summed over a stage's layers


@dataclass
class LoweredStream:
    """An image network lowered for one target, before it is written out."""

    qnet: QNet
    target: str
    net: StreamNet
    timing: StreamTiming
    graph_costs: list[LayerCost]  # the adder graph of each stage, as the target's model estimates it
    stream: StreamCost  # windows, line buffers, collectors, handshake registers
    verilog: str
    top: str
    backend: str
    optimize: str
    max_depth: int | None
    pipeline: int  # a register stage every N adder levels of each stage's graph (0: combinational)
    kernel_latency: list[int]  # register stages of each stage's graph
    seconds: dict[str, float]

    @property
    def interface(self) -> StreamInterface:
        n = self.net
        return StreamInterface(self.top, _port(n.inp), _port(n.out), self.timing.latency_cycles,
                               self.timing.cycles_per_frame)


def _port(f) -> FramePort:
    return FramePort(f.channels, f.height, f.width, f.fmt.bits, f.fmt.signed)


def lower_stream_design(qnet: QNet, cost_model: CostModel, *, top: str = "jpq_net", backend: str = "verilog",
                        optimize: str = DEFAULT_OPTIMIZE, source: str = "", max_depth: int | None = None,
                        pipeline: int = 0) -> LoweredStream:
    """Lower ``qnet`` (a ``[C, H, W]`` input) to a stream design rendered with ``backend``."""
    check_identifier(top)
    if backend not in ("verilog", "amaranth"):
        raise JpqError(f"unknown backend {backend!r} (known: verilog, amaranth)")
    if pipeline < 0:
        raise JpqError(f"--pipeline must be >= 0 (0: each stage's graph combinational), got {pipeline}")
    t0 = time.perf_counter()
    with paused_gc():
        net = lower_stream(qnet, optimize, cost_model=cost_model, max_depth=max_depth)
    t1 = time.perf_counter()
    progress.phase("HDL")
    scheds = [stage_schedule(st.graph, pipeline) if st.graph is not None else None for st in net.stages]
    latencies = [s.latency if s is not None
                 else argmin_latency(st.inp.channels, pipeline) if isinstance(st, ArgminStage) else 0
                 for st, s in zip(net.stages, scheds)]
    stream = stream_cost(net, latencies, pipeline)
    _check_block_ram(sum(s.bram for s in stream.stages), net.inp.width, cost_model)
    if backend == "verilog":
        text = emit_stream_verilog(net, top=top, source=source, version=__version__, pipeline=pipeline)
    else:
        from ..hdl.amaranth_stream import emit_amaranth_stream_verilog

        text = emit_amaranth_stream_verilog(net, top=top, pipeline=pipeline, source=source, version=__version__)
    t2 = time.perf_counter()
    progress.phase("timing")
    timing = simulate_handshakes(net, latencies=latencies)
    progress.phase("cost")
    with paused_gc():
        graph_costs = []
        for st, sched in zip(net.stages, scheds):
            if sched is None:  # a stage without weights: all its cells are the stream cost's
                graph_costs.append(LayerCost(st.name))
                continue
            c = cost_model.estimate(st.graph, sched)
            graph_costs.append(LayerCost(st.name, **{key: c.total(key) for key in GRAPH_COST_KEYS}))
    return LoweredStream(qnet, cost_model.name, net, timing, graph_costs, stream, text, top, backend, optimize,
                         max_depth, pipeline, latencies,
                         {"lower": t1 - t0, "emit": t2 - t1, "total": time.perf_counter() - t0})


def line_buffer_brams(qnet: QNet) -> int:
    """Block RAMs of the line buffers of ``qnet``'s stream, from the frames' geometry alone (as
    :func:`jpq_hw.cost.stream.stream_cost` counts them: a line buffer in block RAM keeps the full
    width of its pixels, whatever the weights read), so known before anything is lowered."""
    shape, fmt = qnet.input_shape, qnet.input
    bram = 0
    for layer in qnet.layers:
        k = layer.size if layer.kind == "box_sum" else layer.weight.shape[2] if layer.kind == "conv2d" else 0
        if k > 1:
            c, _, w = shape
            pixel_bits = c * fmt.bits
            if (k - 1) * pixel_bits * w >= LINE_BUFFER_RAM_MIN_BITS:  # line_buffer_in_ram
                bram += bram_blocks(w, (k - 1) * pixel_bits)
        shape, fmt = layer.output_shape(shape), layer.out
    return bram


def check_line_buffers(qnet: QNet, cost_model: CostModel) -> None:
    """Refuse, before anything is lowered, line buffers larger than the target's block RAM."""
    _check_block_ram(line_buffer_brams(qnet), qnet.input_shape[2], cost_model)


def _check_block_ram(bram: int, width: int, cost_model: CostModel) -> None:
    if bram > cost_model.largest_device_bram:
        device = cost_model.largest_device[0]
        raise JpqError(f"the line buffers of frames {width} pixels wide need {bram} block RAMs, the {device} "
                       f"has {cost_model.largest_device_bram}: use narrower frames or fewer channels")


def build_stream_report(d: LoweredStream, *, checkpoint: str, sha256: str, n_vectors: int) -> dict:
    from ..target import get_target

    stages = []
    for st, g, s, lat in zip(d.net.stages, d.graph_costs, d.stream.stages, d.kernel_latency):
        layer_nnz = sum(d.qnet.layers[i].nnz for i in st.layers)
        entry = {
            "name": st.name, "kind": st.kind,
            "layers": [d.qnet.layers[i].name for i in st.layers],
            "input": _port(st.inp).to_json(), "output": _port(st.out).to_json(),
            "nonzero_weights": layer_nnz, "adders": g.adders, "subtractors": g.subtractors,
            "adder_bits": g.adder_bits, "adder_levels": g.depth,
            "lut4_estimate": g.lut4 + s.lut4, "carry_estimate": g.carry + s.carry, "ff_estimate": g.ff + s.ff,
            "bram_estimate": s.bram, "kernel_latency": lat, "stream": s.as_dict(),
        }
        if isinstance(st, ConvStage):
            entry.update(kernel=st.kernel, stride=st.stride, padding=st.padding,
                         line_buffer={"bits": s.line_buffer_bits, "storage": "bram" if line_buffer_in_ram(st) else "ff"})
        stages.append(entry)
    device, capacity = get_target(d.target).cost.largest_device
    lut = sum(s["lut4_estimate"] for s in stages)
    return {
        "generator": f"jpq-hw {__version__}",
        **d.interface.to_report(),  # top, interface, input, output, latency_cycles, cycles_per_frame
        "target": d.target,
        "backend": d.backend,
        "optimize": d.optimize,
        "max_depth": d.max_depth,
        "pipeline_every": d.pipeline,
        "checkpoint": {"path": checkpoint, "sha256": sha256},
        "adders": sum(s["adders"] for s in stages),
        "subtractors": sum(s["subtractors"] for s in stages),
        "adder_bits": sum(s["adder_bits"] for s in stages),
        "lut4_estimate": lut,
        "carry_estimate": sum(s["carry_estimate"] for s in stages),
        "ff_estimate": sum(s["ff_estimate"] for s in stages),
        "bram_estimate": sum(s["bram_estimate"] for s in stages),
        "nonzero_weights": d.qnet.nnz,
        "cell_names": {"lut4": get_target(d.target).cell_names["lut4"], "carry": get_target(d.target).cell_names["carry"]},
        "largest_common_device": {"name": device, "lut4": capacity, "fits": lut <= capacity},
        "test_vectors": n_vectors,
        "seconds": {k: round(v, 4) for k, v in d.seconds.items()},
        "layers": stages,
    }


def stage_kind_text(s: dict) -> str:
    """A stage of a stream report (``report["layers"][i]``) in a few words."""
    k, n = s.get("kernel"), s["output"]["channels"]
    return {"conv2d": f"conv {k}x{k}/{s.get('stride')} p{s.get('padding')}", "box_sum": f"box sum {k}x{k}",
            "dense": "flatten + linear", "hamming_cost": f"Hamming cost, {n} disparities",
            "argmin": "argmin"}[s["kind"]]


def render_stream_markdown(r: dict) -> str:
    from ..target import get_target

    i, o = r["input"], r["output"]
    lines = [
        f"# {r['top']}: lowered by {r['generator']}",
        "",
        f"- checkpoint: `{r['checkpoint']['path']}` (sha256 `{r['checkpoint']['sha256'][:16]}...`)",
        f"- target: {r['target']}, backend: {r['backend']}, adder sharing: --optimize {r['optimize']}, "
        + (f"each stage's graph pipelined every {r['pipeline_every']} adder levels" if r["pipeline_every"]
           else "each stage's graph combinational"),
        f"- interface: stream (AXI4-Stream), in {i['channels']} x {i['height']} x {i['width']} of {i['bits']}-bit "
        f"{'signed' if i['signed'] else 'unsigned'}, out {o['channels']} x {o['height']} x {o['width']} of "
        f"{o['bits']}-bit {'signed' if o['signed'] else 'unsigned'}",
        f"- {r['cycles_per_frame']} cycles per frame (one pixel per clock: {i['height'] * i['width']}), "
        f"latency {r['latency_cycles']} cycles (first pixel in to first beat out)",
        f"- {r['nonzero_weights']} nonzero weights, {r['adders']} adders; estimated {get_target(r['target']).title} cells: "
        f"{r['lut4_estimate']} SB_LUT4, {r['carry_estimate']} SB_CARRY, {r['ff_estimate']} flip-flops, "
        f"{r['bram_estimate']} block RAM",
        "",
        "| stage | kind | in | out | nonzero | adders | levels | LUT4 | CARRY | FF | BRAM |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in r["layers"]:
        a, b = s["input"], s["output"]
        kind = stage_kind_text(s)
        lines.append(f"| {s['name']} | {kind} | {a['channels']}x{a['height']}x{a['width']} | "
                     f"{b['channels']}x{b['height']}x{b['width']} | {s['nonzero_weights']} | {s['adders']} | "
                     f"{s['adder_levels']} | {s['lut4_estimate']} | {s['carry_estimate']} | {s['ff_estimate']} | "
                     f"{s['bram_estimate']} |")
    lines += ["", "Estimates come from `jpq_hw.cost.ice40` (adder graphs) and `jpq_hw.cost.stream` (windows, line "
              "buffers, collectors); `pytest sim/` compares them with yosys `synth_ice40`.", ""]
    return "\n".join(lines)
