"""Lattice iCE40-HX8K breakout board: iCE40HX8K-CT256, 12 MHz oscillator, FTDI FT2232H (channel B is
the UART once jumpers J6 / J7 are set for it, see the board's user guide)."""

from amaranth_boards.ice40_hx8k_b_evn import ICE40HX8KBEVNPlatform

from . import Board

BOARD = Board(name="hx8k-breakout", title="iCE40-HX8K breakout (iCE40HX8K-CT256)", family="ice40",
              platform=ICE40HX8KBEVNPlatform, clock="clk12", clock_mhz=12.0, leds=8)
