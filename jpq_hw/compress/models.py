"""Example models, their data, and the training / evaluation helpers every stage uses.

Examples (:data:`EXAMPLES`), all on sklearn's 8x8 digits with the fixed split of
:func:`jpq_hw.datasets.load_digits_split`. The network input is the raw pixel value 0..16 as an
unsigned 5-bit integer; the float model sees ``pixel * 2**-4`` (``input_exp = -4``):

``digits-mlp``
    64-32-10 ReLU MLP (2,368 weights), sized for an iCE40 UP5K.
``digits-wide``
    64-256-256-10 ReLU MLP (84,480 weights), over-parameterised for the extreme-sparsity regime.
``digits-cnn``
    input [1, 8, 8]: conv3x3(8, padding 1) - ReLU - conv3x3(16, stride 2, padding 1) - ReLU -
    flatten - linear(10).

:func:`train` minimises cross-entropy with Adam (float training, QAT) or SGD with Nesterov momentum
(the pruning stage's default), a cosine learning-rate decay to zero over the run, and mini-batches
drawn in an order fixed by ``seed``; hooks let the pruning stage act at given steps.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import JpqError

Data = tuple[torch.Tensor, torch.Tensor]
"""``(x, y)``: inputs [N, ...] (float) and integer labels [N]."""


@dataclass(frozen=True)
class Example:
    """A shipped example: how to build its float model, its input format and training defaults."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    input_bits: int
    input_signed: bool
    input_exp: int
    build: Callable[[], nn.Module]
    epochs: int = 60
    lr: float = 3e-3
    batch_size: int = 64
    sparsity: float = 0.85  # the defaults of --sparsity and --act-bits for this example
    act_bits: int = 8


def _mlp(sizes: list[int]) -> nn.Module:
    layers: dict[str, nn.Module] = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers[f"fc{i}"] = nn.Linear(a, b)
        if i < len(sizes) - 1:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(OrderedDict(layers))


def _cnn() -> nn.Module:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 8, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)), ("relu2", nn.ReLU()),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(16 * 4 * 4, 10))]))


EXAMPLES: dict[str, Example] = {
    "digits-mlp": Example("digits-mlp", "64-32-10 ReLU MLP on sklearn 8x8 digits (raw pixels 0..16, unsigned 5-bit)",
                          (64,), 5, False, -4, lambda: _mlp([64, 32, 10]), epochs=60),
    "digits-wide": Example("digits-wide", "64-256-256-10 ReLU MLP on sklearn 8x8 digits (over-parameterised)",
                           (64,), 5, False, -4, lambda: _mlp([64, 256, 256, 10]), epochs=40, lr=1e-3),
    "digits-cnn": Example("digits-cnn", "conv3x3(8)-relu-conv3x3/2(16)-relu-flatten-linear(10) on 8x8 digits [1, 8, 8]",
                          (1, 8, 8), 5, False, -4, _cnn, epochs=30, sparsity=0.95, act_bits=4),  # fits an iCE40 UP5K
}


def get_example(name: str) -> Example:
    if name not in EXAMPLES:
        raise JpqError(f"unknown example {name!r} (known: {', '.join(EXAMPLES)})")
    return EXAMPLES[name]


def build_example(name: str, seed: int = 0) -> nn.Module:
    """A freshly initialised float model of example ``name`` (weights drawn with ``seed``)."""
    ex = get_example(name)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ex.build()


def example_data(name: str) -> tuple[Data, Data]:
    """``(train, test)`` for example ``name``: integer inputs (as int64) in the example's input shape."""
    from ..datasets import load_digits_split

    ex = get_example(name)
    try:
        x_tr, y_tr, x_te, y_te = load_digits_split()
    except ImportError as e:
        raise JpqError(f"the digits examples need scikit-learn ({e}); pip install scikit-learn") from None
    shape = (-1, *ex.input_shape)
    return ((torch.from_numpy(x_tr).reshape(shape), torch.from_numpy(y_tr)),
            (torch.from_numpy(x_te).reshape(shape), torch.from_numpy(y_te)))


@dataclass
class Hooks:
    """Optional callbacks of :func:`train`, each given the global step index.

    ``before_step`` runs before the forward pass of a step (pruning events), ``after_backward``
    after ``loss.backward()`` (criteria observe gradients), ``after_step`` after the optimizer step,
    ``before_epoch`` with the epoch index (calibration).
    """

    before_step: Callable[[int], None] | None = None
    after_backward: Callable[[int], None] | None = None
    after_step: Callable[[int], None] | None = None
    before_epoch: Callable[[int], None] | None = None


@dataclass
class TrainStats:
    steps: int = 0
    losses: list[float] = field(default_factory=list)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def train(model: nn.Module, data: Data, epochs: int, *, batch_size: int = 64, lr: float = 3e-3,
          weight_decay: float = 0.0, seed: int = 0, hooks: Hooks | None = None, optimizer: str = "adam",
          progress: Callable[[int, int, float], None] | None = None) -> TrainStats:
    """Adam, or SGD with Nesterov momentum 0.9 (``optimizer="sgd"``), on cross-entropy with a cosine
    learning-rate decay to 0 over the run; deterministic for a given ``seed``.

    ``progress(step, total_steps, loss)`` is called after every step.
    """
    x, y = data
    hooks = hooks or Hooks()
    stats = TrainStats()
    if epochs <= 0:
        return stats
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    else:
        raise JpqError(f"unknown optimizer {optimizer!r} (known: adam, sgd)")
    per_epoch = steps_per_epoch(len(x), batch_size)
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    step = 0
    for epoch in range(epochs):
        if hooks.before_epoch:
            hooks.before_epoch(epoch)
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            if hooks.before_step:
                hooks.before_step(step)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            if hooks.after_backward:
                hooks.after_backward(step)
            opt.step()
            sched.step()
            if hooks.after_step:
                hooks.after_step(step)
            step += 1
            lv = float(loss.detach())
            stats.losses.append(lv)
            if progress:
                progress(step, total, lv)
    stats.steps = step
    model.eval()
    return stats


def gradient_pass(model: nn.Module, data: Data, *, batch_size: int = 64, seed: int = 0,
                  after_backward: Callable[[int], None] | None = None, max_batches: int | None = None) -> None:
    """Forward and backward over mini-batches without updating anything (e.g. to score weights)."""
    x, y = data
    gen = torch.Generator().manual_seed(seed + 7919)
    model.train()
    for i, idx in enumerate(torch.randperm(len(x), generator=gen).split(batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        if after_backward:
            after_backward(i)
    model.zero_grad(set_to_none=True)
    model.eval()


@torch.no_grad()
def predict(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
            batch_size: int = 1024) -> torch.Tensor:
    """``argmax`` of the model's outputs (first index on ties), in batches."""
    if isinstance(model, nn.Module):
        model.eval()
    outs = [model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(outs)


def accuracy(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], data: Data) -> float:
    """Fraction of ``data`` classified correctly."""
    x, y = data
    return float((predict(model, x) == y).double().mean())
