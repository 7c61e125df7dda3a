"""Reading a torch model as a chain of checkpoint layers.

The compression stage accepts any ``torch.nn.Module`` whose computation is a plain sequence of
``Linear`` / ``Conv2d`` layers, each optionally followed by ``ReLU``, with ``Flatten`` (and the
no-ops ``Identity`` and ``Dropout``) anywhere between them. Such a model maps one to one onto the
layers of a version-1 checkpoint (contract.md section 1): every ``Linear`` / ``Conv2d`` becomes one
:class:`Block`, and a ``ReLU`` right after it becomes that layer's ``relu`` flag.

The chain is read from the model's leaf modules in registration order (nested ``Sequential``s and
other containers are walked depth first). A model that is not an ``nn.Sequential`` may compute
something else in its ``forward``; :func:`extract_chain` therefore runs the model and the chain on
a probe batch and refuses the model if they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..errors import JpqError

PRUNABLE = (nn.Linear, nn.Conv2d)
NO_OPS = (nn.Identity, nn.Dropout)


@dataclass
class Block:
    """One checkpoint layer: a ``Linear`` or ``Conv2d`` module and whether a ReLU follows it."""

    name: str
    module: nn.Linear | nn.Conv2d
    relu: bool

    @property
    def kind(self) -> str:
        return "linear" if isinstance(self.module, nn.Linear) else "conv2d"

    @property
    def stride(self) -> int:
        return int(self.module.stride[0]) if isinstance(self.module, nn.Conv2d) else 1

    @property
    def padding(self) -> int:
        return int(self.module.padding[0]) if isinstance(self.module, nn.Conv2d) else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The float layer: ``Linear`` flattens its input first (contract.md: [C, H, W] order)."""
        if isinstance(self.module, nn.Linear):
            x = torch.flatten(x, 1)
        y = self.module(x)
        return torch.relu(y) if self.relu else y


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    out = []
    for name, m in model.named_modules():
        if name and not list(m.children()):
            out.append((name, m))
    if not out and not list(model.children()):
        out.append((type(model).__name__.lower(), model))
    return out


def _check_conv(name: str, m: nn.Conv2d) -> None:
    if isinstance(m.padding, str):
        raise JpqError(f"layer {name!r}: padding={m.padding!r} is not supported; give an integer padding")
    if m.groups != 1:
        raise JpqError(f"layer {name!r}: grouped convolution (groups={m.groups}) does not fit the checkpoint format")
    if tuple(m.dilation) != (1, 1):
        raise JpqError(f"layer {name!r}: dilation {tuple(m.dilation)} does not fit the checkpoint format")
    if m.padding_mode != "zeros":
        raise JpqError(f"layer {name!r}: padding_mode {m.padding_mode!r} does not fit the checkpoint format (zeros only)")
    if m.stride[0] != m.stride[1]:
        raise JpqError(f"layer {name!r}: stride {tuple(m.stride)} differs between height and width")
    if m.padding[0] != m.padding[1]:
        raise JpqError(f"layer {name!r}: padding {tuple(m.padding)} differs between height and width")


def extract_chain(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[Block]:
    """The model's :class:`Block` chain; raises :class:`JpqError` for anything that does not fit.

    With ``input_shape`` (one item's shape, e.g. ``[64]`` or ``[1, 8, 8]``) the chain is also run
    against ``model(x)`` on a seeded probe batch, which catches models whose ``forward`` is not the
    sequence of their layers.
    """
    blocks: list[Block] = []
    for name, m in _leaves(model):
        if isinstance(m, PRUNABLE):
            if isinstance(m, nn.Conv2d):
                _check_conv(name, m)
            blocks.append(Block(name, m, relu=False))
        elif isinstance(m, nn.ReLU):
            if not blocks:
                raise JpqError(f"layer {name!r}: a ReLU before the first Linear/Conv2d layer is not supported")
            if blocks[-1].relu:
                continue  # relu(relu(x)) == relu(x)
            blocks[-1].relu = True
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise JpqError(f"layer {name!r}: only Flatten(start_dim=1, end_dim=-1) is supported")
        elif isinstance(m, NO_OPS):
            continue
        else:
            raise JpqError(f"layer {name!r}: unsupported layer type {type(m).__name__} "
                           "(supported: Linear, Conv2d, ReLU, Flatten, Identity, Dropout)")
    if not blocks:
        raise JpqError("the model has no Linear or Conv2d layer")
    # (a ReLU after a Flatten attaches to the layer before the Flatten: relu commutes with flatten)
    for prev, nxt in zip(blocks, blocks[1:]):
        if nxt.kind == "conv2d" and prev.kind == "linear":
            raise JpqError(f"layer {nxt.name!r}: a Conv2d after a Linear layer does not fit the checkpoint format")
    if input_shape is not None:
        check_chain(model, blocks, input_shape)
    return blocks


def run_chain(blocks: Sequence[Block], x: torch.Tensor) -> torch.Tensor:
    """The float output of the chain for a batch ``x``."""
    for b in blocks:
        x = b.forward(x)
    return x


def check_chain(model: nn.Module, blocks: Sequence[Block], input_shape: Sequence[int]) -> None:
    """Refuse the model unless ``model(x)`` equals the chain's output on a seeded probe batch."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3):
        raise JpqError(f"input shape must be [N] or [C, H, W], got {list(shape)}")
    first = blocks[0]
    if first.kind == "conv2d" and len(shape) != 3:
        raise JpqError(f"the first layer {first.name!r} is a Conv2d but the input shape is {list(shape)}")
    gen = torch.Generator().manual_seed(1234)
    x = torch.rand((4, *shape), generator=gen)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                expected = model(x)
                got = run_chain(blocks, x)
            except RuntimeError as e:
                first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise JpqError(f"the model does not run on inputs of shape {list(shape)} ({first_line})") from None
    finally:
        model.train(was_training)
    if expected.shape != got.shape or not torch.allclose(expected, got, rtol=1e-4, atol=1e-5):
        raise JpqError("the model's forward is not the plain sequence of its Linear/Conv2d/ReLU/Flatten layers")
