"""The boards ``jpq-hw synth --board`` and ``jpq-hw run --board`` know: one module per board.

Each module here defines ``BOARD``, a :class:`Board`: the board's `amaranth-boards` platform class
(its pin map, oscillator and I/O standards: nothing here copies a pin map) plus what the flow needs
beyond it: the FPGA family, the UART to talk to the board top through, the LEDs it blinks, and, for a
board whose platform has no UART, the pins a USB-serial adapter is wired to. A new board is one more
module that defines ``BOARD``; :func:`known_boards` finds it.

This folder is installed as the package ``jpq_hw.boards``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from jpq_hw.errors import JpqError


@dataclass(frozen=True)
class Board:
    """One board: what ``jpq-hw synth --board NAME`` builds a bitstream for.

    ``platform`` is the amaranth-boards platform class (``device``, ``package``, the oscillator
    resource ``clock`` of ``clock_mhz``); ``family`` the jpq-hw target (``ice40``, ``ecp5``);
    ``uart`` the resource the board top talks through (``(name, number)``), ``extra_resources``
    resources the platform lacks (added with ``platform.add_resources``: a UART on header pins),
    ``platform_options`` attributes set on the platform (the UPduino's oscillator divider);
    ``pll_pad`` whether the oscillator's pin is the iCE40 PLL's pad (then the PLL must take the pin
    itself, ``SB_PLL40_PAD``; nextpnr cannot place an ``SB_PLL40_CORE`` fed from it);
    ``leds`` how many of the platform's ``led`` resources the board top drives (activity, error).
    """

    name: str
    title: str
    family: str
    platform: Callable[[], Any]
    clock: str
    clock_mhz: float
    uart: tuple[str, int] = ("uart", 0)
    leds: int = 2
    extra_resources: tuple = field(default_factory=tuple)
    platform_options: tuple[tuple[str, object], ...] = ()  # attributes set on the platform instance
    pll_pad: bool = False  # the oscillator's pin is the PLL's own pad: an SB_PLL40_PAD takes it directly
    notes: str = ""

    def make_platform(self):
        """A fresh instance of the platform, with the extra resources added."""
        platform = self.platform()
        for key, value in self.platform_options:
            setattr(platform, key, value)
        if self.extra_resources:
            platform.add_resources(list(self.extra_resources))
        return platform

    @property
    def device(self) -> str:
        """The FPGA as amaranth-boards names it (``iCE40UP5K``, ``LFE5U-85F``)."""
        return self.platform.device

    @property
    def package(self) -> str:
        return self.platform.package


def known_boards() -> dict[str, Board]:
    """Every board of this folder by name (the modules that define ``BOARD``), sorted."""
    boards = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        board = getattr(module, "BOARD", None)
        if isinstance(board, Board):
            boards[board.name] = board
    return dict(sorted(boards.items()))


def get_board(name: str) -> Board:
    """The board called ``name``; a :class:`JpqError` naming the known ones otherwise."""
    boards = known_boards()
    if name not in boards:
        raise JpqError(f"unknown board {name!r} (known: {', '.join(boards)})")
    return boards[name]
