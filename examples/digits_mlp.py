"""Train, prune and quantize the shipped ``digits-mlp`` example: a 64-32-10 ReLU MLP on 8x8 digits.

    python examples/digits_mlp.py [-o examples/digits-mlp.pt]

Steps (seeded, deterministic on CPU; about 5 seconds on one core):

1. train a float MLP ``z = W2 relu(W1 x/16 + b1) + b2`` on the raw pixels ``x`` (0..16) of
   :func:`jpq_hw.datasets.load_digits_split` (cross-entropy with a small L1 penalty on the weights);
2. magnitude-prune each weight matrix to ``SPARSITY`` (the smallest ``|w|`` of each layer are zeroed)
   and fine-tune with the masks held;
3. quantize with power-of-two scales and write a version-1 checkpoint (contract.md section 1):
   the input is the raw pixel (unsigned 5-bit, scale ``2**-4``); weights are signed 6-bit with one
   scale ``2**e_w`` per layer, the finest that does not clip (rounding zeroes a few more weights, so
   the stored sparsity can exceed ``SPARSITY``); biases are in accumulator units (rounded); the
   hidden activation is unsigned 8-bit after ReLU with scale ``2**e_h``, the finest that holds the
   largest float hidden value on the training split, so ``fc1.shift = e_h - (e_in + e_w1)``; the
   logits are signed ``OUT_BITS``-bit and ``fc2.shift`` is the smallest that keeps every possible
   accumulator (any uint8 hidden vector) inside that range, so the logits never saturate.

This is a plain prune-and-round baseline; the integer accuracy is that of
:func:`jpq_hw.reference.run_reference` on the test split (argmax of the logits, first index on ties).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from jpq_hw.datasets import DIGITS_SPLIT, load_digits_split  # noqa: E402
from jpq_hw.ir import IntFormat, QLayer, QNet, save_checkpoint  # noqa: E402
from jpq_hw.reference import run_reference  # noqa: E402

SEED = 0
SPARSITY = 0.85          # fraction of zero weights in each layer
IN_EXP = -4              # the float model's input is pixel * 2**IN_EXP
IN_FMT = IntFormat(5, signed=False)
W_FMT = IntFormat(6, signed=True)
H_FMT = IntFormat(8, signed=False)
OUT_BITS = 16
EPOCHS, FINETUNE_EPOCHS, BATCH, LR, L1 = 60, 100, 64, 3e-3, 1e-4


class MLP(nn.Module):
    """64-32-10 ReLU MLP on raw pixels; the input scaling ``2**IN_EXP`` is part of the model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc1(x * 2.0 ** IN_EXP))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden(x))


def train(model: MLP, x: torch.Tensor, y: torch.Tensor, epochs: int,
          masks: dict[str, torch.Tensor] | None = None) -> None:
    """Adam with a cosine learning-rate decay on cross-entropy + ``L1 * sum|w|`` (weights only),
    minibatches in a seeded order; ``masks`` (0/1 per weight) are re-applied after every step."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(len(x) / BATCH))
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            l1 = model.fc1.weight.abs().sum() + model.fc2.weight.abs().sum()
            (nn.functional.cross_entropy(model(x[idx]), y[idx]) + L1 * l1).backward()
            opt.step()
            sched.step()
            if masks:
                with torch.no_grad():
                    for name, mask in masks.items():
                        getattr(model, name).weight.mul_(mask)


def prune_masks(model: MLP, sparsity: float) -> dict[str, torch.Tensor]:
    """Per layer, a 0/1 mask keeping the ``round((1 - sparsity) * size)`` largest ``|w|``."""
    masks = {}
    for name in ("fc1", "fc2"):
        w = getattr(model, name).weight.detach()
        keep = round((1.0 - sparsity) * w.numel())
        mask = torch.zeros(w.numel())
        mask[w.abs().flatten().argsort(descending=True)[:keep]] = 1.0
        masks[name] = mask.view_as(w)
        with torch.no_grad():
            getattr(model, name).weight.mul_(masks[name])
    return masks


def float_accuracy(model: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy of the float model: correct / total (argmax of the float logits)."""
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum()) / len(y)


