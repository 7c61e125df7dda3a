"""Adders for constant matrices: jpq-hw's sharing passes against da4ml and per-weight CSD.

Problems (all seeded, all fixed):

- sparse integer matrices, written ``inputs x outputs`` (da4ml's kernel shape; jpq-hw's weight is
  the transpose, ``W[out, in]``): 64x64, 256x128, 512x256, 576x64 and a 3x3x16x16 conv kernel
  flattened to 144x16; 8-bit and 4-bit weights (uniform over the nonzero values of the signed
  range); densities 1, 2, 5 and 10 % (exactly ``round(density * size)`` nonzeros);
- the FIR coefficient sets of :mod:`bench.fir_sets` (MCM literature), each a 1-input problem (a column).

Inputs are 8-bit signed (``[-128, 127]``) for both tools. For each problem, side by side in one run:

- ``LB``: a lower bound on adders: the unique outputs that are not a shifted, signed copy of one
  input (for a FIR set, the unique odd fundamentals), and no fewer than the inputs that must be
  joined (inputs of one connected group of rows, less one per group);
- ``CSD``: per-weight CSD, every nonzero digit one term (``--optimize none``);
- da4ml 0.6 ``da4ml.cmvm.solve`` (defaults; its adders are its add/sub ops, its depth the latency
  of its unit-cost solution), checked against the matrix;
- jpq-hw ``--optimize best`` (:func:`jpq_hw.arith.optimize.lower_matrix`): adders, one-bit adder
  cells, the calibrated iCE40 SB_LUT4 estimate of the layer (:meth:`jpq_hw.cost.ice40.Ice40Cost.price`:
  the adders and an output stage passing each row through, the figure the optimiser minimises;
  within a few % of yosys, see ``adders_synth.md``), adder depth, the plan that won, and the solve time
  (plans, pricing on scratch builders and the final build into a GraphBuilder).

Writes ``bench/results/adders.md`` (table and summary), ``adders.json`` and ``adders.png``::

    python -m bench.adders                  # everything (da4ml dominates: tens of minutes)
    python -m bench.adders --quick          # problems up to 3,000 nonzeros
    python -m bench.adders --only 'FIR|64x64' --no-da4ml --out /tmp/adders
    python -m bench.adders --speed          # also time the jpq-hw lower command
    python -m bench.adders --respeed        # redo only those timings (after a jpq-hw change)
    python -m bench.adders --rejpq --respeed  # redo jpq-hw's columns and timings, keep da4ml's (unchanged)

yosys SB_LUT4 / SB_CARRY and nextpnr Fmax of both tools' Verilog, every design simulated first,
are ``bench/adders_synth.py`` (``bench/results/adders_synth.md``).

``--speed`` times the whole ``jpq-hw lower`` command (a subprocess: start-up, checkpoint load,
lowering, Verilog, test vectors, report) on a one-layer network holding the 2 %-dense 8-bit
512x256 matrix, next to da4ml's solve of that matrix, and on a 100,000-weight network.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import INPUT_RANGE, da4ml_version, geomean, problems, read_results, sparse_matrix
from jpq_hw.arith.graph import Add, GraphBuilder, adder_bits
from jpq_hw.arith.mcm import odd_part
from jpq_hw.arith.optimize import csd_adders, lower_matrix
from jpq_hw.cost import ICE40

ROOT = Path(__file__).resolve().parent.parent


# -- problems -------------------------------------------------------------------------------------

def lower_bound(w: np.ndarray) -> int:
    """Adders no shift-add graph of ``w @ x`` can do without (see the module docstring)."""
    seen = set()
    for row in w:
        nz = np.flatnonzero(row)
        if len(nz) == 0 or (len(nz) == 1 and odd_part(int(row[nz[0]]))[0] == 1):
            continue  # zero, or a shifted signed copy of one input: free
        vals = row[nz]
        tz = min(odd_part(int(v))[1] for v in vals)
        sign = -1 if vals[0] < 0 else 1
        seen.add((tuple(nz.tolist()), tuple(((vals >> tz) * sign).tolist())))
    distinct = len(seen)
    # inputs that must be joined: union-find over the inputs of each row
    parent = list(range(w.shape[1]))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    used = set()
    for row in w:
        nz = np.flatnonzero(row).tolist()
        used.update(nz)
        for j in nz[1:]:
            parent[find(j)] = find(nz[0])
    groups = len({find(i) for i in used})
    return max(distinct, len(used) - groups)


# -- the tools ------------------------------------------------------------------------------------

def run_jpq(w: np.ndarray, optimize: str = "best") -> dict:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    b = GraphBuilder()
    inputs = [b.input(*INPUT_RANGE) for _ in range(w.shape[1])]
    terms, winner = lower_matrix(b, w, inputs, optimize, ICE40)
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    adds = [n for n in b.nodes if isinstance(n, Add)]
    depth = max((b.nodes[t.node].level for t in terms if t is not None), default=0)
    return {"adders": len(adds), "subtractors": sum(n.subtract for n in adds),
            "adder_bits": sum(adder_bits(n) for n in adds),
            "lut4": ICE40.price(b, terms),  # after the counts above: price adds output stages to b
            "depth": depth, "seconds": seconds, "cpu_seconds": cpu,
            "plan": winner.name if winner is not None else "csd"}


def run_da4ml(w: np.ndarray) -> dict:
    from da4ml.cmvm import solve

    kernel = np.ascontiguousarray(w.T, dtype=np.float32)  # [in, out]; must be C-contiguous
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    pipe = solve(kernel, qintervals=[(float(INPUT_RANGE[0]), float(INPUT_RANGE[1]), 1.0)] * w.shape[1])
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    adders = sum(1 for sol in pipe.solutions for op in sol.ops if op.opcode in (0, 1))
    ok = bool(np.array_equal(np.asarray(pipe.kernel, dtype=np.float64), w.T.astype(np.float64)))
    return {"adders": adders, "depth": float(pipe.latency[1]), "seconds": seconds, "cpu_seconds": cpu, "exact": ok}


# -- speed ----------------------------------------------------------------------------------------

def time_cli(checkpoint: Path, out: Path, repeats: int = 3) -> dict:
    """Wall time and CPU time (medians of ``repeats`` runs) and peak RSS of a ``jpq-hw lower
    --optimize best`` subprocess."""
    cmd = [sys.executable, "-m", "jpq_hw.cli", "lower", str(checkpoint), "-o", str(out), "--force", "--optimize", "best"]
    shown = " ".join(["jpq-hw", *cmd[3:]])
    walls, cpus, peak = [], [], 0.0
    for _ in range(repeats):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
        peak = max(peak, r1.ru_maxrss / 1024)  # the largest child so far
    report = json.loads((out / "report.json").read_text())
    return {"command": shown, "seconds": statistics.median(walls), "cpu_seconds": statistics.median(cpus),
            "runs": repeats, "peak_rss_mb": peak, "adders": report.get("adders")}


def speed(results: dict, tmp: Path) -> dict:
    from jpq_hw.ir import IntFormat, QLayer, QNet, random_qnet, save_checkpoint

    out: dict = {"load_average": os.getloadavg()}
    # the 2 %-dense 8-bit 512x256 matrix as a one-layer network (output: the full accumulator)
    w = sparse_matrix(512, 256, 0.02, 8, seed=1000 + 100 * 2 + 10 * 8 + 1)
    net = QNet((512,), IntFormat(8, True), (QLayer("fc", "linear", w, np.zeros(256, np.int64), 0, False,
                                                   IntFormat(24, True)),))
    ck = tmp / "m512x256.pt"
    save_checkpoint(net, ck)
    out["matrix"] = time_cli(ck, tmp / "m512x256")
    da = results.get("512x256 8b 2%", {}).get("da4ml") or run_da4ml(w)
    out["matrix"]["da4ml_seconds"] = da["seconds"]
    out["matrix"]["da4ml_cpu_seconds"] = da["cpu_seconds"]
    # 100,000 nonzero weights (the network of bench/lowering_speed.py)
    net = random_qnet([1024, 512, 256], density=0.152, weight_bits=8, input_format=IntFormat(8, False), seed=1)
    ck = tmp / "n100k.pt"
    save_checkpoint(net, ck)
    out["net100k"] = time_cli(ck, tmp / "n100k")
    out["net100k"]["nnz"] = net.nnz
    return out


# -- report ---------------------------------------------------------------------------------------

def summarize(rows: list[dict]) -> dict:
    s: dict = {}
    mats = [r for r in rows if r["kind"] == "matrix" and r.get("da4ml")]
    if mats:
        ratios = [r["jpq"]["adders"] / r["da4ml"]["adders"] for r in mats]
        worst = max(zip(ratios, [r["name"] for r in mats]))
        s["matrix_vs_da4ml_geomean"] = geomean(ratios)
        s["matrix_vs_da4ml_worst"] = {"ratio": worst[0], "problem": worst[1]}
        s["matrix_not_worse_than_da4ml"] = sum(x <= 1.0 for x in ratios)
        s["matrix_count"] = len(mats)
        s["matrix_depth_vs_da4ml_geomean"] = geomean([r["jpq"]["depth"] / max(r["da4ml"]["depth"], 1) for r in mats])
        s["matrix_seconds"] = {"jpq": sum(r["jpq"]["seconds"] for r in mats),
                               "da4ml": sum(r["da4ml"]["seconds"] for r in mats)}
    m8 = [r for r in rows if r["kind"] == "matrix" and r["bits"] == 8 and r["density"] >= 0.05]
    if m8:
        cuts = [1 - r["jpq"]["adders"] / r["csd"] for r in m8]
        s["cut_vs_csd_8b_dense"] = {"mean": sum(cuts) / len(cuts), "min": min(cuts), "count": len(cuts)}
    allm = [r for r in rows if r["kind"] == "matrix"]
    if allm:
        s["matrix_vs_csd_geomean"] = geomean([r["jpq"]["adders"] / r["csd"] for r in allm])
    firs = [r for r in rows if r["kind"] == "fir"]
    if firs:
        s["fir_vs_lb_geomean"] = geomean([r["jpq"]["adders"] / max(r["lb"], 1) for r in firs])
        s["fir_vs_csd_geomean"] = geomean([r["jpq"]["adders"] / r["csd"] for r in firs])
        fd = [r for r in firs if r.get("da4ml")]
        if fd:
            s["fir_vs_da4ml_geomean"] = geomean([r["jpq"]["adders"] / r["da4ml"]["adders"] for r in fd])
    return s


def render(rows: list[dict], summary: dict, header: dict, speed_res: dict | None) -> str:
    md = ["# Adders for constant matrices: jpq-hw vs da4ml vs per-weight CSD", "",
          f"Produced by `{header['command']}` on {header['machine']}; da4ml {header['da4ml']}, "
          f"{header['wall_s']:.0f} s wall. Inputs 8-bit signed. Shapes are inputs x outputs. "
          "jpq-hw runs `--optimize best`; its time covers planning, pricing and building the graph; "
          "da4ml's covers `da4ml.cmvm.solve` alone."
          + (f" jpq-hw's columns redone later by `{header['rejpq']}` (da4ml's kept: its solve is unchanged"
             + (f"; load average {header['rejpq_load']:.1f} on 2 cores while it ran, so its seconds carry the "
                "wait for a core" if header.get("rejpq_load") is not None else "") + ")."
             if header.get("rejpq") else ""), ""]
    s = summary
    if "matrix_vs_da4ml_geomean" in s:
        w = s["matrix_vs_da4ml_worst"]
        md += [f"- Matrices: jpq-hw / da4ml adders, geometric mean **{s['matrix_vs_da4ml_geomean']:.3f}** "
               f"(worst {w['ratio']:.3f}, {w['problem']}); no more adders than da4ml on "
               f"{s['matrix_not_worse_than_da4ml']} of {s['matrix_count']}."]
    if "matrix_depth_vs_da4ml_geomean" in s:
        t = s["matrix_seconds"]
        md.append(f"- Matrices: adder depth jpq-hw / da4ml, geometric mean {s['matrix_depth_vs_da4ml_geomean']:.2f}; "
                  f"solve time summed over the matrices: jpq-hw {t['jpq']:.0f} s, da4ml {t['da4ml']:.0f} s (wall).")
    if "matrix_vs_csd_geomean" in s:
        md.append(f"- Matrices: jpq-hw / per-weight CSD adders, geometric mean {s['matrix_vs_csd_geomean']:.3f}.")
    if "cut_vs_csd_8b_dense" in s:
        c = s["cut_vs_csd_8b_dense"]
        md.append(f"- 8-bit matrices at >= 5 % density: {100 * c['mean']:.1f} % fewer adders than per-weight CSD "
                  f"on average, at least {100 * c['min']:.1f} % ({c['count']} matrices).")
    if "fir_vs_lb_geomean" in s:
        line = (f"- FIR sets (MCM): jpq-hw / lower bound {s['fir_vs_lb_geomean']:.3f}, jpq-hw / CSD "
                f"{s['fir_vs_csd_geomean']:.3f}")
        if "fir_vs_da4ml_geomean" in s:
            line += f", jpq-hw / da4ml {s['fir_vs_da4ml_geomean']:.3f}"
        md.append(line + " (geometric means).")
    if speed_res:
        m, n = speed_res["matrix"], speed_res["net100k"]
        la = ", ".join(f"{x:.1f}" for x in speed_res["load_average"])
        md += ["", "## Speed", "",
               "Wall and CPU (user + system) seconds"
               + (f", medians of {m['runs']} runs" if m.get("runs") else "")
               + f"; the machine's load average was {la} on "
               f"{os.cpu_count()} cores, so wall times carry the wait for a core."
               + (f" Re-timed by `{header['respeed']}` after the run (da4ml's time kept from it)."
                  if header.get("respeed") else ""), "",
               f"- `{m['command']}` (one layer, the 2 %-dense 8-bit 512x256 matrix): **{m['seconds']:.1f} s wall, "
               f"{m['cpu_seconds']:.1f} s CPU** for the whole command; da4ml's solve alone: "
               f"{m['da4ml_seconds']:.1f} s wall, {m['da4ml_cpu_seconds']:.1f} s CPU "
               f"({m['da4ml_seconds'] / m['seconds']:.1f}x wall, {m['da4ml_cpu_seconds'] / m['cpu_seconds']:.1f}x CPU).",
               f"- `{n['command']}` ({n['nnz']:,} nonzero weights, 1024-512-256, {n['adders']:,} adders): "
               f"**{n['seconds']:.1f} s wall, {n['cpu_seconds']:.1f} s CPU**, peak resident memory "
               f"{n['peak_rss_mb']:.0f} MB."]
    md += ["", "## Table", "",
           "LB: lower bound. CSD: per-weight CSD adders. da4ml: adders / depth / seconds. jpq-hw: adders "
           "(ratio to da4ml; cut vs CSD), one-bit adder cells, SB_LUT4 estimate (the calibrated "
           "iCE40 estimate of the layer, its rows passed through output stages: what the optimiser minimises), depth, seconds, winning plan.", "",
           "| problem | nnz | LB | CSD | da4ml | da4ml depth | da4ml s | jpq-hw | / da4ml | vs CSD | bits | LUT4 est "
           "| depth | s | plan |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        j, d = r["jpq"], r.get("da4ml")
        ds = (f"{d['adders']}{'' if d['exact'] else ' (!)'} | {d['depth']:.0f} | {d['seconds']:.1f}" if d
              else "- | - | -")
        ratio = f"{j['adders'] / d['adders']:.3f}" if d else "-"
        md.append(f"| {r['name']} | {r['nnz']} | {r['lb']} | {r['csd']} | {ds} | **{j['adders']}** | {ratio} | "
                  f"{100 * (1 - j['adders'] / r['csd']):.1f} % | {j['adder_bits']} | {j['lut4']} | {j['depth']} | "
                  f"{j['seconds']:.2f} | {j['plan']} |")
    fir = [r for r in rows if r["kind"] == "fir"]
    if fir:
        md += ["", "FIR sets: " + "; ".join(f"{r['name']} ({r['source']})" for r in fir) +
               ". Coefficients in `bench/fir_sets.py`."]
    return "\n".join(md) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(13, 8.5), gridspec_kw={"height_ratios": [3, 2]})
    for ax, kind, title in ((axes[0], "matrix", "sparse matrices (inputs x outputs, weight bits, density)"),
                            (axes[1], "fir", "FIR coefficient sets (1-input MCM)")):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            ax.set_visible(False)
            continue
        x = np.arange(len(sel))
        csd = np.array([r["csd"] for r in sel], float)
        ax.bar(x - 0.3, [r["lb"] / c for r, c in zip(sel, csd)], 0.3, label="lower bound", color="#bbbbbb")
        da = [r["da4ml"]["adders"] / c if r.get("da4ml") else np.nan for r, c in zip(sel, csd)]
        ax.bar(x, da, 0.3, label="da4ml", color="#d98c3f")
        ax.bar(x + 0.3, [r["jpq"]["adders"] / c for r, c in zip(sel, csd)], 0.3, label="jpq-hw (best)",
               color="#3f7fd9")
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xticks(x)
        ax.set_xticklabels([r["name"] for r in sel], rotation=75, fontsize=7)
        ax.set_ylabel("adders / per-weight CSD")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1.1)
        ax.legend(fontsize=8, ncol=3, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_results(out: Path, rows: list[dict], header: dict, speed_res: dict | None, partial: bool) -> dict:
    order = {name: k for k, name in enumerate(p["name"] for p in problems())}
    rows = sorted(rows, key=lambda r: order[r["name"]])
    summary = summarize(rows)
    head = dict(header, partial=partial)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps({"header": head, "summary": summary, "speed": speed_res,
                                               "rows": rows}, indent=1) + "\n")
    text = render(rows, summary, head, speed_res)
    if partial:
        text = text.replace("\n", "\n\n**Partial results: the run is still going.**\n", 1)
    Path(f"{out}.md").write_text(text)
    if not partial:
        plot(rows, Path(f"{out}.png"))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only problems up to 3,000 nonzero weights")
    ap.add_argument("--only", help="regular expression on problem names")
    ap.add_argument("--no-da4ml", action="store_true", help="skip da4ml")
    ap.add_argument("--speed", action="store_true", help="also time the jpq-hw lower command (see docstring)")
    ap.add_argument("--respeed", action="store_true",
                    help="only redo the --speed timings of jpq-hw, keeping OUT.json's rows and da4ml's solve time, "
                         "and rewrite OUT.md")
    ap.add_argument("--rejpq", action="store_true",
                    help="only redo jpq-hw's columns of OUT.json's rows (da4ml's are kept: its solve did not change), "
                         "and rewrite OUT.md")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adders",
                    help="output path without suffix (default: bench/results/adders)")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="only rewrite the table and plot (at --out) from the results of an earlier run")
    args = ap.parse_args(argv)
    if args.render:
        data = read_results(args.render)
        header = data["header"]
        Path(f"{args.out}.md").write_text(render(data["rows"], summarize(data["rows"]), header, data["speed"]))
        plot(data["rows"], Path(f"{args.out}.png"))
        return 0
    t_start = time.perf_counter()
    argv_s = " ".join(argv if argv is not None else sys.argv[1:])
    if args.rejpq:
        data = read_results(f"{args.out}.json")
        weights = {p["name"]: p["weight"] for p in problems()}
        load0 = os.getloadavg()[0]
        for r in data["rows"]:
            r["jpq"] = run_jpq(weights[r["name"]])
            print(f"{r['name']:24s} jpq {r['jpq']['adders']:6d} ({r['jpq']['seconds']:6.2f} s, {r['jpq']['plan']})",
                  flush=True)
        data["header"]["rejpq"] = f"python -m bench.adders {argv_s}"
        data["header"]["rejpq_load"] = max(load0, os.getloadavg()[0])
        write_results(args.out, data["rows"], data["header"], data["speed"], partial=False)
        if not args.respeed:
            return 0
    if args.respeed:
        data = read_results(f"{args.out}.json")
        with tempfile.TemporaryDirectory(prefix="jpq_bench_") as tmp:
            speed_res = speed({r["name"]: r for r in data["rows"]}, Path(tmp))
        print(json.dumps(speed_res, indent=1))
        header = dict(data["header"], respeed=f"python -m bench.adders {argv_s}")
        write_results(args.out, data["rows"], header, speed_res, partial=False)
        return 0
    header = {"command": f"python -m bench.adders {argv_s}".strip(),
              "machine": f"{os.cpu_count()} CPU cores (shared)", "da4ml": da4ml_version(), "wall_s": 0.0}
    todo = []
    for p in problems():
        nnz = int(np.count_nonzero(p["weight"]))
        if (args.quick and nnz > 3000) or (args.only and not re.search(args.only, p["name"])):
            continue
        todo.append((nnz, p))
    todo.sort(key=lambda t: t[0])  # smallest first; results are written after every problem
    rows = []
    for nnz, p in todo:
        w = p["weight"]
        row = {k: v for k, v in p.items() if k != "weight"}
        row.update(nnz=nnz, lb=lower_bound(w), csd=csd_adders(w))
        row["jpq"] = run_jpq(w)
        if not args.no_da4ml:
            row["da4ml"] = run_da4ml(w)
        rows.append(row)
        d = row.get("da4ml")
        print(f"{p['name']:24s} nnz {nnz:6d} LB {row['lb']:6d} CSD {row['csd']:6d} "
              f"jpq {row['jpq']['adders']:6d} ({row['jpq']['seconds']:6.2f} s, {row['jpq']['plan']}) "
              + (f"da4ml {d['adders']:6d} ({d['seconds']:6.1f} s){'' if d['exact'] else ' INEXACT'}" if d else ""),
              flush=True)
        header["wall_s"] = time.perf_counter() - t_start
        write_results(args.out, rows, header, None, partial=True)
    speed_res = None
    if args.speed:
        with tempfile.TemporaryDirectory(prefix="jpq_bench_") as tmp:
            speed_res = speed({r["name"]: r for r in rows}, Path(tmp))
        print(json.dumps(speed_res, indent=1))
    header["wall_s"] = time.perf_counter() - t_start
    summary = write_results(args.out, rows, header, speed_res, partial=False)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
