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
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import JpqError
from ..ir.qnet import QNet
from ..reference import run_reference
from .chain import read_chain
from .compensate import compensate
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
    # quantization stage
    weight_bits: int = 6                 # 2 = ternary {-1, 0, +1} * 2**e
    act_bits: int = 8
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
        check_bits("weight bits", self.weight_bits)
        check_bits("activation bits", self.act_bits)
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


def compress(model: nn.Module, train_data: Data, test_data: Data, config: CompressConfig | None = None, *,
             progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> CompressResult:
    """Prune, quantize and export ``model`` (left unchanged: a copy is compressed); see the module docstring.

    ``train_data`` / ``test_data`` are ``(x_int, y)``: integer inputs in the configured input format
    (shape ``[N, *input_shape]``) and class labels. Accuracy is top-1 (argmax, first index on ties).
    """
    config = config or CompressConfig()
    config.validate()
    say = log or (lambda msg: None)
    seconds: dict[str, float] = {}
    spec = QuantSpec(config.weight_bits, config.act_bits, config.csd_digits, config.input_bits,
                     config.input_signed, config.input_exp)
    x_tr, y_tr = _check_data(train_data, "training", spec)
    x_te, y_te = _check_data(test_data, "test", spec)
    input_shape = tuple(int(s) for s in x_tr.shape[1:])
    if tuple(x_te.shape[1:]) != input_shape:
        raise JpqError(f"test inputs have shape {list(x_te.shape[1:])}, training inputs {list(input_shape)}")

    model = copy.deepcopy(model).float()
    chain = read_chain(model, input_shape)
    for note in chain.notes:
        say(note)
    scale = 2.0 ** config.input_exp
    float_train = (x_tr.float() * scale, y_tr)
    float_test = (x_te.float() * scale, y_te)
    acc_float = accuracy(model, float_test)  # the model as given
    say(f"float accuracy {acc_float:.4f}")
    device = resolve_device(config.device)
    blocks = chain.blocks
    model = chain.module().to(device)  # from here on: the chain (BatchNorm folded, final Softmax dropped) is trained
    float_train = tuple(t.to(device) for t in float_train)
    float_test = tuple(t.to(device) for t in float_test)

    # ------------------------------------------------------------------ stage 1: pruning
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    criterion = make_criterion(config.criterion, beta=config.taylor_beta, alpha=config.blend_alpha, seed=config.seed)
    pruner = Pruner(blocks, criterion, mode=config.mode, scope=config.scope, floor=config.layer_floor,
                    sparsity=config.sparsity)
    schedule = Schedule(config.schedule, config.prune_steps, config.prune_begin, config.prune_end)
    observe = (lambda _i: pruner.observe()) if criterion.needs_gradients else None
    dense_w = [b.module.weight.detach().clone() for b in blocks]
    dense_b = [b.module.bias.detach().clone() if b.module.bias is not None else None for b in blocks]
    pruner.prepare()
    if config.mode == "compensate":
        calib = float_train[0][_subset(len(x_tr), config.calib_size, config.seed)]
        n_events = schedule.n_events(refresh=False)
        for j in range(1, n_events + 1):
            if observe:
                gradient_pass(model, float_train, batch_size=config.batch_size, seed=config.seed + j,
                              after_backward=observe)
            pruner.step(pruner.target(schedule, j))
            compensate(blocks, dense_w, dense_b, pruner.masks, calib, damp=config.compensate_damp)
            if progress:
                progress("prune", j, n_events)
    else:
        total = config.prune_epochs * steps_per_epoch(len(x_tr), config.batch_size)
        refresh = config.mode == "recover"
        events: dict[int, list[int]] = {}
        for j, t in enumerate(schedule.event_steps(total, refresh), start=1):
            events.setdefault(min(t, max(total - 1, 0)), []).append(j)
        freeze_at = schedule.freeze_step(total)
        if observe:
            gradient_pass(model, float_train, batch_size=config.batch_size, seed=config.seed, after_backward=observe)

        def before_step(step: int) -> None:
            for j in events.get(step, ()):
                pruner.step(pruner.target(schedule, j))
            if step == freeze_at and not pruner.frozen:
                pruner.freeze()

        if total == 0:
            for j in sorted(j for js in events.values() for j in js):
                pruner.step(pruner.target(schedule, j))
            pruner.freeze()
        else:
            hooks = Hooks(before_step=before_step, after_backward=observe, after_step=lambda _s: pruner.after_step())
            train(model, float_train, config.prune_epochs, batch_size=config.batch_size, lr=config.prune_lr,
                  weight_decay=config.weight_decay, seed=config.seed, hooks=hooks, optimizer=config.prune_optimizer,
                  progress=(lambda s, n, _l: progress("prune", s, n)) if progress else None)
            pruner.freeze()
    masks = pruner.squash()
    model.eval()
    acc_pruned = accuracy(model, float_test)
    seconds["prune"] = time.perf_counter() - t0
    say(f"pruned accuracy {acc_pruned:.4f} at sparsity {1 - sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks):.4f}")

    # ------------------------------------------------------------------ stage 2: quantization
    t0 = time.perf_counter()
    torch.manual_seed(config.seed + 1)
    qmodel = QuantNet(blocks, masks, spec).to(device)
    calib_x = x_tr[_subset(len(x_tr), config.calib_size, config.seed)].double().to(device)
    qmodel.calibrate(calib_x)
    int_test = (x_te.double().to(device), y_te.to(device))
    acc_ptq = accuracy(lambda x: qmodel.forward_int(x), int_test)
    if config.qat_epochs > 0:
        def recalibrate(epoch: int) -> None:
            if epoch > 0:
                qmodel.calibrate(calib_x)

        train(qmodel, (x_tr.float().to(device), y_tr.to(device)), config.qat_epochs, batch_size=config.batch_size,
              lr=config.qat_lr,
              weight_decay=config.weight_decay, seed=config.seed + 1, hooks=Hooks(before_epoch=recalibrate),
              progress=(lambda s, n, _l: progress("qat", s, n)) if progress else None)
    qmodel.eval()
    qmodel.cpu()  # export and its exact checks in float64 on the CPU
    model.cpu()
    seconds["quantize"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ export and checks
    t0 = time.perf_counter()
    meta = {"config": config.to_dict()}
    qnet = to_qnet(qmodel, input_shape, meta)
    x_te_np = x_te.numpy().astype(np.int64)
    if config.verify:
        rng = np.random.default_rng(config.seed)
        fmt = spec.input_format
        x_rand = rng.integers(fmt.lo, fmt.hi, size=(256, *input_shape), endpoint=True)
        check_exact(qmodel, qnet, x_te_np)
        check_exact(qmodel, qnet, x_rand)
    logits = run_reference(qnet, x_te_np)
    acc_q = float(np.mean(logits.reshape(len(logits), -1).argmax(axis=1) == y_te.numpy()))
    seconds["export"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = compute_metrics(qnet, config.weight_bits, adders=config.adders)
    seconds["metrics"] = time.perf_counter() - t0
    accuracies = {"float": acc_float, "pruned": acc_pruned, "ptq": acc_ptq, "quantized": acc_q}
    metrics["accuracy"] = dict(accuracies)
    meta = {
        "config": config.to_dict(),
        "model_notes": list(chain.notes),
        "device": str(device),
        "accuracy": dict(accuracies),
        "float_accuracy": acc_float, "pruned_accuracy": acc_pruned, "int_accuracy": acc_q,
        "sparsity": {layer.name: layer.sparsity for layer in qnet.layers},
        "nnz": {layer.name: layer.nnz for layer in qnet.layers},
        "metrics": {k: v for k, v in metrics.items() if k != "layers"},
    }
    qnet = to_qnet(qmodel, input_shape, meta)
    say(f"quantized accuracy {acc_q:.4f}")
    return CompressResult(qnet=qnet, metrics=metrics, accuracies=accuracies, model=model, quant_model=qmodel,
                          masks=[m.cpu() for m in masks], seconds=seconds, config=config, notes=list(chain.notes))


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
