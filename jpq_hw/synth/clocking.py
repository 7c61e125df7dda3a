"""The clock of a board build: the board's oscillator, or a PLL made from it.

The board top (:mod:`jpq_hw.board.top`) runs in the ``sync`` domain. Without a PLL it is the
platform's default domain: amaranth-boards clocks it from the board's oscillator. With a PLL
(``jpq-hw synth --board NAME --freq MHZ`` off the oscillator's frequency), :class:`ClockedTop` renames
the top's ``sync`` to ``pll``, clocks ``pll`` from the PLL module that the family's PLL tool wrote
(:func:`jpq_hw.synth.build.pll_verilog`) and feeds the PLL from ``sync``, which the platform still
makes from the oscillator. The ``pll`` domain is held in reset until the PLL locks.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Instance, Module, ResetSignal, Signal

PLL_PORTS = {"ice40": ("clock_in", "clock_out", "locked"), "ecp5": ("clkin", "clkout0", "locked")}
"""The ports of the module ``jpq_pll`` that icepll / ecppll write: input clock, output clock, lock."""


class ClockedTop(Elaboratable):
    """``top`` clocked at ``clk_hz`` from the PLL module ``pll`` (Verilog text), or, when ``pll`` is
    None, from the platform's default clock as it is."""

    def __init__(self, top: Elaboratable, family: str, clk_hz: float, pll: str | None):
        self.top, self.family, self.clk_hz, self.pll = top, family, clk_hz, pll

    def elaborate(self, platform):
        m = Module()
        if self.pll is None:
            m.submodules.top = self.top
            return m
        platform.add_file("jpq_pll.v", self.pll)
        m.domains.pll = cd = ClockDomain("pll")
        clk_in, clk_out, lock = PLL_PORTS[self.family]
        locked = Signal()
        m.submodules.pll = Instance("jpq_pll", **{f"i_{clk_in}": ClockSignal("sync"), f"o_{clk_out}": cd.clk,
                                                  f"o_{lock}": locked})
        m.d.comb += ResetSignal("pll").eq(~locked)
        platform.add_clock_constraint(cd.clk, self.clk_hz)
        m.submodules.top = DomainRenamer({"sync": "pll"})(self.top)
        return m


def with_clock(top: Elaboratable, board, clk_hz: float, pll: str | None) -> Elaboratable:
    """``top`` as :class:`ClockedTop` for ``board`` (its family picks the PLL's ports)."""
    return ClockedTop(top, board.family, clk_hz, pll)
