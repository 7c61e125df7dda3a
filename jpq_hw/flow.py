"""The ``lower`` flow: checkpoint in, a complete design folder out (:mod:`jpq_hw.design_folder`).

Everything is written to a temporary folder beside ``OUT`` and moved into place at the end, so a
failed run leaves nothing behind (:func:`jpq_hw.outputs.output_folder`: ``--force`` replaces only a
folder that ``jpq-hw lower`` made, never a file or the checkpoint). Before anything is built, what
the lowering will spend is estimated from the weights (:mod:`jpq_hw.budget`), and a network beyond
the limits (default :data:`jpq_hw.budget.DEFAULT_LIMITS`, ``--no-limit`` lifts them) is refused
before any folder is made. Before anything is written, the adder graph's interpreter is checked
against the integer reference on every test vector.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from importlib import resources
from pathlib import Path

import numpy as np

from . import __version__
from . import design_folder as df
from . import progress
from .arith.lower import lower_qnet
from .arith.optimize import DEFAULT_OPTIMIZE, check_optimize
from .arith.graph import AdderGraph
from .arith.registers import RegisterSchedule, place_registers
from .budget import DEFAULT_LIMITS, Limits, check_limits, estimate_lowering
from .datasets import dataset_inputs
from .errors import JpqError
from .target import get_target
from .gc_pause import paused_gc
from .hdl.verilog import check_identifier, emit_verilog
from .ir.checkpoint import load_checkpoint
from .ir.qnet import QNet
from .lowered import Lowered
from .outputs import check_output_folder, output_folder
from .report import build_report, render_markdown
from .vectors import make_vectors, read_inputs

BACKENDS = ("verilog", "amaranth")
DEFAULT_VECTORS = 1000  # input vectors of a flat network's test bench
DEFAULT_FRAMES = 16  # frames of an image network's test bench
DEFAULT_REAL_FRAMES = 4  # of which real ones from the data set (the rest: extremes, then random)


def lower_graph(qnet: QNet, *, target: str = "ice40", optimize: str = DEFAULT_OPTIMIZE, pipeline: int = 0,
                max_depth: int | None = None) -> tuple[AdderGraph, RegisterSchedule]:
    """``qnet``'s adder graph (plans priced by ``target``'s cost model, each layer's adders within
    ``max_depth`` levels where a plan can be) and its register placement."""
    cost_model = _cost_model(target)
    check_optimize(optimize)
    if pipeline < 0:
        raise JpqError(f"--pipeline must be >= 0 (0 is combinational), got {pipeline}")
    with paused_gc():  # jpq-hw's own objects form no cycles (Amaranth's do: it runs with the collector on)
        graph = lower_qnet(qnet, optimize, cost_model=cost_model, max_depth=max_depth)
        return graph, place_registers(graph, pipeline)


def lower(qnet: QNet, *, target: str = "ice40", top: str = "jpq_net", backend: str = "verilog", pipeline: int = 0,
          optimize: str = DEFAULT_OPTIMIZE, source: str = "", max_depth: int | None = None) -> Lowered:
    """Lower ``qnet`` to an adder graph, place its registers, and render it with ``backend``."""
    cost_model = _cost_model(target)
    check_identifier(top)
    check_optimize(optimize)
    if backend not in BACKENDS:
        raise JpqError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    t0 = time.perf_counter()
    graph, sched = lower_graph(qnet, target=target, optimize=optimize, pipeline=pipeline, max_depth=max_depth)
    t1 = time.perf_counter()
    progress.phase("HDL")
    b_in, b_out = qnet.input.bits, qnet.output.bits
    if backend == "verilog":
        with paused_gc():
            text = emit_verilog(graph, sched, top=top, b_in=b_in, b_out=b_out, source=source, version=__version__)
    else:
        from .hdl.amaranth_backend import emit_amaranth_verilog

        text = emit_amaranth_verilog(graph, sched, top=top, b_in=b_in, b_out=b_out, source=source,
                                        version=__version__)
    t2 = time.perf_counter()
    progress.phase("cost")
    with paused_gc():
        cost = cost_model.estimate(graph, sched)
    return Lowered(qnet, target, graph, sched, cost, text, top, backend, optimize, max_depth,
                   {"lower": t1 - t0, "emit": t2 - t1, "total": time.perf_counter() - t0})


def lower_checkpoint(path: str | os.PathLike, out_dir: str | os.PathLike, *, target: str = "ice40",
                     backend: str = "verilog", pipeline: int = 0, top: str = "jpq_net", n_vectors: int | None = None,
                     seed: int = 0, force: bool = False, extra_inputs: np.ndarray | None = None,
                     optimize: str = DEFAULT_OPTIMIZE, inputs: str | os.PathLike | None = None,
                     max_depth: int | None = None, limits: Limits | None = DEFAULT_LIMITS) -> dict:
    """Run the whole flow and write ``out_dir``; returns the report dict.

    First the lowering's adders, cells, memory and seconds are estimated from the weights
    (:func:`jpq_hw.budget.estimate_lowering`, told to :func:`jpq_hw.progress.estimated`); beyond
    ``limits`` (``None``: none) a :class:`JpqError` refuses before anything is built or written.

    Test vectors (:mod:`jpq_hw.vectors`): the ``.npy`` file ``inputs`` first (the user's own), the
    extremes, then ``extra_inputs`` (default: real inputs of the data set the checkpoint's meta
    names), then random ones up to ``n_vectors`` (default :data:`DEFAULT_VECTORS`). An image
    network's vectors are frames (default :data:`DEFAULT_FRAMES`): every frame is checked here on
    the stream's stages, and the first ones go to the test bench."""
    _cost_model(target)
    check_optimize(optimize)
    check_identifier(top)  # every flag is checked before the checkpoint is read
    if backend not in BACKENDS:
        raise JpqError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    requested = n_vectors
    if n_vectors is None:
        n_vectors = DEFAULT_VECTORS
    if n_vectors < 1:
        raise JpqError(f"--vectors must be >= 1, got {n_vectors}")
    sources = [Path(path)] + ([Path(inputs)] if inputs is not None else [])
    check_output_folder(Path(out_dir), force=force, inputs=sources)  # a bad -o costs no load
    t0 = time.perf_counter()
    qnet = load_checkpoint(path)
    t_load = time.perf_counter() - t0
    first = read_inputs(inputs, qnet) if inputs is not None else None
    image = len(qnet.input_shape) == 3
    if image and not get_target(target).image_networks:
        raise JpqError(f"image networks are lowered for --target ice40 only: the stream stages' cost model "
                       f"(windows, line buffers) has no {get_target(target).title} calibration yet")
    if image:  # what can never fit is refused for its own reason, before the estimate
        from .stream.design import check_line_buffers
        from .stream.lower import check_streamable

        check_streamable(qnet)
        check_line_buffers(qnet, _cost_model(target))
    checked = DEFAULT_FRAMES if image and requested is None else n_vectors
    if first is not None:  # the user's inputs are all kept
        checked = max(checked, len(first))
    estimate = estimate_lowering(qnet, optimize=optimize, backend=backend, vectors=checked, frames=checked)
    if limits is not None:
        check_limits(estimate, limits, _cost_model(target), source=Path(path).name)
    progress.estimated(estimate)
    with output_folder(out_dir, force=force, inputs=sources) as tmp:
        if extra_inputs is None:
            extra_inputs = dataset_inputs(qnet.meta, int(np.prod(qnet.input_shape)), qnet.input.lo, qnet.input.hi)
        if image:
            if requested is None:  # a few real frames, not the whole data set: streams simulate per pixel
                n_vectors = DEFAULT_FRAMES
                extra_inputs = None if extra_inputs is None else extra_inputs[:DEFAULT_REAL_FRAMES]
            report = _lower_stream(qnet, tmp, path, target=target, top=top, backend=backend, pipeline=pipeline,
                                   optimize=optimize, max_depth=max_depth, n_vectors=n_vectors, seed=seed,
                                   extra_inputs=extra_inputs, first=first, t_load=t_load)
            return report
        design = lower(qnet, target=target, top=top, backend=backend, pipeline=pipeline, optimize=optimize,
                       source=Path(path).name, max_depth=max_depth)
        design.seconds["load"] = t_load

        progress.phase("check")
        x, y = make_vectors(qnet, n_vectors, seed, extra_inputs, first)
        got = design.graph.evaluate(x)
        if not np.array_equal(got, y):
            bad = int(np.argwhere(got != y)[0][0])
            raise AssertionError(f"internal error: the adder graph differs from the reference on vector {bad}")

        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        report = build_report(design, checkpoint=str(path), sha256=digest, n_vectors=len(x))
        _write_design(tmp, design, report, x, y)
    return report


def _lower_stream(qnet: QNet, root: Path, path, *, target: str, top: str, backend: str, pipeline: int,
                  optimize: str, max_depth: int | None, n_vectors: int, seed: int, extra_inputs, first,
                  t_load: float) -> dict:
    """The stream design folder of an image network (contract.md section 3): one vector per frame."""
    from .stream.design import build_stream_report, lower_stream_design, render_stream_markdown
    from .stream.lower import check_stream

    design = lower_stream_design(qnet, _cost_model(target), top=top, backend=backend, optimize=optimize,
                                 source=Path(path).name, max_depth=max_depth, pipeline=pipeline)
    design.seconds["load"] = t_load
    progress.phase("check")
    x, y = make_vectors(qnet, n_vectors, seed, extra_inputs, first)
    frames = x.reshape(len(x), *qnet.input_shape)
    check_stream(design.net, qnet, frames)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    report = build_stream_report(design, checkpoint=str(path), sha256=digest, n_vectors=len(x))
    _write_files(root, design.top, design.verilog, report, render_stream_markdown(report), x, y)
    return report


def _cost_model(target: str):
    """The cost model of ``--target`` (:func:`jpq_hw.target.get_target`); a :class:`JpqError` for an
    unknown target."""
    return get_target(target).cost


def _write_design(root: Path, design: Lowered, report: dict, x: np.ndarray, y: np.ndarray) -> None:
    _write_files(root, design.top, design.verilog, report, render_markdown(report), x, y)


def _write_files(root: Path, top: str, verilog: str, report: dict, markdown: str, x: np.ndarray,
                 y: np.ndarray) -> None:
    from .synth.yosys import write_synth_script

    (root / df.RTL_DIR).mkdir()
    rtl = root / df.RTL_DIR / f"{top}.v"
    rtl.write_text(verilog)
    (root / df.REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (root / df.REPORT_MD).write_text(markdown)
    (root / df.TB_DIR).mkdir()
    df.write_vectors(root, x, y)
    for name, package in df.TB_FILES.items():
        (root / df.TB_DIR / name).write_text(resources.files(package).joinpath(name).read_text())
    synth = root / df.SYNTH_DIR
    synth.mkdir()
    write_synth_script(synth, [Path("..") / df.RTL_DIR / rtl.name], top, command=get_target(report["target"]).synth_command)
