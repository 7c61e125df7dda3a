"""Simulation harness: check a lowered design bit for bit against its stored vectors.

:func:`run_design` builds ``OUT/rtl/*.v`` and runs the cocotb bench
(:mod:`jpq_hw.sim.cocotb_bench`) on Verilator or Icarus; :func:`lint_verilog` runs
``verilator --lint-only -Wall``; :func:`available_simulators` says which simulators work here.
cocotb and a simulator are needed only when these are called.
"""

__all__ = ["SimResult", "available_simulators", "lint_verilog", "run_design"]


def __getattr__(name: str):
    # Lazy, so that ``python -m jpq_hw.sim.runner`` does not import the runner twice.
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
