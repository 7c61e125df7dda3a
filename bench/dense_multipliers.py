"""Measure generic multipliers (and adders) on iCE40 or ECP5 with yosys ``synth_ice40`` / ``synth_ecp5`` (no DSP).

The dense baseline that jpq-hw's shift-add layers are compared with: one ``y = a * b`` per weight.
For every activation width ``bx`` and weight width ``bw`` (weight signed; activation unsigned and
signed) this synthesizes::

    module mul(input [bx-1:0] a, input signed [bw-1:0] b, output signed [bx+bw-1:0] y);
      assign y = $signed({1'b0, a}) * b;          // signed activation: `input signed` and `a * b`
    endmodule

and records the family's LUT and carry cells (iCE40: SB_LUT4 and SB_CARRY; ECP5, ``--target ecp5``:
LUT4 and CCU2C, with ``synth_ecp5 -nodsp``; the table's keys stay ``lut4`` / ``carry``). It also
synthesizes ``a + b`` and ``a - b`` of ``n`` bits (``n + 1``-bit result): what a dense adder-tree
bit costs. Writes ``jpq_hw/cost/<target>_multipliers.json`` (read by :mod:`jpq_hw.cost.dense`) and
``bench/results/dense_multipliers.md`` (ECP5: ``dense_multipliers_ecp5.md``).

    python -m bench.dense_multipliers                 # about 5-10 minutes on 2 cores
    python -m bench.dense_multipliers --target ecp5 --widths 1,2,3,4,5,6,8,10,12,16
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jpq_hw.synth.yosys import find_yosys, synth_script, synthesize, yosys_version

ROOT = Path(__file__).resolve().parent.parent

WIDTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32)
# per target: the synthesis pass, its options, and the cell types counted as ``lut4`` / ``carry``
TARGETS = {"ice40": ("synth_ice40", (), "SB_LUT4", "SB_CARRY"),
           "ecp5": ("synth_ecp5", ("-nodsp",), "LUT4", "CCU2C")}
ADDER_WIDTHS = (4, 8, 12, 16, 20, 24, 32)


def mul_key(bx: int, x_signed: bool, bw: int) -> str:
    """Table key: ``u5xs6`` is an unsigned 5-bit activation times a signed 6-bit weight."""
    return f"{'s' if x_signed else 'u'}{bx}xs{bw}"


def mul_verilog(bx: int, x_signed: bool, bw: int) -> str:
    a = f"input signed [{bx - 1}:0] a" if x_signed else f"input [{bx - 1}:0] a"
    expr = "a * b" if x_signed else "$signed({1'b0, a}) * b"
    return (f"module mul({a}, input signed [{bw - 1}:0] b, output signed [{bx + bw - 1}:0] y);\n"
            f"  assign y = {expr};\nendmodule\n")


def addsub_verilog(n: int, op: str) -> str:
    return (f"module mul(input signed [{n - 1}:0] a, input signed [{n - 1}:0] b, output signed [{n}:0] y);\n"
            f"  assign y = a {op} b;\nendmodule\n")


def run_one(verilog: str, target: str = "ice40") -> dict:
    command, options, lut, carry = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="jpq_dense_", dir=ROOT / "bench" / "build") as tmp:
        src = Path(tmp) / "mul.v"
        src.write_text(verilog)
        r = synthesize([src], "mul", workdir=tmp, command=command, options=options)
        return {"lut4": r.cells.get(lut, 0), "carry": r.cells.get(carry, 0), "seconds": r.seconds,
                "other": {k: v for k, v in r.cells.items() if k not in (lut, carry)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="yosys runs in parallel (default 2)")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="comma-separated bx/bw widths")
    ap.add_argument("--target", choices=sorted(TARGETS), default="ice40", help="FPGA family (default ice40)")
    ap.add_argument("--json", type=Path, help="default jpq_hw/cost/<target>_multipliers.json")
    ap.add_argument("--md", type=Path, help="default bench/results/dense_multipliers.md (ECP5: dense_multipliers_ecp5.md)")
    args = ap.parse_args(argv)
    command, options, lut_cell, carry_cell = TARGETS[args.target]
    args.json = args.json or ROOT / "jpq_hw" / "cost" / f"{args.target}_multipliers.json"
    args.md = args.md or ROOT / "bench" / "results" / ("dense_multipliers.md" if args.target == "ice40"
                                                       else f"dense_multipliers_{args.target}.md")
    (ROOT / "bench" / "build").mkdir(exist_ok=True)
    widths = sorted({int(w) for w in args.widths.split(",")})

    jobs: dict[tuple[str, str], str] = {}
    for xs in (False, True):
        for bx in widths:
            for bw in widths:
                jobs[("multipliers", mul_key(bx, xs, bw))] = mul_verilog(bx, xs, bw)
    for n in ADDER_WIDTHS:
        jobs[("adders", str(n))] = addsub_verilog(n, "+")
        jobs[("subtractors", str(n))] = addsub_verilog(n, "-")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {k: pool.submit(run_one, v, args.target) for k, v in jobs.items()}
        results = {k: f.result() for k, f in futures.items()}
    wall = time.perf_counter() - t0
    secs = [r["seconds"] for r in results.values()]

    table: dict = {
        "header": {
            "yosys": yosys_version(),
            "command": f"python -m bench.dense_multipliers {'' if args.target == 'ice40' else f'--target {args.target} '}"
                       f"--widths {','.join(map(str, widths))}",
            "script": synth_script(["mul.v"], "mul", json_stat_path="stat.json", command=command,
                                   options=options).strip().replace("\n", "; "),
            "cells": {"lut4": lut_cell, "carry": carry_cell},
            "verilog": {"unsigned_x": mul_verilog(5, False, 6).strip(), "signed_x": mul_verilog(5, True, 6).strip(),
                        "adder": addsub_verilog(8, "+").strip()},
            "key": "u5xs6 = unsigned 5-bit activation x signed 6-bit weight, full (11-bit) signed product; "
                   "s5xs6 = both signed. adders/subtractors: n-bit signed a +/- b -> n+1 bits",
            "widths": widths,
        },
        "multipliers": {}, "adders": {}, "subtractors": {},
    }
    for (group, key), r in results.items():
        table[group][key] = {"lut4": r["lut4"], "carry": r["carry"]}
    text = json.dumps(table, indent=1)  # one line per entry keeps the table readable and diffable
    text = re.sub(r'\{\s*"lut4": (\d+),\s*"carry": (\d+)\s*\}', r'{"lut4": \1, "carry": \2}', text)
    text = re.sub(r'"widths": \[[^\]]*\]', lambda m: " ".join(m.group(0).split()), text)
    args.json.write_text(text + "\n")

    others = sorted({k for r in results.values() for k in r["other"]})
    family = {"ice40": "iCE40", "ecp5": "ECP5"}[args.target]
    md = [f"# Generic multipliers on {family} (yosys `{command}`, no DSP)", "",
          f"{table['header']['yosys']}. Produced by `{table['header']['command']}`; "
          f"{len(jobs)} runs, {args.jobs} in parallel, {wall:.0f} s wall, per run "
          f"{min(secs):.1f}-{max(secs):.1f} s (mean {sum(secs) / len(secs):.1f} s).", "",
          f"Cells are `{lut_cell} / {carry_cell}` for `y = a * b`, full-width signed product; weight `b` signed."
          + (f" Other cells, not in the table: {', '.join(others)} (the most: "
             + ", ".join(f"{k} {max(r['other'].get(k, 0) for r in results.values())}" for k in others) + ")."
             if others else ""), ""]
    for xs, title in ((False, "unsigned activation"), (True, "signed activation")):
        md += [f"## {title} (rows: activation bits bx, columns: weight bits bw)", "",
               "| bx \\ bw | " + " | ".join(map(str, widths)) + " |",
               "|---:|" + "---:|" * len(widths)]
        for bx in widths:
            cells = [table["multipliers"][mul_key(bx, xs, bw)] for bw in widths]
            md.append(f"| {bx} | " + " | ".join(f"{c['lut4']} / {c['carry']}" for c in cells) + " |")
        md.append("")
    md += ["## adders and subtractors (n-bit signed, n+1-bit result): a dense adder-tree bit", "",
           f"| n | a + b {lut_cell} / {carry_cell} | a - b {lut_cell} / {carry_cell} |", "|---:|---:|---:|"]
    for n in ADDER_WIDTHS:
        a, s = table["adders"][str(n)], table["subtractors"][str(n)]
        md.append(f"| {n} | {a['lut4']} / {a['carry']} | {s['lut4']} / {s['carry']} |")
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text("\n".join(md) + "\n")
    print(f"{len(jobs)} runs in {wall:.0f} s; wrote {args.json} and {args.md}")
    return 0


if __name__ == "__main__":
    find_yosys()
    raise SystemExit(main())
