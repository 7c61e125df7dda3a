"""Reading a torch model as a chain of checkpoint layers.

A version-1 checkpoint (contract.md section 1) is a chain of ``linear`` / ``conv2d`` layers, each
with an optional ReLU. :func:`read_chain` traces the model's ``forward`` with ``torch.fx`` and maps
what it computes onto that chain; it accepts:

- ``nn.Linear`` and ``nn.Conv2d`` modules: one :class:`Block` each;
- a ReLU right after a layer (``nn.ReLU``, ``torch.relu``, ``F.relu``, ``x.relu()``): the block's
  ``relu`` flag;
- a ``BatchNorm1d`` / ``BatchNorm2d`` right after a layer: folded into it with its running
  statistics (as hls4ml, FINN and Brevitas do), so the block is a new module with
  ``w * g / sqrt(v + eps)`` and ``(b - m) * g / sqrt(v + eps) + beta``;
- flattening (``nn.Flatten``, ``torch.flatten(x, 1)``, ``x.view(x.size(0), -1)`` and the like: a
  ``Linear`` flattens its input in [C, H, W] order anyway) and no-ops (``Identity``, ``Dropout``);
- a final ``Softmax`` / ``LogSoftmax``: dropped with a note (the argmax is unchanged).

Anything else (``Sigmoid``, ``Tanh``, residual additions, concatenations, a parameter used
directly, ...) is refused with a message that names the module, or the line of ``forward`` that
uses it, and says what to do instead. What was folded or dropped is listed in :attr:`Chain.notes`.
Finally the chain is run against ``model(x)`` on a probe batch (:func:`check_chain`), so a model
read wrongly is refused rather than compressed. Layers of an unnamed ``nn.Sequential`` (module
paths like ``0`` or ``2``) are named by kind and position: ``linear1``, ``conv2``.
"""

from __future__ import annotations

import copy
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import JpqError

PRUNABLE = (nn.Linear, nn.Conv2d)
NO_OPS = (nn.Identity, nn.Dropout)
_RELU_FUNCTIONS = {torch.relu, torch.relu_, F.relu}
_SOFTMAX_FUNCTIONS = {torch.softmax: False, F.softmax: False, torch.log_softmax: True, F.log_softmax: True}
_FLATTEN_METHODS = {"view", "reshape"}
_ADVICE = {
    "Sigmoid": "train with ReLU instead (a final Sigmoid can simply be left out: the argmax is unchanged)",
    "Tanh": "train with ReLU instead",
    "GELU": "train with ReLU instead",
    "SiLU": "train with ReLU instead",
    "LeakyReLU": "train with ReLU instead",
    "ReLU6": "train with ReLU instead (or a wider ReLU; the output stage saturates anyway)",
    "MaxPool2d": "use a Conv2d with stride 2 instead",
    "AvgPool2d": "use a Conv2d with stride 2 instead",
    "AdaptiveAvgPool2d": "use a Conv2d with stride 2, or flatten into a Linear layer, instead",
}


@dataclass
class Block:
    """One checkpoint layer: a ``Linear`` or ``Conv2d`` module and whether a ReLU follows it."""

    name: str
    module: nn.Linear | nn.Conv2d
    relu: bool
    path: str = ""  # the module's path in the model (the name, unless that was only numbers)

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


@dataclass
class Chain:
    """A model read as checkpoint layers, and what was changed on the way."""

    blocks: list[Block]
    notes: list[str] = field(default_factory=list)  # e.g. "BatchNorm1d 'bn1' folded into 'fc1'"
    tail: Callable[[torch.Tensor], torch.Tensor] | None = None  # the dropped final Softmax, if any

    def module(self) -> "ChainModule":
        """The chain as a module (what the compression stage trains)."""
        return ChainModule(self.blocks)


class ChainModule(nn.Module):
    """The float network that a :class:`Chain` computes: its blocks run in order."""

    def __init__(self, blocks: Sequence[Block]):
        super().__init__()
        self.blocks = list(blocks)
        self.layers = nn.ModuleList(b.module for b in self.blocks)  # registers the parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_chain(self.blocks, x)