def int_accuracy(qnet: QNet, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of the integer network: argmax of :func:`run_reference`'s logits."""
    return int(np.sum(run_reference(qnet, x).argmax(axis=1) == y)) / len(y)


def pow2_exp(max_abs: float, max_int: int) -> int:
    """The smallest ``e`` with ``max_abs / 2**e <= max_int`` (the finest scale that does not clip)."""
    return math.ceil(math.log2(max_abs / max_int))


def quantize(model: MLP, x_train: torch.Tensor) -> tuple[QNet, dict[str, int]]:
    """The integer network for ``model`` and the exponents of its power-of-two scales."""
    w1, b1 = model.fc1.weight.detach().double(), model.fc1.bias.detach().double()
    w2, b2 = model.fc2.weight.detach().double(), model.fc2.bias.detach().double()
    with torch.no_grad():
        h_max = float(model.hidden(x_train).max())
    e_w1 = pow2_exp(float(w1.abs().max()), W_FMT.hi)
    e_w2 = pow2_exp(float(w2.abs().max()), W_FMT.hi)
    e_h = pow2_exp(h_max, H_FMT.hi)
    e_acc1, e_acc2 = IN_EXP + e_w1, e_h + e_w2

    def ints(t: torch.Tensor, e: int, fmt: IntFormat | None = None) -> np.ndarray:
        q = torch.round(t / 2.0 ** e)
        if fmt is not None:
            q = q.clamp(fmt.lo, fmt.hi)
        return q.numpy().astype(np.int64)

    q1, q2 = ints(w1, e_w1, W_FMT), ints(w2, e_w2, W_FMT)
    bias1, bias2 = ints(b1, e_acc1), ints(b2, e_acc2)
    shift1 = e_h - e_acc1
    assert shift1 >= 0, "hidden scale finer than the fc1 accumulator"
    # worst case |acc2| over every uint8 hidden vector, then the smallest shift that fits OUT_BITS
    bound = int((np.abs(bias2) + np.clip(q2, 0, None).sum(1) * H_FMT.hi).max())
    bound = max(bound, int((np.abs(bias2) + np.clip(-q2, 0, None).sum(1) * H_FMT.hi).max()))
    shift2 = 0
    while ((bound + (1 << shift2 >> 1)) >> shift2) > (1 << (OUT_BITS - 1)) - 1:
        shift2 += 1
    layers = (
        QLayer("fc1", "linear", q1, bias1, shift1, relu=True, out=H_FMT),
        QLayer("fc2", "linear", q2, bias2, shift2, relu=False, out=IntFormat(OUT_BITS, signed=True)),
    )
    exps = {"input": IN_EXP, "fc1.weight": e_w1, "fc1.acc": e_acc1, "fc1.out": e_h,
            "fc2.weight": e_w2, "fc2.acc": e_acc2, "fc2.out": e_acc2 + shift2}
    return QNet((64,), IN_FMT, layers), exps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("digits-mlp.pt")))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(1)  # the matrices are tiny: extra threads only spin, badly so on a busy machine
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)

    x_train, y_train, x_test, y_test = load_digits_split()
    xt, yt = torch.from_numpy(x_train).float(), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_test).float(), torch.from_numpy(y_test)

    model = MLP()
    train(model, xt, yt, EPOCHS)
    acc_float = float_accuracy(model, xv, yv)
    masks = prune_masks(model, SPARSITY)
    train(model, xt, yt, FINETUNE_EPOCHS, masks)
    acc_pruned = float_accuracy(model, xv, yv)
    qnet, exps = quantize(model, xt)
    acc_int = int_accuracy(qnet, x_test, y_test)

    meta = {
        "description": "digits-mlp: 64-32-10 ReLU MLP on sklearn 8x8 digits (raw pixels 0..16), "
                       f"magnitude-pruned to {SPARSITY:.0%} per layer, power-of-two quantized "
                       "(6-bit weights, 8-bit hidden); produced by examples/digits_mlp.py",
        "dataset": "sklearn.datasets.load_digits",
        "split": DIGITS_SPLIT,
        "seed": SEED,
        "float_accuracy": acc_float,
        "pruned_accuracy": acc_pruned,
        "int_accuracy": acc_int,
        "sparsity": {layer.name: layer.sparsity for layer in qnet.layers},
        "nnz": {layer.name: layer.nnz for layer in qnet.layers},
        "scale_exponents": exps,
        "scales": {k: 2.0 ** e for k, e in exps.items()},
        "train": {"epochs": EPOCHS, "finetune_epochs": FINETUNE_EPOCHS, "batch": BATCH, "lr": LR,
                  "l1": L1, "optimizer": "adam, cosine lr decay", "prune": "per-layer magnitude, one shot"},
    }
    qnet = QNet(qnet.input_shape, qnet.input, qnet.layers, meta)
    save_checkpoint(qnet, args.output)

    print(f"accuracy (test, {len(y_test)}): float {acc_float:.4f}  pruned {acc_pruned:.4f}  int {acc_int:.4f}")
    for layer in qnet.layers:
        print(f"{layer.name}: {list(layer.weight.shape)} nnz {layer.nnz} sparsity {layer.sparsity:.4f} "
              f"shift {layer.shift} out {'s' if layer.out.signed else 'u'}{layer.out.bits}")
    print(f"scale exponents {exps}")
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
