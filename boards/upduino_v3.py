"""tinyVision UPduino v3: iCE40UP5K-SG48. Its FT232H serves the SPI flash only, so the board top's UART
is on header JP6 (amaranth-boards connector ``j`` 1): FPGA receive on pin 6 (FPGA pin 21), FPGA
transmit on pin 7 (FPGA pin 13); wire a 3.3 V USB-serial adapter there (its TX to pin 6, RX to pin
7, ground to GND). The clock is the UP5K's internal 48 MHz oscillator (SB_HFOSC) divided by 4:
12 MHz, no jumper to solder. The data sheet allows it 10% off, a UART about 4%: a board whose
internal oscillator is that far off will not answer ``jpq-hw run``; then solder the OSC jumper and
build with ``clock="clk12"`` (the 12 MHz oscillator on pin 20, as the amaranth-boards platform notes)."""

from amaranth.build import Attrs
from amaranth_boards.resources import UARTResource
from amaranth_boards.upduino_v3 import UpduinoV3Platform

from . import Board

BOARD = Board(name="upduino-v3", title="UPduino v3 (iCE40UP5K-SG48)", family="ice40", platform=UpduinoV3Platform,
              clock="SB_HFOSC", clock_mhz=12.0, leds=0, platform_options=(("hfosc_div", 2),),
              extra_resources=(UARTResource(0, rx="6", tx="7", conn=("j", 1),
                                            attrs=Attrs(IO_STANDARD="SB_LVCMOS", PULLUP=1)),),
              notes="UART on header JP6 pins 6 (rx) and 7 (tx) for a USB-serial adapter; internal oscillator")
