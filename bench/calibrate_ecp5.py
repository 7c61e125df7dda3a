"""Calibration of the ECP5 estimate (``jpq_hw.cost.ecp5``) against yosys ``synth_ecp5``.

    python -m bench.calibrate_ecp5 [--out bench/results/calibrate_ecp5] [--jobs 2] [--section ...]

Three sections, each design's estimate beside yosys' LUT4 / CCU2C / TRELLIS_FF (and the PFUMX /
L6MUX21 wide-function muxes, which the estimate does not count) with relative errors:

``single nodes``
    designs written by the real emitter with one adder, subtractor or output stage each: adders and
    subtractors of many operand widths, shifts and signednesses (a one-layer net whose only row has
    two weights), output stages with every rounding / ReLU / saturation shape (weight 1);
``networks``
    the shipped example (``examples/digits-mlp.pt``) and seeded random nets, lowered as
    ``bench/calibrate_ice40.py`` lowers them, combinational and pipelined;
``adder benchmark layers``
    the layers of ``bench/adders_synth.py`` (the problems its ``bench/results/adders_synth.json`` holds
    rows for: those whose jpq-hw graph iCE40 estimates at no more than 6,000 SB_LUT4), each built as
    that benchmark builds it (:func:`bench.adders_synth.jpq_graph`: ``--optimize best``, exact outputs,
    combinational) and written by jpq-hw's emitter. The issue's target is the total LUT4 and CCU2C
    of each layer within 10 % of ``synth_ecp5``.

yosys' counts are kept in ``OUT.json`` by the SHA-256 of each design's Verilog: a later run
synthesizes only the designs whose Verilog changed (``--fresh`` synthesizes everything) and always
recomputes the estimates. Writes ``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from jpq_hw.arith.graph import AdderGraph
from jpq_hw.arith.registers import RegisterSchedule, place_registers
from jpq_hw.flow import lower_graph
from jpq_hw.hdl.verilog import emit_verilog
from jpq_hw.ir import IntFormat, QLayer, QNet, load_checkpoint, random_qnet
from jpq_hw.synth.yosys import synthesize, yosys_version

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("LUT4", "CCU2C", "TRELLIS_FF", "PFUMX", "L6MUX21")
SECTIONS = ("single nodes", "networks", "adder benchmark layers")


# -- the designs ----------------------------------------------------------------------------------

def one_layer(weights, bias, in_fmt, shift, relu, out_fmt) -> QNet:
    w = np.array(weights, dtype=np.int64).reshape(-1, len(weights[0]))
    return QNet((w.shape[1],), in_fmt, (QLayer("f", "linear", w, np.array(bias, dtype=np.int64), shift, relu, out_fmt),))


def single_nodes() -> list[tuple[str, QNet, int]]:
    """(name, net, pipeline) of the single-node designs."""
    out = []
    # adders: x0*1 + x1*2**k (and minus), the output wide enough to pass the sum through unsaturated
    for bits, signed in ((2, False), (3, True), (4, False), (5, False), (8, False), (8, True), (12, True), (16, True)):
        for k in (0, 1, 3):
            for sign in (1, -1):
                f = IntFormat(bits, signed)
                net = one_layer([[1, sign * (1 << k)]], [0], f, 0, False, IntFormat(min(bits + k + 2, 32), True))
                out.append((f"add {'s' if signed else 'u'}{bits} {'+' if sign > 0 else '-'} <<{k}", net, 0))
    # output stages: weight 1, every rounding / ReLU / saturation shape
    for bits, signed, bias, shift, relu, ob, osg in [
        (12, True, 81, 2, True, 8, False), (12, True, 0, 0, True, 8, False), (12, True, 81, 0, False, 12, True),
        (11, False, 6, 2, True, 8, False), (16, True, -300, 0, False, 16, True), (16, True, -300, 4, False, 8, True),
        (14, True, 1000, 3, True, 6, False), (12, True, 5, 2, False, 10, True), (10, False, 0, 3, False, 7, False),
        (13, True, 0, 1, True, 12, False), (10, True, 3, 0, False, 1, False), (12, True, 0, 0, False, 13, True)]:
        net = one_layer([[1]], [bias], IntFormat(bits, signed), shift, relu, IntFormat(ob, osg))
        out.append((f"requant {'s' if signed else 'u'}{bits} b{bias} >>{shift}{' relu' if relu else ''} -> "
                    f"{'s' if osg else 'u'}{ob}", net, 0))
    # negated outputs: weight -1 (a bare negation, and one with an offset)
    for bits, bias in ((8, 0), (12, 0), (12, 40)):
        net = one_layer([[-1]], [bias], IntFormat(bits, True), 0, False, IntFormat(bits + 1, True))
        out.append((f"requant -s{bits} b{bias} -> s{bits + 1}", net, 0))
    return out


def networks() -> list[tuple[str, QNet, int]]:
    out = [("digits-mlp example", load_checkpoint(ROOT / "examples" / "digits-mlp.pt"), 0),
           ("digits-mlp example, --pipeline 2", load_checkpoint(ROOT / "examples" / "digits-mlp.pt"), 2)]
    for seed, (sizes, density, wbits) in enumerate([([32, 24, 10], 0.3, 6), ([64, 16], 0.15, 8), ([48, 32, 8], 0.1, 4)]):
        out.append((f"random {'-'.join(map(str, sizes))} d{density} w{wbits}",
                    random_qnet(sizes, density=density, weight_bits=wbits, seed=seed), 0))
    out.append(("random 32-24-10 d0.3 w6, --pipeline 1", random_qnet([32, 24, 10], density=0.3, weight_bits=6, seed=0), 1))
    return out


def adder_layers() -> list[tuple[str, AdderGraph]]:
    """The layers of ``bench/adders_synth.py`` (the rows of its results), built as it builds them."""
    from bench.adders_synth import jpq_graph
    from bench.common import problems

    names = [r["name"] for r in json.loads((ROOT / "bench" / "results" / "adders_synth.json").read_text())["rows"]]
    weights = {p["name"]: p["weight"] for p in problems()}
    return [(name, jpq_graph(weights[name])) for name in names]


# -- yosys, cached by the Verilog's hash ------------------------------------------------------------

def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def synth_cells(verilog: str, top: str, workdir: Path) -> dict:
    """``synth_ecp5`` cells of one module: the counts of :data:`CELLS` (and every other cell type)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{top}.v").write_text(verilog)
    r = synthesize([workdir / f"{top}.v"], top, workdir=workdir, command="synth_ecp5", timeout=3600)
    return {"cells": dict(sorted(r.cells.items())), "seconds": round(r.seconds, 1)}


