"""The clock of a board build: the board's oscillator, or a PLL made from it.

The board top (:mod:`jpq_hw.board.top`) runs in the ``sync`` domain. Without a PLL it is the
platform's default domain: amaranth-boards clocks it from the board's oscillator. With a PLL
(``jpq-hw synth --board NAME --freq MHZ`` off the oscillator's frequency), :class:`ClockedTop` renames
the top's ``sync`` to ``pll``, clocks ``pll`` from the PLL module that the family's PLL tool wrote
(:func:`jpq_hw.synth.build.pll_verilog`) and feeds the PLL from ``sync``, which the platform still
makes from the oscillator; on a board whose oscillator pin is the PLL's own pad (the iCEBreaker's
pin 35) the PLL takes that pin itself instead. The ``pll`` domain is held in reset until the PLL
locks. Its frequency reaches nextpnr as ``--freq``.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Instance, Module, ResetSignal, Signal

PLL_PORTS = {"ice40": ("clock_in", "clock_out", "locked"), "ecp5": ("clkin", "clkout0", "locked")}
"""The ports of the module ``jpq_pll`` that icepll / ecppll write: input clock, output clock, lock."""


class ClockedTop(Elaboratable):
    """``top`` clocked at ``clk_hz`` from the PLL module ``pll`` (Verilog text), or, when ``pll`` is
    None, from the platform's default clock as it is."""

    def __init__(self, top: Elaboratable, family: str, clk_hz: float, pll: str | None, pad: str | None = None):
        self.top, self.family, self.clk_hz, self.pll, self.pad = top, family, clk_hz, pll, pad

    def elaborate(self, platform):
        m = Module()
        if self.pll is None:
            m.submodules.top = self.top
            return m
        platform.add_file("jpq_pll.v", self.pll)
        m.domains.pll = cd = ClockDomain("pll")
        clk_in, clk_out, lock = PLL_PORTS[self.family]
        locked = Signal()
        source = platform.request(self.pad, 0, dir="-").io if self.pad else ClockSignal("sync")
        m.submodules.pll = Instance("jpq_pll", **{f"i_{clk_in}": source, f"o_{clk_out}": cd.clk, f"o_{lock}": locked})
        m.d.comb += ResetSignal("pll").eq(~locked)
        m.submodules.top = DomainRenamer({"sync": "pll"})(self.top)
        return m


def with_clock(top: Elaboratable, board, clk_hz: float, pll: str | None) -> Elaboratable:
    """``top`` as :class:`ClockedTop` for ``board`` (its family picks the PLL's ports)."""
    return ClockedTop(top, board.family, clk_hz, pll, board.clock if board.pll_pad else None)
