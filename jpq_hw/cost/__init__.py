"""Cost models per target family, and the dense-multiplier baseline.

- :mod:`jpq_hw.cost.model`: :class:`CostModel`, what the optimiser and the flow ask of a target.
- :mod:`jpq_hw.cost.ice40`: the iCE40 model (:data:`ICE40`), calibrated against yosys ``synth_ice40``.
- :mod:`jpq_hw.cost.dense`: the same layers built from generic multipliers, for comparison.
"""

from .ice40 import ICE40
from .model import CostModel, LayerCost, NetworkCost

COST_MODELS: dict[str, CostModel] = {model.name: model for model in (ICE40,)}
"""Every target family's cost model, by ``--target`` name."""

__all__ = ["COST_MODELS", "CostModel", "ICE40", "LayerCost", "NetworkCost"]
