"""The whole board top in simulation, with the real network: bytes in on rx, bytes out on tx.

The shipped digits example is lowered combinational (``--pipeline 0``) and pipelined
(``--pipeline 2``); the board top around it (:class:`jpq_hw.board.top.BoardTop`, converted to
Verilog with the network an instance of the design's ``rtl/jpq_net.v``) is simulated with cocotb on
every simulator found, 4 clock cycles per bit (:mod:`jpq_hw.board.sim`):

- ``test_frames``: the info frame, 4 vectors of ``tb/vectors.json`` against their reference outputs,
  a wrong CRC (error frame and LED), a frame that stops midway (timeout error frame), noise;
- ``test_cli_over_pty`` (the pipelined design): ``jpq-hw run DESIGN --port PTY`` in a subprocess,
  through pyserial and a pseudo-terminal pumped into the simulated pins; it must exit 0.

Also: the converted board top passes ``verilator --lint-only -Wall`` but for the style classes of
Amaranth's Verilog writer in its own lines (:func:`jpq_hw.board.sim.lint_board_top`), and a
network whose ports do not match the instance is caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jpq_hw.board.sim import lint_board_top, simulate_board
from jpq_hw.board.top import BoardTop, board_top_verilog
from jpq_hw.design_folder import read_design, rtl_files
from jpq_hw.flow import lower_checkpoint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits-mlp.pt"
VECTORS = 4


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits example lowered with --pipeline 0 and --pipeline 2 (few vectors: the board top
    sends them at 40 cycles a byte)."""
    base = tmp_path_factory.mktemp("board")
    out = {}
    for pipeline in (0, 2):
        folder = base / f"digits-pipe{pipeline}"
        lower_checkpoint(EXAMPLE, folder, pipeline=pipeline, n_vectors=VECTORS)
        out[pipeline] = folder
    return out


@pytest.mark.simulator
@pytest.mark.parametrize("pipeline", [0, 2])
def test_board_top(digits, pipeline, simulator, sim_build_root):
    design = digits[pipeline]
    tests = ("test_frames", "test_cli_over_pty") if pipeline else ("test_frames",)
    result = simulate_board(design, sim_build_root / f"board-digits-pipe{pipeline}-{simulator}", simulator,
                            vectors=VECTORS, tests=tests)
    assert result.passed, result.summary() + "\n" + result.message


@pytest.mark.simulator
def test_board_top_lint(digits, tmp_path, simulators):
    if "verilator" not in simulators:
        pytest.skip("verilator not available")
    for pipeline, design in digits.items():
        top = BoardTop(read_design(design).interface, rtl_files(design), clk_hz=12e6)
        top_v = tmp_path / f"board_top_{pipeline}.v"
        top_v.write_text(board_top_verilog(top))
        assert lint_board_top(top_v, rtl_files(design)) == [], f"--pipeline {pipeline}"
    # a network whose x is one bit narrower than the board top connects: caught on the instance
    iface = read_design(digits[0]).interface
    narrow = tmp_path / "narrow" / "jpq_net.v"
    narrow.parent.mkdir()
    narrow.write_text(f"module jpq_net(input wire [{iface.inputs.width - 2}:0] x, output wire "
                      f"[{iface.outputs.width - 1}:0] y);\n  assign y = {{{iface.outputs.width}{{^x}}}};\nendmodule\n")
    warnings = lint_board_top(tmp_path / "board_top_0.v", [narrow])
    assert any("WIDTH" in w for w in warnings), warnings
