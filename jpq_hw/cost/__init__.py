"""Cost models per target family, and the dense-multiplier baseline.

- :mod:`jpq_hw.cost.model`: :class:`CostModel`, what the optimiser and the flow ask of a target.
- :mod:`jpq_hw.cost.ice40`: the iCE40 model (:data:`ICE40`), calibrated against yosys ``synth_ice40``.
- :mod:`jpq_hw.cost.dense`: the same layers built from generic multipliers, for comparison.
"""

from .ice40 import ICE40
from .model import CostModel, LayerCost, NetworkCost

__all__ = ["CostModel", "ICE40", "LayerCost", "NetworkCost"]
