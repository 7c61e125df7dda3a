"""The two-stage compression pipeline: prune (with fine-tuning), then quantize (QAT), then export.

:func:`compress` takes a *trained* float model made of Linear / Conv2d / ReLU / Flatten, data as
integer network inputs, and a :class:`CompressConfig` holding every choice; it returns a
:class:`CompressResult` with the exported :class:`~jpq_hw.ir.QNet`, the metrics of
:mod:`jpq_hw.compress.metrics` and the float / pruned / quantized accuracies.

Stage 1 (pruning, on a copy of the float model, whose input is ``x_int * 2**input_exp``):
masks are attached (:class:`~jpq_hw.compress.pruner.Pruner`); if the criterion needs gradients, one
gradient pass over the training set warms its score; then the model is fine-tuned for
``prune_epochs`` with the schedule's pruning events (``frozen`` / ``recover``), or, in
``compensate`` mode, every event is followed by the least-squares refit and nothing is trained.
Stage 2 (quantization, mask held): a :class:`~jpq_hw.compress.quant.QuantNet` is calibrated on
``calib_size`` training inputs and trained for ``qat_epochs`` (scales re-calibrated at the start of
every epoch). Export reads its integers off; with ``verify`` the checkpoint semantics
(:func:`jpq_hw.reference.run_reference`) are checked against the fake-quantized model, bit for bit,
on the test inputs and on random inputs spanning the whole input format.

The stages are the public calls :func:`prune` (masks out) and :func:`quantize` (masks in: prune's or
the user's); :func:`compress` runs one after the other.

With a cell budget (``lut_budget``) the pruning events aim at cells instead of a sparsity and
:func:`compress` runs :func:`jpq_hw.compress.budgeted.compress_to_budget` (prices:
:mod:`jpq_hw.compress.cells`). With ``widths="search"`` every layer's widths are first chosen under
the budget (:mod:`jpq_hw.compress.widths`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import JpqError
from ..ir.qnet import QNet
from ..reference import run_reference
from .chain import Chain, ChainModule, check_chain, read_chain
from .cells import check_budget
from .compensate import compensate, dead_weights
from .criteria import CRITERIA, make_criterion
from .export import check_exact, plain, to_qnet
from .metrics import compute_metrics
from .models import Data, Hooks, accuracy, gradient_pass, steps_per_epoch, train
from .pruner import MODES, SCOPES, Pruner
from .quant import QuantNet, QuantSpec, check_bits
from .schedules import SCHEDULES, Schedule

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as training advances (stage is ``"prune"`` or ``"qat"``)."""


