"""Image networks as streams on an iCE40 UP5K: cells, block RAM, cycles per frame, Fmax, sim speed.

For the shipped ``digits-cnn`` example and a random conv net on 64x64 frames (the ``frame64``
design of ``sim/test_streams.py``), each with combinational stage graphs and with ``--pipeline 2``:
``jpq-hw lower``'s report, yosys ``synth_ice40`` of the design alone (cells), then the design in a
small harness (its ports on pins, ``m_data`` reduced to one registered parity pin) placed and
routed by nextpnr-ice40 on the UP5K (SG48) for Fmax and the proof that it fits, and the Verilator
simulation of the design folder's bench (1,000 frames of digits, 20 of 64x64: pixels per second of
simulated stream over both passes, the simulator's own time without its build).

    python -m bench.streams            # writes bench/results/streams.md
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from jpq_hw.design_folder import rtl_files
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import IntFormat, random_conv_qnet, save_checkpoint
from jpq_hw.sim.runner import run_design
from jpq_hw.synth.yosys import place_and_route, synthesize

ROOT = Path(__file__).resolve().parents[1]
FRAME64 = dict(input_shape=(1, 64, 64), convs=[(4, 3, 1, 1), (4, 3, 2, 1)], density=0.25,
               input_format=IntFormat(8, False), hidden_format=IntFormat(6, False), output_format=IntFormat(8, False),
               relu_last=True, seed=102)


def harness(top: str, in_width: int, out_width: int) -> str:
    return f"""`default_nettype none
module harness (input wire clk, input wire rst, input wire s_valid, output wire s_ready,
                input wire [{in_width - 1}:0] s_data, output wire m_valid, input wire m_ready, output reg parity);
    wire [{out_width - 1}:0] m_data;
    {top} dut (.clk(clk), .rst(rst), .s_valid(s_valid), .s_ready(s_ready), .s_data(s_data),
               .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data));
    always @(posedge clk) parity <= ^m_data;
endmodule
"""


def measure(name: str, ckpt: Path, work: Path, frames: int, extra, pipeline: int = 0) -> dict:
    name = name + (f"_pipe{pipeline}" if pipeline else "")
    out = work / name
    t0 = time.perf_counter()
    r = lower_checkpoint(ckpt, out, n_vectors=frames, force=True, extra_inputs=extra, pipeline=pipeline)
    lower_s = time.perf_counter() - t0
    s = synthesize(rtl_files(out), r["top"], workdir=work / f"{name}_synth")
    (work / f"{name}_harness.v").write_text(harness(r["top"], r["input"]["channels"] * r["input"]["bits"],
                                                    r["output"]["channels"] * r["output"]["bits"]))
    hs = synthesize([*rtl_files(out), work / f"{name}_harness.v"], "harness", workdir=work / f"{name}_harness",
                    netlist=True)
    pnr = place_and_route(work / f"{name}_harness" / "harness.json", "up5k", "sg48", freq_mhz=30)
    sim = run_design(out, "verilator", build_dir=work / f"{name}_sim")
    assert sim.passed, sim.summary()
    log = sim.log.read_text()
    m = re.search(r"test_vectors\s+PASS\s+([\d.]+)\s+([\d.]+)", log)
    real_s = float(m.group(2)) if m else float("nan")
    pixels = 2 * sim.n_vectors * r["input"]["height"] * r["input"]["width"]  # two passes over every frame
    return {"name": name, "pipeline": pipeline, "report": r, "lower_s": lower_s, "lut4": s.lut4, "carry": s.carry, "ff": s.dff,
            "bram": s.ram, "harness_lut4": hs.lut4, "fmax": pnr.fmax_mhz, "sim_frames": sim.n_vectors,
            "sim_s": real_s, "pixels_per_s": pixels / real_s}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="bench/build/streams")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    save_checkpoint(random_conv_qnet(**FRAME64), work / "frame64.pt")
    from jpq_hw.datasets import load_digits_split

    digits, no_extra = load_digits_split()[2], np.empty((0, 64 * 64), dtype=np.int64)
    rows = [measure("digits-cnn", ROOT / "examples" / "digits-cnn.pt", work, 1000, digits),
            measure("digits-cnn", ROOT / "examples" / "digits-cnn.pt", work, 1000, digits, pipeline=2),
            measure("frame64", work / "frame64.pt", work, 20, no_extra),
            measure("frame64", work / "frame64.pt", work, 20, no_extra, pipeline=2)]
    lines = ["# Image networks as streams on an iCE40 UP5K", "",
             "Produced by `python -m bench.streams` on this project's 2-core machine. Cells: yosys `synth_ice40` of the "
             "design alone; Fmax: nextpnr-ice40 on the UP5K (SG48) with the design in a harness (ports on pins, "
             "`m_data` reduced to one registered parity pin); sim: the Verilator run of the cocotb bench "
             "(`jpq_hw.sim.cocotb_bench` clocking `tb/stream_tb.v`: random stalls, then full rate; 1,000 frames of digits, "
             "20 of 64x64), simulated pixels per second of wall time, build excluded.",
             "",
             "| network | frame | --pipeline | nonzero | adders | SB_LUT4 (est) | SB_CARRY (est) | FF (est) | BRAM (est) | "
             "cycles/frame | latency | Fmax UP5K MHz | sim px/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in rows:
        r = x["report"]
        i = r["input"]
        lines.append(f"| {x['name'].split('_pipe')[0]} | {i['channels']}x{i['height']}x{i['width']} | {x['pipeline']} | "
                     f"{r['nonzero_weights']} | "
                     f"{r['adders']} | {x['lut4']} ({r['lut4_estimate']}) | {x['carry']} ({r['carry_estimate']}) | "
                     f"{x['ff']} ({r['ff_estimate']}) | {x['bram']} ({r['bram_estimate']}) | {r['cycles_per_frame']} | "
                     f"{r['latency_cycles']} | {x['fmax']:.1f} | {x['pixels_per_s']:,.0f} |")
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench" / "results" / "streams.md"
    out.write_text(text)
    (work / "streams.json").write_text(json.dumps([{k: v for k, v in x.items() if k != "report"} for x in rows],
                                                  indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
