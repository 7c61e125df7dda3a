"""1BitSquared iCEBreaker: iCE40UP5K-SG48, 12 MHz oscillator, FTDI FT2232H (channel B is the UART)."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from . import Board

BOARD = Board(name="icebreaker", title="iCEBreaker (iCE40UP5K-SG48)", family="ice40", platform=ICEBreakerPlatform,
              clock="clk12", clock_mhz=12.0, pll_pad=True)
