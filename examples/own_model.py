"""Compress your own PyTorch model with the Python API, then lower it: the README's example.

    python examples/own_model.py [--epochs 40] [-o own.pt]

The model is a plain ``nn.Sequential`` of Linear / ReLU layers (Conv2d and Flatten work too). Data
are integer inputs in the network's input format (here the raw 0..16 pixels of sklearn's digits,
unsigned 5-bit, which the float model sees as ``x * 2**-4``) and class labels.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from jpq_hw.compress import CompressConfig, compress
from jpq_hw.compress.models import train
from jpq_hw.datasets import load_digits_split
from jpq_hw.flow import lower
from jpq_hw.ir import save_checkpoint


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40, help="float training epochs")
    ap.add_argument("--prune-epochs", type=int, default=30)
    ap.add_argument("--qat-epochs", type=int, default=10)
    ap.add_argument("-o", "--output", default="own.pt")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    x_train, y_train, x_test, y_test = load_digits_split()
    train_data = (torch.tensor(x_train), torch.tensor(y_train))
    test_data = (torch.tensor(x_test), torch.tensor(y_test))

    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    train(model, (train_data[0].float() / 16, train_data[1]), epochs=args.epochs)

    config = CompressConfig(criterion="taylor", mode="recover", sparsity=0.9, weight_bits=6, act_bits=8,
                            input_bits=5, input_signed=False, input_exp=-4,
                            prune_epochs=args.prune_epochs, qat_epochs=args.qat_epochs)
    result = compress(model, train_data, test_data, config)
    save_checkpoint(result.qnet, args.output)

    design = lower(result.qnet)  # what `jpq-hw lower` does, without writing files
    print(f"accuracy: {result.accuracies}")
    print(f"sparsity {result.metrics['sparsity']:.3f}, {result.qnet.nnz} nonzero weights, "
          f"{design.graph.stats()['adders']} adders, about {design.cost.total('lut4')} SB_LUT4; wrote {args.output}")
    return {"accuracies": result.accuracies, "adders": design.graph.stats()["adders"]}


if __name__ == "__main__":
    main()
