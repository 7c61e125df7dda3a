"""Your own model on the command line: ``jpq-hw compress --model examples/user_model.py:build``.

    jpq-hw compress --model examples/user_model.py:build -o my.pt --sparsity 0.9
    jpq-hw lower my.pt --target ice40 -o out/my

``build()`` trains a small float model and returns it with its data as a
:class:`jpq_hw.compress.UserModel`; ``jpq-hw compress`` then prunes, quantizes and writes the
checkpoint. Copy this file and change the model, the data and the input format.

Here the data are sklearn's 8x8 digits (shipped with scikit-learn: nothing is downloaded) at a
coarser input format than the shipped examples (5-bit pixels 0..16): each pixel becomes an unsigned
*4-bit* integer ``x = pixel // 2`` (0..8), and the float model sees ``x * 2**-3`` (``input_exp = -3``). The
model is 64-24-10 with a BatchNorm after the first layer (``jpq-hw compress`` folds it into that
layer). Training is seeded and takes a few seconds on one CPU core.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from jpq_hw.compress import UserModel
from jpq_hw.datasets import load_digits_split

INPUT_BITS, INPUT_SIGNED, INPUT_EXP = 4, False, -3   # x in 0..15; the float model sees x * 2**-3
EPOCHS = 30


def to_input(pixels) -> torch.Tensor:
    """Pixels 0..16 -> the network's integer input: unsigned 4-bit, 0..8."""
    return torch.as_tensor(pixels) // 2


def build() -> UserModel:
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = load_digits_split()
    train = (to_input(x_train), torch.as_tensor(y_train))
    test = (to_input(x_test), torch.as_tensor(y_test))

    model = nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(64, 24)), ("bn1", nn.BatchNorm1d(24)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(24, 10))]))
    # plain float training on x * 2**INPUT_EXP: any training loop of your own works here
    x = train[0].float() * 2.0 ** INPUT_EXP
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), train[1][batch]).backward()
            optimizer.step()
    model.eval()

    return UserModel(model=model, train=train, test=test,
                     input_bits=INPUT_BITS, input_signed=INPUT_SIGNED, input_exp=INPUT_EXP,
                     sparsity=0.85)  # the default of --sparsity for this model (optional)


if __name__ == "__main__":
    user = build()
    with torch.no_grad():
        logits = user.model(user.test[0].float() * 2.0 ** user.input_exp)
    print(f"float test accuracy: {(logits.argmax(1) == user.test[1]).float().mean():.4f}")
