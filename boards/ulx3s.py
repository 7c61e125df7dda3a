"""Radiona ULX3S (85F): LFE5U-85F-6BG381C, 25 MHz oscillator, FTDI FT231X UART (the USB port US1)."""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from . import Board

BOARD = Board(name="ulx3s-85f", title="ULX3S (LFE5U-85F-BG381)", family="ecp5", platform=ULX3S_85F_Platform,
              clock="clk25", clock_mhz=25.0, leds=8)