@dataclass
class CompressConfig:
    """Every choice of the compression stage (defaults suit the digits examples)."""

    # pruning stage
    criterion: str = "taylor"            # taylor | magnitude | random | blend
    schedule: str = "gradual"            # oneshot | iterative | gradual
    prune_steps: int = 20                # pruning events (iterative, gradual; recover-mode refreshes for oneshot)
    prune_begin: float = 0.0             # pruning window, as fractions of the fine-tuning run
    prune_end: float = 0.6               # the mask freezes here
    mode: str = "recover"                # frozen | recover | compensate
    sparsity: float | dict[str, float] = 0.85
    scope: str = "global"                # global | layer (a dict of sparsities implies layer)
    layer_floor: float = 0.0             # each layer keeps at least ceil(floor * size) weights (>= 1 if > 0)
    taylor_beta: float = 0.9             # EMA factor of the taylor score
    blend_alpha: float = 0.5             # weight of the taylor part of the blend score
    prune_epochs: int = 60
    prune_lr: float = 0.1
    prune_optimizer: str = "sgd"         # sgd (Nesterov momentum 0.9) | adam
    compensate_damp: float = 1e-3
    # a cell budget instead of a sparsity (cells.py): prune until `jpq-hw lower` would report at most this
    lut_budget: int | None = None        # SB_LUT4 of the iCE40 estimate (lut_target's logic cells)
    priced: bool = False                 # with a budget: rank weights by score per cell (default: by score;
                                         # bench/results/compression_budget.md: per cell was not better)
    lut_target: str = "ice40"            # the family whose estimate the budget counts
    budget_passes: int = 2               # a pass using < 95 % of the budget is followed by one aimed from its drift
    # quantization stage
    weight_bits: int = 6                 # 2 = ternary {-1, 0, +1} * 2**e
    act_bits: int = 8
    layer_weight_bits: dict[str, int] | None = None  # mixed precision: {layer name: weight bits} (others: weight_bits)
    layer_act_bits: dict[str, int] | None = None     # {hidden layer name: output bits} (others: act_bits)
    widths: str = "fixed"                # fixed | search (with a budget: per-layer widths chosen under it, widths.py)
    csd_digits: int | None = None        # at most this many nonzero CSD digits per weight
    qat_epochs: int = 20
    qat_lr: float = 5e-4
    # network input: x_int in (input_bits, input_signed), float value x_int * 2**input_exp
    input_bits: int = 8
    input_signed: bool = False
    input_exp: int = 0
    # common
    batch_size: int = 64
    weight_decay: float = 0.0
    calib_size: int = 512
    seed: int = 0
    verify: bool = True
    adders: bool = True
    device: str = "auto"                 # where training runs: auto (CUDA where available, else cpu), cpu, cuda, ...

    def validate(self) -> None:
        """Raise :class:`JpqError` (one line) for any value out of range."""
        if self.criterion not in CRITERIA:
            raise JpqError(f"unknown pruning criterion {self.criterion!r} (known: {', '.join(CRITERIA)})")
        if self.mode not in MODES:
            raise JpqError(f"unknown fine-tuning mode {self.mode!r} (known: {', '.join(MODES)})")
        if self.scope not in SCOPES:
            raise JpqError(f"unknown sparsity scope {self.scope!r} (known: {', '.join(SCOPES)})")
        if self.schedule not in SCHEDULES:
            raise JpqError(f"unknown pruning schedule {self.schedule!r} (known: {', '.join(SCHEDULES)})")
        targets = self.sparsity.values() if isinstance(self.sparsity, Mapping) else [self.sparsity]
        for s in targets:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s < 1.0:
                raise JpqError(f"sparsity must lie in [0, 1), got {s!r}")
        if not 0.0 <= self.layer_floor < 1.0:
            raise JpqError(f"per-layer floor must lie in [0, 1), got {self.layer_floor}")
        check_budget(self.lut_budget)
        if isinstance(self.budget_passes, bool) or not isinstance(self.budget_passes, int) or self.budget_passes < 1:
            raise JpqError(f"budget passes must be an integer >= 1, got {self.budget_passes!r}")
        if self.lut_budget is not None:
            from ..target import get_target

            get_target(self.lut_target)
            if self.scope != "global" or isinstance(self.sparsity, Mapping) or self.layer_floor > 0:
                raise JpqError("a cell budget chooses every layer's sparsity itself: it does not combine with "
                               "per-layer sparsities, --scope layer or --layer-floor")
        check_bits("weight bits", self.weight_bits)
        check_bits("activation bits", self.act_bits)
        for what, widths in (("weight bits", self.layer_weight_bits), ("activation bits", self.layer_act_bits)):
            if widths is not None:
                if not isinstance(widths, Mapping):
                    raise JpqError(f"per-layer {what} must be a mapping {{layer name: bits}}, got {widths!r}")
                for name, b in widths.items():
                    check_bits(f"{what} of layer {name!r}", b)
        if self.widths not in WIDTHS:
            raise JpqError(f"unknown width choice {self.widths!r} (known: {', '.join(WIDTHS)})")
        if self.widths == "search" and self.lut_budget is None:
            raise JpqError("--widths search chooses the widths under a cell budget: give --lut-budget too")
        if self.csd_digits is not None and (isinstance(self.csd_digits, bool) or not isinstance(self.csd_digits, int)
                                            or self.csd_digits < 1):
            raise JpqError(f"the CSD digit budget must be an integer >= 1, got {self.csd_digits!r}")
        for name in ("prune_epochs", "qat_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise JpqError(f"{name.replace('_', ' ')} must be an integer >= 0, got {v!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise JpqError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
        if not isinstance(self.calib_size, int) or self.calib_size < 1:
            raise JpqError(f"calibration size must be an integer >= 1, got {self.calib_size!r}")
        if self.prune_optimizer not in ("sgd", "adam"):
            raise JpqError(f"unknown optimizer {self.prune_optimizer!r} (known: sgd, adam)")
        for name in ("prune_lr", "qat_lr"):
            if not getattr(self, name) > 0:
                raise JpqError(f"{name.replace('_', ' ')} must be > 0, got {getattr(self, name)!r}")
        Schedule(self.schedule, self.prune_steps, self.prune_begin, self.prune_end)
        QuantSpec(self.weight_bits, self.act_bits, self.csd_digits, self.input_bits, self.input_signed, self.input_exp)
        if not 0.0 <= self.blend_alpha <= 1.0:
            raise JpqError(f"blend weight alpha must lie in [0, 1], got {self.blend_alpha}")
        if not 0.0 <= self.taylor_beta < 1.0:
            raise JpqError(f"taylor EMA factor beta must lie in [0, 1), got {self.taylor_beta}")
        resolve_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))


