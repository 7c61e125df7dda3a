"""jpq-hw: extremely sparse, quantized neural networks as multiplier-free shift-add hardware.

Stages (each importable on its own):

- :mod:`jpq_hw.ir`: :class:`QNet`, the integer network read from a checkpoint (contract.md section 1).
- :mod:`jpq_hw.reference`: the exact integer reference every simulation is checked against.
- :mod:`jpq_hw.arith`: CSD recoding, the :class:`AdderGraph` IR, lowering and pipelining passes.
- :mod:`jpq_hw.cost`: iCE40 cost estimates and the dense-multiplier baseline.
- :mod:`jpq_hw.hdl`: the Verilog emitter and the Amaranth component.
- :mod:`jpq_hw.synth`: yosys runs and report parsing.
"""

from .errors import JpqError
from .ir import QNet, QLayer, load_checkpoint, save_checkpoint
from .reference import run_reference

__all__ = ["JpqError", "QNet", "QLayer", "load_checkpoint", "save_checkpoint", "run_reference"]
__version__ = "0.1.0"
