"""Reading and writing checkpoints in format version 1 (contract.md section 1).

This module is the only place past the compression stage where torch is used: it turns the
``torch.save``-d dict into a validated :class:`~jpq_hw.ir.QNet` of numpy integers and back.
Loading uses ``torch.load(..., weights_only=True)``, so a checkpoint can never run code.
Every defect is reported as one :class:`~jpq_hw.errors.JpqError` line that names it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import JpqError
from .qnet import LAYER_KINDS, ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, Layer, QLayer, QNet

FORMAT = "jpq-hw-qnet"
VERSION = 1


def load_checkpoint(path: str | os.PathLike) -> QNet:
    """Load and validate a checkpoint file; raises :class:`JpqError` on any defect."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise JpqError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():
        raise JpqError(f"checkpoint {str(path)!r} is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        global_ = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if global_:
            raise JpqError(f"{str(path)!r} holds a {global_.group(1)} object, which a weights-only load refuses "
                           "(a checkpoint may contain only tensors and plain types)") from None
        raise JpqError(f"{str(path)!r} is not a readable checkpoint (not a torch.save file)") from None
    except Exception as e:  # truncated zip, not a torch file at all, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JpqError(f"{str(path)!r} is not a readable checkpoint ({first})") from None
    return qnet_from_dict(data, source=str(path))


def save_checkpoint(qnet: QNet, path: str | os.PathLike) -> None:
    """Write ``qnet`` as a version-1 checkpoint (written to a temporary name beside ``path``, then
    moved into place: a failed write leaves ``path`` as it was)."""
    import torch

    from ..outputs import output_file

    with output_file(path, checked=False) as tmp:
        torch.save(qnet_to_dict(qnet), tmp)


def qnet_to_dict(qnet: QNet) -> dict[str, Any]:
    """The plain dict of contract.md section 1 for ``qnet`` (integer tensors as int32 or int64)."""
    import torch

    def tensor(a: np.ndarray):
        a = np.asarray(a, dtype=np.int64)
        small = a.size == 0 or (a.min() >= -(1 << 31) and a.max() < (1 << 31))
        return torch.from_numpy(a.astype(np.int32 if small else np.int64))

    layers = []
    for layer in qnet.layers:
        if not isinstance(layer, QLayer):
            d = {"name": layer.name, "kind": layer.kind}
            if isinstance(layer, HammingCostLayer):
                d["disparities"] = int(layer.disparities)
            if isinstance(layer, BoxSumLayer):
                d["size"] = int(layer.size)
            d.update(out_bits=int(layer.out.bits), out_signed=bool(layer.out.signed))
            layers.append(d)
            continue
        d = {
            "name": layer.name,
            "kind": layer.kind,
            "weight": tensor(layer.weight),
            "bias": tensor(layer.bias) if np.any(layer.bias) else None,
            "shift": int(layer.shift),
            "relu": bool(layer.relu),
            "out_bits": int(layer.out.bits),
            "out_signed": bool(layer.out.signed),
        }
        if layer.kind == "conv2d":
            d["stride"] = int(layer.stride)
            d["padding"] = int(layer.padding)
        layers.append(d)
    return {
        "format": FORMAT,
        "version": VERSION,
        "input": {"shape": list(qnet.input_shape), "bits": qnet.input.bits, "signed": qnet.input.signed},
        "layers": layers,
        "meta": dict(qnet.meta),
    }


def qnet_from_dict(data: Any, source: str = "checkpoint") -> QNet:
    """Validate a checkpoint dict and build the :class:`QNet` it describes."""
    if not isinstance(data, dict):
        raise JpqError(f"{source}: not a jpq-hw checkpoint (top level is a {type(data).__name__}, not a dict)")
    if data.get("format") != FORMAT:
        raise JpqError(f"{source}: format is {data.get('format')!r}, expected {FORMAT!r}")
    if data.get("version") != VERSION:
        raise JpqError(f"{source}: format version {data.get('version')!r} is not supported (this jpq-hw reads version {VERSION})")

    inp = data.get("input")
    if not isinstance(inp, dict):
        raise JpqError(f"{source}: 'input' must be a dict with shape, bits and signed")
    shape = inp.get("shape")
    if (not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3)
            or not all(_is_int(s) and s >= 1 for s in shape)):
        raise JpqError(f"{source}: input shape must be [N] or [C, H, W] of positive integers, got {shape!r}")
    in_fmt = _format(source, "input", inp.get("bits"), inp.get("signed"))

    raw_layers = data.get("layers")
    if not isinstance(raw_layers, (list, tuple)):
        raise JpqError(f"{source}: 'layers' must be a list")
    if not raw_layers:
        raise JpqError(f"{source}: the network has no layers")
    layers = tuple(_layer(source, i, d) for i, d in enumerate(raw_layers))

    meta = data.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise JpqError(f"{source}: 'meta' must be a dict")
    try:
        return QNet(input_shape=tuple(int(s) for s in shape), input=in_fmt, layers=layers, meta=meta)
    except JpqError as e:
        raise JpqError(f"{source}: {e}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _format(source: str, where: str, bits: Any, signed: Any) -> IntFormat:
    if not _is_int(bits) or not 1 <= bits <= 32:
        raise JpqError(f"{source}: {where} bits must be an integer in 1..32, got {bits!r}")
    if not isinstance(signed, bool):
        raise JpqError(f"{source}: {where} signed must be true or false, got {signed!r}")
    return IntFormat(int(bits), signed)


def _int_array(source: str, where: str, value: Any, ndim: int) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            raise JpqError(f"{source}: {where} must be an integer tensor, got dtype {value.dtype}")
        array = value.detach().cpu().numpy().astype(np.int64)
    else:
        raise JpqError(f"{source}: {where} must be an integer tensor, got {type(value).__name__}")
    if array.ndim != ndim:
        raise JpqError(f"{source}: {where} must have {ndim} dimensions, got shape {list(array.shape)}")
    if array.size == 0:
        raise JpqError(f"{source}: {where} is empty (shape {list(array.shape)})")
    return array


def _layer(source: str, index: int, d: Any) -> Layer:
    if not isinstance(d, dict):
        raise JpqError(f"{source}: layer {index} must be a dict")
    name = d.get("name", f"layer{index}")
    if not isinstance(name, str) or not name:
        raise JpqError(f"{source}: layer {index}: name must be a non-empty string")
    where = f"layer {name!r}"
    kind = d.get("kind")
    if kind not in LAYER_KINDS:
        raise JpqError(f"{source}: {where}: unknown layer kind {kind!r} (known: {', '.join(LAYER_KINDS)})")
    if kind == "hamming_cost":
        disparities = d.get("disparities")
        if not _is_int(disparities) or disparities < 1:
            raise JpqError(f"{source}: {where}: disparities must be an integer >= 1, got {disparities!r}")
        return HammingCostLayer(name, int(disparities), _format(source, f"{where} out", d.get("out_bits"),
                                                                 d.get("out_signed")))
    if kind == "box_sum":
        size = d.get("size")
        if not _is_int(size) or size < 1 or size % 2 == 0:
            raise JpqError(f"{source}: {where}: size must be an odd integer >= 1, got {size!r}")
        return BoxSumLayer(name, int(size), _format(source, f"{where} out", d.get("out_bits"), d.get("out_signed")))
    if kind == "argmin":
        return ArgminLayer(name, _format(source, f"{where} out", d.get("out_bits"), d.get("out_signed")))
    weight = _int_array(source, f"{where} weight", d.get("weight"), 2 if kind == "linear" else 4)
    n_out = weight.shape[0]
    bias = d.get("bias")
    if bias is None:
        bias = np.zeros(n_out, dtype=np.int64)
    else:
        bias = _int_array(source, f"{where} bias", bias, 1)
        if bias.shape[0] != n_out:
            raise JpqError(f"{source}: {where}: bias has {bias.shape[0]} values for {n_out} outputs")
    shift = d.get("shift")
    if not _is_int(shift) or shift < 0:
        raise JpqError(f"{source}: {where}: shift must be an integer >= 0, got {shift!r}")
    if shift > 62:
        raise JpqError(f"{source}: {where}: shift {shift} is larger than any accumulator (at most 62)")
    relu = d.get("relu")
    if not isinstance(relu, bool):
        raise JpqError(f"{source}: {where}: relu must be true or false, got {relu!r}")
    out = _format(source, f"{where} out", d.get("out_bits"), d.get("out_signed"))
    stride, padding = d.get("stride", 1), d.get("padding", 0)
    if kind == "conv2d":
        if not _is_int(stride) or stride < 1:
            raise JpqError(f"{source}: {where}: stride must be an integer >= 1, got {stride!r}")
        if not _is_int(padding) or padding < 0:
            raise JpqError(f"{source}: {where}: padding must be an integer >= 0, got {padding!r}")
    else:
        stride, padding = 1, 0
    return QLayer(name=name, kind=kind, weight=weight, bias=bias, shift=int(shift), relu=relu, out=out,
                  stride=int(stride), padding=int(padding))
