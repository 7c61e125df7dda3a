"""Lattice iCEstick: iCE40HX1K-TQ144, 12 MHz oscillator, FTDI FT2232H (channel B is the UART)."""

from amaranth_boards.icestick import ICEStickPlatform

from . import Board

BOARD = Board(name="icestick", title="iCEstick (iCE40HX1K-TQ144)", family="ice40", platform=ICEStickPlatform,
              clock="clk12", clock_mhz=12.0, leds=5)