def run_designs(designs: list[dict], cache: dict, jobs: int, fresh: bool, log=print) -> None:
    """Fill ``d["yosys"]`` of every design (``name``, ``verilog``, ``top``) from ``cache`` (by hash)
    or by synthesizing it; ``cache`` is updated."""
    todo = [d for d in designs if fresh or sha(d["verilog"]) not in cache]
    with tempfile.TemporaryDirectory(prefix="ecp5cal_", dir=ROOT / "bench" / "build") as tmp:
        def one(k_d):
            k, d = k_d
            res = synth_cells(d["verilog"], d["top"], Path(tmp) / f"d{k}")
            log(f"  {d['name']}: {res['cells']} ({res['seconds']:.0f} s)")
            return d, res
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for d, res in pool.map(one, enumerate(todo)):
                cache[sha(d["verilog"])] = res
    for d in designs:
        d["yosys"] = cache[sha(d["verilog"])]


# -- the estimate ---------------------------------------------------------------------------------

def estimate(graph: AdderGraph, sched: RegisterSchedule) -> dict:
    from jpq_hw.cost.ecp5 import ECP5

    c = ECP5.estimate(graph, sched)
    return {"LUT4": c.total("lut4"), "CCU2C": c.total("carry"), "TRELLIS_FF": c.total("ff")}


