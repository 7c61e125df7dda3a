"""Compression stage: pruning, quantization and export of Linear / Conv2d / ReLU models.

Models are read through ``torch.fx`` as a chain of checkpoint layers (:mod:`~jpq_hw.compress.chain`:
BatchNorm folded, a final Softmax dropped, anything that does not fit refused with the line that
uses it).

Two stages, each usable alone, as the public calls :func:`prune` (returns the pruned float chain and
its masks, :class:`PruneResult`) and :func:`quantize` (takes a model and masks, yours or prune's,
returns the exported :class:`~jpq_hw.ir.QNet` in a :class:`QuantizeResult`):

- pruning: :mod:`~jpq_hw.compress.criteria` (``taylor``, ``magnitude``, ``random``, ``blend``),
  :mod:`~jpq_hw.compress.schedules` (``oneshot``, ``iterative``, ``gradual``),
  :mod:`~jpq_hw.compress.pruner` (masks as parametrizations; ``frozen`` / ``recover`` fine-tuning)
  and :mod:`~jpq_hw.compress.compensate` (least-squares refit, the ``compensate`` mode);
- quantization: :mod:`~jpq_hw.compress.quant` (power-of-two fixed point whose forward pass is the
  checkpoint's integer semantics; ternary and CSD-digit-limited weights) and
  :mod:`~jpq_hw.compress.export` (the :class:`~jpq_hw.ir.QNet`, checked bit for bit).

:func:`compress` chains them with a :class:`CompressConfig`, which can replace the sparsity by a cell
budget (``lut_budget``: :mod:`~jpq_hw.compress.cells` prices weights in SB_LUT4); :mod:`~jpq_hw.compress.metrics`
computes sparsity, memory, BOPs and adders; :mod:`~jpq_hw.compress.models` has the example models
and the training helpers; :mod:`~jpq_hw.compress.command` is ``jpq-hw compress``, whose
``--model FILE.py:FUNCTION`` takes a :class:`UserModel` (:mod:`~jpq_hw.compress.user_model`).
"""

from .chain import Block, Chain, ChainModule, extract_chain, read_chain
from .criteria import CRITERIA, Criterion, make_criterion
from .export import check_exact, to_qnet
from .metrics import compute_metrics
from .models import EXAMPLES, accuracy, build_example, example_data, train
from .cells import CellBudget, budget_cells
from .pipeline import (CompressConfig, CompressResult, PruneResult, QuantizeResult, compress, config_for_example, prune,
                       quantize, train_float)
from .pruner import MODES, SCOPES, Pruner, select_masks
from .quant import QuantNet, QuantSpec, weight_levels
from .schedules import SCHEDULES, Schedule
from .user_model import UserModel, load_user_model

__all__ = ["Block", "CRITERIA", "CellBudget", "PruneResult", "QuantizeResult", "budget_cells", "prune", "quantize", "Chain", "ChainModule", "CompressConfig", "CompressResult", "Criterion", "EXAMPLES", "MODES", "Pruner",
           "QuantNet", "QuantSpec", "SCHEDULES", "SCOPES", "Schedule", "accuracy", "build_example", "check_exact",
           "compress", "compute_metrics", "config_for_example", "example_data", "extract_chain", "make_criterion",
           "read_chain", "select_masks", "to_qnet", "train", "train_float", "UserModel", "load_user_model", "weight_levels"]