# -- reading -------------------------------------------------------------------------------------

def _where(node: fx.Node) -> str:
    """Where ``node`` comes from: the module it calls, or the line of the user's code that makes it."""
    if node.op == "call_module":
        return f"module {node.target!r}"
    torch_dir = str(Path(torch.__file__).parent)
    for path, line, code in re.findall(r'File "([^"]+)", line (\d+), in \S+\n\s*(.*)', node.stack_trace or ""):
        if not path.startswith(torch_dir):
            return f"line {line} of {Path(path).name}: {code.strip()}"
    return f"{node.op} {getattr(node.target, '__name__', node.target)}"


def _refuse(node: fx.Node, what: str, advice: str = "") -> JpqError:
    return JpqError(f"{what} ({_where(node)}) does not fit the checkpoint format" + (f": {advice}" if advice else ""))


def _trace(model: nn.Module) -> fx.Graph:
    tracer = fx.Tracer()
    tracer.record_stack_traces = True
    try:
        return tracer.trace(model)
    except Exception as e:  # control flow on values, unsupported Python in forward, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JpqError(f"the model cannot be read by torch.fx tracing ({first}); write its forward as a "
                       "sequence of layers without control flow that depends on the data") from None


def _is_shape_query(node: fx.Node, shape_nodes: set[fx.Node]) -> bool:
    """``x.size(...)``, ``x.shape``, ``x.dim()`` and indexing into them: no tensor, only sizes."""
    if node.op == "call_method" and node.target in ("size", "dim"):
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",):
        return True
    return node.op == "call_function" and node.target is operator.getitem and node.args[0] in shape_nodes


def _classify(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[str, Any]:
    """``(op, detail)`` for a node that continues the chain: ``layer``, ``batchnorm``, ``relu``,
    ``flatten``, ``noop`` or ``softmax``; anything else raises :class:`JpqError`."""
    args = node.args[1:]
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, PRUNABLE):
            return "layer", m
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return "batchnorm", m
        if isinstance(m, nn.ReLU):
            return "relu", None
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise _refuse(node, f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})",
                              "only Flatten(start_dim=1, end_dim=-1) is supported")
            return "flatten", None
        if isinstance(m, NO_OPS):
            return "noop", None
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            return "softmax", (m.dim, isinstance(m, nn.LogSoftmax))
        name = type(m).__name__
        raise _refuse(node, f"layer type {name}", _ADVICE.get(name, "supported are Linear, Conv2d, ReLU, BatchNorm "
                                                                    "after a layer, Flatten, Identity, Dropout and a "
                                                                    "final Softmax"))
    if node.op == "call_function":
        f = node.target
        if f in _RELU_FUNCTIONS:
            return "relu", None
        if f in _SOFTMAX_FUNCTIONS:
            return "softmax", (node.kwargs.get("dim", args[0] if args else None), _SOFTMAX_FUNCTIONS[f])
        if f is torch.flatten:
            return _flatten(node, node.kwargs.get("start_dim", args[0] if args else 0),
                            node.kwargs.get("end_dim", args[1] if len(args) > 1 else -1))
        if f is F.dropout:
            return "noop", None
        name = getattr(f, "__name__", str(f))
        if f in (operator.add, operator.iadd, torch.add, torch.cat, torch.stack, operator.mul, torch.mul):
            raise _refuse(node, f"'{name}'", "the chain has no residual additions, concatenations or products; "
                                             "every layer reads the one before it")
        advice = _ADVICE.get({"sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU", "silu": "SiLU"}.get(name, ""), "")
        raise _refuse(node, f"'{name}'", advice or "use Linear, Conv2d and ReLU modules")
    if node.op == "call_method":
        if node.target in ("relu", "relu_"):
            return "relu", None
        if node.target in ("softmax", "log_softmax"):
            return "softmax", (node.kwargs.get("dim", args[0] if args else None), node.target == "log_softmax")
        if node.target == "flatten":
            return _flatten(node, node.kwargs.get("start_dim", args[0] if args else 0),
                            node.kwargs.get("end_dim", args[1] if len(args) > 1 else -1))
        if node.target in _FLATTEN_METHODS and len(args) == 2 and args[1] == -1:
            return "flatten", None  # x.view(x.size(0), -1): the probe check confirms the batch dimension
        raise _refuse(node, f"'.{node.target}()'", "use Linear, Conv2d and ReLU modules")
    raise _refuse(node, f"'{node.target}'", "use Linear and Conv2d modules (a parameter used directly cannot be "
                                            "pruned or quantized)")