def make_designs(section: str) -> list[dict]:
    """Every design of ``section``: name, top, Verilog, graph and schedule."""
    out = []
    if section == "adder benchmark layers":
        for k, (name, graph) in enumerate(adder_layers()):
            sched = place_registers(graph, 0)
            out.append({"name": name, "top": f"a{k}", "graph": graph, "sched": sched,
                        "verilog": emit_verilog(graph, sched, top=f"a{k}", b_in=8,
                                                b_out=max(graph.width(o)[0] for o in graph.outputs))})
        return out
    items = single_nodes() if section == "single nodes" else networks()
    prefix = "s" if section == "single nodes" else "n"
    for k, (name, net, pipeline) in enumerate(items):
        # the graph does not depend on the target but through the optimiser's prices: iCE40's until
        # the flow knows "ecp5"
        graph, sched = lower_graph(net, target="ice40", pipeline=pipeline)
        top = f"{prefix}{k}"
        out.append({"name": name, "top": top, "graph": graph, "sched": sched,
                    "verilog": emit_verilog(graph, sched, top=top, b_in=net.input.bits, b_out=net.output.bits)})
    return out


# -- report ---------------------------------------------------------------------------------------

def err(e: int, r: int) -> str:
    return f"{100 * (e - r) / r:+.1f} %" if r else ("0" if e == 0 else "n/a")


def rel(e: int, r: int) -> float:
    return (e - r) / r if r else (0.0 if e == 0 else float("inf"))


def table(rows: list[dict]) -> list[str]:
    lines = ["| design | LUT4 est | LUT4 yosys | err | CCU2C est | CCU2C yosys | err | FF est | FF yosys | err "
             "| PFUMX / L6MUX21 | yosys s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        e, y = r["est"], r["yosys"]["cells"]
        empty = not y and (e["LUT4"] or e["CCU2C"])
        lines.append(f"| {r['name']}{' (**yosys: no cell at all**)' if empty else ''} | {e['LUT4']} | {y.get('LUT4', 0)} | {err(e['LUT4'], y.get('LUT4', 0))} | "
                     f"{e['CCU2C']} | {y.get('CCU2C', 0)} | {err(e['CCU2C'], y.get('CCU2C', 0))} | "
                     f"{e['TRELLIS_FF']} | {y.get('TRELLIS_FF', 0)} | {err(e['TRELLIS_FF'], y.get('TRELLIS_FF', 0))} | "
                     f"{y.get('PFUMX', 0)} / {y.get('L6MUX21', 0)} | {r['yosys']['seconds']:.0f} |")
    return lines


def summary(rows: list[dict]) -> dict:
    """Within-10 % counts and the worst relative errors of LUT4, CCU2C and their sum."""
    s = {"count": len(rows)}
    for key in ("LUT4", "CCU2C", "LUT4+CCU2C"):
        errs = []
        for r in rows:
            y = r["yosys"]["cells"]
            if key == "LUT4+CCU2C":
                e, t = r["est"]["LUT4"] + r["est"]["CCU2C"], y.get("LUT4", 0) + y.get("CCU2C", 0)
            else:
                e, t = r["est"][key], y.get(key, 0)
            errs.append((rel(e, t), r["name"]))
        s[key] = {"within_10pct": sum(abs(x) <= 0.10 for x, _ in errs), "worst": max(errs, key=lambda x: abs(x[0]))}
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "calibrate_ecp5",
                    help="output path without suffix (default bench/results/calibrate_ecp5)")
    ap.add_argument("--jobs", type=int, default=2, help="yosys runs in parallel (default 2)")
    ap.add_argument("--section", action="append", choices=SECTIONS,
                    help="only this section (repeatable; default all)")
    ap.add_argument("--fresh", action="store_true", help="synthesize every design again (ignore the cache)")
    args = ap.parse_args(argv)
    (ROOT / "bench" / "build").mkdir(exist_ok=True)
    path = Path(f"{args.out}.json")
    old = json.loads(path.read_text()) if path.exists() else {}
    cache = old.get("yosys_cache", {})
    sections = args.section or list(SECTIONS)
    t0 = time.perf_counter()
    results = old.get("sections", {})
    for section in sections:
        print(f"{section}:", flush=True)
        designs = make_designs(section)
        run_designs(designs, cache, args.jobs, args.fresh, log=lambda s: print(s, flush=True))
        rows = []
        for d in designs:
            rows.append({"name": d["name"], "est": estimate(d["graph"], d["sched"]), "yosys": d["yosys"],
                         "adders": d["graph"].stats()["adders"]})
        results[section] = rows
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"header": header(argv, t0), "sections": results, "yosys_cache": cache},
                                   indent=1) + "\n")
    path.with_suffix(".md").write_text(render(results, header(argv, t0)))
    print(path.with_suffix(".md").read_text())
    return 0


