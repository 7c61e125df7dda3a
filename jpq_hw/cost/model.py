"""What a target's cost model provides: the seam between the optimiser and an FPGA family.

The sharing passes (:mod:`jpq_hw.arith.optimize`, :func:`jpq_hw.arith.cmvm.build_plan`) compare
plans by what a target spends on them, and know no target: they receive a :class:`CostModel`.
The flow and the report take the model's cell estimate of the finished design. One module per FPGA
family implements it (iCE40: :data:`jpq_hw.cost.ice40.ICE40`); :class:`jpq_hw.target.Target`
carries it with the rest of what a family needs.

Costs are in the target's logic cells (iCE40: SB_LUT4); only their order matters to the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing import Sequence

    from ..arith.graph import AdderGraph, GraphBuilder, Term
    from ..arith.registers import RegisterSchedule


@dataclass
class LayerCost:
    """Estimated cells of one layer (and its share of the registers)."""

    name: str
    adders: int = 0
    subtractors: int = 0
    adder_bits: int = 0
    lut4: int = 0
    carry: int = 0
    ff: int = 0
    depth: int = 0  # adder levels this layer adds (its Requant stage included)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NetworkCost:
    """Estimated cells of a design, per layer."""

    layers: list[LayerCost] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(getattr(layer, key) for layer in self.layers)


class CostModel(Protocol):
    """A target family's prices, as the optimiser and the flow use them."""

    name: str  # the ``--target`` it serves
    largest_device: tuple[str, int]  # the family's largest common device and its LUT4 (lower warns beyond it)
    largest_device_bram: int  # its block RAMs (an image network whose line buffers need more is refused)

    def adder(self, bits: int, subtract: bool) -> int:
        """Cells of one adder (or, with ``subtract``, subtractor) of ``bits`` one-bit positions
        (its width less the low bits that pass through, :func:`~jpq_hw.arith.graph.adder_bits`)."""
        ...

    def negation(self, width: int) -> int:
        """Cells an output stage spends to negate a ``width``-bit term (a sum that leaves the
        adder graph negated)."""
        ...

    def price(self, builder: "GraphBuilder", terms: "Sequence[Term | None]") -> int:
        """Cells of a candidate plan built into a scratch ``builder`` (inputs, then the plan's adders):
        its adders and the output stages that read ``terms`` (unclamped), as the estimate counts them."""
        ...

    def estimate(self, graph: "AdderGraph", sched: "RegisterSchedule") -> NetworkCost:
        """The cell estimate of a whole scheduled design, per layer."""
        ...
