"""What one lowering produced, in memory: :class:`Lowered`.

:func:`jpq_hw.flow.lower` makes it; :mod:`jpq_hw.report` describes it; :mod:`jpq_hw.design_folder`
is its form on disk (and :attr:`Lowered.interface` the part of it that simulations read back).
"""

from __future__ import annotations

from dataclasses import dataclass

from .arith.graph import AdderGraph
from .arith.registers import RegisterSchedule
from .cost.model import NetworkCost
from .design_folder import Interface, Port
from .ir.qnet import QNet


@dataclass
class Lowered:
    """A network lowered for one target, before it is written out."""

    qnet: QNet
    target: str  # the --target whose cost model priced the plans and estimated the cells
    graph: AdderGraph
    sched: RegisterSchedule
    cost: NetworkCost
    verilog: str  # the whole design as one Verilog module named ``top``
    top: str
    backend: str  # the backend that wrote ``verilog``
    optimize: str  # the adder sharing (an ``--optimize`` choice) the graph was built with
    max_depth: int | None  # the --max-depth bound on each layer's adder levels (None: no bound)
    seconds: dict[str, float]

    @property
    def interface(self) -> Interface:
        """The module's ports (contract.md section 2)."""
        q = self.qnet
        return Interface(self.top, Port(len(self.graph.inputs), q.input.bits, q.input.signed),
                         Port(len(self.graph.outputs), q.output.bits, q.output.signed),
                         self.sched.pipelined, self.sched.latency)