def header(argv, t0) -> dict:
    return {"command": "python -m bench.calibrate_ecp5 " + " ".join(argv if argv is not None else sys.argv[1:]),
            "yosys": yosys_version().split(" (")[0], "machine": f"{os.cpu_count()} CPU cores (shared)",
            "wall_s": round(time.perf_counter() - t0)}


def render(results: dict, h: dict) -> str:
    md = ["# ECP5 estimate vs yosys synth_ecp5", "",
          f"`{h['command'].strip()}`; {h['yosys']}; {h['machine']}. Estimate: `jpq_hw.cost.ecp5.ECP5`; yosys: "
          "`synth_ecp5` (abc9, DSPs allowed but unused by adder graphs). LUT4: ECP5 LUT4 cells; CCU2C: carry "
          "cells of two bits each; FF: TRELLIS_FF. PFUMX / L6MUX21 (the wide-function muxes that combine two "
          "LUT4s into a LUT5 / two of those into a LUT6) are listed, not estimated. yosys counts are cached by "
          "the Verilog's hash (see the module docstring).", "",
          "A design marked **yosys: no cell at all** came out of `synth_ecp5` with no cells: a kept sum of at "
          "most 4 bits whose low bit passes through (`add u2 + <<1`: the netlist reads `y = {4'b0xxx, x[0]}`). "
          "Not yet reduced to a minimal reproduction (the same sum without `keep`, synthesized alone, maps to "
          "3 LUT4), so it is not reported as a yosys bug; the mapped ECP5 netlists are not simulated here. "
          "Such short sums do not occur in the adder graphs of 8-bit inputs; the model prices them as the "
          "LUT4s the same sums take where they are mapped (`add u2 + <<0`: 3, `add s3 + <<0`: 10).", ""]
    for section in SECTIONS:
        rows = results.get(section)
        if not rows:
            continue
        s = summary(rows)
        md += [f"## {section}", ""]
        md += [f"- {s['count']} designs; within 10 %: LUT4 {s['LUT4']['within_10pct']}, CCU2C "
               f"{s['CCU2C']['within_10pct']}, LUT4 + CCU2C {s['LUT4+CCU2C']['within_10pct']}; worst LUT4 "
               f"{100 * s['LUT4']['worst'][0]:+.1f} % ({s['LUT4']['worst'][1]}), worst CCU2C "
               f"{100 * s['CCU2C']['worst'][0]:+.1f} % ({s['CCU2C']['worst'][1]}), worst LUT4 + CCU2C "
               f"{100 * s['LUT4+CCU2C']['worst'][0]:+.1f} % ({s['LUT4+CCU2C']['worst'][1]}).", ""]
        md += table(rows) + [""]
    return "\n".join(md)


if __name__ == "__main__":
    raise SystemExit(main())
