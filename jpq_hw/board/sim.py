"""Simulate the whole board top of a design folder: bytes in on ``rx``, bytes out on ``tx``.

:func:`simulate_board` converts :class:`~jpq_hw.board.top.BoardTop` (without a platform) to Verilog,
builds it with the design's own ``rtl/*.v`` (the network stays an instance of its top module) through
cocotb's Python runner, and runs the cocotb tests of :mod:`jpq_hw.board.cocotb_board` on it:

- ``test_frames``: the info frame, then vectors of ``tb/vectors.json`` sent as UART frames and every
  answer compared with the reference outputs, a frame with a wrong CRC (error frame, error LED), a
  frame that stops midway (timeout error frame) and noise outside frames (ignored);
- ``test_cli_over_pty``: ``jpq-hw run DESIGN --port PTY`` in a subprocess, talking through pyserial to
  a pseudo-terminal whose other end the test pumps into ``rx`` and out of ``tx``.

The clock runs at ``divisor * baud`` (``divisor`` cycles per bit, 4 by default) so that a byte takes
40 cycles; the gateware is the same as on a board, only its divisor is smaller.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..design_folder import DESIGN_DIR_ENV, Interface, read_design, rtl_files
from .top import DEFAULT_BAUD, TOP_NAME, BoardTop, board_top_verilog

TEST_MODULE = "jpq_hw.board.cocotb_board"
ENV_CONFIG = "JPQ_BOARD_SIM"  # JSON: the cocotb module's settings (BoardSimConfig)
SIM_DIVISOR = 4
CLOCK_NS = 10


@dataclass
class BoardSimResult:
    """What :func:`simulate_board` found: ``passed``, the log, the first failure, the times."""

    simulator: str
    passed: bool
    seconds: float
    build_seconds: float
    log: Path
    message: str = ""

    def summary(self) -> str:
        state = "PASS" if self.passed else "FAIL"
        return (f"{state} {self.simulator}: board top in {self.seconds:.1f} s (build {self.build_seconds:.1f} s), "
                f"log {self.log}" + (f": {self.message.splitlines()[0]}" if self.message else ""))


def cli_command() -> list[str]:
    """How the pty test starts ``jpq-hw run``: the command line itself, in this Python."""
    return [sys.executable, "-m", "jpq_hw.cli", "run"]


def simulate_board(design_dir, build_dir, simulator: str = "verilator", *, vectors: int = 4,
                   divisor: int = SIM_DIVISOR, tests: tuple[str, ...] = ("test_frames",),
                   timeout_s: float = 0.002, waves: bool = False) -> BoardSimResult:
    """Build the board top of ``design_dir`` and run ``tests`` of :mod:`jpq_hw.board.cocotb_board`
    with the first ``vectors`` vectors of its ``tb/vectors.json``. ``timeout_s`` is the board top's
    frame timeout in simulated seconds (short, so the timeout test is quick); ``waves`` dumps the
    waveform into ``build_dir``."""
    from cocotb_tools.runner import get_runner

    from ..sim.runner import TIMESCALE, VERILATOR_BUILD_ARGS, _environ, _read_results, _verilator_make_env, \
        put_verilator_on_path

    root = Path(design_dir).resolve()
    bdir = Path(build_dir).resolve()
    bdir.mkdir(parents=True, exist_ok=True)
    iface = read_design(root).interface
    if not isinstance(iface, Interface):
        raise ValueError("the board top takes flat-vector designs")
    top = BoardTop(iface, rtl_files(root), clk_hz=divisor * DEFAULT_BAUD, timeout_s=timeout_s)
    top_v = bdir / f"{TOP_NAME}.v"
    top_v.write_text(board_top_verilog(top))
    build_log, sim_log, results = bdir / "build.log", bdir / "sim.log", bdir / "results.xml"
    results.unlink(missing_ok=True)
    config = {"design": str(root), "vectors": vectors, "divisor": divisor, "clock_ns": CLOCK_NS,
              "timeout_cycles": top.timeout_cycles, "cli": cli_command() + [str(root)]}
    build_args: list[str] = []
    plusargs: list[str] = []
    if simulator == "verilator":
        put_verilator_on_path()
        build_args = list(VERILATOR_BUILD_ARGS)
        plusargs = ["+verilator+rand+reset+2", "+verilator+seed+7"]
    runner = get_runner(simulator)
    t0 = time.perf_counter()
    try:
        with _environ(**(_verilator_make_env() if simulator == "verilator" else {})):
            runner.build(sources=[top_v, *rtl_files(root)], hdl_toplevel=TOP_NAME, build_dir=bdir,
                         build_args=build_args, timescale=TIMESCALE, log_file=build_log, always=True,
                         waves=waves)
    except (RuntimeError, SystemExit, subprocess.SubprocessError) as e:
        t = time.perf_counter() - t0
        return BoardSimResult(simulator, False, t, t, build_log, f"build failed: {e}")
    t1 = time.perf_counter()
    env = {DESIGN_DIR_ENV: str(root), ENV_CONFIG: json.dumps(config),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    with _environ(**env):
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=TOP_NAME, build_dir=bdir, test_dir=bdir,
                        testcase=list(tests), results_xml=str(results), log_file=sim_log, plusargs=plusargs,
                        timescale=TIMESCALE, waves=waves)
        except (RuntimeError, SystemExit, subprocess.SubprocessError):
            pass  # the results file tells
    passed, message = _read_results(results)
    return BoardSimResult(simulator, passed, time.perf_counter() - t0, t1 - t0, sim_log, message)


AMARANTH_STYLE = ("WIDTHEXPAND", "WIDTHTRUNC", "CASEINCOMPLETE", "PROCASSINIT", "UNUSEDSIGNAL", "DECLFILENAME")
"""Verilator -Wall classes that ``amaranth.back.verilog`` (yosys's ``write_verilog``) produces by its
idioms (``!x`` of a vector, comparisons with a narrower constant, a ``case`` without ``default``,
initial values on registers, unread intermediate bits, module names that are not the file's): waived
in the board top's own lines, but not on its instance of the network nor in the network's files."""


def lint_board_top(top_v, rtl) -> list[str]:
    """``verilator --lint-only -Wall`` of the converted board top and the network's files: every
    warning except :data:`AMARANTH_STYLE` ones in ``top_v`` outside the network's instance."""
    import re

    from ..sim.runner import lint_verilog

    top_v = Path(top_v)
    text = top_v.read_text().splitlines()
    start = next(i for i, ln in enumerate(text, 1) if re.match(r"\s*\S+ net \($", ln))
    end = next(i for i, ln in enumerate(text, 1) if i > start and ln.strip() == ");")
    kept = []
    for w in lint_verilog([top_v, *rtl], TOP_NAME):
        m = re.match(r"%Warning-(\w+): (.*?):(\d+):", w)
        if m and m.group(1) in AMARANTH_STYLE and Path(m.group(2)) == top_v and not start <= int(m.group(3)) <= end:
            continue
        if w.startswith("%Error: Exiting due to"):
            continue
        kept.append(w)
    return kept