def _flatten(node: fx.Node, start: Any, end: Any) -> tuple[str, None]:
    if start != 1 or end != -1:
        raise _refuse(node, f"a flatten from dimension {start} to {end}", "flatten from dimension 1 to the end")
    return "flatten", None


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


def fold_batchnorm(layer: nn.Linear | nn.Conv2d, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Linear | nn.Conv2d:
    """A copy of ``layer`` with ``bn`` (inference mode: running statistics) folded into it."""
    with torch.no_grad():
        scale = bn.running_var.double().add(bn.eps).rsqrt()
        if bn.affine:
            scale = scale * bn.weight.double()
        shift = -bn.running_mean.double() * scale + (bn.bias.double() if bn.affine else 0.0)
        fused = copy.deepcopy(layer)
        if fused.bias is None:
            fused.bias = nn.Parameter(torch.zeros(fused.out_channels if isinstance(fused, nn.Conv2d)
                                                  else fused.out_features, dtype=layer.weight.dtype,
                                                  device=layer.weight.device))
        view = (-1,) + (1,) * (layer.weight.dim() - 1)
        fused.weight.copy_((layer.weight.double() * scale.view(view)).to(layer.weight.dtype))
        fused.bias.copy_((fused.bias.double() * scale + shift).to(layer.weight.dtype))
    return fused


def _layer_name(path: str, kind: str, position: int) -> str:
    """The module path, unless it is only numbers (an unnamed ``nn.Sequential``): then kind and position."""
    if all(part.isdigit() for part in path.split(".")):
        return f"{'linear' if kind == 'linear' else 'conv'}{position}"
    return path


def read_chain(model: nn.Module, input_shape: Sequence[int] | None = None) -> Chain:
    """The model's :class:`Chain`; raises :class:`JpqError` for anything that does not fit.

    With ``input_shape`` (one item's shape, e.g. ``[64]`` or ``[1, 8, 8]``) the chain is also run
    against ``model(x)`` on a seeded probe batch (:func:`check_chain`).
    """
    if isinstance(model, PRUNABLE):
        model = nn.Sequential(model)  # a lone layer (tracing would look inside it)
    graph = _trace(model)
    modules = dict(model.named_modules())
    ops: list[tuple[fx.Node, str, Any]] = []
    value: fx.Node | None = None  # the node that holds the chain's tensor so far
    shape_nodes: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "placeholder":
            if value is not None:
                raise JpqError(f"the model takes more than one input ({node.target!r}); a checkpoint has one")
            value = node
            continue
        if node.op == "output":
            if node.args[0] is not value:
                raise JpqError("the model's output is not the result of its last layer (a tuple, or a value "
                               "computed beside the chain)")
            break
        if _is_shape_query(node, shape_nodes):
            shape_nodes.add(node)
            continue
        uses = [a for a in node.all_input_nodes if a not in shape_nodes]
        if node.op != "get_attr" and value not in uses:
            raise _refuse(node, "a value computed beside the chain", "every layer reads the one before it")
        if len(uses) > 1:
            raise _refuse(node, f"'{getattr(node.target, '__name__', node.target)}' of two tensors",
                          "the chain has no residual additions or concatenations; every layer reads the one before it")
        op, detail = _classify(node, modules)
        if ops and ops[-1][1] == "softmax":
            raise _refuse(node, "a layer after a Softmax", "a Softmax may only come last")
        ops.append((node, op, detail))
        value = node

    chain = Chain([])
    blocks = chain.blocks
    for i, (node, op, detail) in enumerate(ops):
        if op == "layer":
            kind = "linear" if isinstance(detail, nn.Linear) else "conv2d"
            name = _layer_name(str(node.target), kind, len(blocks) + 1)
            if isinstance(detail, nn.Conv2d):
                _check_conv(name, detail)
            if blocks and kind == "conv2d" and blocks[-1].kind == "linear":
                raise JpqError(f"layer {name!r}: a Conv2d after a Linear layer does not fit the checkpoint format")
            blocks.append(Block(name, detail, relu=False, path=str(node.target)))
        elif op == "batchnorm":
            if not blocks or ops[i - 1][1] != "layer":
                raise _refuse(node, type(detail).__name__, "a BatchNorm is folded only into the Linear / Conv2d "
                                                           "right before it; move it there")
            want = nn.BatchNorm1d if blocks[-1].kind == "linear" else nn.BatchNorm2d
            if not isinstance(detail, want) or detail.running_var is None:
                raise _refuse(node, type(detail).__name__, f"after a {blocks[-1].kind} layer only a {want.__name__} "
                                                           "with running statistics can be folded")
            blocks[-1].module = fold_batchnorm(blocks[-1].module, detail)
            chain.notes.append(f"{type(detail).__name__} {node.target!r} folded into {blocks[-1].name!r}")
        elif op == "relu":
            if not blocks:
                raise _refuse(node, "a ReLU before the first Linear/Conv2d layer")
            blocks[-1].relu = True  # relu(relu(x)) == relu(x); relu commutes with a flatten after it
        elif op == "softmax":
            dim, log = detail
            if not blocks or blocks[-1].kind != "linear" or dim not in (1, -1):
                raise _refuse(node, "a Softmax", "only a final Softmax over the outputs of a Linear layer "
                                                 "(dim=1) is dropped")
            chain.tail = (lambda y: torch.log_softmax(y, 1)) if log else (lambda y: torch.softmax(y, 1))
            chain.notes.append(f"the final {'LogSoftmax' if log else 'Softmax'} dropped (the argmax is unchanged)")
        # flatten, noop: nothing to record (a Linear flattens its input)
    if not blocks:
        raise JpqError("the model has no Linear or Conv2d layer")
    if input_shape is not None:
        check_chain(model, blocks, input_shape, chain.tail)
    return chain


def extract_chain(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[Block]:
    """The blocks of :func:`read_chain`."""
    return read_chain(model, input_shape).blocks


def run_chain(blocks: Sequence[Block], x: torch.Tensor) -> torch.Tensor:
    """The float output of the chain for a batch ``x``."""
    for b in blocks:
        x = b.forward(x)
    return x


def check_chain(model: nn.Module, blocks: Sequence[Block], input_shape: Sequence[int],
                tail: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
    """Refuse the model unless ``model(x)`` equals the chain's output (then ``tail``, a dropped final
    Softmax) on a seeded probe batch, the model in inference mode (BatchNorm: running statistics)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3):
        raise JpqError(f"input shape must be [N] or [C, H, W], got {list(shape)}")
    first = blocks[0]
    if first.kind == "conv2d" and len(shape) != 3:
        raise JpqError(f"the first layer {first.name!r} is a Conv2d but the input shape is {list(shape)}")
    gen = torch.Generator().manual_seed(1234)
    device = first.module.weight.device
    x = torch.rand((4, *shape), generator=gen).to(device)
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
            if tail is not None:
                got = tail(got)
    finally:
        model.train(was_training)
    if expected.shape != got.shape or not torch.allclose(expected, got, rtol=1e-4, atol=1e-5):
        raise JpqError("the model's forward is not the plain sequence of its Linear/Conv2d/ReLU/Flatten layers")