@dataclass
class CompressResult:
    """What :func:`compress` produced."""

    qnet: QNet
    metrics: dict[str, Any]
    accuracies: dict[str, float]          # float, pruned, ptq (quantized before QAT), quantized (the QNet)
    model: nn.Module                      # the pruned float chain (a ChainModule of copies; masks squashed)
    quant_model: QuantNet
    masks: list[torch.Tensor]
    seconds: dict[str, float] = field(default_factory=dict)
    config: CompressConfig | None = None
    notes: list[str] = field(default_factory=list)  # how the model was read (BatchNorm folded, Softmax dropped)


def _check_data(data: Data, what: str, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise JpqError(f"{what} data must be a pair (x, y)")
    x, y = (torch.as_tensor(v) for v in data)
    if x.dim() < 2 or len(x) == 0:
        raise JpqError(f"{what} inputs must be a non-empty batch [N, ...], got shape {list(x.shape)}")
    if len(y) != len(x):
        raise JpqError(f"{what} data has {len(x)} inputs but {len(y)} labels")
    if x.dtype.is_floating_point and not torch.equal(x, torch.round(x)):
        raise JpqError(f"{what} inputs must be integers in the network's input format "
                       f"(quantize them first: x_int = round(x / 2**input_exp))")
    fmt = spec.input_format
    if int(x.min()) < fmt.lo or int(x.max()) > fmt.hi:
        raise JpqError(f"{what} inputs lie in [{int(x.min())}, {int(x.max())}], outside the "
                       f"{fmt.bits}-bit {'signed' if fmt.signed else 'unsigned'} input format [{fmt.lo}, {fmt.hi}]")
    return x, y.long()


def _subset(n: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 104729)
    return torch.randperm(n, generator=gen)[:min(k, n)].sort().values


def _calibration_inputs(x: torch.Tensor, config: CompressConfig) -> torch.Tensor:
    """The ``calib_size`` training inputs (a seeded subset) that every stage calibrates on."""
    return x[_subset(len(x), config.calib_size, config.seed)]


@dataclass
class PruneResult:
    """What :func:`prune` produced: the pruned float chain and its masks (stage 1)."""

    model: nn.Module                      # the pruned float chain (a ChainModule of copies; weight = mask * w)
    masks: list[torch.Tensor]             # 0/1 float, one per checkpoint layer, in chain order
    accuracies: dict[str, float]          # float (the model as given), pruned
    input_shape: tuple[int, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    config: CompressConfig | None = None
    notes: list[str] = field(default_factory=list)
    budget: dict[str, Any] | None = None  # with a cell budget: what was aimed at and reached
    scores: list[torch.Tensor] | None = None  # the criterion's last scores (a budget's later cuts use them)

    @property
    def names(self) -> list[str]:
        """The checkpoint layer names, in the order of :attr:`masks`."""
        return [b.name for b in self.model.blocks]  # type: ignore[union-attr]


@dataclass
class QuantizeResult:
    """What :func:`quantize` produced: the exported checkpoint network (stage 2)."""

    qnet: QNet
    quant_model: QuantNet
    accuracies: dict[str, float]          # ptq (calibrated, before QAT), quantized (the QNet)
    masks: list[torch.Tensor]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _Setup:
    """A model read as a chain, with its data as float and integer tensors on the training device."""

    model: nn.Module                      # the chain module (copies of the model's layers)
    blocks: list
    notes: list[str]
    spec: QuantSpec
    input_shape: tuple[int, ...]
    x_tr: torch.Tensor
    y_tr: torch.Tensor
    x_te: torch.Tensor
    y_te: torch.Tensor
    device: torch.device
    acc_float: float


def _setup(model: nn.Module, train_data: Data, test_data: Data, config: CompressConfig,
           say: Callable[[str], None]) -> _Setup:
    config.validate()
    spec = _spec(config)
    x_tr, y_tr = _check_data(train_data, "training", spec)
    x_te, y_te = _check_data(test_data, "test", spec)
    input_shape = tuple(int(s) for s in x_tr.shape[1:])
    if tuple(x_te.shape[1:]) != input_shape:
        raise JpqError(f"test inputs have shape {list(x_te.shape[1:])}, training inputs {list(input_shape)}")
    model = copy.deepcopy(model).float()
    if isinstance(model, ChainModule):  # already a chain (a PruneResult's model): its layer names are kept
        chain = Chain(list(model.blocks))
        check_chain(model, chain.blocks, input_shape)
    else:
        chain = read_chain(model, input_shape)
    for note in chain.notes:
        say(note)
    spec = _spec(config, [b.name for b in chain.blocks])
    acc_float = accuracy(model, (x_te.float() * 2.0 ** config.input_exp, y_te))  # the model as given
    device = resolve_device(config.device)
    return _Setup(chain.module().to(device), chain.blocks, list(chain.notes), spec, input_shape, x_tr, y_tr,
                  x_te, y_te, device, acc_float)


WIDTHS = ("fixed", "search")


def _spec(config: CompressConfig, names: Sequence[str] = ()) -> QuantSpec:
    """The :class:`QuantSpec` of ``config`` for layers ``names`` (per-layer widths resolved by name)."""
    layer_w: tuple[int, ...] = ()
    layer_a: tuple[int, ...] = ()
    for what, widths in (("weight bits", config.layer_weight_bits), ("activation bits", config.layer_act_bits)):
        if widths and names:
            unknown = sorted(set(widths) - set(names))
            if unknown:
                raise JpqError(f"{what} given for unknown layers {unknown} (layers: {', '.join(names)})")
            if what == "activation bits" and names[-1] in widths:
                raise JpqError(f"the last layer {names[-1]!r} has no activation width to set: its format holds "
                               "every possible logit")
    if config.layer_weight_bits and names:
        layer_w = tuple(int(config.layer_weight_bits.get(n, config.weight_bits)) for n in names)
    if config.layer_act_bits and names:
        layer_a = tuple(int(config.layer_act_bits.get(n, config.act_bits)) for n in names)
    return QuantSpec(config.weight_bits, config.act_bits, config.csd_digits, config.input_bits,
                     config.input_signed, config.input_exp, layer_w, layer_a)


def _weight_bits(config: CompressConfig, names: Sequence[str]) -> int | list[int]:
    spec = _spec(config, names)
    return [spec.w_bits(i) for i in range(len(names))] if spec.layer_weight_bits else config.weight_bits


def _sparsity_of(masks: Sequence[torch.Tensor]) -> float:
    return 1.0 - sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def prune(model: nn.Module, train_data: Data, test_data: Data, config: CompressConfig | None = None, *,
          progress: ProgressFn | None = None, log: Callable[[str], None] | None = None,
          aim: float | None = None) -> PruneResult:
    """Stage 1: prune a copy of the trained float ``model`` with fine-tuning (see the module docstring).

    Returns the pruned float chain and its masks; :func:`quantize` takes them (or masks of the
    user's own making) to stage 2. Data as :func:`compress` takes them. With a cell budget
    (``config.lut_budget``) the schedule aims at ``aim`` times the budget (default
    :data:`~jpq_hw.compress.cells.MARGIN`).
    """
    config = config or CompressConfig()
    say = log or (lambda msg: None)
    s = _setup(model, train_data, test_data, config, say)
    say(f"float accuracy {s.acc_float:.4f}")
    t0 = time.perf_counter()
    model, blocks = s.model, s.blocks
    scale = 2.0 ** config.input_exp
    float_train = (s.x_tr.float().to(s.device) * scale, s.y_tr.to(s.device))
    float_test = (s.x_te.float().to(s.device) * scale, s.y_te.to(s.device))
    torch.manual_seed(config.seed)
    criterion = make_criterion(config.criterion, beta=config.taylor_beta, alpha=config.blend_alpha, seed=config.seed)
    pruner = Pruner(blocks, criterion, mode=config.mode, scope=config.scope, floor=config.layer_floor,
                    sparsity=config.sparsity)
    schedule = Schedule(config.schedule, config.prune_steps, config.prune_begin, config.prune_end)
    observe = (lambda _i: pruner.observe()) if criterion.needs_gradients else None
    dense_w = [b.module.weight.detach().clone() for b in blocks]
    dense_b = [b.module.bias.detach().clone() if b.module.bias is not None else None for b in blocks]
    calib_int = _calibration_inputs(s.x_tr, config)
    budget = None
    if config.lut_budget is not None:
        from .budgeted import start_budget

        budget = start_budget(config, s, calib_int, say, aim)
    pruner.prepare()
    n_events = schedule.n_events(refresh=config.mode == "recover")

    def event(j: int, exclude: list[torch.Tensor] | None = None) -> None:
        """Pruning event ``j``: masks for the schedule's sparsity, or (with a budget) its cells."""
        if budget is None:
            pruner.step(pruner.target(schedule, j), exclude=exclude)
            return
        from .budgeted import budget_event

        budget_event(budget, pruner, schedule, j, n_events, exclude, say)

    if config.mode == "compensate":
        calib = calib_int.to(s.device).float() * scale
        for j in range(1, n_events + 1):
            if observe:
                gradient_pass(model, float_train, batch_size=config.batch_size, seed=config.seed + j,
                              after_backward=observe)
            # a weight whose input is 0 on every calibration sample would be refit to exactly 0: never keep one
            event(j, exclude=dead_weights(blocks, calib))
            compensate(blocks, dense_w, dense_b, pruner.masks, calib, damp=config.compensate_damp)
            pruner.drop_zeros()
            if progress:
                progress("prune", j, n_events)
    else:
        total = config.prune_epochs * steps_per_epoch(len(s.x_tr), config.batch_size)
        refresh = config.mode == "recover"
        events: dict[int, list[int]] = {}
        for j, t in enumerate(schedule.event_steps(total, refresh), start=1):
            events.setdefault(min(t, max(total - 1, 0)), []).append(j)
        freeze_at = schedule.freeze_step(total)
        if observe:
            gradient_pass(model, float_train, batch_size=config.batch_size, seed=config.seed, after_backward=observe)

        def before_step(step: int) -> None:
            for j in events.get(step, ()):
                event(j)
            if step == freeze_at and not pruner.frozen:
                pruner.freeze()

        if total == 0:
            for j in sorted(j for js in events.values() for j in js):
                event(j)
            pruner.freeze()
        else:
            hooks = Hooks(before_step=before_step, after_backward=observe, after_step=lambda _s: pruner.after_step())
            train(model, float_train, config.prune_epochs, batch_size=config.batch_size, lr=config.prune_lr,
                  weight_decay=config.weight_decay, seed=config.seed, hooks=hooks, optimizer=config.prune_optimizer,
                  progress=(lambda s_, n, _l: progress("prune", s_, n)) if progress else None)
            pruner.freeze()
    scores = [sc.detach().cpu() for sc in criterion.scores(pruner.shadows)]
    masks = pruner.squash()
    model.eval()
    acc_pruned = accuracy(model, float_test)
    model.cpu()
    say(f"pruned accuracy {acc_pruned:.4f} at sparsity {_sparsity_of(masks):.4f}")
    budget_info = None
    if budget is not None:
        budget_info = {"budget": budget.budget, "target": budget.target, "priced": budget.priced,
                       "aim": budget.margin, "pruned_cells": budget.history[-1]["cells"],
                       "measurements": list(budget.history)}
    return PruneResult(model=model, masks=[m.cpu() for m in masks],
                       accuracies={"float": s.acc_float, "pruned": acc_pruned}, input_shape=s.input_shape,
                       seconds={"prune": time.perf_counter() - t0}, config=config, notes=s.notes,
                       budget=budget_info, scores=scores)


def _layer_masks(masks: Sequence[torch.Tensor] | Mapping[str, torch.Tensor], blocks: Sequence) -> list[torch.Tensor]:
    """``masks`` (a list in chain order, or ``{layer name: mask}``) as 0/1 float tensors shaped like the weights."""
    names = [b.name for b in blocks]
    if isinstance(masks, Mapping):
        unknown = sorted(set(masks) - set(names))
        if unknown:
            raise JpqError(f"masks given for unknown layers {unknown} (layers: {', '.join(names)})")
        missing = [n for n in names if n not in masks]
        if missing:
            raise JpqError(f"no mask for layers {missing} (give one per layer: {', '.join(names)})")
        masks = [masks[n] for n in names]
    masks = list(masks)
    if len(masks) != len(blocks):
        raise JpqError(f"got {len(masks)} masks for {len(blocks)} layers ({', '.join(names)})")
    out = []
    for b, m in zip(blocks, masks):
        m = torch.as_tensor(m).detach().cpu()
        shape = tuple(b.module.weight.shape)
        if m.numel() != b.module.weight.numel():
            raise JpqError(f"layer {b.name!r}: mask of shape {list(m.shape)} for a weight of shape {list(shape)}")
        m = m.reshape(shape)
        if not bool(((m == 0) | (m == 1)).all()):
            raise JpqError(f"layer {b.name!r}: a mask must hold only 0 and 1 (or False / True)")
        out.append(m.float())
    return out


def quantize(model: nn.Module, masks: Sequence[torch.Tensor] | Mapping[str, torch.Tensor], train_data: Data,
             test_data: Data, config: CompressConfig | None = None, *, meta: Mapping[str, Any] | None = None,
             progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> QuantizeResult:
    """Stage 2: quantize ``model`` (a float model, e.g. :attr:`PruneResult.model`) with ``masks`` held.

    ``masks``: one 0/1 tensor per checkpoint layer (a list in chain order, or ``{layer name: mask}``);
    a weight outside its mask becomes 0 and stays 0. Calibration, QAT, export and (with
    ``config.verify``) the bit-exactness checks, as the module docstring says; ``meta`` goes into
    the exported :class:`~jpq_hw.ir.QNet`. Data as :func:`compress` takes them.
    """
    config = config or CompressConfig()
    say = log or (lambda msg: None)
    s = _setup(model, train_data, test_data, config, say)
    layer_masks = _layer_masks(masks, s.blocks)
    t0 = time.perf_counter()
    device = s.device
    torch.manual_seed(config.seed + 1)
    qmodel = QuantNet(s.blocks, layer_masks, s.spec).to(device)
    calib_x = _calibration_inputs(s.x_tr, config).double().to(device)
    qmodel.calibrate(calib_x)
    int_test = (s.x_te.double().to(device), s.y_te.to(device))
    acc_ptq = accuracy(lambda x: qmodel.forward_int(x), int_test)
    if config.qat_epochs > 0:
        def recalibrate(epoch: int) -> None:
            if epoch > 0:
                qmodel.calibrate(calib_x)

        train(qmodel, (s.x_tr.float().to(device), s.y_tr.to(device)), config.qat_epochs,
              batch_size=config.batch_size, lr=config.qat_lr, weight_decay=config.weight_decay, seed=config.seed + 1,
              hooks=Hooks(before_epoch=recalibrate),
              progress=(lambda s_, n, _l: progress("qat", s_, n)) if progress else None)
    qmodel.eval()
    qmodel.cpu()  # export and its exact checks in float64 on the CPU
    seconds = {"quantize": time.perf_counter() - t0}
    t0 = time.perf_counter()
    qnet = to_qnet(qmodel, s.input_shape, dict(meta or {"config": config.to_dict()}))
    x_te_np = s.x_te.numpy().astype(np.int64)
    if config.verify:
        rng = np.random.default_rng(config.seed)
        fmt = s.spec.input_format
        x_rand = rng.integers(fmt.lo, fmt.hi, size=(256, *s.input_shape), endpoint=True)
        check_exact(qmodel, qnet, x_te_np)
        check_exact(qmodel, qnet, x_rand)
    logits = run_reference(qnet, x_te_np)
    acc_q = float(np.mean(logits.reshape(len(logits), -1).argmax(axis=1) == s.y_te.numpy()))
    seconds["export"] = time.perf_counter() - t0
    say(f"quantized accuracy {acc_q:.4f}")
    return QuantizeResult(qnet=qnet, quant_model=qmodel, accuracies={"ptq": acc_ptq, "quantized": acc_q},
                          masks=layer_masks, seconds=seconds)


def compress(model: nn.Module, train_data: Data, test_data: Data, config: CompressConfig | None = None, *,
             progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> CompressResult:
    """Prune, quantize and export ``model`` (left unchanged: a copy is compressed); see the module docstring.

    ``train_data`` / ``test_data`` are ``(x_int, y)``: integer inputs in the configured input format
    (shape ``[N, *input_shape]``) and class labels. Accuracy is top-1 (argmax, first index on ties).
    This is :func:`prune` then :func:`quantize`.
    """
    config = config or CompressConfig()
    config.validate()
    search = None
    if config.widths == "search":
        from .widths import config_with, proxy_evaluator, search_widths, start_widths

        names = [b.name for b in _setup(model, train_data, test_data, config, lambda msg: None).blocks]
        chosen, trials = search_widths(start_widths(config, names),
                                       proxy_evaluator(model, train_data, config, names), names, log=log)
        config = config_with(config, names, chosen)
        search = {"weight_bits": dict(zip(names, chosen.weight)), "act_bits": dict(zip(names[:-1], chosen.act)),
                  "trials": trials}
    if config.lut_budget is None:
        pruned = prune(model, train_data, test_data, config, progress=progress, log=log)
        quant = quantize(pruned.model, pruned.masks, train_data, test_data, config, progress=progress, log=log)
    else:
        from .budgeted import compress_to_budget

        pruned, quant = compress_to_budget(model, train_data, test_data, config, progress=progress, log=log)
    t0 = time.perf_counter()
    qnet = quant.qnet
    metrics = compute_metrics(qnet, _weight_bits(config, [layer.name for layer in qnet.layers]), adders=config.adders)
    seconds = {**pruned.seconds, **quant.seconds, "metrics": time.perf_counter() - t0}
    accuracies = {**pruned.accuracies, **quant.accuracies}
    metrics["accuracy"] = dict(accuracies)
    if pruned.budget is not None:
        metrics["budget"] = dict(pruned.budget)
    if search is not None:
        metrics["width_search"] = search
    meta = {
        "config": config.to_dict(),
        "model_notes": list(pruned.notes),
        "device": str(resolve_device(config.device)),
        "accuracy": dict(accuracies),
        "float_accuracy": accuracies["float"], "pruned_accuracy": accuracies["pruned"],
        "int_accuracy": accuracies["quantized"],
        "sparsity": {layer.name: layer.sparsity for layer in qnet.layers},
        "nnz": {layer.name: layer.nnz for layer in qnet.layers},
        "metrics": {k: v for k, v in metrics.items() if k != "layers"},
    }
    if pruned.budget is not None:
        meta["budget"] = dict(pruned.budget)
    if search is not None:
        meta["width_search"] = search
    qnet = to_qnet(quant.quant_model, pruned.input_shape, meta)  # the exponents and widths added to meta
    return CompressResult(qnet=qnet, metrics=metrics, accuracies=accuracies, model=pruned.model,
                          quant_model=quant.quant_model, masks=pruned.masks, seconds=seconds, config=config,
                          notes=list(pruned.notes))


def resolve_device(name: str) -> torch.device:
    """The torch device of ``CompressConfig.device``: ``auto`` is CUDA where there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise JpqError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JpqError(f"device {name!r}: torch sees no CUDA device here")
    return device


def config_for_example(name: str, **overrides: Any) -> CompressConfig:
    """A :class:`CompressConfig` with the input format of example ``name`` and the given overrides."""
    from .models import get_example

    ex = get_example(name)
    cfg = CompressConfig(input_bits=ex.input_bits, input_signed=ex.input_signed, input_exp=ex.input_exp,
                         batch_size=ex.batch_size)
    return dataclasses.replace(cfg, **overrides)


def train_float(name: str, train_data: Data, *, epochs: int | None = None, seed: int = 0,
                progress: ProgressFn | None = None, device: str = "cpu") -> nn.Module:
    """Build and train example ``name``'s float model on integer inputs ``train_data`` (seeded), on
    ``device`` (as :func:`resolve_device` reads it); the model is returned on the CPU."""
    from .models import build_example, get_example

    ex = get_example(name)
    dev = resolve_device(device)
    model = build_example(name, seed).to(dev)
    x, y = train_data
    torch.manual_seed(seed)
    train(model, ((x.float() * 2.0 ** ex.input_exp).to(dev), y.to(dev)), ex.epochs if epochs is None else epochs,
          batch_size=ex.batch_size, lr=ex.lr, seed=seed,
          progress=(lambda s, n, _l: progress("float", s, n)) if progress else None)
    return model.cpu()
