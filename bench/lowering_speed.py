"""Lowering speed: checkpoint to Verilog, direct emitter vs Amaranth, medians of repeated runs.

    python -m bench.lowering_speed [--repeats 3] [--out bench/results/lowering_speed.md]

Everything lowers with the default adder sharing (``--optimize best``). Networks: seeded random
sparse 8-bit-weight MLPs (``jpq_hw.ir.random_qnet``) with about 2,000, 20,000 and 100,000 nonzero
weights. For each: the median wall time of ``jpq_hw.flow.lower`` (graph,
schedule, HDL text) with the direct Verilog emitter, and, for the two smaller ones, with the
Amaranth backend, measured side by side in one run; plus peak memory of the 100k lowering
(tracemalloc). Also the whole ``jpq-hw lower`` command (start-up, checkpoint load, 1,000 test
vectors and their reference outputs, report, files) as a subprocess.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from jpq_hw.flow import lower
from jpq_hw.ir import IntFormat, random_qnet, save_checkpoint

NETWORKS = [  # (label, sizes, density)
    ("2k", [256, 64, 10], 0.115),
    ("20k", [512, 320, 64], 0.109),
    ("100k", [1024, 512, 256], 0.152),
]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "lowering_speed.md"))
    args = ap.parse_args()
    rows = []
    for label, sizes, density in NETWORKS:
        net = random_qnet(sizes, density=density, weight_bits=8, input_format=IntFormat(8, False), seed=1)
        design = lower(net)
        row = {"net": label, "sizes": "-".join(map(str, sizes)), "nnz": net.nnz, "adders": design.graph.stats()["adders"]}
        row["verilog_s"] = median_time(lambda: lower(net), args.repeats)
        if net.nnz <= 30_000:
            row["amaranth_s"] = median_time(lambda: lower(net, backend="amaranth"), args.repeats)
        if label == "100k":
            tracemalloc.start()
            lower(net)
            row["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / "net.pt"
            save_checkpoint(net, ckpt)
            cmd = [sys.executable, "-m", "jpq_hw.cli", "lower", str(ckpt), "-o", str(Path(tmp) / "out"), "--force",
                   "--no-limit"]  # the 20k and 100k networks are far beyond an iCE40 (jpq_hw.budget.Limits)
            row["cli_s"] = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True), args.repeats)
        rows.append(row)
        print(row, flush=True)

    lines = ["# Lowering speed", "",
             f"`python -m bench.lowering_speed --repeats {args.repeats}`: medians of {args.repeats} runs on this "
             "machine (2 cores), measured side by side in one run. `lower()` = graph + schedule + HDL text; "
             "`jpq-hw lower` = the whole command as a process (start-up, checkpoint load, 1,000 vectors with "
             "reference outputs, report, files). Both lower with `--optimize best`, the default.", "",
             "| net | sizes | nonzero weights | adders | lower() Verilog (s) | lower() Amaranth (s) | Amaranth / Verilog "
             "| `jpq-hw lower` (s) | peak MB (tracemalloc) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        am = r.get("amaranth_s")
        am_s = "" if am is None else f"{am:.2f}"
        ratio = "" if am is None else f"{am / r['verilog_s']:.0f}x"
        peak = f"{r['peak_mb']:.0f}" if "peak_mb" in r else ""
        lines.append(f"| {r['net']} | {r['sizes']} | {r['nnz']} | {r['adders']} | {r['verilog_s']:.2f} | {am_s} | "
                     f"{ratio} | {r['cli_s']:.2f} | {peak} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
